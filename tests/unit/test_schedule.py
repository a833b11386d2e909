"""The hierarchical schedule C(t): stages, boundaries, conversions, and step assignment."""

import math

import pytest
import torch
from support.designs import PAPER_ATTRIBUTES, PAPER_CONCEPT, design_of

from hierafash_core.design import Attribute, Design, DesignError, make_attribute
from hierafash_core.errors import HieraFashError
from hierafash_core.noise import (
    discrete_percent_to_sigma,
    percent_to_timestep,
    sd_sigmas,
    sigma_to_percent,
    timestep_to_percent,
)
from hierafash_core.schedule import (
    PAPER_BOUNDARIES,
    Schedule,
    ScheduleError,
    Stage,
    assign_steps,
    build_schedule,
    compile_schedule,
    cut_percent,
    format_preview,
    parse_boundaries,
    percent_ranges,
    untie_cuts,
)

SIGMAS = sd_sigmas()
P2S = discrete_percent_to_sigma(SIGMAS)
CONCEPT, ATTRS = PAPER_CONCEPT, PAPER_ATTRIBUTES


def paper_design(n=5):
    return design_of(ATTRS[:n])


# --- sampler schedules, written from their definitions (ComfyUI's own are checked in the comfy tier)
def sigma_at(t: float) -> float:
    return P2S(timestep_to_percent(t))


def ddim_uniform(steps):  # t = 1 + k * 1000/steps, descending (method.md §1.3)
    c = NUM = 1000 // steps
    return [float(SIGMAS[t]) for t in range(1 + c * (steps - 1), 0, -NUM)] + [0.0]


def simple(steps):
    return [float(SIGMAS[-(1 + int(x * 1000 / steps))]) for x in range(steps)] + [0.0]


def normal(steps):
    return [sigma_at(t) for t in torch.linspace(999, 0, steps).tolist()] + [0.0]


def karras(steps, rho=7.0):
    lo, hi = float(SIGMAS[0]) ** (1 / rho), float(SIGMAS[-1]) ** (1 / rho)
    return [(hi + i / (steps - 1) * (lo - hi)) ** rho for i in range(steps)] + [0.0]


SCHEDULERS = {"ddim_uniform": ddim_uniform, "simple": simple, "normal": normal, "karras": karras}


def stage_of_timestep(t: float, boundaries=PAPER_BOUNDARIES) -> int:
    """The paper's rule on the discrete axis: t >= boundary b_k means an earlier stage than k+1."""
    return sum(1 for b in boundaries if t < b)


# --- building -----------------------------------------------------------------------------------
def test_paper_bands_and_progressive_prompts():
    schedule = build_schedule(paper_design())
    assert [(s.t_high, s.t_low) for s in schedule.stages] == [
        (1000, 900), (900, 800), (800, 710), (710, 630), (630, 560), (560, 500), (500, 0)]
    prompts = [s.prompt for s in schedule.stages]
    assert prompts[0] == ", ".join(CONCEPT)
    assert prompts[1] == prompts[0] + ", Long Dress"
    for shorter, longer in zip(prompts, prompts[1:]):
        assert longer.startswith(shorter)
    assert prompts[5].endswith("V-Neck, Draped Hem") and prompts[6] == prompts[5]
    assert [s.name for s in schedule.stages][0] == "concept" and schedule.stages[-1].name == "detail"
    assert schedule.stages[2].attribute == Attribute("sleeve_length", "Short Sleeve", "Short Sleeve")


def test_detail_and_suffix():
    schedule = build_schedule(paper_design(1), detail="silk, red", suffix="best quality")
    assert all(s.prompt.endswith("best quality") for s in schedule.stages[:-1])
    assert schedule.stages[-1].prompt.endswith("best quality, silk, red")


def test_fewer_attributes_use_the_first_boundaries_like_the_official_code():
    schedule = build_schedule(paper_design(2))
    assert [(s.t_high, s.t_low) for s in schedule.stages] == [(1000, 900), (900, 800), (800, 710), (710, 0)]
    assert build_schedule(Design(CONCEPT)).boundaries == (900,)


