"""A procedurally drawn fashion dataset whose attributes are known exactly: the ruler for quality.

Why in `hierafash_core` and not `bench/`: a `hierafash dataset` command can write it, the templates'
example image is drawn by it, tests build their data from it, and the attribute oracles (`oracles.py`) read it back with
the same geometry. It needs only numpy and the pack's own pose code, so the core's rules hold: no
assets, no fonts, no image library (the writer encodes PNG itself with zlib).

A figure is one of the shipped pose presets, jittered (body scale, shift, per-keypoint noise), drawn on
white with skin, hair and shoes, wearing one garment. The garment's parameters are vocabulary values;
DRAWN_VALUES lists, per field, the values this generator draws, each with a geometry an oracle can
tell apart at 128 px wide (the other vocabulary values are never drawn). Style sets the colour and
feeling the pattern, standing in for what pixels can show of them; occasion and effect are vocabulary
words put in the caption but not drawn, as captions carry words a model must learn to ignore.

Geometry is written in "units": pixels of the presets' 512 x 704 frame at the preset's body size. The
drawing and the oracles both derive the unit from the keypoints (`body_unit`), so they always agree.

One module past 400 lines on purpose: the garment geometry, its drawing and the dataset writer share the
drawn values and their constants, and the oracles mirror exactly this file.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .design import attribute_text, join_items
from .errors import HieraFashError
from .pose import (
    KEYPOINT,
    PoseFrame,
    load_pose_preset,
    read_pose_keypoint,
    render_pose,
    rescale_frame,
    to_pose_keypoint,
)
from .vocab import attribute_kind, concept_values

# width, height: the presets' 512 x 704 at a quarter is 128 x 176, but dataset.SIZE_MULTIPLE asks for sides
# that are multiples of 64, so the default pads the figure with 8 white rows above and below
DEFAULT_SIZE = (128, 192)
PRESET_POSES = ("front_hands_on_hips", "front_standing", "front_walking", "three_quarter_left", "three_quarter_right")
PRESET_TORSO = 227.0  # neck to mid-hip height of the presets, in their pixels: one unit at scale 1

BACKGROUND = (1.0, 1.0, 1.0)  # the official images are on white
SKIN = (0.93, 0.76, 0.64)
DARK = (0.13, 0.10, 0.10)  # hair and shoes
SHADE = 0.55  # pattern, placket: the garment colour darkened by this factor

# style -> garment colour; feeling -> pattern
STYLE_COLORS = {
    "Street Style": (0.82, 0.12, 0.16),
    "Elegant": (0.50, 0.22, 0.70),
    "Commute": (0.16, 0.32, 0.82),
    "Casual": (0.14, 0.60, 0.26),
    "Fresh": (0.05, 0.58, 0.62),
    "Artsy": (0.92, 0.76, 0.10),
}
FEELING_PATTERNS = {"Crisp Feeling": "solid", "Line Feeling": "stripes", "Playful Feeling": "dots"}

# where the garment ends: fraction of the hip-to-ankle height; of the shoulder-elbow-wrist path
CLOTHING_LENGTHS = {"Ultra-short": 0.24, "Short": 0.38, "Knee-length": 0.52, "Mid-length": 0.72, "Long": 0.93}
SLEEVE_LENGTHS = {
    "Sleeveless": 0.0,
    "Short Sleeve": 0.25,
    "Elbow-length Sleeve": 0.5,
    "Mid-length Sleeve": 0.73,
    "Long Sleeve": 0.96,
}
SLEEVE_TYPES = ("Regular Sleeve", "Puffed Sleeve", "Flare Sleeve", "Lantern Sleeve")
COLLARS = ("Round Collar", "V-Neck", "Square Collar", "Boat Neck", "T-neck")
HEMS = ("Flat Hem", "Curved Hem", "Wavy Hem", "Irregular Hem")
CATEGORIES = ("Dress", "Coat", "Jumpsuit")

DRAWN_VALUES = {
    "category": CATEGORIES,
    "style": tuple(STYLE_COLORS),
    "feeling": tuple(FEELING_PATTERNS),
    "clothing_length": tuple(CLOTHING_LENGTHS),
    "sleeve_length": tuple(SLEEVE_LENGTHS),
    "sleeve_type": SLEEVE_TYPES,
    "collar": COLLARS,
    "hem": HEMS,
}
LENGTH_JITTER = 0.02  # uniform +- on the length fractions
HEM_AMPLITUDE = 16.0  # units: how far a shaped hem departs from the level line (its mean is the level)
CROTCH = 0.12  # jumpsuit crotch, fraction of the hip-to-ankle height
SLEEVE_MAX_HALF_WIDTH = 31.0  # units, the widest of sleeve_half_width
STRIPE_PERIOD, STRIPE_WIDTH, DOT_RADIUS = 24.0, 8.0, 5.0  # units


@dataclass(frozen=True)
class Garment:
    category: str
    style: str
    occasion: str
    effect: str
    feeling: str
    clothing_length: str  # the vocabulary value ("Long"); the caption says "Long Dress"
    sleeve_length: str
    sleeve_type: str
    collar: str
    hem: str

    @property
    def color(self) -> tuple[float, float, float]:
        return STYLE_COLORS[self.style]

    @property
    def pattern(self) -> str:
        return FEELING_PATTERNS[self.feeling]

    def caption(self) -> str:
        """The ten-item official caption: category, style, occasion, effect, feeling, A1..A5."""
        length = attribute_text(attribute_kind("clothing_length"), self.clothing_length, self.category)
        items = (self.category, self.style, self.occasion, self.effect, self.feeling, length,
                 self.sleeve_length, self.sleeve_type, self.collar, self.hem)  # fmt: skip
        return join_items(items)


@dataclass(frozen=True)
class FigureSpec:
    """Everything a figure is drawn from: the ground truth."""

    garment: Garment
    pose: str  # the preset it was jittered from
    keypoints: tuple[tuple[float, float] | None, ...]  # 18 OpenPose points in the 512 x 704 frame
    length_fraction: float  # clothing length actually drawn, fraction of hip-to-ankle
    sleeve_fraction: float  # sleeve length actually drawn, fraction of the arm path

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FigureSpec:
        points = tuple(None if p is None else (float(p[0]), float(p[1])) for p in data["keypoints"])
        return cls(Garment(**data["garment"]), data["pose"], points, data["length_fraction"], data["sleeve_fraction"])


# --- sampling --------------------------------------------------------------------------------------


def sample_figures(count: int, seed: int = 0) -> list[FigureSpec]:
    """`count` random figures, the same for the same seed and numpy version on every machine (PCG64)."""
    rng = np.random.default_rng(seed)
    presets = {name: read_pose_keypoint(load_pose_preset(name))[0].keypoints.numpy() for name in PRESET_POSES}
    return [_sample_figure(rng, presets) for _ in range(count)]


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _sample_figure(rng: np.random.Generator, presets: dict[str, np.ndarray]) -> FigureSpec:
    garment = Garment(
        category=_pick(rng, CATEGORIES),
        style=_pick(rng, tuple(STYLE_COLORS)),
        occasion=_pick(rng, concept_values("occasion")),
        effect=_pick(rng, concept_values("effect")),
        feeling=_pick(rng, tuple(FEELING_PATTERNS)),
        clothing_length=_pick(rng, tuple(CLOTHING_LENGTHS)),
        sleeve_length=_pick(rng, tuple(SLEEVE_LENGTHS)),
        sleeve_type=_pick(rng, SLEEVE_TYPES),
        collar=_pick(rng, COLLARS),
        hem=_pick(rng, HEMS),
    )
    pose = _pick(rng, PRESET_POSES)
    points = presets[pose]
    scale = rng.uniform(0.9, 1.04)
    shift = np.array([rng.uniform(-20, 20), rng.uniform(-8, 8)])
    centre = np.array([256.0, 352.0])
    jittered = (points - centre) * scale + centre + shift + rng.normal(0.0, 3.0, points.shape)
    keypoints = tuple(None if np.isnan(p).any() else (round(float(p[0]), 2), round(float(p[1]), 2)) for p in jittered)
    length = CLOTHING_LENGTHS[garment.clothing_length] + rng.uniform(-LENGTH_JITTER, LENGTH_JITTER)
    sleeve = SLEEVE_LENGTHS[garment.sleeve_length]
    sleeve = sleeve + rng.uniform(-LENGTH_JITTER, LENGTH_JITTER) if sleeve else 0.0
    return FigureSpec(garment, pose, keypoints, round(float(length), 4), round(float(sleeve), 4))


# --- geometry shared with the oracles ----------------------------------------------------------------


def pose_frame(spec: FigureSpec, width: int, height: int) -> PoseFrame:
    """The spec's keypoints on a `width` x `height` canvas (the preset frame fitted, centred)."""
    import torch

    points = torch.tensor([[math.nan, math.nan] if p is None else p for p in spec.keypoints], dtype=torch.float32)
    return rescale_frame(PoseFrame(points, 512, 704), width, height, "contain")


