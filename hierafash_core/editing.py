"""M(t): which body-part region is being edited at each noise level, for one-pass editing.

Blended latent diffusion with a mask that changes over the trajectory:
- before the edit starts the mask is empty, so the whole latent stays pinned to the noised source
  (this is the official code's forward noising to t_start, and those steps need no UNet call);
- each edited attribute's region opens at that attribute's own official start
  (t = 911 / 831 / 751 / 671 / 591 for A1..A5, method.md §4.3), fixed in noise space, not in step
  indices, whatever the attribute's position in the design; a custom attribute opens with its own stage;
- the edit starts at the earliest of those starts; a region once open stays open (the mask is the union
  of the regions opened so far), so an earlier edit is never pinned back to the source by a later one.
`plan_edit` checks an edit request and compiles it; `EditPlan.sampling_warnings` says, for the
sampler's own sigmas, which edited attribute gets no step or whether the run starts too late.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .design import Attribute
from .errors import HieraFashError
from .noise import (
    PercentToSigma,
    as_float32,
    percent_to_timestep,
    sigma_threshold,
    sigma_to_percent,
    timestep_to_percent,
)
from .schedule import CompiledSchedule, Schedule
from .vocab import CUSTOM, attribute_label, official_edit_start


class EditError(HieraFashError):
    """Invalid edit request; the message says what to change."""


def attribute_stage_indices(schedule: Schedule) -> list[int]:
    """Stage index of each attribute, in schedule order (stage 0 is the concept)."""
    return [k for k, stage in enumerate(schedule.stages) if stage.attribute is not None]


def schedule_attributes(schedule: Schedule) -> list[Attribute]:
    """The design's attributes in schedule order: the positions `parse_edited` counts."""
    return [schedule.stages[k].attribute for k in attribute_stage_indices(schedule)]


def parse_edited(text: str, schedule: Schedule) -> list[int]:
    """'all', or attribute labels / 1-based positions, e.g. 'collar, 5' -> attribute positions (0-based)."""
    attributes = schedule_attributes(schedule)
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


def open_timesteps(schedule: Schedule, edited: list[int]) -> dict[int, float]:
    """DDPM timestep at which each edited attribute's region opens: its official start, or for a custom
    attribute (no official start) the top of its own stage."""
    stage_of = attribute_stage_indices(schedule)
    out = {}
    for i in edited:
        stage = schedule.stages[stage_of[i]]
        official = official_edit_start(stage.attribute.kind)
        out[i] = stage.t_high - 1 if official is None else official
    return out


def edit_start_timestep(schedule: Schedule, edited: list[int]) -> float:
    """DDPM timestep where editing starts: the earliest start among the edited attributes."""
    return max(open_timesteps(schedule, edited).values())


def open_sigma(t_open: float, percent_to_sigma: PercentToSigma) -> float:
    """The sigma at and below which a region opening at timestep `t_open` is open (float32, as compared).

    Half a timestep above the start, as for stage cuts: a step exactly at t_open is edited."""
    return sigma_threshold(timestep_to_percent(t_open + 0.5), percent_to_sigma)


@dataclass(frozen=True)
class MaskSchedule:
    """M(t) compiled against a model's noise levels: when each edited attribute's region opens."""

    opens_below: tuple[tuple[int, float], ...]  # (attribute position, sigma at and below which it is open)

    @property
    def edit_start_sigma(self) -> float:
        """The edit is active for sigma <= this."""
        return max(sigma for _, sigma in self.opens_below)

    def is_active(self, sigma: float) -> bool:
        return sigma <= self.edit_start_sigma

    def region_at(self, sigma: float) -> tuple[int, ...]:
        """The attribute positions whose regions are open at `sigma` (empty before the edit starts)."""
        return tuple(sorted(i for i, opens in self.opens_below if sigma <= opens))


def compile_mask_schedule(schedule: Schedule, edited: list[int], percent_to_sigma: PercentToSigma) -> MaskSchedule:
    """M(t) for the edited attribute positions, in the model's sigma."""
    starts = open_timesteps(schedule, edited)
    return MaskSchedule(tuple((i, open_sigma(t, percent_to_sigma)) for i, t in sorted(starts.items())))


