"""Body-part masks for attribute edits, from one person's OpenPose-18 keypoints.

A mask is 1 on the region to edit. Each body part is a union of simple shapes (capsules along the
arms and around the neck, a convex hull for the lower body) whose signed distance is evaluated only on
the pixels of the shape's bounding box; grow and feather act on that distance, so they cost nothing
extra and, like every size here, scale with the body:

- widths are fractions of the body width unit w: the shoulder width, or 0.6 torso lengths (neck to
  mid-hip) when larger, so a turned body whose shoulders look narrow keeps sensible sizes; sleeves
  use an arm unit (0.7 arm lengths, w on a front view), so a turned body's sleeves stay on its arms;
- lengths are levels along the body: 0 at the hips, 0.5 at the knees, 1 at the ankles (following
  each leg, continuing along the shin past 1), -1 at the shoulders (following each side of the torso).

A length region covers the fabric between the current and the requested hemline, from HEM_BAND above
the higher one to LENGTH_MARGIN below the lower one: long -> short covers the fabric to remove,
short -> long covers where it will be. An unknown current (or requested) length may be any of the
category's, so the region then spans them all. A hem region is a band around the current hemline;
unknown, it is a top's usual hip band, or anywhere a lower garment's hem may be. Skirt-like regions
are at least as wide as the official box. Sleeves always reach past the wrist. A collar region stays
above the bust line, except that lapels (Tailor and Lapel collars, coats) reach down to the roll point.

Missing keypoints are either an error (`missing="error"`) or estimated from the visible ones with
average body proportions (`missing="estimate"`); every estimate that shapes a mask is listed in its
notes, never applied silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from .editing import BodyMasks
from .errors import HieraFashError
from .pose import (
    KEYPOINT,
    KEYPOINT_NAMES,
    PoseError,
    PoseFrame,
    as_frames,
    canvas_size,
    rescale_frame,
    single_threaded,
)
from .vocab import CUSTOM, attribute_kind, attribute_kinds

NECK = KEYPOINT["neck"]
R_SHOULDER, R_ELBOW, R_WRIST = KEYPOINT["right shoulder"], KEYPOINT["right elbow"], KEYPOINT["right wrist"]
L_SHOULDER, L_ELBOW, L_WRIST = KEYPOINT["left shoulder"], KEYPOINT["left elbow"], KEYPOINT["left wrist"]
R_HIP, R_KNEE, R_ANKLE = KEYPOINT["right hip"], KEYPOINT["right knee"], KEYPOINT["right ankle"]
L_HIP, L_KNEE, L_ANKLE = KEYPOINT["left hip"], KEYPOINT["left knee"], KEYPOINT["left ankle"]
ARMS = ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))
LEGS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))

DEFAULT_GROW = 0.05  # w; about the official 15 x 15 dilation on a 512 x 704 full-body photo
DEFAULT_FEATHER = 0.0  # w; the official masks are binary

# Average standing adult, used only to place estimated keypoints (always reported).
TORSO_PER_SHOULDER_WIDTH = 1.5
HIP_HALF_WIDTH = 0.28  # shoulder widths
UPPER_ARM, FOREARM = 0.55, 0.45  # torso lengths
THIGH, SHIN = 0.62, 0.64  # torso lengths

# Shape sizes, in w unless marked.
TORSO_WIDTH_RATIO = 0.6  # w >= this x torso length
# Sleeves are sized from the arms, the longer of the two (shoulder to wrist), which a turned body
# does not foreshorten as it does the shoulders: an arm unit of 0.7 arm lengths is w on a front view.
ARM_UNIT_PER_ARM_LENGTH = 0.7
SHOULDER_CAP_RADIUS = 0.30  # arm units: puffed, raglan and drop-shoulder sleeves start on the shoulder
UPPER_SLEEVE_RADIUS = 0.24  # arm units
LOWER_SLEEVE_RADIUS = 0.22  # arm units
# A sleeve shape reaches at most this fraction of its distance to the body's centre line, so a turned
# body's sleeves leave its bodice; never less than SLEEVE_MIN_SHARE of its size (arms across the body).
SLEEVE_REACH = 0.6
SLEEVE_MIN_SHARE = 0.5
WRIST_MARGIN = 0.15  # arm units: long, flared and lantern sleeves end past the wrist
COLLAR_HALF_SPAN = 0.20  # along the shoulder line, each side of the neck
COLLAR_RADIUS = 0.20
NECKLINE_DEPTH = 0.30  # V- and U-necks reach down the chest, not past the bust line
NECKLINE_RADIUS = 0.12
# Tailor and lapel collars (and coats, which mostly have them) fold back down the chest to the
# roll point of the lapels, above the waist.
LAPEL_COLLARS = ("Tailor Collar", "Lapel Collar")
LAPEL_CATEGORIES = ("Coat",)
LAPEL_HALF_SPAN = 0.25  # where each lapel starts on the shoulder line, each side of the neck
LAPEL_DEPTH = 0.65  # the roll point below the neck
LAPEL_RADIUS = 0.12
BODY_SIDE_MARGIN = 0.25  # hip and shoulder keypoints sit inside the body outline
LENGTH_MARGIN = 0.10  # levels past the lowest hemline a length region must cover
HEM_BAND = 0.30  # levels above a hemline that a hem or length edit may reshape (slits, layers)

Missing = Literal["estimate", "error"]
Combine = Literal["union", "intersection"]
Order = Literal["paper", "area"]
Capsule = tuple[complex, complex, float]  # segment ends and radius, pixels


class MaskError(HieraFashError):
    """Invalid mask input; the message says what to change."""


@dataclass(frozen=True, eq=False)
class GarmentFamily:
    name: str
    region_top: float  # level where its length and hem regions start
    flare: float  # extra sideways reach per level below the hips, in w
    hemlines: Mapping[str, float]  # hemline level of each clothing-length value
    usual_hemline: float | None = None  # where the hem is when the current length is unknown (None: anywhere)
    half_width: float = 0.0  # w from the body's centre line that the region covers at least, hips down


# Long is floor-length: the hem falls past the ankles to the floor.
LOWER_HEMLINES = {"Ultra-short": 0.2, "Short": 0.35, "Knee-length": 0.5, "Mid-length": 0.75, "Long": 1.15}
# Tops: cropped, waist, hip, tunic; a knee-length top (long cardigan) is the longest.
TOP_HEMLINES = {"Ultra-short": -0.45, "Short": -0.2, "Mid-length": 0.1, "Long": 0.3, "Knee-length": 0.5}
# The official Dress/Coat/Skirt box reaches 100 px past the elbows of a 152 px-wide body hanging its
# arms: 1.25 w each side of the centre line (method.md 4.4).
OFFICIAL_SKIRT_HALF_WIDTH = 1.25
SKIRT_LIKE = GarmentFamily(
    "skirt-like: from the waist down", -0.2, 0.3, LOWER_HEMLINES, half_width=OFFICIAL_SKIRT_HALF_WIDTH
)
TROUSER_LIKE = GarmentFamily("trouser-like: from the waist down", -0.2, 0.1, LOWER_HEMLINES)
# The official code's hem of a top is a band around the hip line.
TOP = GarmentFamily("top: a band around the hips", -0.55, 0.15, TOP_HEMLINES, usual_hemline=0.0)
# The official code edits Dress, Jumpsuit, Coat, Pant and Skirt from the hips down and Blouse and
# Sweater in a hip band; trouser legs flare less than skirts.
CATEGORY_FAMILY = {
    "Dress": SKIRT_LIKE,
    "Coat": SKIRT_LIKE,
    "Skirt": SKIRT_LIKE,
    "Jumpsuit": TROUSER_LIKE,
    "Pant": TROUSER_LIKE,
    "Blouse": TOP,
    "Sweater": TOP,
}
DEFAULT_CATEGORY = "Dress"  # covers the most: hips to floor

# Body parts: the vocabulary's (length, hem, sleeves, collar) plus the length of the bottoms alone,
# for outfits whose design category is a top.
BODY_PARTS = ("length", "hem", "sleeves", "collar", "pant_length", "skirt_length")
SHAPING_KINDS = ("clothing_length", "collar")  # the kinds whose requested value shapes their region
BOTTOMS_CATEGORY = {"pant_length": "Pant", "skirt_length": "Skirt"}
SLEEVES_REQUIRED = (NECK, R_SHOULDER, L_SHOULDER, R_ELBOW, L_ELBOW, R_WRIST, L_WRIST)
COLLAR_REQUIRED = (NECK, R_SHOULDER, L_SHOULDER)
LOWER_REQUIRED = (NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP, R_KNEE, L_KNEE, R_ANKLE, L_ANKLE)


@dataclass(frozen=True)
class BodyMask:
    mask: torch.Tensor  # [B, H, W] float 0..1, or [H, W] when a single PoseFrame was given
    notes: tuple[str, ...]  # each estimate or default that shaped the mask, for the node to show


@dataclass(frozen=True)
class _Region:
    label: str = field(compare=False)  # for messages; regions of equal geometry are computed once
    shape: str  # "sleeves", "collar" or "lower"
    required: tuple[int, ...]
    family: GarmentFamily | None = None
    span: tuple[float, float] = (0.0, 0.0)  # levels covered by a "lower" region
    notes: tuple[str, ...] = field(default=(), compare=False)  # defaults taken, for the mask's notes


def garment_family(category: str | None) -> GarmentFamily:
    """The family whose length and hem regions a garment category uses (None: the default, Dress)."""
    family = CATEGORY_FAMILY.get(category or DEFAULT_CATEGORY)
    if family is None:
        known = ", ".join(CATEGORY_FAMILY)
        raise MaskError(f"no body region is defined for garment category {category!r}; use one of: {known}", "category")
    return family


def _hemline(family: GarmentFamily, value: str, role: str) -> float:
    if value not in family.hemlines:
        known = ", ".join(LOWER_HEMLINES)
        raise MaskError(f"{role} clothing length {value!r} is unknown; use one of: {known}",
                        "current_length" if role == "current" else "design")
    return family.hemlines[value]


def _region(body_part: str, category: str | None, target: str | None, current: str | None) -> _Region:
    if body_part == "sleeves":
        return _Region("sleeves", "sleeves", SLEEVES_REQUIRED)
    if body_part == "collar":
        if target in LAPEL_COLLARS or category in LAPEL_CATEGORIES:
            return _Region("collar (with lapels)", "lapels", COLLAR_REQUIRED)
        return _Region("collar", "collar", COLLAR_REQUIRED)
    if body_part not in BODY_PARTS:
        raise MaskError(f"unknown body part {body_part!r}; use one of: {', '.join(BODY_PARTS)}")
    category = BOTTOMS_CATEGORY.get(body_part, category)
    family = garment_family(category)
    label = f"{body_part.replace('_', ' ')} ({category or DEFAULT_CATEGORY})"
    defaulted = f"no garment category given: using the {DEFAULT_CATEGORY} region ({family.name})"
    notes = () if category else (defaulted,)
    every = tuple(family.hemlines.values())
    currents = (_hemline(family, current, "current"),) if current else every
    if body_part == "hem":  # the hem stays where it is: a band around the current hemline
        if not current and family.usual_hemline is not None:
            currents = (family.usual_hemline,)
            notes += (f"current length unknown: the hem region is the usual one of a {family.name}",)
        hemlines = currents
    else:  # the fabric between the current and the requested hemline changes
        hemlines = currents + ((_hemline(family, target, "target"),) if target else every)
    top = max(family.region_top, min(hemlines) - HEM_BAND)
    return _Region(label, "lower", LOWER_REQUIRED, family, (top, max(hemlines) + LENGTH_MARGIN), notes)


# --- public API -------------------------------------------------------------------------------------


def body_part_mask(
    frames: PoseFrame | Sequence[PoseFrame],
    body_part: str,
    *,
    category: str | None = None,
    target: str | None = None,
    current: str | None = None,
    grow: float = DEFAULT_GROW,
    feather: float = DEFAULT_FEATHER,
    missing: Missing = "estimate",
) -> BodyMask:
    """Mask of one body part (BODY_PARTS) per frame.

    `category` picks the garment family of length and hem regions (default Dress, reported).
    `target` / `current` are clothing-length values (e.g. "Knee-length"): a length region spans both
    hemlines (see the module docstring), a hem region is a band around `current` (a hem ignores
    `target`). For the collar, `target` is the requested collar (lapel collars reach down the chest).
    `grow` (may be negative) and `feather` (>= 0, the soft edge outside the grown shape) are in
    shoulder widths w.
    """
    region = _region(body_part, category, target, current)
    (result,) = _masks(frames, [region], grow, feather, missing)
    return result


def attribute_mask(
    frames: PoseFrame | Sequence[PoseFrame],
    attribute: str,
    value: str | None = None,
    *,
    category: str | None = None,
    current_length: str | None = None,
    grow: float = DEFAULT_GROW,
    feather: float = DEFAULT_FEATHER,
    missing: Missing = "estimate",
) -> BodyMask:
    """Mask for editing one attribute (kind, label or id, e.g. "A2") to `value`.

    Clothing length and collar use their value (SHAPING_KINDS); `current_length` is the garment's
    present clothing length if known (used by clothing length and hem).
    """
    return attribute_masks(
        frames,
        [attribute],
        values={attribute: value} if value else None,
        category=category,
        current_length=current_length,
        grow=grow,
        feather=feather,
        missing=missing,
    )[_kind(attribute)]


def attribute_masks(
    frames: PoseFrame | Sequence[PoseFrame],
    attributes: Sequence[str] | None = None,
    *,
    values: Mapping[str, str] | None = None,
    category: str | None = None,
    current_length: str | None = None,
    grow: float = DEFAULT_GROW,
    feather: float = DEFAULT_FEATHER,
    missing: Missing = "estimate",
    order: Order = "paper",
) -> dict[str, BodyMask]:
    """Masks for several attributes (default: all five), keyed by kind, in edit order.

    `values` maps attributes to their new values; only those of SHAPING_KINDS (the target length, the
    requested collar) shape a mask. Attributes sharing a region (sleeve length and sleeve type; length and hem while
    the current length is unknown) share one computation. `order` is "paper" (A1 -> A5) or "area"
    (larger first).
    """
    if attributes is None:
        attributes = [k.kind for k in attribute_kinds()]
    kinds = [_kind(a) for a in attributes]
    targets = {_kind(a): v for a, v in (values or {}).items()}
    regions = {}
    for kind in kinds:
        target = targets.get(kind) if kind in SHAPING_KINDS else None
        regions[kind] = _region(attribute_kind(kind).body_part, category, target, current_length)
    labels: dict[_Region, list[str]] = {}
    for region in regions.values():
        labels.setdefault(region, []).append(region.label)
    unique = [replace(region, label=" / ".join(dict.fromkeys(names))) for region, names in labels.items()]
    results = _masks(frames, unique, grow, feather, missing)
    computed = dict(zip(unique, results, strict=True))
    masks = {kind: computed[regions[kind]] for kind in kinds}
    ordered = order_attributes(kinds, order, {kind: result.mask for kind, result in masks.items()})
    return {kind: masks[kind] for kind in ordered}


# Limits of the Pose Mask Builder, enforced here because ComfyUI 0.3.75 does not enforce a widget's
# min/max (or a V3 combo's options) when a link feeds it.
CANVAS_SIDES = (64, 8192)  # pixels
GROW_RANGE = (-0.5, 1.0)  # w
FEATHER_RANGE = (0.0, 1.0)  # w
PIXEL_BUDGET = 64 * 2**20  # frames x width x height: about 1 GiB per float mask batch
FAR_OUTSIDE = 10  # canvas widths (heights) a keypoint may lie beyond the canvas edge


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


def check_within_reach(frames: Sequence[PoseFrame]):
    """Refuse keypoints more than FAR_OUTSIDE canvas sizes beyond the canvas (a wrong coordinate space
    or canvas size, never a real photo)."""
    for n, frame in enumerate(frames):
        size = torch.tensor([frame.width, frame.height], dtype=torch.float32)
        far = ((frame.keypoints < -FAR_OUTSIDE * size) | (frame.keypoints > (FAR_OUTSIDE + 1) * size)).any(-1)
        if bool(far.any()):
            index = int(far.nonzero()[0])
            x, y = frame.keypoints[index].tolist()
            raise MaskError(
                f"frame {n}: the {KEYPOINT_NAMES[index]} keypoint lies at ({x:.0f}, {y:.0f}), more than "
                f"{FAR_OUTSIDE} canvas widths/heights outside the {frame.width}x{frame.height} canvas (the "
                "limit): check the pose's canvas size and its coordinates setting",
                "pose_keypoint",
            )


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


def order_attributes(
    kinds: Sequence[str], by: Order = "paper", masks: Mapping[str, torch.Tensor] | None = None
) -> list[str]:
    """Edit order: "paper" is A1 -> A5; "area" puts larger masks first (coarse to fine), ties in paper
    order. Kinds outside the vocabulary (custom) keep their relative order, last."""
    known = [k for k in kinds if _is_vocabulary_kind(k)]
    custom = [k for k in kinds if not _is_vocabulary_kind(k)]
    if by == "paper":
        return sorted(known, key=lambda k: attribute_kind(k).id) + custom
    if by != "area":
        raise MaskError(f"order must be 'paper' or 'area', not {by!r}")
    absent = [k for k in known if masks is None or k not in masks]
    if absent:
        raise MaskError(f"ordering by area needs a mask for each attribute; none for: {', '.join(absent)}")
    return sorted(known, key=lambda k: (-float(masks[k].sum()), attribute_kind(k).id)) + custom


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


def _kind(attribute: str) -> str:
    try:
        return attribute_kind(attribute).kind
    except KeyError as error:
        raise MaskError(
            f"{error.args[0]}. Custom attributes have no body part: draw a mask and pass it as the "
            "external mask instead"
        ) from None


def _is_vocabulary_kind(kind: str) -> bool:
    return any(kind in (k.kind, k.label, k.id) for k in attribute_kinds())


# --- frames and keypoints --------------------------------------------------------------------------


def _masks(frames, regions: Sequence[_Region], grow: float, feather: float, missing: Missing):
    single = isinstance(frames, PoseFrame)
    frames = as_frames(frames)
    width, height = canvas_size(frames)
    check_within_reach(frames)
    if feather < 0:
        raise MaskError(f"feather must be >= 0 (a fraction of the shoulder width), not {feather}", "feather")
    if missing not in ("estimate", "error"):
        raise MaskError(f"missing must be 'estimate' or 'error', not {missing!r}", "missing_keypoints")
    region_notes = [list(region.notes) for region in regions]
    with single_threaded():
        masks = torch.zeros(len(regions), len(frames), height, width)
        _paint_frames(masks, frames, regions, region_notes, grow, feather, missing)
    return [
        BodyMask(mask[0] if single else mask, tuple(dict.fromkeys(note)))
        for mask, note in zip(masks, region_notes, strict=True)
    ]


def _paint_frames(masks, frames, regions, region_notes, grow: float, feather: float, missing: Missing):
    for n, frame in enumerate(frames):
        points = [None if math.isnan(x) else complex(x, y) for x, y in frame.keypoints.tolist()]
        estimated = {}
        if missing == "estimate":
            points, estimated = _complete_skeleton(points)
        body = None
        for r, region in enumerate(regions):
            absent = [i for i in region.required if points[i] is None]
            if absent:
                raise PoseError(_missing_message(region, n, absent, missing), "missing_keypoints")
            for i in region.required:
                if i in estimated:
                    region_notes[r].append(f"frame {n}: {KEYPOINT_NAMES[i]} estimated ({estimated[i]})")
            body = body or _Body.of(points, n)
            _paint_region(masks[r, n], region, body, grow * body.unit, feather * body.unit)


def _missing_message(region: _Region, n: int, absent: list[int], missing: Missing) -> str:
    names = ", ".join(KEYPOINT_NAMES[i] for i in absent)
    if missing == "estimate":
        problem = "missing and cannot be estimated (estimates start from both shoulders, or the neck and one)"
        fixes = "Use a pose where they are visible, pick another person"
    else:
        problem = "missing"
        fixes = "Use a pose where they are visible, pick another person, allow estimated keypoints"
    return (
        f"the {region.label} mask for frame {n} needs the {names} keypoint(s), which are {problem}. "
        f"{fixes}, or draw the region and pass it as the external mask."
    )


def _dot(a: complex, b: complex) -> float:
    return a.real * b.real + a.imag * b.imag


def _down_axis(p: list[complex | None]) -> complex:
    """Unit vector along the body from the neck toward the hips (image down when unknown)."""
    hips = [p[i] for i in (R_HIP, L_HIP) if p[i] is not None]
    toward_hips = sum(hips) / len(hips) - p[NECK] if hips and p[NECK] is not None else None
    if p[R_SHOULDER] is not None and p[L_SHOULDER] is not None and p[R_SHOULDER] != p[L_SHOULDER]:
        axis = (p[L_SHOULDER] - p[R_SHOULDER]) * 1j  # perpendicular to the shoulder line
        if _dot(axis, toward_hips if toward_hips else 1j) < 0:
            axis = -axis
    else:
        axis = toward_hips or 1j
    return axis / abs(axis)


def _mirror(point: complex, origin: complex, axis: complex) -> complex:
    """`point` reflected across the line through `origin` along unit vector `axis`."""
    return origin + axis * axis * (point - origin).conjugate()


def _complete_skeleton(points: list[complex | None]) -> tuple[list[complex | None], dict[int, str]]:
    """Fill the missing body keypoints that the visible ones determine; return how each was placed."""
    p = list(points)
    reasons: dict[int, str] = {}

    def estimate(index: int, value: complex, reason: str):
        if p[index] is None:
            p[index], reasons[index] = value, reason

    if p[NECK] is None and p[R_SHOULDER] is not None and p[L_SHOULDER] is not None:
        estimate(NECK, (p[R_SHOULDER] + p[L_SHOULDER]) / 2, "midway between the shoulders")
    if p[NECK] is None:
        return p, reasons
    for absent, other in ((R_SHOULDER, L_SHOULDER), (L_SHOULDER, R_SHOULDER)):
        if p[absent] is None and p[other] is not None:
            reason = f"the {KEYPOINT_NAMES[other]} mirrored across the body axis"
            estimate(absent, _mirror(p[other], p[NECK], _down_axis(p)), reason)
    if p[R_SHOULDER] is None or p[L_SHOULDER] is None:
        return p, reasons

    down = _down_axis(p)
    if p[R_HIP] is None and p[L_HIP] is None:
        shoulder_width = abs(p[L_SHOULDER] - p[R_SHOULDER])
        across = (p[L_SHOULDER] - p[R_SHOULDER]) / shoulder_width
        mid_hip = p[NECK] + down * TORSO_PER_SHOULDER_WIDTH * shoulder_width
        reason = "placed below the shoulders with average torso proportions"
        estimate(R_HIP, mid_hip - across * HIP_HALF_WIDTH * shoulder_width, reason)
        estimate(L_HIP, mid_hip + across * HIP_HALF_WIDTH * shoulder_width, reason)
    for absent, other in ((R_HIP, L_HIP), (L_HIP, R_HIP)):
        if p[absent] is None:
            reason = f"the {KEYPOINT_NAMES[other]} mirrored across the body axis"
            estimate(absent, _mirror(p[other], p[NECK], down), reason)

    down = _down_axis(p)
    torso = abs((p[R_HIP] + p[L_HIP]) / 2 - p[NECK])
    limbs = ((ARMS, UPPER_ARM, FOREARM, "arm"), (LEGS, THIGH, SHIN, "leg"))
    for chains, upper, lower, limb in limbs:
        for root, middle, end in chains:
            if p[middle] is None and p[end] is not None:
                estimate(middle, (p[root] + p[end]) / 2, f"midway along the {limb}")
            elif p[end] is None and p[middle] is not None:
                extension = (p[middle] - p[root]) * (lower / upper)
                estimate(end, p[middle] + extension, f"the {limb}'s upper segment continued")
            elif p[middle] is None:
                reason = f"the {limb} assumed straight along the body with average proportions"
                estimate(middle, p[root] + down * upper * torso, reason)
                estimate(end, p[middle] + down * lower * torso, reason)
    return p, reasons


@dataclass(frozen=True)
class _Body:
    points: list[complex | None]
    unit: float  # w, pixels
    down: complex  # unit vector along the body, toward the hips
    across: complex  # unit vector from the right shoulder to the left

    @staticmethod
    def of(p: list[complex | None], n: int) -> _Body:
        shoulder_width = abs(p[L_SHOULDER] - p[R_SHOULDER])
        has_hips = p[R_HIP] is not None and p[L_HIP] is not None
        torso = abs((p[R_HIP] + p[L_HIP]) / 2 - p[NECK]) if has_hips else 0.0
        unit = max(shoulder_width, TORSO_WIDTH_RATIO * torso)
        if unit < 1.0:
            raise PoseError(
                f"the pose in frame {n} is degenerate: shoulders and hips lie on one point; "
                "use a pose with a visible body",
                "pose_keypoint",
            )
        down = _down_axis(p)
        across = (p[L_SHOULDER] - p[R_SHOULDER]) / shoulder_width if shoulder_width else down * -1j
        return _Body(p, unit, down, across)


# --- shapes -----------------------------------------------------------------------------------------


def _paint_region(mask: torch.Tensor, region: _Region, body: _Body, grow: float, feather: float):
    p, w = body.points, body.unit
    if region.shape == "sleeves":
        arm_length = max(abs(p[e] - p[s]) + abs(p[h] - p[e]) for s, e, h in ARMS)
        a = ARM_UNIT_PER_ARM_LENGTH * arm_length or w
        for shoulder, elbow, wrist in ARMS:
            s, e, hand = p[shoulder], p[elbow], p[wrist]
            past_wrist = hand + (hand - e) / abs(hand - e) * WRIST_MARGIN * a if hand != e else hand
            arm = [(s, s, SHOULDER_CAP_RADIUS), (s, e, UPPER_SLEEVE_RADIUS), (e, past_wrist, LOWER_SLEEVE_RADIUS)]
            sleeve = [(start, end, _sleeve_radius(body, start, end, size * a)) for start, end, size in arm]
            _paint_capsules(mask, sleeve, grow, feather)
    elif region.shape in ("collar", "lapels"):
        neck, side = p[NECK], body.across * COLLAR_HALF_SPAN * w
        neckline = neck + body.down * NECKLINE_DEPTH * w
        collar = [(neck - side, neck + side, COLLAR_RADIUS * w), (neck, neckline, NECKLINE_RADIUS * w)]
        if region.shape == "lapels":
            roll_point, lapel_side = neck + body.down * LAPEL_DEPTH * w, body.across * LAPEL_HALF_SPAN * w
            collar += [(neck + k * lapel_side, roll_point, LAPEL_RADIUS * w) for k in (-1, 1)]
        _paint_capsules(mask, collar, grow, feather)
    else:
        top, bottom = region.span
        levels = [top] + [level for level in (0.0, 0.5, 1.0) if top < level < bottom] + [bottom]
        outline = [point for level in levels for point in _outline_points(body, region.family, level)]
        _paint_polygon(mask, _convex_hull(outline), grow, feather)


def _sleeve_radius(body: _Body, start: complex, end: complex, radius: float) -> float:
    """`radius`, limited to SLEEVE_REACH of the segment's distance to the body's centre line."""
    offsets = [((point - body.points[NECK]) * body.down.conjugate()).imag for point in (start, end)]
    distance = 0.0 if offsets[0] * offsets[1] <= 0 else min(abs(o) for o in offsets)
    return max(min(radius, SLEEVE_REACH * distance), SLEEVE_MIN_SHARE * radius)


def _outline_points(body: _Body, family: GarmentFamily, level: float) -> tuple[complex, complex]:
    """Right and left points of the region's outline at `level`, pushed outward past the body."""
    p = body.points
    reach = (BODY_SIDE_MARGIN + family.flare * max(level, 0.0)) * body.unit
    sides = []
    for (hip, knee, ankle), shoulder in zip(LEGS, (R_SHOULDER, L_SHOULDER), strict=True):
        if level <= 0:
            point = p[hip] + (p[shoulder] - p[hip]) * -level
        elif level <= 0.5:
            point = p[hip] + (p[knee] - p[hip]) * (level / 0.5)
        else:  # continues along the shin past the ankle
            point = p[knee] + (p[ankle] - p[knee]) * ((level - 0.5) / 0.5)
        sides.append(point)
    centre = (sides[0] + sides[1]) / 2
    half_width = family.half_width * body.unit if level >= 0 else 0.0
    # each side pushed out past the leg, and at least `half_width` from the centre line
    return tuple(
        point + side * body.across * max(reach, half_width - side * _dot(point - centre, body.across))
        for point, side in zip(sides, (-1, 1), strict=True)
    )