def body_unit(points: np.ndarray) -> float:
    """Canvas pixels per unit, from the neck-to-hips height of [18, 2] canvas keypoints."""
    hip_y = (points[KEYPOINT["right hip"], 1] + points[KEYPOINT["left hip"], 1]) / 2
    return float(hip_y - points[KEYPOINT["neck"], 1]) / PRESET_TORSO


def collar_anchor(points: np.ndarray) -> np.ndarray:
    """Centre of the neckline: the shoulder line at the neck's x."""
    right, left, neck = points[KEYPOINT["right shoulder"]], points[KEYPOINT["left shoulder"]], points[KEYPOINT["neck"]]
    t = (neck[0] - right[0]) / (left[0] - right[0])
    return np.array([neck[0], right[1] + t * (left[1] - right[1])])


def torso_polygon(points: np.ndarray, unit: float) -> np.ndarray:
    """The garment's bodice: shoulders, in to the armpits, out to the hips."""
    right, left = points[KEYPOINT["right shoulder"]], points[KEYPOINT["left shoulder"]]
    lateral = (left - right) / np.linalg.norm(left - right)  # from the right shoulder to the left
    down = np.array([0.0, 42.0 * unit])
    return np.stack([
        right, right + 14 * unit * lateral + down,
        points[KEYPOINT["right hip"]] - 12 * unit * lateral, points[KEYPOINT["left hip"]] + 12 * unit * lateral,
        left - 14 * unit * lateral + down, left,
    ])  # fmt: skip


