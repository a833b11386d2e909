"""Attribute oracles: read each garment attribute of a synthetic figure back from its pixels.

The ruler of the synthetic benchmark (`synthetic.py`). Each oracle is pixel geometry, no learned
weights: pixels are sorted into background, skin, dark (hair, shoes) and garment by colour, then each
attribute is measured where the generator puts it, relative to the figure's pose (the pose a model
was conditioned on, so an oracle may use it): how far down the garment reaches, how far along the arm
the sleeve goes and how wide it is there, the skin cut-out below the neckline, the shape of the hem's
edge, the gap between the legs, the front placket, the colour and the pattern's shade. `accuracy`
measures every oracle against ground truth on freshly drawn figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import synthetic as syn
from .pose import KEYPOINT, read_pose_keypoint

FIELDS = ("category", "style", "feeling", "clothing_length", "sleeve_length", "sleeve_type", "collar", "hem")
# pixel classes
BACKGROUND, SKIN, DARK, GARMENT = 0, 1, 2, 3
NEUTRAL_DISTANCE = 0.12  # RGB distance within which a pixel counts as a white / skin / dark mix
SHADE_RATIO = 0.78  # a garment pixel darker than this fraction of the garment's brightness is its shade
EDGE_COLUMNS = 2  # columns dropped at each side of a run of garment when reading the hem
PLACKET_DARKENING = 0.12  # a placket column is this much darker (of the garment's brightness) than beside it
PROBE_MARGIN = 1.0  # pixels the placket and neck probes may sit off the keypoints' position


def classify_pixels(image: np.ndarray) -> np.ndarray:
    """[H, W] class (BACKGROUND, SKIN, DARK, GARMENT) of each pixel of an [H, W, 3] 0..1 image.

    A pixel near a mix of two of white, skin and dark (a soft edge between them) takes the nearer of the
    two; everything else is garment, whose colours are kept far from those mixes.
    """
    image = np.asarray(image, np.float32)
    references = {BACKGROUND: syn.BACKGROUND, SKIN: syn.SKIN, DARK: syn.DARK}
    best = np.full(image.shape[:2], NEUTRAL_DISTANCE, np.float32)
    classes = np.full(image.shape[:2], GARMENT, np.uint8)
    for (first, a), (second, b) in ((p, q) for i, p in enumerate(references.items())
                                    for q in list(references.items())[i + 1:]):  # fmt: skip
        a, b = np.array(a, np.float32), np.array(b, np.float32)
        t = np.clip(((image - a) @ (b - a)) / float((b - a) @ (b - a)), 0, 1)
        distance = np.linalg.norm(image - (a + t[..., None] * (b - a)), axis=-1)
        closer = distance < best
        best[closer] = distance[closer]
        classes[closer] = np.where(t < 0.5, first, second)[closer]
    return classes


@dataclass
class _View:
    """One image prepared for the oracles."""

    image: np.ndarray
    classes: np.ndarray
    points: np.ndarray  # [18, 2] canvas pixels
    unit: float

    @property
    def garment(self) -> np.ndarray:
        return self.classes == GARMENT

    def at(self, x: float, y: float) -> int:
        """Class of the pixel whose centre is nearest (x, y); background outside the image."""
        row, column = int(round(y)), int(round(x))
        height, width = self.classes.shape
        return int(self.classes[row, column]) if 0 <= row < height and 0 <= column < width else BACKGROUND

    def classes_at(self, points: np.ndarray) -> np.ndarray:
        """`at` for [N, 2] points at once."""
        columns, rows = np.rint(points[:, 0]).astype(int), np.rint(points[:, 1]).astype(int)
        height, width = self.classes.shape
        inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
        out = np.full(len(points), BACKGROUND, np.uint8)
        out[inside] = self.classes[rows[inside], columns[inside]]
        return out

    def kp(self, name: str) -> np.ndarray:
        return self.points[KEYPOINT[name]]

    @property
    def hip_y(self) -> float:
        return float(self.kp("right hip")[1] + self.kp("left hip")[1]) / 2


def read_attributes(image: np.ndarray, keypoints: np.ndarray) -> dict[str, str | None]:
    """Each FIELDS value read from an [H, W, 3] image of a figure whose [18, 2] keypoints (canvas pixels)
    are given. `sleeve_type` is None when there is no sleeve to measure, `hem` None on a jumpsuit (a
    trouser leg is too narrow at 128 px for the hem's shape to show)."""
    points = np.asarray(keypoints, np.float64)
    view = _View(np.asarray(image, np.float32), classify_pixels(image), points, syn.body_unit(points))
    color, shade = _garment_colour(view)
    length_fraction, bottom = _clothing_length(view)
    sleeve_fraction = _sleeve_fraction(view)
    category = _category(view, color)
    return {
        "category": category,
        "style": _nearest(syn.STYLE_COLORS, color),
        "feeling": _feeling(view, shade),
        "clothing_length": _nearest(syn.CLOTHING_LENGTHS, length_fraction),
        "sleeve_length": _nearest(syn.SLEEVE_LENGTHS, sleeve_fraction),
        "sleeve_type": _sleeve_type(view, sleeve_fraction) if sleeve_fraction > 0.12 else None,
        "collar": _collar(view, color),
        "hem": None if category == "Jumpsuit" else _hem(view, bottom),
    }


def read_figure(image: np.ndarray, pose_keypoint) -> dict[str, str | None]:
    """`read_attributes` with the pose given as a POSE_KEYPOINT (first frame, largest person)."""
    return read_attributes(image, read_pose_keypoint(pose_keypoint)[0].keypoints.numpy())


def _nearest(table: dict, value) -> str:
    value = np.asarray(value, np.float64)
    return min(table, key=lambda name: float(np.linalg.norm(np.asarray(table[name], np.float64) - value)))


# --- colour and pattern -----------------------------------------------------------------------------


def _garment_colour(view: _View) -> tuple[np.ndarray, np.ndarray]:
    """The garment's base colour, and the [H, W] mask of its shade pixels."""
    pixels = view.image[view.garment]
    if len(pixels) == 0:
        return np.zeros(3), np.zeros(view.classes.shape, bool)
    brightness = pixels.sum(axis=-1)
    base = pixels[brightness >= np.median(brightness) * 0.95].mean(axis=0)
    shade = view.garment & (view.image.sum(axis=-1) < SHADE_RATIO * float(base.sum()))
    return base, shade


def _bodice_rows(view: _View) -> slice:
    """Rows of the bodice below the deepest neckline and above the hips."""
    anchor = syn.collar_anchor(view.points)
    return slice(int(np.ceil(anchor[1] + 62 * view.unit)), int(np.floor(view.hip_y - 5 * view.unit)))


def _feeling(view: _View, shade: np.ndarray) -> str:
    """Solid, stripes (whole rows of shade) or dots, read on a band of the bodice off its centre line."""
    anchor = syn.collar_anchor(view.points)
    rows = _bodice_rows(view)
    offset = np.abs(np.arange(view.classes.shape[1]) - anchor[0]) / view.unit
    columns = (offset > 6) & (offset < 30)
    garment, shaded = view.garment[rows][:, columns], shade[rows][:, columns]
    if garment.sum() == 0 or shaded.sum() < 0.06 * garment.sum():
        pattern = "solid"
    else:
        row_shade = shaded.sum(axis=1) / np.maximum(garment.sum(axis=1), 1)
        pattern = "stripes" if row_shade.max() > 0.8 else "dots"
    return next(feeling for feeling, p in syn.FEELING_PATTERNS.items() if p == pattern)


# --- category -------------------------------------------------------------------------------------


def _category(view: _View, color: np.ndarray) -> str:
    """Jumpsuit when the crotch shows a gap between the legs; Coat when a shade line runs down the front."""
    crotch = syn.hem_level(view.points, syn.CROTCH)
    legs = np.stack([view.kp(f"{side} {joint}") for side in ("right", "left") for joint in ("hip", "knee")])
    middle = float(legs[:, 0].mean())
    probe = [view.at(middle + dx, crotch + dy * view.unit) for dx in (-1, 0, 1) for dy in (8, 11, 14)]
    if sum(c != GARMENT for c in probe) > len(probe) / 2:
        return "Jumpsuit"
    # a placket is a column darker than its neighbours on every row; stripes darken whole rows, dots spots
    anchor = syn.collar_anchor(view.points)
    rows = slice(_bodice_rows(view).start, int(view.hip_y + 20 * view.unit))
    brightness = view.image[rows].sum(axis=-1)
    width = brightness.shape[1]
    aside = int(round(12 * view.unit))

    def darkening(column: int) -> float:
        neighbours = brightness[:, [max(column - aside, 0), min(column + aside, width - 1)]].mean(axis=1)
        return float(np.median(neighbours - brightness[:, column]) / max(float(color.sum()), 1e-6))

    line = max(darkening(column) for column in _columns_near(anchor[0], width))
    return "Coat" if line > PLACKET_DARKENING else "Dress"


def _columns_near(x: float, width: int) -> list[int]:
    return [c for c in range(int(np.floor(x - PROBE_MARGIN)), int(np.ceil(x + PROBE_MARGIN)) + 1) if 0 <= c < width]


# --- clothing length and hem -------------------------------------------------------------------------


def _lower_columns(view: _View, level: float) -> slice:
    centre, half_span = syn.hem_span(view.points, view.unit, level)
    width = view.classes.shape[1]
    return slice(max(int(centre - half_span) - 2, 0), min(int(centre + half_span) + 3, width))


def _clothing_length(view: _View) -> tuple[float, float]:
    """(fraction of hip-to-ankle, canvas y) where the garment's rows fall to half their width: the hem's
    level line, whatever its shape (shapes are centred on it)."""
    ankle = syn.hem_level(view.points, 1.0)
    columns = _lower_columns(view, ankle)
    first = int(np.ceil(view.hip_y))
    counts = view.garment[first:, columns].sum(axis=1)
    empty = np.flatnonzero(counts == 0)
    last = first + (int(empty[0]) if len(empty) else len(counts)) - 1
    reference = counts[max(int(last - 2.2 * syn.HEM_AMPLITUDE * view.unit) - first, 0)]
    wide = np.flatnonzero(counts[: last - first + 1] >= 0.5 * reference)
    bottom = first + (int(wide[-1]) if len(wide) else 0) + 0.5
    return (bottom - view.hip_y) / (ankle - view.hip_y), bottom


def _hem(view: _View, bottom: float) -> str:
    """Flat, Curved (low in the middle), Wavy or Irregular (sloped), from a quadratic fit of where the
    garment ends going down each column that is covered just above the hem."""
    columns = _lower_columns(view, bottom)
    probe_row = max(int(round(bottom - 26 * view.unit)), 0)
    # the first non-garment row below the probe (a stray garment-coloured pixel further down is not the hem)
    lowest = probe_row + np.argmin(np.vstack([view.garment[probe_row:], np.zeros_like(view.garment[:1])]), axis=0) - 1
    covered = [x for x in range(columns.start, columns.stop) if view.garment[probe_row, x]]
    # a run's edge columns meet the garment's slanted sides, not its hem
    runs = np.split(np.array(covered, int), np.flatnonzero(np.diff(covered) > 1) + 1) if covered else []
    xs = [int(x) for run in runs for x in run[EDGE_COLUMNS:len(run) - EDGE_COLUMNS]]
    if len(xs) < 4:
        return "Flat Hem"
    centre, half_span = syn.hem_span(view.points, view.unit, bottom)
    u = (np.array(xs) - centre) / half_span
    drop = (lowest[xs] - bottom) / view.unit
    fit = np.polynomial.polynomial.polyfit(u, drop, 2)
    residual = float(np.std(drop - np.polynomial.polynomial.polyval(u, fit)))
    if residual > 3.5:
        return "Wavy Hem"
    if abs(fit[1]) > 8:
        return "Irregular Hem"
    return "Curved Hem" if fit[2] < -12 else "Flat Hem"


# --- sleeves -------------------------------------------------------------------------------------


def _arm(view: _View, side: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Points every quarter pixel along the shoulder-elbow-wrist path, their unit normals, and its length."""
    path = syn.arm_path(view.points, side)
    samples, normals = [], []
    for a, b in zip(path[:-1], path[1:], strict=True):
        length = float(np.linalg.norm(b - a))
        steps = max(int(length * 4), 1)
        t = np.arange(steps)[:, None] / steps
        samples.append(a + t * (b - a))
        direction = (b - a) / max(length, 1e-6)
        normals.append(np.repeat([[-direction[1], direction[0]]], steps, axis=0))
    total = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    return np.concatenate(samples), np.concatenate(normals), total


def _sleeve_end(view: _View, side: str) -> float:
    """Arc length (pixels) to where the garment along the arm's axis stops, 0 with no sleeve."""
    samples, _, _ = _arm(view, side)
    covered = view.classes_at(samples) == GARMENT
    if not covered[:8].any():
        return 0.0
    gaps = np.flatnonzero(~covered)
    gaps = gaps[gaps > np.argmax(covered)]
    # the sleeve ends at the first gap longer than a pixel
    for index in gaps:
        if not covered[index : index + 5].any():
            return index / 4
    return len(covered) / 4


def _sleeve_fraction(view: _View) -> float:
    """Mean over both arms of the sleeve's end as a fraction of the arm path."""
    return float(np.mean([_sleeve_end(view, side) / _arm(view, side)[2] for side in ("right", "left")]))


def _sleeve_type(view: _View, fraction: float) -> str:
    """The sleeve type whose half-width profile is nearest the measured one (outer side of the arm)."""
    u = np.linspace(0.1, 0.9, 9)
    measured, expected = [], {name: [] for name in syn.SLEEVE_TYPES}
    for side in ("right", "left"):
        samples, normals, total = _arm(view, side)
        end = fraction * total
        for ui in u:
            index = min(int(ui * end * 4), len(samples) - 1)
            width = min(_walk(view, samples[index], sign * normals[index]) for sign in (1, -1))
            if width >= 45:  # both sides run into the bodice: no edge here
                continue
            measured.append(width)
            for name in syn.SLEEVE_TYPES:
                expected[name].append(float(syn.sleeve_half_width(name, np.array(ui))))
    if not measured:
        return "Regular Sleeve"
    measured = np.array(measured)
    return min(syn.SLEEVE_TYPES, key=lambda name: float(np.abs(np.array(expected[name]) - measured).mean()))


def _walk(view: _View, start: np.ndarray, direction: np.ndarray) -> float:
    """Units from `start` along `direction` to the last garment pixel (capped at 45)."""
    step = 0.25
    distances = np.arange(int(45 * view.unit / step)) * step
    outside = np.flatnonzero(view.classes_at(start + distances[:, None] * direction) != GARMENT)
    return float(distances[outside[0]]) / view.unit if len(outside) else 45.0


# --- collar -----------------------------------------------------------------------------------------

COLLAR_SHAPES = {  # skin cut-out below the neckline, units: (depth, width 4 units down, width half-way down)
    "Round Collar": (24.0, 47.3, 41.6),
    "V-Neck": (58.0, 42.8, 23.0),
    "Square Collar": (36.0, 40.0, 40.0),
    "Boat Neck": (14.0, 88.0, 79.7),
}


def _collar(view: _View, color: np.ndarray) -> str:
    """T-neck when the garment covers the neck; otherwise the cut-out shape nearest the measured one."""
    anchor = syn.collar_anchor(view.points)
    unit = view.unit
    neck = [view.at(anchor[0] + dx * unit, anchor[1] - dy * unit) for dx in (-6, 0, 6) for dy in (8, 16, 24)]
    if sum(c == GARMENT for c in neck) > len(neck) / 2:
        return "T-neck"
    skin = _skin_weight(view, color)
    row, column = int(round(anchor[1])), int(round(anchor[0]))
    depth = (_run(skin[row:, column]) + row - 0.5 - anchor[1]) / unit
    features = (depth, _skin_width(view, skin, anchor, 4), _skin_width(view, skin, anchor, depth / 2))
    scale = np.array([1.0, 0.1, 0.1])  # depth is the surest measure; a turned body narrows the widths
    return min(COLLAR_SHAPES, key=lambda name: float(np.abs((np.array(COLLAR_SHAPES[name]) - features) * scale).sum()))


def _skin_weight(view: _View, color: np.ndarray) -> np.ndarray:
    """[H, W] 0..1: how much of each pixel is skin rather than garment (a soft edge counts in part, so
    sums along a line keep their length under blur)."""
    garment, skin = np.asarray(color, np.float32), np.array(syn.SKIN, np.float32)
    axis = skin - garment
    return np.clip((view.image - garment) @ axis / max(float(axis @ axis), 1e-6), 0, 1)


def _run(weights: np.ndarray) -> float:
    """Sum of `weights` from the start up to the first that is (almost) zero."""
    stop = np.flatnonzero(weights < 0.05)
    return float(weights[: stop[0] if len(stop) else len(weights)].sum())


def _skin_width(view: _View, skin: np.ndarray, anchor: np.ndarray, down: float) -> float:
    """Units of skin across the cut-out `down` units below the neckline."""
    row = int(round(anchor[1] + down * view.unit))
    if not 0 <= row < skin.shape[0]:
        return 0.0
    centre = int(round(anchor[0]))
    line = skin[row]
    if line[centre] < 0.05:
        return 0.0
    return (_run(line[centre:]) + _run(line[centre::-1]) - line[centre]) / view.unit


# --- measuring the oracles ---------------------------------------------------------------------------


PRESENT_SHARE = 0.5  # share of the torso's centre line that must read as garment for a garment to be there


def garment_present(image: np.ndarray, keypoints: np.ndarray) -> bool:
    """Whether a garment covers the figure's torso: every drawn garment does, so an image where it does not
    (a blank canvas, an untrained model's noise) is one the oracles abstain on instead of reading."""
    points = np.asarray(keypoints, np.float64)
    neck = points[KEYPOINT["neck"]]
    hips = (points[KEYPOINT["right hip"]] + points[KEYPOINT["left hip"]]) / 2
    line = neck + np.linspace(1 / 3, 0.9, 24)[:, None] * (hips - neck)  # below any neckline, above the crotch
    classes = _View(np.asarray(image, np.float32), classify_pixels(image), points, 1.0).classes_at(line)
    return bool(np.mean(classes == GARMENT) >= PRESENT_SHARE)


def truth(spec: syn.FigureSpec) -> dict[str, str | None]:
    """What the oracles should read for a figure."""
    garment = spec.garment
    values = {field: getattr(garment, field) for field in FIELDS}
    if garment.sleeve_length == "Sleeveless":
        values["sleeve_type"] = None
    if garment.category == "Jumpsuit":
        values["hem"] = None
    return values


def score_reads(pairs) -> dict[str, dict[str, int]]:
    """Per field, over (read, expected) dict pairs: correct, measured (expected not None) and abstained
    (expected, but the oracle read None)."""
    scores = {field: {"correct": 0, "measured": 0, "abstained": 0} for field in FIELDS}
    for read, expected in pairs:
        for field, value in expected.items():
            if value is None:
                continue
            scores[field]["measured"] += 1
            scores[field]["correct"] += read.get(field) == value
            scores[field]["abstained"] += read.get(field) is None
    return scores


def accuracy(specs: Sequence[syn.FigureSpec], width: int, height: int) -> dict[str, tuple[int, int]]:
    """Per field, (correct, measured) over the figures drawn from `specs`; sleeve type is measured only
    on figures with sleeves, hem only on dresses and coats."""
    pairs = ((read_attributes(syn.draw_figure(spec, width, height).image,
                              syn.pose_frame(spec, width, height).keypoints.numpy()), truth(spec)) for spec in specs)
    return {field: (s["correct"], s["measured"]) for field, s in score_reads(pairs).items()}