def _convex_hull(points: list[complex]) -> list[complex]:
    """Counter-clockwise hull (in x-right, y-up terms), by the monotone chain."""
    points = sorted(set(points), key=lambda z: (z.real, z.imag))

    def half(ordered):
        chain: list[complex] = []
        for z in ordered:
            while len(chain) >= 2 and ((chain[-1] - chain[-2]).conjugate() * (z - chain[-2])).imag <= 0:
                chain.pop()
            chain.append(z)
        return chain[:-1]

    return half(points) + half(points[::-1])


def _window(low: complex, high: complex, bounds: tuple[int, int, int, int]):
    """Pixel box (x0, x1, y0, y1), end-exclusive, around low..high, clipped to `bounds`; None if empty."""
    x0, x1 = max(math.floor(low.real), bounds[0]), min(math.ceil(high.real) + 1, bounds[1])
    y0, y1 = max(math.floor(low.imag), bounds[2]), min(math.ceil(high.imag) + 1, bounds[3])
    return (x0, x1, y0, y1) if x0 < x1 and y0 < y1 else None


def _affine_fields(box: tuple[int, int, int, int], rows: list[tuple[float, float, float]]) -> torch.Tensor:
    """[K, h, w]: row k's  a x + b y + c  at every pixel of the window, as one matrix product (much
    cheaper on CPU than broadcasting a row against a column for each field)."""
    x0, x1, y0, y1 = box
    pixels = torch.ones(3, y1 - y0, x1 - x0)
    pixels[0] = torch.arange(x0, x1, dtype=torch.float32)
    pixels[1] = torch.arange(y0, y1, dtype=torch.float32)[:, None]
    return (torch.tensor(rows) @ pixels.view(3, -1)).view(len(rows), y1 - y0, x1 - x0)


