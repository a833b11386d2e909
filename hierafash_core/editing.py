"""M(t): which body-part region is being edited at each noise level, for one-pass editing.

Blended latent diffusion with a mask that changes over the trajectory:
- before the edit starts the mask is empty, so the whole latent stays pinned to the noised source
  (this is the official code's forward noising to t_start, and those steps need no UNet call);
- the edit starts at the official start of the earliest edited attribute
  (t = 911 / 831 / 751 / 671 / 591 for A1..A5), fixed in noise space, not in step indices;
- in attribute sub-stage i the region is the union of the edited attributes 1..i, so an earlier
  edit is never pinned back to the source by a later stage; the earliest edited attribute's region
  opens at the edit start even if that falls in an earlier stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import HieraFashError
from .noise import PercentToSigma, sigma_threshold, timestep_to_percent
from .schedule import CompiledSchedule, Schedule
from .vocab import CUSTOM, attribute_label, official_edit_start


class EditError(HieraFashError):
    """Invalid edit request; the message says what to change."""


def attribute_stage_indices(schedule: Schedule) -> list[int]:
    """Stage index of each attribute, in design order (stage 0 is the concept)."""
    return [k for k, stage in enumerate(schedule.stages) if stage.attribute is not None]


def parse_edited(text: str, schedule: Schedule) -> list[int]:
    """'all', or attribute labels / 1-based positions, e.g. 'collar, 5' -> attribute positions (0-based)."""
    attributes = [schedule.stages[k].attribute for k in attribute_stage_indices(schedule)]
    if not attributes:
        raise EditError("the design has no attribute to edit: add Attribute Iteration nodes before the scheduler")
    if text.strip().lower() in ("", "all"):
        return list(range(len(attributes)))
    chosen = set()
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item.isdigit() and 1 <= int(item) <= len(attributes):
            chosen.add(int(item) - 1)
            continue
        matches = [i for i, a in enumerate(attributes)
                   if item.lower() in (a.kind, a.text.lower(), attribute_label(a.kind))]
        if not matches:
            known = ", ".join(f"{i + 1} ({attribute_label(a.kind)}: {a.text})" for i, a in enumerate(attributes))
            raise EditError(f"{item!r} is not an attribute of this design; use 'all' or some of: {known}")
        chosen.update(matches)
    return sorted(chosen)


def edit_start_timestep(schedule: Schedule, edited: list[int]) -> float:
    """DDPM timestep where editing starts: the official start of the earliest (coarsest) edited attribute.

    A custom attribute has no official start; it starts with its own stage.
    """
    stage_of = attribute_stage_indices(schedule)
    starts = []
    for i in edited:
        stage = schedule.stages[stage_of[i]]
        official = official_edit_start(stage.attribute.kind)
        starts.append(stage.t_high - 1 if official is None else official)
    return max(starts)


def open_regions(schedule: Schedule, edited: list[int]) -> list[tuple[int, ...]]:
    """Per stage, the attribute positions whose regions are open once the edit has started."""
    stage_of = attribute_stage_indices(schedule)
    first = min(edited)
    out = []
    for k in range(len(schedule.stages)):
        done = [i for i in edited if stage_of[i] <= k]
        out.append(tuple(sorted(set(done) | {first})))
    return out


@dataclass(frozen=True)
class MaskSchedule:
    """M(t) compiled against a model's noise levels: thresholds in sigma, one region per stage."""

    stage_starts: tuple[float, ...]  # sigma where each stage begins (inclusive upper edge), float32 values
    edit_start_sigma: float  # the edit is active for sigma <= this
    regions: tuple[tuple[int, ...], ...]  # per stage: open attribute positions

    def stage_at(self, sigma: float) -> int:
        """The stage whose range holds sigma; a sigma on a cut belongs to the earlier stage."""
        stage = 0
        for k, start in enumerate(self.stage_starts):
            if k == 0 or sigma < start:
                stage = k
        return stage

    def is_active(self, sigma: float) -> bool:
        return sigma <= self.edit_start_sigma

    def region_at(self, sigma: float) -> tuple[int, ...]:
        return self.regions[self.stage_at(sigma)] if self.is_active(sigma) else ()


def compile_mask_schedule(
    compiled: CompiledSchedule, edited: list[int], percent_to_sigma: PercentToSigma
) -> MaskSchedule:
    schedule = compiled.schedule
    starts = [sigma_threshold(start, percent_to_sigma) for start, _ in compiled.ranges()]
    # Half a timestep above the start, as for stage cuts: a step exactly at t_start is edited.
    start_t = edit_start_timestep(schedule, edited) + 0.5
    edit_start = sigma_threshold(timestep_to_percent(start_t), percent_to_sigma)
    return MaskSchedule(tuple(starts), edit_start, tuple(open_regions(schedule, edited)))


def union_mask(masks: torch.Tensor, positions: tuple[int, ...]) -> torch.Tensor:
    """Union (max) of per-attribute masks `[A, B, H, W]` at the given positions -> `[B, H, W]`."""
    if not positions:
        return torch.zeros_like(masks[0])
    return masks[list(positions)].amax(dim=0)


def composite_outside(edited: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images `[B, H, W, C]`: the edit inside `mask` `[B, H, W]`, the source pixels, bit for bit, outside it."""
    if edited.shape != source.shape:
        raise EditError(f"edited image {tuple(edited.shape)} and source {tuple(source.shape)} differ in size")
    if mask.shape[-2:] != source.shape[1:3]:
        raise EditError(f"mask {tuple(mask.shape[-2:])} and image {tuple(source.shape[1:3])} differ in size")
    m = mask.reshape(-1, *mask.shape[-2:]).to(source)
    if m.shape[0] not in (1, source.shape[0]):
        raise EditError(f"mask batch {m.shape[0]} does not match image batch {source.shape[0]}")
    m = m.unsqueeze(-1)
    return torch.where(m > 0, edited * m + source * (1 - m), source)


@dataclass(frozen=True)
class BodyMasks:
    """Per-attribute edit regions of one image batch, as built from a pose."""

    by_kind: dict  # attribute kind (or CUSTOM) -> [B, H, W] float mask
    notes: tuple[str, ...] = ()  # every estimate or fallback that shaped a mask, shown to the user

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return tuple(next(iter(self.by_kind.values())).shape[-2:])


def stack_attribute_masks(schedule: Schedule, body_masks: BodyMasks) -> torch.Tensor:
    """The region of each attribute of the design, in design order: `[A, B, H, W]`."""
    masks = []
    for k in attribute_stage_indices(schedule):
        attribute = schedule.stages[k].attribute
        mask = body_masks.by_kind.get(attribute.kind)
        if mask is None:
            raise EditError(
                f"no region for the custom attribute {attribute.text!r}: custom attributes "
                "have no body part, so connect a mask to Pose Mask Builder's external_mask"
                if attribute.kind == CUSTOM
                else f"no region for the {attribute_label(attribute.kind)} attribute {attribute.text!r}"
            )
        masks.append(mask.reshape(-1, *mask.shape[-2:]))
    batch = max(m.shape[0] for m in masks)
    return torch.stack([m.expand(batch, -1, -1) for m in masks])
