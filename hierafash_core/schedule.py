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
from .vocab import CUSTOM, attribute_label

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
    attribute: Attribute | None = None  # the attribute this stage adds (None: concept / detail)


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


def build_schedule(design: Design, boundaries=PAPER_BOUNDARIES, detail: str = "", suffix: str = "") -> Schedule:
    """Concept stage, one stage per attribute, then the detail tail (full prompt plus `detail`).

    As in the official code, n attributes use the first n + 1 boundaries; the rest are unused.
    `suffix` (quality tags, say) is appended to every stage's prompt, as the official demo appends
    its added prompt to every step.
    """
    validate_boundaries(boundaries)
    n = len(design.attributes)
    if len(boundaries) < n + 1:
        raise ScheduleError(
            f"{n} attributes need {n + 1} boundaries but only {len(boundaries)} are given: "
            f"add {n + 1 - len(boundaries)} more (lower) boundaries, or remove attributes"
        )
    cuts = [NUM_TIMESTEPS, *boundaries[: n + 1], 0]
    prompts = [join_items([p, *split_items(suffix)]) for p in design.cumulative_prompts()]
    stages = [Stage(CONCEPT_STAGE, prompts[0], cuts[0], cuts[1])]
    for i, attribute in enumerate(design.attributes, start=1):
        stages.append(Stage(stage_name(attribute), prompts[i], cuts[i], cuts[i + 1], attribute))
    tail = join_items([prompts[-1], *split_items(detail)])
    stages.append(Stage(DETAIL_STAGE, tail, cuts[-2], cuts[-1]))
    return Schedule(tuple(stages))


@dataclass(frozen=True)
class CompiledSchedule:
    """A schedule with the percent cuts it was compiled to (after `untie_cuts`)."""

    schedule: Schedule
    cuts: tuple[float, ...]

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


def format_preview(schedule: Schedule, assignment: StepAssignment, cuts: list[float], header: str = "") -> str:
    """A readable table: stage, DDPM band, percent band, steps (and warnings)."""
    lines = [header] if header else []
    steps = assignment.steps_per_stage
    width = max(len(s.name) for s in schedule.stages)
    for k, (stage, (start, end)) in enumerate(zip(schedule.stages, percent_ranges(cuts))):
        band = f"t {stage.t_low:g}-{min(stage.t_high, NUM_TIMESTEPS) - 1:g}" if stage.t_high > stage.t_low else ""
        where = f"steps {steps[k][0]}-{steps[k][-1]} ({len(steps[k])})" if steps[k] else "0 steps"
        lines.append(f"{stage.name:<{width}}  {band:<12} {start:.4f}-{end:.4f}  {where}")
        lines.append(f"{'':<{width}}  prompt: {stage.prompt}")
    for k in assignment.empty_stages:
        lines.append(f"WARNING: stage {schedule.stages[k].name!r} gets no sampler step with these settings")
    return "\n".join(lines)