def arm_path(points: np.ndarray, side: str) -> np.ndarray:
    """[3, 2] shoulder, elbow, wrist of one side ("right" or "left")."""
    return np.stack([points[KEYPOINT[f"{side} {joint}"]] for joint in ("shoulder", "elbow", "wrist")])


def hem_level(points: np.ndarray, fraction: float) -> float:
    """Canvas y of a garment ending `fraction` of the way from the hips to the ankles."""
    hip_y = (points[KEYPOINT["right hip"], 1] + points[KEYPOINT["left hip"], 1]) / 2
    ankle_y = (points[KEYPOINT["right ankle"], 1] + points[KEYPOINT["left ankle"], 1]) / 2
    return float(hip_y + fraction * (ankle_y - hip_y))


def hem_span(points: np.ndarray, unit: float, level: float) -> tuple[float, float]:
    """Centre x and half-width (canvas pixels) over which the hem's shape runs from u = -1 to 1."""
    right_hip, left_hip = points[KEYPOINT["right hip"]], points[KEYPOINT["left hip"]]
    hip_y = (right_hip[1] + left_hip[1]) / 2
    half_span = abs(left_hip[0] - right_hip[0]) / 2 + 20 * unit + 0.38 * (level - hip_y)
    return float(right_hip[0] + left_hip[0]) / 2, float(half_span)


def sleeve_half_width(sleeve_type: str, u: np.ndarray) -> np.ndarray:
    """Sleeve half-width in units at u = 0 (shoulder) .. 1 (the sleeve's end)."""
    if sleeve_type == "Puffed Sleeve":
        return 14 + 13 * np.cos(np.pi / 2 * np.clip(u / 0.45, 0, 1)) ** 2
    if sleeve_type == "Flare Sleeve":
        return 14 + 17 * u**2
    if sleeve_type == "Lantern Sleeve":
        return 12 + 15 * np.sin(np.pi * np.clip(u, 0, 1))
    return np.full_like(u, 14.0)


def hem_profile(hem: str, u: np.ndarray) -> np.ndarray:
    """Downward offset of the hem from its level, in units, at u = -1 (right edge) .. 1; mean 0 over u."""
    if hem == "Curved Hem":
        return HEM_AMPLITUDE * 1.5 * (1 / 3 - u**2)  # lower in the middle
    if hem == "Wavy Hem":
        return HEM_AMPLITUDE * 0.6 * np.sin(np.pi * 4.5 * u)
    if hem == "Irregular Hem":
        return HEM_AMPLITUDE * u  # one side lower than the other
    return np.zeros_like(u)


# --- drawing ---------------------------------------------------------------------------------------

# label ids of the drawing, turned into colours at the end
BG, SKIN_ID, DARK_ID, CLOTH, CLOTH_SHADE = 0, 1, 2, 3, 4


