"""The hierarchical schedule C(t): which prompt is active at which noise level.

Stages, in order: the concept stage (P_C), one stage per attribute (P_C+A1, P_C+A1+A2, ...),
then the detail tail. Each stage owns a band of DDPM timesteps [t_low, t_high); the paper's
boundaries are 1000/900/800/710/630/560/500/0 (official `get_t_conditioning`).

A boundary b means "timesteps t >= b belong to the earlier stage". Between the discrete
timesteps b-1 and b the cut sits at t = b - 0.5, so no discrete schedule can land on it.
Sampler ranges are closed at both ends; a step landing exactly on a cut (only possible with
continuous schedules) would activate two stages, so `untie_cuts` moves such a cut just below
the step, keeping it in the earlier stage as the discrete rule does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .design import Attribute, Design, join_items, split_items
from .errors import HieraFashError
from .noise import LAST_TIMESTEP, NUM_TIMESTEPS, PercentToSigma, as_float32, sigma_threshold, sigma_to_percent
from .noise import timestep_to_percent as _t_to_p
from .vocab import CUSTOM, attribute_kind, attribute_kinds, attribute_label

PAPER_BOUNDARIES = (900, 800, 710, 630, 560, 500)
CONCEPT_STAGE = "concept"
DETAIL_STAGE = "detail"


class ScheduleError(HieraFashError):
    """Invalid schedule input; the message says what to change."""


@dataclass(frozen=True)
class Stage:
    name: str
    prompt: str
    t_high: float  # exclusive, except the first stage, which reaches t = 999
    t_low: float  # inclusive
    attribute: Attribute | None = None  # the attribute this stage adds (None: concept, detail or an unused band)

    @property
    def adds_nothing(self) -> bool:
        """A band whose attribute the design lacks: the same prompt as the stage before it."""
        return self.attribute is None and self.name not in (CONCEPT_STAGE, DETAIL_STAGE)


def cut_percent(boundary: float) -> float:
    """Percent of the cut below boundary timestep b (between t = b - 1 and t = b)."""
    if boundary >= NUM_TIMESTEPS:
        return 0.0
    if boundary <= 0:
        return 1.0
    return _t_to_p(boundary - 0.5)


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]

    def __post_init__(self):
        if not self.stages:
            raise ScheduleError("a schedule needs at least one stage")
        if self.stages[0].t_high != NUM_TIMESTEPS or self.stages[-1].t_low != 0:
            raise ScheduleError(f"stages must cover the whole trajectory, t = 0..{LAST_TIMESTEP}")
        for upper, lower in zip(self.stages, self.stages[1:]):
            if upper.t_low != lower.t_high:
                raise ScheduleError(
                    f"stages {upper.name!r} and {lower.name!r} are not contiguous "
                    f"({upper.t_low} != {lower.t_high})"
                )
        for stage in self.stages:
            if not stage.t_high > stage.t_low:
                raise ScheduleError(f"stage {stage.name!r} has zero width ({stage.t_low}..{stage.t_high})")

    @property
    def boundaries(self) -> tuple[float, ...]:
        return tuple(stage.t_low for stage in self.stages[:-1])

    def cut_percents(self) -> list[float]:
        return [cut_percent(b) for b in self.boundaries]


def parse_boundaries(text: str) -> tuple[float, ...]:
    """'900, 800, 710' -> (900.0, 800.0, 710.0), validated."""
    try:
        values = tuple(float(item) for item in split_items(text))
    except ValueError:
        raise ScheduleError(
            f"boundaries {text!r} must be comma-separated DDPM timesteps, e.g. "
            f"{', '.join(str(b) for b in PAPER_BOUNDARIES)}"
        ) from None
    validate_boundaries(values)
    return values


def validate_boundaries(boundaries) -> None:
    for b in boundaries:
        if not 1 <= b <= LAST_TIMESTEP:
            raise ScheduleError(f"boundary {b:g} is outside 1..{LAST_TIMESTEP}: every stage needs some width")
    for upper, lower in zip(boundaries, boundaries[1:]):
        if not upper > lower:
            raise ScheduleError(f"boundaries must strictly decrease (noise falls over time): {upper:g} then {lower:g}")


def stage_name(attribute: Attribute) -> str:
    """'+sleeve length' for a vocabulary attribute, '+<its text>' for a custom one."""
    return f"+{attribute.text}" if attribute.kind == CUSTOM else f"+{attribute_label(attribute.kind)}"


LAYOUTS = ("by attribute", "in chain order")


def attribute_bands(design: Design, layout: str = "by attribute") -> list[tuple[int, Attribute]]:
    """(band, attribute) pairs, band 1 being the first attribute band below the concept, in band order.

    "by attribute": attribute A_i takes band i, the paper's A_i band, whatever else the design holds;
    custom attributes take the bands after the last vocabulary one, in their chain order.
    "in chain order": the design's attributes take bands 1, 2, ... as chained (the positional rule).
    """
    if layout == "in chain order":
        return list(enumerate(design.attributes, start=1))
    if layout not in LAYOUTS:
        raise ScheduleError(f"stage layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    known = [a for a in design.attributes if a.kind != CUSTOM]
    kinds = [a.kind for a in known]
    repeated = sorted({attribute_label(k) for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise ScheduleError(
            f"the design has more than one {', '.join(repeated)} attribute, but each attribute owns one band: "
            "remove the repeats, or use attribute_order 'as chained'", "design"
        )
    bands = [(int(attribute_kind(a.kind).id[1:]), a) for a in known]
    last = max((band for band, _ in bands), default=0)
    custom = [a for a in design.attributes if a.kind == CUSTOM]
    return sorted(bands, key=lambda pair: pair[0]) + list(enumerate(custom, start=last + 1))


def build_schedule(design: Design, boundaries=PAPER_BOUNDARIES, detail: str = "", suffix: str = "",
                   layout: str = "by attribute") -> Schedule:
    """Concept stage, one stage per attribute band (see `attribute_bands`), then the detail tail.

    Band i lies between boundaries i and i + 1; a band whose attribute the design lacks adds nothing to the
    prompt there. Bands after the last used one belong to the detail tail, as in the official code, where
    n attributes use the first n + 1 boundaries. `suffix` (quality tags, say) is appended to every stage's
    prompt, as the official demo appends its added prompt to every step.
    """
    validate_boundaries(boundaries)
    placed = attribute_bands(design, layout)
    used = max((band for band, _ in placed), default=0)
    if len(boundaries) < used + 1:
        raise ScheduleError(
            f"the attributes reach band {used} ({placed[-1][1].text}), which needs {used + 1} boundaries, but "
            f"only {len(boundaries)} are given: add {used + 1 - len(boundaries)} more (lower) boundaries, or "
            "remove attributes"
        )
    cuts = [NUM_TIMESTEPS, *boundaries[: used + 1], 0]
    in_band = {band: attribute for band, attribute in placed}
    tail = split_items(suffix)
    items = list(design.concept)
    stages = [Stage(CONCEPT_STAGE, join_items([*items, *tail]), cuts[0], cuts[1])]
    for band in range(1, used + 1):
        attribute = in_band.get(band)
        if attribute is not None:
            items.extend(split_items(attribute.text))
        name = stage_name(attribute) if attribute else f"(no {attribute_label(attribute_kinds()[band - 1].kind)})"
        stages.append(Stage(name, join_items([*items, *tail]), cuts[band], cuts[band + 1], attribute))
    stages.append(Stage(DETAIL_STAGE, join_items([*items, *tail, *split_items(detail)]), cuts[-2], cuts[-1]))
    return Schedule(tuple(stages))


@dataclass(frozen=True)
class CompiledSchedule:
    """A schedule with the percent cuts it was compiled to (after `untie_cuts`), and for which sigmas."""

    schedule: Schedule
    cuts: tuple[float, ...]
    sigmas: tuple[float, ...] = ()  # the sampler sigmas it was compiled for; empty when not known
    preview: str = ""  # which steps fall in which stage, with warnings
    warnings: tuple[str, ...] = ()  # stages that get no sampler step

    def ranges(self) -> list[tuple[float, float]]:
        return percent_ranges(list(self.cuts))


def percent_ranges(cuts: list[float]) -> list[tuple[float, float]]:
    """Stage ranges (start_percent, end_percent) from the cuts; contiguous over [0, 1]."""
    edges = [0.0, *cuts, 1.0]
    return list(zip(edges, edges[1:]))


@dataclass(frozen=True)
class StepAssignment:
    """Which stages are active at each sampler step (the model is evaluated at sigmas[:-1])."""

    active: tuple[tuple[int, ...], ...]  # per step: indices of the stages whose range holds it
    num_stages: int

    @property
    def ties(self) -> list[int]:
        return [i for i, stages in enumerate(self.active) if len(stages) != 1]

    @property
    def stage_of_step(self) -> list[int]:
        if self.ties:
            raise ScheduleError(f"steps {self.ties} are not in exactly one stage")
        return [stages[0] for stages in self.active]

    @property
    def steps_per_stage(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.num_stages)]
        for step, stages in enumerate(self.active):
            for s in stages:
                out[s].append(step)
        return out

    @property
    def empty_stages(self) -> list[int]:
        return [s for s, steps in enumerate(self.steps_per_stage) if not steps]


def assign_steps(sigmas, cuts: list[float], percent_to_sigma: PercentToSigma) -> StepAssignment:
    """The sampler's own rule: a stage is active while end_sigma <= sigma <= start_sigma (float32)."""
    evaluated = as_float32(sigmas)[:-1].tolist()
    bounds = [(sigma_threshold(a, percent_to_sigma), sigma_threshold(b, percent_to_sigma))
              for a, b in percent_ranges(cuts)]
    active = tuple(
        tuple(k for k, (start, end) in enumerate(bounds) if end <= sigma <= start) for sigma in evaluated
    )
    return StepAssignment(active, len(bounds))