def _union(region: torch.Tensor, beyond: torch.Tensor, feather: float):
    """Raise `region` to 1 where `beyond` (how far a pixel lies outside the grown shape) is <= 0,
    fading to 0 over `feather` pixels. With a hard edge only the sign of `beyond` matters.

    Float arithmetic only: comparisons and masked writes cost several times more on CPU."""
    if feather > 0:
        region.clamp_(min=beyond.sub_(feather).div_(-feather).clamp_(0, 1))
    else:  # sign(-beyond) is 1 inside; -1 and 0 leave the region as it is
        region.clamp_(min=beyond.neg_().sign_())


def _paint_capsules(mask: torch.Tensor, capsules: list[Capsule], grow: float, feather: float):
    """Union capsules (segment a-b thickened by a radius; a disc when a == b) into `mask`, evaluated
    together on one window around them all (a limb's shapes overlap)."""
    capsules = [(a, b, radius + grow) for a, b, radius in capsules if radius + grow > 0]
    if not capsules:
        return
    pad = feather * (1 + 1j)
    low = (
        min(min(a.real, b.real) - r for a, b, r in capsules),
        min(min(a.imag, b.imag) - r for a, b, r in capsules),
    )
    high = (
        max(max(a.real, b.real) + r for a, b, r in capsules),
        max(max(a.imag, b.imag) + r for a, b, r in capsules),
    )
    box = _window(complex(*low) - pad, complex(*high) + pad, (0, mask.shape[1], 0, mask.shape[0]))
    if box is None:
        return
    frames = []
    for a, b, _ in capsules:  # each segment's frame: along it from a, and across it
        u = (b - a) / abs(b - a) if b != a else 1 + 0j
        frames += [(u.real, u.imag, -_dot(a, u)), (-u.imag, u.real, -_dot(a, u * 1j))]
    fields = _affine_fields(box, frames).unflatten(0, (-1, 2))
    beyond = None
    for (along, across), (a, b, reach) in zip(fields, capsules, strict=True):
        past_ends = along.clamp(0, abs(b - a)).sub_(along)
        squared = past_ends.mul_(past_ends).addcmul_(across, across)
        # a hard edge needs only the sign: compare squared distances, no square root
        shape = squared.sqrt_().sub_(reach) if feather > 0 else squared.sub_(reach * reach)
        beyond = shape if beyond is None else torch.minimum(beyond, shape, out=beyond)
    x0, x1, y0, y1 = box
    _union(mask[y0:y1, x0:x1], beyond, feather)