def test_each_attribute_takes_its_own_paper_band():
    # Issue 11.1: collar and hem only; A1's band (800-899) carries no collar, as in training captions.
    design = Design(CONCEPT, "Dress")
    for label, value in [ATTRS[4], ATTRS[3]]:  # chained hem first: the band, not the chain, decides
        design = design.with_attribute(make_attribute(label, value, "", "Dress"))
    schedule = build_schedule(design)
    concept = ", ".join(CONCEPT)
    bands = [(s.t_high, s.t_low, s.prompt, s.attribute and s.attribute.kind) for s in schedule.stages]
    assert bands == [
        (1000, 900, concept, None), (900, 800, concept, None), (800, 710, concept, None), (710, 630, concept, None),
        (630, 560, concept + ", V-Neck", "collar"), (560, 500, concept + ", V-Neck, Draped Hem", "hem"),
        (500, 0, concept + ", V-Neck, Draped Hem", None)]
    assert [s.name for s in schedule.stages][1:4] == ["(no clothing length)", "(no sleeve length)", "(no sleeve type)"]
    positional = build_schedule(design.in_order("paper"), layout="in chain order")  # the old rule, on request
    assert [(s.t_high, s.t_low) for s in positional.stages][1:3] == [(900, 800), (800, 710)]
    with pytest.raises(ScheduleError, match="more than one collar attribute"):
        build_schedule(design.with_attribute(make_attribute("collar", "Boat Neck", "", "Dress")))


def test_unused_bands_do_not_warn_in_the_preview():
    design = Design(CONCEPT, "Dress").with_attribute(make_attribute("hem", "Slit Hem", "", "Dress"))
    schedule = build_schedule(design)
    cuts = schedule.cut_percents()
    preview = format_preview(schedule, assign_steps(normal(2), cuts, P2S), cuts)
    first, *rest = preview.splitlines()
    assert first.startswith("WARNING: stage '+hem' gets no sampler step")
    assert "(no collar)" in preview and "'(no" not in first


def test_too_many_attributes_for_the_boundaries_names_the_fix():
    with pytest.raises(ScheduleError, match=r"reach band 5 \(Draped Hem\), which needs 6 boundaries.*add 2 more"):
        build_schedule(paper_design(5), (900, 800, 700, 600))