def untie_cuts(cuts: list[float], sigmas, percent_to_sigma: PercentToSigma) -> list[float]:
    """Move any cut that a step lands on exactly to just below that step (which stays earlier)."""
    levels = as_float32(sigmas).tolist()
    out = list(cuts)
    for k, cut in enumerate(out):
        threshold = sigma_threshold(cut, percent_to_sigma)
        for i, sigma in enumerate(levels[:-1]):
            if sigma != threshold:
                continue
            below = max((s for s in levels if s < sigma), default=0.0)
            moved = sigma_to_percent((sigma + below) / 2, percent_to_sigma)
            upper_limit = out[k + 1] if k + 1 < len(out) else 1.0
            if not (cut < moved < upper_limit and below < sigma_threshold(moved, percent_to_sigma) < sigma):
                raise ScheduleError(
                    f"step {i} lands exactly on boundary {k + 1} and the next stage is too narrow to move "
                    f"it: change that boundary or the number of steps"
                )
            out[k] = moved
    return out


EMPTY_STAGE_FIX = "use more steps, another scheduler or other boundaries"


def format_preview(schedule: Schedule, assignment: StepAssignment, cuts: list[float], header: str = "") -> str:
    """A readable table: stage, DDPM band, percent band, steps. Warnings go on the first line, after the header,
    where a short text box still shows them."""
    warnings = empty_stage_warnings(schedule, assignment)
    summary = f"WARNING: {'; '.join(warnings)} ({EMPTY_STAGE_FIX})" if warnings else ""
    first = ". ".join(part for part in (header, summary) if part)
    lines = [first] if first else []
    steps = assignment.steps_per_stage
    width = max(len(s.name) for s in schedule.stages)
    for k, (stage, (start, end)) in enumerate(zip(schedule.stages, percent_ranges(cuts))):
        band = f"t {stage.t_low:g}-{min(stage.t_high, NUM_TIMESTEPS) - 1:g}" if stage.t_high > stage.t_low else ""
        where = f"steps {steps[k][0]}-{steps[k][-1]} ({len(steps[k])})" if steps[k] else "0 steps"
        lines.append(f"{stage.name:<{width}}  {band:<12} {start:.4f}-{end:.4f}  {where}")
        lines.append(f"{'':<{width}}  prompt: {stage.prompt}")
    return "\n".join(lines)