def _paint_polygon(mask: torch.Tensor, hull: list[complex], grow: float, feather: float):
    """Union the convex polygon (counter-clockwise in x-right, y-up terms), grown by `grow`, into `mask`.

    The distance outside is the largest edge-line distance, except beyond a corner, where it is the
    distance to the corner: exact, so a polygon inside another stays inside it after grow and feather.
    """
    band = max(grow, 0.0) + feather
    pad = band * (1 + 1j)
    low = complex(min(z.real for z in hull), min(z.imag for z in hull))
    high = complex(max(z.real for z in hull), max(z.imag for z in hull))
    box = _window(low - pad, high + pad, (0, mask.shape[1], 0, mask.shape[0]))
    if box is None:
        return
    edges = [(a, b - a) for a, b in zip(hull, hull[1:] + hull[:1], strict=True)]
    # signed distance to each edge's line; outward normals point to the right of each edge
    lines = [(d.imag / abs(d), -d.real / abs(d), -_dot(a, d * -1j) / abs(d)) for a, d in edges]
    distance = _affine_fields(box, lines).amax(dim=0)
    if band > 0:
        _round_corners(distance, box, edges, band)
    x0, x1, y0, y1 = box
    _union(mask[y0:y1, x0:x1], distance.sub_(grow), feather)