class Canvas:
    """A label map and the pixel-centre grid; shapes are computed only inside their bounding window."""

    def __init__(self, width: int, height: int):
        self.y, self.x = np.mgrid[0:height, 0:width].astype(np.float32)
        self.labels = np.zeros((height, width), np.uint8)

    def paint(self, mask: np.ndarray, label):
        self.labels[mask] = label if np.isscalar(label) else label[mask]

    def window(self, points, reach: float) -> tuple[slice, slice]:
        """Rows and columns within `reach` of the bounding box of `points`."""
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        height, width = self.labels.shape

        def span(low: float, high: float, size: int) -> slice:
            return slice(min(max(math.floor(low - reach), 0), size), min(max(math.ceil(high + reach) + 1, 0), size))

        return span(min(ys), max(ys), height), span(min(xs), max(xs), width)

    def segment_distance(self, a, b, reach: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance of every pixel to segment a-b (inf beyond `reach` of its box), and the position 0..1
        of its nearest point."""
        distance, t = np.full(self.x.shape, np.inf, np.float32), np.zeros(self.x.shape, np.float32)
        window = self.window([a, b], reach)
        x, y = self.x[window], self.y[window]
        d = np.asarray(b, np.float64) - a
        along = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
        distance[window] = np.hypot(x - a[0] - along * d[0], y - a[1] - along * d[1])
        t[window] = along
        return distance, t

    def capsule(self, a, b, radius: float) -> np.ndarray:
        return self.segment_distance(a, b, radius)[0] <= radius

    def disc(self, centre, radius: float) -> np.ndarray:
        return self.capsule(centre, centre, radius)

    def polygon(self, points: np.ndarray) -> np.ndarray:
        """Even-odd fill."""
        inside = np.zeros(self.x.shape, bool)
        window = self.window(points, 1)
        x, y = self.x[window], self.y[window]
        part = np.zeros(x.shape, bool)
        for (x0, y0), (x1, y1) in zip(points, np.roll(points, -1, axis=0), strict=True):
            crosses = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            part ^= crosses & (x < x_cross)
        inside[window] = part
        return inside

    def polyline(self, path: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance of every pixel to a polyline (inf beyond `reach`), and the arc length (pixels) of its
        nearest point."""
        best = np.full(self.x.shape, np.inf, np.float32)
        arc = np.zeros(self.x.shape, np.float32)
        start = 0.0
        for a, b in zip(path[:-1], path[1:], strict=True):
            length = float(np.linalg.norm(b - a))
            distance, t = self.segment_distance(a, b, reach)
            closer = distance < best
            best = np.where(closer, distance, best)
            arc = np.where(closer, start + t * length, arc)
            start += length
        return best, arc


def draw_labels(spec: FigureSpec, width: int, height: int) -> np.ndarray:
    """[H, W] uint8 label map (BG, SKIN_ID, DARK_ID, CLOTH, CLOTH_SHADE) of the figure."""
    points = pose_frame(spec, width, height).keypoints.numpy().astype(np.float64)
    unit = body_unit(points)
    garment = spec.garment
    canvas = Canvas(width, height)
    kp = {name: points[i] for name, i in KEYPOINT.items()}

    cloth = np.full(canvas.x.shape, CLOTH, np.uint8)  # the garment's pattern, painted through masks
    if garment.pattern == "stripes":
        cloth[np.mod(canvas.y, STRIPE_PERIOD * unit) < STRIPE_WIDTH * unit] = CLOTH_SHADE
    elif garment.pattern == "dots":
        period = STRIPE_PERIOD * unit
        row = np.floor(canvas.y / period)
        dx = np.mod(canvas.x + (row % 2) * period / 2, period) - period / 2
        dy = np.mod(canvas.y, period) - period / 2
        cloth[np.hypot(dx, dy) <= DOT_RADIUS * unit] = CLOTH_SHADE

    for side in ("right", "left"):
        canvas.paint(canvas.capsule(kp[f"{side} hip"], kp[f"{side} knee"], 17 * unit), SKIN_ID)
        canvas.paint(canvas.capsule(kp[f"{side} knee"], kp[f"{side} ankle"], 13 * unit), SKIN_ID)
        foot = kp[f"{side} ankle"] + np.array([0, 8 * unit])
        canvas.paint(canvas.capsule(foot - [10 * unit, 0], foot + [10 * unit, 0], 7 * unit), DARK_ID)

    torso = canvas.polygon(torso_polygon(points, unit))
    canvas.paint(torso, SKIN_ID)
    head = kp["nose"] - np.array([0, 4 * unit])
    head_radius = 34 * unit
    anchor = collar_anchor(points)
    canvas.paint(canvas.capsule(anchor, head, 13 * unit), SKIN_ID)

    level = hem_level(points, spec.length_fraction)
    lower = _lower_garment(canvas, garment, points, unit, level)
    body = torso | lower
    canvas.paint(body, cloth)
    if garment.category == "Coat":
        canvas.paint((np.abs(canvas.x - anchor[0]) <= 2.5 * unit) & body, CLOTH_SHADE)  # the front opening
    _collar(canvas, garment.collar, anchor, unit, torso, cloth, head[1] + head_radius)

    canvas.paint(canvas.disc(head, head_radius), SKIN_ID)
    canvas.paint(canvas.disc(head, head_radius + 2 * unit) & (canvas.y < head[1] - 12 * unit), DARK_ID)

    for side in ("right", "left"):
        path = arm_path(points, side)
        canvas.paint(canvas.capsule(path[0], path[1], 11 * unit), SKIN_ID)
        canvas.paint(canvas.capsule(path[1], path[2], 9 * unit), SKIN_ID)
        forearm = (path[2] - path[1]) / max(np.linalg.norm(path[2] - path[1]), 1e-6)
        canvas.paint(canvas.disc(path[2] + 8 * unit * forearm, 9 * unit), SKIN_ID)
        if spec.sleeve_fraction > 0:
            distance, arc = canvas.polyline(path, SLEEVE_MAX_HALF_WIDTH * unit)
            end = spec.sleeve_fraction * float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
            sleeve = (arc <= end) & (distance <= sleeve_half_width(garment.sleeve_type, arc / end) * unit)
            canvas.paint(sleeve, cloth)
    return canvas.labels


def _lower_garment(canvas: Canvas, garment: Garment, points, unit: float, level: float) -> np.ndarray:
    """The garment below the hips, cut at the (shaped) hem."""
    right_hip, left_hip = points[KEYPOINT["right hip"]], points[KEYPOINT["left hip"]]
    lateral = (left_hip - right_hip) / np.linalg.norm(left_hip - right_hip)
    hip_y = (right_hip[1] + left_hip[1]) / 2
    bottom = level + HEM_AMPLITUDE * unit * 1.5
    if garment.category == "Jumpsuit":
        crotch = hem_level(points, CROTCH)
        shape = canvas.polygon(np.stack([right_hip - 12 * unit * lateral, left_hip + 12 * unit * lateral,
                                         [left_hip[0], crotch], [right_hip[0], crotch]]))  # fmt: skip
        for side in ("right", "left"):
            hip, knee, ankle = (points[KEYPOINT[f"{side} {joint}"]] for joint in ("hip", "knee", "ankle"))
            shape |= canvas.capsule(hip, knee, 19 * unit) | canvas.capsule(knee, ankle + [0, 20 * unit], 16 * unit)
    else:
        flare = 0.38 if garment.category == "Dress" else 0.12
        widen = 12 if garment.category == "Dress" else 16
        spread = flare * (bottom - hip_y)
        shape = canvas.polygon(np.stack([
            right_hip - widen * unit * lateral, left_hip + widen * unit * lateral,
            left_hip + widen * unit * lateral + [spread, bottom - left_hip[1]],
            right_hip - widen * unit * lateral + [-spread, bottom - right_hip[1]],
        ]))  # fmt: skip
    centre, half_span = hem_span(points, unit, level)
    u = np.clip((canvas.x - centre) / half_span, -1, 1)
    return shape & (canvas.y >= hip_y - 1) & (canvas.y <= level + hem_profile(garment.hem, u) * unit)


def _collar(canvas: Canvas, collar: str, anchor, unit: float, torso, cloth, chin_y: float):
    dx, dy = canvas.x - anchor[0], canvas.y - anchor[1]
    if collar == "T-neck":
        canvas.paint((np.abs(dx) <= 15 * unit) & (canvas.y >= chin_y - 4 * unit) & (dy <= 1), cloth)
        return
    if collar == "Round Collar":
        cut = canvas.disc(anchor, 24 * unit)
    elif collar == "V-Neck":
        cut = (dy >= -1) & (np.abs(dx) <= 23 * unit * (1 - dy / (58 * unit)))
    elif collar == "Square Collar":
        cut = (np.abs(dx) <= 20 * unit) & (dy <= 36 * unit)
    else:  # Boat Neck
        cut = (dx / (46 * unit)) ** 2 + (dy / (14 * unit)) ** 2 <= 1
    canvas.paint(cut & torso, SKIN_ID)


def colorize(labels: np.ndarray, color: Sequence[float]) -> np.ndarray:
    """[H, W, 3] float32 RGB 0..1 of a label map for a garment of `color`."""
    palette = np.array([BACKGROUND, SKIN, DARK, color, tuple(SHADE * c for c in color)], np.float32)
    return palette[labels]


@dataclass(frozen=True)
class Figure:
    spec: FigureSpec
    image: np.ndarray  # [H, W, 3] float32 RGB 0..1
    pose_image: np.ndarray  # [H, W, 3] float32 OpenPose render, same size
    pose_keypoint: list[dict]  # POSE_KEYPOINT of the figure, pixels of the canvas

    @property
    def caption(self) -> str:
        return self.spec.garment.caption()


def draw_figure(spec: FigureSpec, width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1]) -> Figure:
    """The figure's image, pose map and POSE_KEYPOINT at `width` x `height`."""
    frame = pose_frame(spec, width, height)
    image = colorize(draw_labels(spec, width, height), spec.garment.color)
    return Figure(spec, image, render_pose(frame)[0].numpy(), to_pose_keypoint(frame))