def empty_stage_warnings(schedule: Schedule, assignment: StepAssignment) -> list[str]:
    """One line per stage that matters (not an unused band) and gets no sampler step."""
    return [f"stage {schedule.stages[k].name!r} gets no sampler step with these settings"
            for k in assignment.empty_stages if not schedule.stages[k].adds_nothing]


def compile_schedule(design: Design, boundaries, sigmas, percent_to_sigma: PercentToSigma, *, detail: str = "",
                     suffix: str = "", order: str = "paper", areas: dict[str, float] | None = None,
                     header: str = "") -> CompiledSchedule:
    """The design's schedule, compiled for a sampler's sigmas, with its preview.

    order "paper" gives each attribute its paper band ("by attribute"); "as chained" and "by area" put the
    design's attributes, so ordered, onto consecutive bands ("in chain order"). Steps landing exactly on a
    cut are untied (`untie_cuts`).
    """
    try:
        ordered = design if order == "paper" else design.in_order(order, areas)
    except HieraFashError as exc:
        raise exc.for_input("body_masks") from None
    try:
        schedule = build_schedule(ordered, boundaries, detail, suffix, "by attribute" if order == "paper"
                                  else "in chain order")
        cuts = untie_cuts(schedule.cut_percents(), sigmas, percent_to_sigma)
    except ScheduleError as exc:
        raise exc.for_input("boundaries") from None
    assignment = assign_steps(sigmas, cuts, percent_to_sigma)
    return CompiledSchedule(schedule, tuple(cuts), tuple(as_float32(sigmas).tolist()),
                            format_preview(schedule, assignment, cuts, header),
                            tuple(empty_stage_warnings(schedule, assignment)))