def sigma_timestep(sigma: float, percent_to_sigma: PercentToSigma) -> float:
    """The continuous DDPM timestep of a sigma."""
    return percent_to_timestep(sigma_to_percent(sigma, percent_to_sigma))


@dataclass(frozen=True)
class EditPlan:
    """A checked, compiled edit: which attributes, their regions, and when each opens."""

    schedule: CompiledSchedule
    edited: tuple[int, ...]  # attribute positions, in schedule order
    masks: torch.Tensor  # [A, B, H, W]: every attribute's region, in schedule order
    union: torch.Tensor  # [B, H, W]: the union of the edited regions
    mask_schedule: MaskSchedule
    percent_to_sigma: PercentToSigma

    @property
    def attributes(self) -> list[Attribute]:
        return schedule_attributes(self.schedule.schedule)

    def noise_mask(self, batch: int) -> torch.Tensor:
        """The latent's noise mask `[batch, 1, H, W]`: the union of the edited regions."""
        return self.union.reshape(-1, 1, *self.union.shape[-2:]).expand(batch, -1, -1, -1).clone()

    def region_mask(self, region: tuple[int, ...], shape) -> torch.Tensor:
        """The union of the regions at these attribute positions, shaped for a latent of `shape`."""
        return latent_shaped_mask(union_mask(self.masks, region), shape)

    def kept_source(self, denoise_mask: torch.Tensor, shape) -> torch.Tensor:
        """Where the sampler was never allowed to edit a latent of `shape`: outside the edited regions or
        outside the noise mask it was given (in any shape ComfyUI passes it). Bool `[B, C, h, w]`."""
        return (latent_shaped_mask(self.union, shape) == 0) | (latent_shaped_mask(denoise_mask, shape) == 0)

    def sampling_warnings(self, sigmas) -> list[str]:
        """What this edit will not do with these sampler sigmas: an edited attribute with no step (too
        few steps), or a run that starts below the first edit start (KSampler denoise below 1)."""
        levels = as_float32(sigmas).tolist()
        evaluated = levels[:-1]
        if not evaluated:
            return ["the sampler runs no step: nothing is edited"]
        names = self._names()
        starts = open_timesteps(self.schedule.schedule, list(self.edited))
        warnings = [
            f"{names[i]} gets no sampler step at or below its start t = {starts[i]:g}, so it is not edited: "
            f"use more steps (the last step is at t = {sigma_timestep(evaluated[-1], self.percent_to_sigma):.0f})"
            for i, opens in self.mask_schedule.opens_below if not any(sigma <= opens for sigma in evaluated)
        ]
        if evaluated[0] < self.mask_schedule.edit_start_sigma:
            first = sigma_timestep(evaluated[0], self.percent_to_sigma)
            warnings.append(
                f"the sampler starts at t = {first:.0f}, below the edit start t = {max(starts.values()):g}: the "
                "hierarchical stages above it never run and the source is not re-noised from the official start; "
                "set the sampler's denoise to 1.0"
            )
        return warnings

    def describe(self) -> str:
        """The plan in words: warnings first, then when each edited attribute's region opens."""
        compiled = self.schedule
        starts = open_timesteps(compiled.schedule, list(self.edited))
        start = max(starts.values())
        names = self._names()
        lines = [f"WARNING: {w}" for w in (self.sampling_warnings(compiled.sigmas) if compiled.sigmas else [])]
        evaluated = as_float32(compiled.sigmas).tolist()[:-1] if compiled.sigmas else []
        first = next((k for k, sigma in enumerate(evaluated) if self.mask_schedule.is_active(sigma)), None)
        at_step = "" if first is None else f" (step {first + 1} of {len(evaluated)})"
        lines.append(f"editing {', '.join(names[i] for i in self.edited)}; starts at t = {start:g}{at_step}; "
                     "the steps before it keep the source, noised, and skip the model")
        for i, opens in self.mask_schedule.opens_below:
            steps = [k for k, sigma in enumerate(evaluated) if sigma <= opens]
            when = f"from step {steps[0] + 1} of {len(evaluated)} ({len(steps)} steps); " if steps else ""
            own = "" if official_edit_start(self.attributes[i].kind) is not None else " (its stage's top)"
            lines.append(f"{names[i]}: {when}region opens at t = {starts[i]:g}{own}")
        return "\n".join(lines)

    def _names(self) -> dict[int, str]:
        return {i: f"{attribute_label(a.kind)} ({a.text})" for i, a in enumerate(self.attributes)}