def _round_corners(distance: torch.Tensor, box: tuple[int, int, int, int], edges, band: float):
    """Replace the edge-line distance by the distance to the corner in each corner's outer wedge (its
    normal cone), wherever the edge lines put a pixel within `band`; all corners are evaluated
    together on equal windows."""
    x0, x1, y0, y1 = box
    corners = [corner for corner, _ in edges]
    outgoing = [direction for _, direction in edges]
    incoming = outgoing[-1:] + outgoing[:-1]
    # the edge lines stay within `band` up to the mitre tip, band / cos(turn / 2) from the corner;
    # near-reversals (turns past ~170 degrees, which body outlines never make) are clipped to 10 x band
    cos_turn = min(_dot(a, b) / (abs(a) * abs(b)) for a, b in zip(incoming, outgoing, strict=True))
    reach = band / max(math.sqrt(max((1 + cos_turn) / 2, 0.0)), 0.1)
    # Each corner's window is `size` wide, but only its overlap with the box (clipped to the canvas)
    # matters: shrink the shared size to the box and slide each window inside it, which still covers
    # that overlap. Memory is then at most V boxes, whatever the body's size (or grow) on the canvas.
    size = math.ceil(2 * reach) + 2
    size_x, size_y = min(size, x1 - x0), min(size, y1 - y0)
    windows = [(math.floor(c.real - reach), math.floor(c.imag - reach)) for c in corners]
    near = [
        k for k, (ox, oy) in enumerate(windows) if ox < x1 and ox + size > x0 and oy < y1 and oy + size > y0
    ]
    if not near:
        return
    corners, incoming, outgoing = ([items[k] for k in near] for items in (corners, incoming, outgoing))
    origins = [
        (min(max(windows[k][0], x0), x1 - size_x), min(max(windows[k][1], y0), y1 - size_y)) for k in near
    ]
    geometry = torch.tensor(
        [
            [ox - c.real, oy - c.imag, a.real, a.imag, b.real, b.imag]
            for (ox, oy), c, a, b in zip(origins, corners, incoming, outgoing, strict=True)
        ]
    )
    qx = (geometry[:, 0, None] + torch.arange(size_x, dtype=torch.float32))[:, None, :]  # [V, 1, sx]
    qy = (geometry[:, 1, None] + torch.arange(size_y, dtype=torch.float32))[:, :, None]  # [V, sy, 1]: y - corner y
    in_x, in_y, out_x, out_y = (geometry[:, k, None, None] for k in range(2, 6))
    beyond = torch.add(qx * in_x, qy * in_y).ge(0) & torch.add(qx * out_x, qy * out_y).le(0)
    # outside its wedge a corner's distance is below the edge-line distance, so max() leaves it alone
    corner_distance = torch.hypot(qx, qy).masked_fill_(~beyond, -math.inf)
    for (ox, oy), window in zip(origins, corner_distance, strict=True):
        local = distance[oy - y0 : oy - y0 + size_y, ox - x0 : ox - x0 + size_x]
        local.clamp_(min=window)
