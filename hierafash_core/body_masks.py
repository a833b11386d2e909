"""The Pose Mask Builder's step sequence in one call, `build_body_masks`: frames matched to the images
and fitted onto the canvas, every attribute's region from the design, the external mask combined, and
the report; with the limits that keep its memory bounded whatever a linked widget sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .editing import BodyMasks
from .masks import DEFAULT_FEATHER, DEFAULT_GROW, SHAPING_KINDS, MaskError, Missing, attribute_masks
from .pose import KEYPOINT_NAMES, PoseFrame, as_frames, rescale_frame
from .vocab import CUSTOM

Combine = Literal["union", "intersection"]

# Limits of the Pose Mask Builder, enforced here because ComfyUI 0.3.75 does not enforce a widget's
# min/max (or a V3 combo's options) when a link feeds it.
CANVAS_SIDES = (64, 8192)  # pixels
GROW_RANGE = (-0.5, 1.0)  # w
FEATHER_RANGE = (0.0, 1.0)  # w
PIXEL_BUDGET = 64 * 2**20  # frames x width x height: about 1 GiB per float mask batch


@dataclass(frozen=True)
class MaskSettings:
    """The Pose Mask Builder's mask settings, as the core reads them."""

    category: str | None = None  # garment category; a design's own category overrides it
    current_length: str | None = None  # the garment's present clothing length, if known
    grow: float = DEFAULT_GROW
    feather: float = DEFAULT_FEATHER
    missing: Missing = "estimate"


@dataclass(frozen=True)
class BodyMaskBuild:
    """Everything the Pose Mask Builder outputs, before rendering."""

    body_masks: BodyMasks  # by kind, [B, H, W]; CUSTOM is the external mask when there is one
    frames: list[PoseFrame]  # the chosen person per image, on the canvas
    report: tuple[str, ...]  # coordinate space and canvas per frame, then every estimate and fallback


def check_limits(canvas: tuple[int, int], frames: int, settings: MaskSettings):
    """Refuse a canvas, pixel count, grow or feather beyond the Pose Mask Builder's limits."""
    for name, side in zip(("width", "height"), canvas, strict=True):
        _check_range(name, side, CANVAS_SIDES, "pixels")
    pixels = frames * canvas[0] * canvas[1]
    if pixels > PIXEL_BUDGET:
        raise MaskError(
            f"{frames} frame(s) of {canvas[0]}x{canvas[1]} are {pixels / 2**20:.0f} Mpx, over the limit of "
            f"{PIXEL_BUDGET / 2**20:.0f} Mpx (frames x width x height): use fewer frames or a smaller canvas",
            "width",
        )
    _check_range("grow", settings.grow, GROW_RANGE, "shoulder widths")
    _check_range("feather", settings.feather, FEATHER_RANGE, "shoulder widths")


def _check_range(name: str, value: float, limits: tuple[float, float], unit: str):
    low, high = limits
    if not low <= value <= high:
        raise MaskError(f"{name} = {value} is outside the limits {low}..{high} ({unit}); set it within them", name)


def build_body_masks(
    frames: Sequence[PoseFrame],
    canvas: tuple[int, int],
    design=None,
    external: torch.Tensor | None = None,
    mode: Combine = "union",
    *,
    settings: MaskSettings = MaskSettings(),
    images: int | None = None,
) -> BodyMaskBuild:
    """The Pose Mask Builder's step sequence: match frames to the images, fit them onto the `canvas`
    (width, height), build every attribute's region from the design, then combine the external mask.

    `images` is the image batch size when an image is connected (one pose serves them all).
    """
    frames = as_frames(frames)
    if mode not in ("union", "intersection"):
        raise MaskError(f"combine mode must be 'union' or 'intersection', not {mode!r}", "external_mode")
    if images is not None and len(frames) != images:
        if len(frames) != 1:
            raise MaskError(f"{images} images but {len(frames)} pose frames: give one pose, or one pose per image",
                            "image")
        frames = frames * images
    check_limits(canvas, len(frames), settings)
    width, height = canvas
    report = [f"frame {n}: {f.coordinates} coordinates, canvas {f.width}x{f.height}" for n, f in enumerate(frames)]
    report += [
        f"frame {n}: the pose's {f.width}x{f.height} canvas was fitted onto {width}x{height} (scaled, centred)"
        for n, f in enumerate(frames)
        if (f.width, f.height) != canvas
    ]
    report += [
        f"frame {n}: keypoints missing (NaN, not detected or low confidence): "
        + ", ".join(KEYPOINT_NAMES[i] for i in (~f.visible).nonzero().flatten().tolist())
        for n, f in enumerate(frames)
        if not bool(f.visible.all())
    ]
    frames = [f if (f.width, f.height) == canvas else rescale_frame(f, width, height) for f in frames]
    category = (design.category if design is not None else None) or settings.category
    values = {kind: design.value_of(kind) for kind in SHAPING_KINDS if design and design.value_of(kind)}
    masks = attribute_masks(frames, values=values, category=category, current_length=settings.current_length,
                            grow=settings.grow, feather=settings.feather, missing=settings.missing)
    by_kind = {kind: result.mask.reshape(-1, height, width) for kind, result in masks.items()}
    if external is not None:
        external = _external_for(external, len(frames), canvas)
        by_kind = {kind: combine_masks(mask, external, mode) for kind, mask in by_kind.items()}
        by_kind[CUSTOM] = external.expand(len(frames), height, width).clone()
    notes = tuple(dict.fromkeys(note for result in masks.values() for note in result.notes))
    report += list(notes) or ["no keypoint estimated"]
    return BodyMaskBuild(BodyMasks(by_kind, notes), frames, tuple(report))


def _external_for(external: torch.Tensor, frames: int, canvas: tuple[int, int]) -> torch.Tensor:
    """The external mask as [1 or frames, H, W], refused where it enters when it fits neither."""
    width, height = canvas
    if external.shape[-2:] != (height, width):
        ext_h, ext_w = external.shape[-2:]
        raise MaskError(
            f"the external mask is {ext_w}x{ext_h} (W x H) but the pose mask is {width}x{height}: resize "
            "the external mask to the pose canvas, or rescale the pose to the mask's size",
            "external_mask",
        )
    external = external.reshape(-1, height, width)
    if len(external) not in (1, frames):
        raise MaskError(
            f"the external mask has {len(external)} frames but the pose has {frames}: give one external "
            "mask, or one per frame",
            "external_mask",
        )
    return external


def combine_masks(mask: torch.Tensor, external: torch.Tensor, mode: Combine = "union") -> torch.Tensor:
    """Union (max) or intersection (min) with an external MASK of the same height and width.

    The external mask has batch 1 (used for every frame) or one per frame; the result is [B, H, W].
    """
    height, width = mask.shape[-2:]
    mask = mask.reshape(-1, height, width)
    external = _external_for(external, len(mask), (width, height)).to(mask)
    if mode == "union":
        return torch.maximum(mask, external.clamp(0, 1))
    if mode == "intersection":
        return torch.minimum(mask, external.clamp(0, 1))
    raise MaskError(f"combine mode must be 'union' or 'intersection', not {mode!r}", "external_mode")