@pytest.mark.parametrize("text, message", [
    ("900, 900", "strictly decrease"), ("800, 900", "strictly decrease"), ("1000", "outside"),
    ("0", "outside"), ("900, abc", "comma-separated"),
])
def test_boundary_validation(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_boundaries(text)


def test_user_boundaries_parse():
    assert parse_boundaries(" 950,  600 ,300") == (950, 600, 300)


@pytest.mark.parametrize("stages, message", [
    ((Stage("a", "x", 1000, 500), Stage("b", "y", 400, 0)), "not contiguous"),
    ((Stage("a", "x", 1000, 500), Stage("b", "y", 500, 500), Stage("c", "z", 500, 0)), "zero width"),
    ((Stage("a", "x", 900, 0),), "cover the whole trajectory"),
    ((), "at least one stage"),
])
def test_schedule_validation(stages, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule(stages)


def test_attribute_values_are_checked_against_their_vocabulary():
    with pytest.raises(DesignError, match="'Boat Neck' is not a sleeve length value"):
        make_attribute("sleeve length", "Boat Neck", "", "Dress")
    with pytest.raises(DesignError, match="custom_text is empty"):
        make_attribute("custom", "Long", "  ", "Dress")
    mid_length = Attribute("clothing_length", "Mid-length Coat", "Mid-length")
    assert make_attribute("clothing length", "Mid-length", "", "Coat") == mid_length
    assert make_attribute("collar", "V-Neck", "Sweetheart Neckline", None) == Attribute("collar", "Sweetheart Neckline")
    with pytest.raises(DesignError, match="concept is empty"):
        Design(())


# --- conversions ----------------------------------------------------------------------------------
def test_percent_timestep_sigma_conversions():
    assert timestep_to_percent(999) == 0.0 and timestep_to_percent(0) == 1.0
    assert percent_to_timestep(timestep_to_percent(433.25)) == pytest.approx(433.25)
    assert P2S(timestep_to_percent(900)) == pytest.approx(8.3466, abs=1e-3)  # comfyui.md §5
    assert P2S(0.0) > 1e8 and P2S(1.0) == 0.0
    p = timestep_to_percent(700.3)
    assert sigma_to_percent(P2S(p), P2S) == pytest.approx(p, abs=1e-6)


def test_cuts_sit_between_discrete_timesteps():
    assert cut_percent(900) == pytest.approx(1 - 899.5 / 999)
    assert cut_percent(1000) == 0.0 and cut_percent(0) == 1.0
    cuts = build_schedule(paper_design()).cut_percents()
    assert [round(c, 4) for c in cuts] == [0.0996, 0.1997, 0.2898, 0.3699, 0.4399, 0.5]
    ranges = percent_ranges(cuts)
    assert ranges[0][0] == 0.0 and ranges[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous: no gap, shared edge


# --- step assignment ------------------------------------------------------------------------------
@pytest.mark.parametrize("steps, split", [(100, [10, 10, 9, 8, 7, 6, 50]), (50, [5, 5, 4, 4, 4, 3, 25])])
def test_paper_step_split_on_uniform_ddim(steps, split):  # method.md §1.3
    cuts = build_schedule(paper_design()).cut_percents()
    assignment = assign_steps(ddim_uniform(steps), cuts, P2S)
    assert [len(s) for s in assignment.steps_per_stage] == split


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("steps", [2, 5, 10, 20, 25, 40, 50])
def test_every_step_is_in_exactly_one_stage_matching_the_discrete_rule(scheduler, steps):
    sigmas = SCHEDULERS[scheduler](steps)
    cuts = untie_cuts(build_schedule(paper_design()).cut_percents(), sigmas, P2S)  # as the node does
    assignment = assign_steps(sigmas, cuts, P2S)
    assert assignment.ties == []
    stages = assignment.stage_of_step
    assert stages == sorted(stages) and len(stages) == steps
    for sigma, stage in zip(sigmas, stages):
        t = percent_to_timestep(sigma_to_percent(sigma, P2S))  # continuous timestep of this sigma
        on_cut = abs(t - math.floor(t) - 0.5) < 1e-3  # e.g. 'normal' at 25 steps has t = 499.5
        assert stage == stage_of_timestep(math.ceil(t) if on_cut else math.floor(t + 0.5)), (t, stage)


def test_a_step_exactly_on_a_cut_is_untied_into_the_earlier_stage():
    cuts = build_schedule(paper_design()).cut_percents()
    on_cut = P2S(cuts[2])  # a continuous schedule could land exactly here
    sigmas = sorted([14.0, 9.0, 5.0, on_cut, 2.0, 1.0, 0.5, 0.1, 0.0], reverse=True)
    tied = assign_steps(sigmas, cuts, P2S)
    step = sigmas.index(on_cut)
    assert tied.ties == [step] and len(tied.active[step]) == 2
    with pytest.raises(ScheduleError, match="not in exactly one stage"):
        _ = tied.stage_of_step

    untied_cuts = untie_cuts(cuts, sigmas, P2S)
    assert untied_cuts[2] > cuts[2] and [c for i, c in enumerate(untied_cuts) if i != 2] == cuts[:2] + cuts[3:]
    untied = assign_steps(sigmas, untied_cuts, P2S)
    assert untied.ties == [] and untied.stage_of_step[step] == 2
    assert untied.stage_of_step[step + 1] == tied.active[step + 1][0]


def test_a_cut_that_cannot_move_below_its_step_refuses():
    # Boundaries 900, 899: one timestep apart. A step exactly on the first cut cannot move below itself
    # without passing the next cut, so untying must refuse rather than put the cuts out of order.
    cuts = [cut_percent(900), cut_percent(899)]
    on_cut = P2S(cuts[0])
    with pytest.raises(ScheduleError, match="lands exactly on boundary 1 and the next stage is too narrow"):
        untie_cuts(cuts, [14.0, on_cut, 0.0], P2S)
    # The last cut's upper limit is percent 1: a step there with nothing below it cannot move either.
    last = [cut_percent(500)]
    moved = untie_cuts(last, [14.0, P2S(last[0]), 0.0], P2S)
    assert last[0] < moved[0] < 1.0


def test_untie_leaves_untied_schedules_alone():
    cuts = build_schedule(paper_design()).cut_percents()
    for scheduler, make in SCHEDULERS.items():
        assert untie_cuts(cuts, make(20), P2S) == cuts, scheduler


def test_normal_scheduler_really_lands_on_a_cut():
    # linspace(999, 0, 25) passes t = 499.5, the cut below boundary 500: without untying, two stages run.
    cuts = build_schedule(paper_design()).cut_percents()
    assert assign_steps(normal(25), cuts, P2S).ties == [12]
    assert assign_steps(normal(25), untie_cuts(cuts, normal(25), P2S), P2S).stage_of_step[12] == 5


def test_empty_stages_are_reported_in_the_preview():
    schedule = build_schedule(paper_design())
    cuts = schedule.cut_percents()
    assignment = assign_steps(karras(20), cuts, P2S)
    assert assignment.empty_stages == [5]
    preview = format_preview(schedule, assignment, cuts, "karras 20")
    assert "0 steps" in preview


def test_warnings_are_on_the_first_line_of_the_preview():
    """A short text box shows the first line: every warning is there, after the header, and nowhere else."""
    design = Design(CONCEPT, "Dress").with_attribute(make_attribute("collar", "V-Neck", "", "Dress")).with_attribute(
        make_attribute("hem", "Slit Hem", "", "Dress"))
    schedule = build_schedule(design)
    cuts = schedule.cut_percents()
    lines = format_preview(schedule, assign_steps(normal(2), cuts, P2S), cuts, "2 steps, normal").splitlines()
    assert lines[0].startswith("2 steps, normal. WARNING: ")
    assert "stage '+collar' gets no sampler step" in lines[0] and "stage '+hem' gets no sampler step" in lines[0]
    assert "more steps" in lines[0]  # and what to do about it
    assert not [line for line in lines[1:] if "WARNING" in line]
    quiet = format_preview(schedule, assign_steps(ddim_uniform(100), cuts, P2S), cuts, "100 steps").splitlines()
    assert quiet[0] == "100 steps" and not [line for line in quiet if "WARNING" in line]


def test_preview_lists_every_stage_with_its_band_and_prompt():
    schedule = build_schedule(paper_design())
    cuts = schedule.cut_percents()
    preview = format_preview(schedule, assign_steps(ddim_uniform(100), cuts, P2S), cuts)
    assert "concept" in preview and "t 900-999" in preview and "steps 0-9 (10)" in preview
    assert "t 0-499" in preview and "steps 50-99 (50)" in preview
    assert preview.count("prompt: ") == 7
    assert "0.0000-0.0996" in preview and "0.5000-1.0000" in preview  # percent bands of t 900 and t 500


def flow_percent_to_sigma(shift=3.0):
    """A flow model's mapping (sigma in 0..1, shifted), as ComfyUI's ModelSamplingDiscreteFlow has it."""
    def percent_to_sigma(p):
        if p <= 0.0:
            return 1.0
        if p >= 1.0:
            return 0.0
        t = 1.0 - p
        return shift * t / (1 + (shift - 1) * t)
    return percent_to_sigma


def test_the_schedule_works_on_a_flow_model_noise_axis():
    p2s = flow_percent_to_sigma()
    steps = 30
    sigmas = [p2s(i / steps) for i in range(steps)] + [0.0]  # uniform in percent, like 'simple'
    schedule = build_schedule(paper_design())
    cuts = untie_cuts(schedule.cut_percents(), sigmas, p2s)
    assignment = assign_steps(sigmas, cuts, p2s)
    assert assignment.ties == [] and len(assignment.stage_of_step) == steps
    # Uniform in percent, so each stage gets about its share of the percent axis.
    for k, (start, end) in enumerate(percent_ranges(cuts)):
        expected = [i for i in range(steps) if start <= i / steps < end]
        assert assignment.steps_per_stage[k] == expected, k


def test_compile_schedule_is_the_schedulers_one_call():
    sigmas = karras(20)
    compiled = compile_schedule(paper_design(), PAPER_BOUNDARIES, sigmas, P2S, detail="silk", header="karras 20")
    assert compiled.preview.splitlines()[0].startswith("karras 20. WARNING: stage '+hem' gets no sampler step")
    assert compiled.warnings == ("stage '+hem' gets no sampler step with these settings",)
    assert compiled.sigmas == tuple(torch.tensor(sigmas, dtype=torch.float32).tolist())
    assert compiled.schedule.stages[-1].prompt.endswith("Draped Hem, silk")
    chained = compile_schedule(paper_design(), PAPER_BOUNDARIES, sigmas, P2S, order="as chained")
    assert [s.t_low for s in chained.schedule.stages] == [s.t_low for s in compiled.schedule.stages]


@pytest.mark.parametrize("change, field, message", [
    ({"boundaries": (900, 800)}, "boundaries", "needs 6 boundaries"),
    ({"order": "by area"}, "body_masks", "needs the body regions"),
    ({"design": paper_design().with_attribute(Attribute("hem", "Slit Hem"))}, "design", "more than one hem"),
])
def test_compile_schedule_names_the_input_at_fault(change, field, message):
    args = {"design": paper_design(), "boundaries": PAPER_BOUNDARIES, **change}
    with pytest.raises(HieraFashError, match=message) as error:
        compile_schedule(args["design"], args["boundaries"], normal(10), P2S, order=change.get("order", "paper"))
    assert error.value.input_name == field
