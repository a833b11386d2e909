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

Body geometry lives in body.py, pixel painting in raster.py, the Pose Mask Builder's steps in
body_masks.py; this module keeps the garment rules and the shapes they choose together, so each rule
reads beside its sizes (hence a little over 400 lines).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from .body import (
    ARMS,
    L_ANKLE,
    L_ELBOW,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LEGS,
    NECK,
    R_ANKLE,
    R_ELBOW,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    Body,
    complete_skeleton,
)
from .errors import HieraFashError
from .pose import (
    KEYPOINT_NAMES,
    PoseError,
    PoseFrame,
    as_frames,
    canvas_size,
    single_threaded,
)
from .raster import convex_hull, dot, paint_capsules, paint_polygon
from .vocab import attribute_kind, attribute_kinds, order_attributes

DEFAULT_GROW = 0.05  # w; about the official 15 x 15 dilation on a 512 x 704 full-body photo
DEFAULT_FEATHER = 0.0  # w; the official masks are binary

# Shape sizes, in w unless marked.
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


def attribute_mask(frames: PoseFrame | Sequence[PoseFrame], attribute: str, value: str | None = None,
                   **options) -> BodyMask:
    """Mask for editing one attribute (kind, label or id, e.g. "A2") to `value`; `options` are attribute_masks'
    (category, current_length, grow, feather, missing).

    Clothing length and collar use their value (SHAPING_KINDS); `current_length` is the garment's
    present clothing length if known (used by clothing length and hem).
    """
    masks = attribute_masks(frames, [attribute], values={attribute: value} if value else None, **options)
    return masks[_kind(attribute)]


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
    order: str = "paper",
) -> dict[str, BodyMask]:
    """Masks for several attributes (default: all five), keyed by kind, in edit order.

    `values` maps attributes to their new values; only those of SHAPING_KINDS (the target length, the
    requested collar) shape a mask. Attributes sharing a region (sleeve length and sleeve type; length and hem while
    the current length is unknown) share one computation. `order` is one of vocab.ATTRIBUTE_ORDERS
    ("by area": larger regions first).
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
    areas = {kind: float(result.mask.sum()) for kind, result in masks.items()} if order == "by area" else None
    ordered = order_attributes(kinds, order, areas)
    return {kind: masks[kind] for kind in ordered}


# A keypoint may lie this many canvas widths (heights) beyond the canvas edge.
FAR_OUTSIDE = 10


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


def _kind(attribute: str) -> str:
    try:
        return attribute_kind(attribute).kind
    except HieraFashError as error:
        raise MaskError(
            f"{error.args[0]}. Custom attributes have no body part: draw a mask and pass it as the "
            "external mask instead"
        ) from None


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
            points, estimated = complete_skeleton(points)
        body = None
        for r, region in enumerate(regions):
            absent = [i for i in region.required if points[i] is None]
            if absent:
                raise PoseError(_missing_message(region, n, absent, missing), "missing_keypoints")
            for i in region.required:
                if i in estimated:
                    region_notes[r].append(f"frame {n}: {KEYPOINT_NAMES[i]} estimated ({estimated[i]})")
            body = body or Body.of(points, n)
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


# --- garment shapes ----------------------------------------------------------------------------------


def _paint_region(mask: torch.Tensor, region: _Region, body: Body, grow: float, feather: float):
    p, w = body.points, body.unit
    if region.shape == "sleeves":
        arm_length = max(abs(p[e] - p[s]) + abs(p[h] - p[e]) for s, e, h in ARMS)
        a = ARM_UNIT_PER_ARM_LENGTH * arm_length or w
        for shoulder, elbow, wrist in ARMS:
            s, e, hand = p[shoulder], p[elbow], p[wrist]
            past_wrist = hand + (hand - e) / abs(hand - e) * WRIST_MARGIN * a if hand != e else hand
            arm = [(s, s, SHOULDER_CAP_RADIUS), (s, e, UPPER_SLEEVE_RADIUS), (e, past_wrist, LOWER_SLEEVE_RADIUS)]
            sleeve = [(start, end, _sleeve_radius(body, start, end, size * a)) for start, end, size in arm]
            paint_capsules(mask, sleeve, grow, feather)
    elif region.shape in ("collar", "lapels"):
        neck, side = p[NECK], body.across * COLLAR_HALF_SPAN * w
        neckline = neck + body.down * NECKLINE_DEPTH * w
        collar = [(neck - side, neck + side, COLLAR_RADIUS * w), (neck, neckline, NECKLINE_RADIUS * w)]
        if region.shape == "lapels":
            roll_point, lapel_side = neck + body.down * LAPEL_DEPTH * w, body.across * LAPEL_HALF_SPAN * w
            collar += [(neck + k * lapel_side, roll_point, LAPEL_RADIUS * w) for k in (-1, 1)]
        paint_capsules(mask, collar, grow, feather)
    else:
        top, bottom = region.span
        levels = [top] + [level for level in (0.0, 0.5, 1.0) if top < level < bottom] + [bottom]
        outline = [point for level in levels for point in _outline_points(body, region.family, level)]
        paint_polygon(mask, convex_hull(outline), grow, feather)


def _sleeve_radius(body: Body, start: complex, end: complex, radius: float) -> float:
    """`radius`, limited to SLEEVE_REACH of the segment's distance to the body's centre line."""
    offsets = [((point - body.points[NECK]) * body.down.conjugate()).imag for point in (start, end)]
    distance = 0.0 if offsets[0] * offsets[1] <= 0 else min(abs(o) for o in offsets)
    return max(min(radius, SLEEVE_REACH * distance), SLEEVE_MIN_SHARE * radius)


def _outline_points(body: Body, family: GarmentFamily, level: float) -> tuple[complex, complex]:
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
        point + side * body.across * max(reach, half_width - side * dot(point - centre, body.across))
        for point, side in zip(sides, (-1, 1), strict=True)
    )