# --- the dataset in the official layout --------------------------------------------------------------


def png_bytes(image: np.ndarray) -> bytes:
    """PNG (8-bit RGB) of an [H, W, 3] float 0..1 image."""
    pixels = np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    height, width = pixels.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) \
        + chunk(b"IEND", b"")


def write_dataset(
    root: Path | str,
    train: int = 1000,
    test: int = 100,
    seed: int = 0,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
) -> Path:
    """Write a synthetic dataset in the official layout under `root` (which must not exist yet).

    `<root>/{train,test}.json`: lists of {"pose", "gt", "caption"} relative to root;
    `<split>_images/NNNNNN.png` the figures, `<split>_pose/pose_images/NNNNNN.png` their OpenPose maps at
    the same size, `<split>_pose/json/NNNNNN.json` their POSE_KEYPOINT, and `<split>_attributes.json`
    the ground truth: {gt path: FigureSpec.to_json()}. The test split uses seed + 1.
    """
    root = Path(root)
    if root.exists():
        raise HieraFashError(f"{root} already exists; the writer never writes into an existing folder: "
                             "name a new one", "out")  # fmt: skip
    root.mkdir(parents=True)
    (root / "synthetic.json").write_text(
        json.dumps({"generator": "hierafash_core.synthetic", "seed": seed, "width": width, "height": height,
                    "train": train, "test": test}, indent=1), encoding="utf-8")  # fmt: skip
    for split, count, split_seed in (("train", train, seed), ("test", test, seed + 1)):
        for folder in (f"{split}_images", f"{split}_pose/pose_images", f"{split}_pose/json"):
            (root / folder).mkdir(parents=True)
        entries, truth = [], {}
        for n, spec in enumerate(sample_figures(count, split_seed)):
            figure = draw_figure(spec, width, height)
            gt, pose = f"{split}_images/{n:06d}.png", f"{split}_pose/pose_images/{n:06d}.png"
            (root / gt).write_bytes(png_bytes(figure.image))
            (root / pose).write_bytes(png_bytes(figure.pose_image))
            (root / f"{split}_pose/json/{n:06d}.json").write_text(json.dumps(figure.pose_keypoint), encoding="utf-8")
            entries.append({"pose": pose, "gt": gt, "caption": figure.caption})
            truth[gt] = spec.to_json()
        (root / f"{split}.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")
        (root / f"{split}_attributes.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return root


# --- the templates' example figure (HieraFash Example Figure, seed 0) ---------------------------------------

EXAMPLE_POSE = "front_standing"  # the preset the example is drawn on, unjittered: the templates' pose


def example_spec() -> FigureSpec:
    """The figure of the templates' example image: a knee-length purple dress on the front_standing preset."""
    points = read_pose_keypoint(load_pose_preset(EXAMPLE_POSE))[0].keypoints.tolist()
    garment = Garment("Dress", "Elegant", "Party", "Slimming", "Crisp Feeling", "Knee-length", "Short Sleeve",
                      "Puffed Sleeve", "V-Neck", "Curved Hem")  # fmt: skip
    keypoints = tuple(None if math.isnan(x) else (x, y) for x, y in points)
    return FigureSpec(garment, EXAMPLE_POSE, keypoints, CLOTHING_LENGTHS["Knee-length"], SLEEVE_LENGTHS["Short Sleeve"])