def plan_edit(compiled: CompiledSchedule, body_masks: BodyMasks, image_shape, edit_attributes: str,
              percent_to_sigma: PercentToSigma) -> EditPlan:
    """Check an edit request against the image and the regions, and compile M(t)."""
    batch, height, width = image_shape[:3]
    if height % 8 or width % 8:
        raise EditError(f"{width}x{height} is not a multiple of 8: crop or scale the image (e.g. ImageScale) "
                        "first, and build the masks for that size", "image")
    if body_masks.size != (height, width):
        mh, mw = body_masks.size
        raise EditError(f"the regions are {mw}x{mh} but the image is {width}x{height}: connect this image to "
                        "Pose Mask Builder's image input", "body_masks")
    edited = parse_edited(edit_attributes, compiled.schedule)
    masks = stack_attribute_masks(compiled.schedule, body_masks)
    if masks.shape[1] not in (1, batch):
        raise EditError(f"{masks.shape[1]} mask frames for {batch} images: build the masks from this image batch",
                        "body_masks")
    union = union_mask(masks, tuple(edited))
    if not bool((union > 0).any()):
        raise EditError("the edited regions are empty: check the pose and the grow setting", "body_masks")
    return EditPlan(compiled, tuple(edited), masks, union,
                    compile_mask_schedule(compiled.schedule, edited, percent_to_sigma), percent_to_sigma)


def latent_shaped_mask(mask: torch.Tensor, shape) -> torch.Tensor:
    """A mask in any form ComfyUI passes one, as `[B, C, h, w]` for a latent of `shape` `(B, C, h, w)`.

    Image-space `[B, 1, H, W]`, `[B, H, W]` or `[H, W]` is resized bilinearly, as comfy.utils.reshape_mask
    does for the sampler; a latent-shaped `[B, C, h, w]` (as newer ComfyUI hands it to OUTER_SAMPLE
    wrappers) is kept as it is; fewer masks than images repeat over the batch, as the sampler repeats them.
    """
    batch, channels, height, width = shape
    if mask.ndim == 4 and mask.shape[1] == channels and tuple(mask.shape[-2:]) == (height, width):
        out = mask
    elif mask.ndim == 4 and mask.shape[1] != 1:
        raise EditError(f"a mask of shape {tuple(mask.shape)} fits neither the image nor the latent "
                        f"{tuple(shape)}")
    else:
        out = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).float(), size=(height, width), mode="bilinear")
        out = out.expand(-1, channels, -1, -1)
    if out.shape[0] != batch:
        out = out.repeat(-(-batch // out.shape[0]), 1, 1, 1)[:batch]
    return out


def union_mask(masks: torch.Tensor, positions: tuple[int, ...]) -> torch.Tensor:
    """Union (max) of per-attribute masks `[A, B, H, W]` at the given positions -> `[B, H, W]`."""
    if not positions:
        return torch.zeros_like(masks[0])
    return masks[list(positions)].amax(dim=0)


def composite_outside(edited: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images `[B, H, W, C]`: the edit inside `mask` `[B, H, W]`, the source pixels, bit for bit, outside it."""
    if edited.shape != source.shape:
        raise EditError(f"edited image {tuple(edited.shape)} and source {tuple(source.shape)} differ in size",
                        "source")
    if mask.shape[-2:] != source.shape[1:3]:
        raise EditError(f"mask {tuple(mask.shape[-2:])} and image {tuple(source.shape[1:3])} differ in size", "mask")
    m = mask.reshape(-1, *mask.shape[-2:]).to(source)
    if m.shape[0] not in (1, source.shape[0]):
        raise EditError(f"mask batch {m.shape[0]} does not match image batch {source.shape[0]}", "mask")
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
