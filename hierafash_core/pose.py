"""Body pose: ComfyUI POSE_KEYPOINT in, one person per frame out, OpenPose colour render for ControlNet.

POSE_KEYPOINT is a list with one entry per image:
`{"people": [{"pose_keypoints_2d": [x, y, c] * 18, ...}], "canvas_width": W, "canvas_height": H}`.
Producers disagree on the coordinate space (controlnet_aux OpenPose writes 0-1, DWPose and core SDPose
write pixels) and on confidence (1.0 everywhere, or real scores), so the space is decided per frame and
reported, and confidence only marks points as missing. Missing points become NaN, never the corner.

Pixel coordinates put pixel (i, j)'s centre at x = i, y = j, as OpenPose and cv2 drawing do.

Reading, writing, rescaling and rendering stay in one module (a little over 400 lines, the largest part the
reading's checks) because all follow this one keypoint layout and coordinate convention.
"""

from __future__ import annotations

import colorsys
import json
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from .errors import HieraFashError
from .raster import fill_ellipse, fill_segment

POSES_DIR = Path(__file__).parent / "data" / "poses"

# OpenPose-18 (COCO-18) body keypoints, in the order of `pose_keypoints_2d`.
KEYPOINT_NAMES = (
    "nose",
    "neck",
    "right shoulder",
    "right elbow",
    "right wrist",
    "left shoulder",
    "left elbow",
    "left wrist",
    "right hip",
    "right knee",
    "right ankle",
    "left hip",
    "left knee",
    "left ankle",
    "right eye",
    "left eye",
    "right ear",
    "left ear",
)
KEYPOINT = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
HAND_KEYPOINTS = 21  # OpenPose hand: wrist, then four joints per finger, thumb to little finger
LARGEST = -1  # the person widget's "largest"

# OpenPose ControlNet renders: limb k joins OPENPOSE_LIMBS[k] in colour OPENPOSE_COLORS[k], joint i is a
# disc in OPENPOSE_COLORS[i]. "ControlNet 1.0" (the official detector, method.md 3.1) draws the joints,
# then blends each limb over them at 0.6, then the hands; "ControlNet 1.1" (controlnet_aux) draws limbs
# at 60 % brightness, then the joints on top, no hands.
OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
LIMB_BRIGHTNESS = 0.6
STICK_WIDTH = 4.0  # limb ellipse half-thickness, pixels at a 512 px short side
JOINT_RADIUS = 4.0  # pixels at a 512 px short side
REFERENCE_SHORT_SIDE = 512
RENDER_STYLES = ("ControlNet 1.0 (official)", "ControlNet 1.1 (controlnet_aux)")
OFFICIAL_STYLE, CONTROLNET_AUX_STYLE = RENDER_STYLES
# Hands, ControlNet 1.0 style: 20 bones (wrist to each fingertip) in hues 0..19/20, then blue joints.
HAND_BONES = tuple((0 if k % 4 == 0 else k, k + 1) for k in range(20))
HAND_BONE_HALF_WIDTH = 1.0  # pixels at a 512 px short side (cv2 thickness 2)
HAND_JOINT_COLOR = (0, 0, 255)

Coordinates = Literal["auto", "normalized", "pixels"]
# Visible keypoints of a real person span far more than 2 px, so a frame whose visible points all lie
# in this range is normalised; the slack past 0..1 admits limbs a little outside the image.
NORMALIZED_RANGE = (-0.5, 1.5)

Fit = Literal["contain", "cover", "stretch"]


class PoseError(HieraFashError):
    """Unusable pose input; the message says what is wrong and how to fix it."""


@dataclass(frozen=True, eq=False)
class PoseFrame:
    """One person in one image: keypoints in pixels of a `width` x `height` canvas."""

    keypoints: torch.Tensor  # [18, 2] float32 (x, y) in pixels; NaN where missing
    width: int
    height: int
    coordinates: str = "pixels"  # the space the frame was read in: "normalized" or "pixels"
    hands: torch.Tensor | None = None  # [2, 21, 2] right, left hand in pixels (NaN where missing); None: not given

    @property
    def visible(self) -> torch.Tensor:
        """[18] bool."""
        return ~self.keypoints.isnan().any(dim=-1)


@contextmanager
def single_threaded():
    """Run torch on one intra-op thread. Rasterising is many small tensor ops: extra threads only add
    hand-off cost, and stall badly (tens of ms per op) when other processes keep the cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def as_frames(frames: PoseFrame | Sequence[PoseFrame]) -> list[PoseFrame]:
    frames = [frames] if isinstance(frames, PoseFrame) else list(frames)
    if not frames:
        raise PoseError("no pose frames were given: connect a POSE_KEYPOINT with at least one image")
    return frames


def canvas_size(frames: Sequence[PoseFrame]) -> tuple[int, int]:
    """(width, height) shared by all frames; a batch tensor needs one size."""
    sizes = {(f.width, f.height) for f in frames}
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise PoseError(
            f"the pose frames have different canvas sizes ({listed}); rescale them to one size", "pose_keypoint"
        )
    return sizes.pop()


# --- reading POSE_KEYPOINT ---------------------------------------------------------------------------


def read_pose_keypoint(
    pose_keypoint,
    person: int | Literal["largest"] = "largest",
    coordinates: Coordinates = "auto",
    min_confidence: float = 0.0,
) -> list[PoseFrame]:
    """One PoseFrame per image of a POSE_KEYPOINT, holding the selected person, in pixels.

    `person` is an index into each frame's people, or "largest" (also -1, the node's widget value): the
    biggest bounding box of visible points. Hands (OpenPose 21-point) come along when the producer wrote them.
    A keypoint is missing when its confidence is <= `min_confidence`, when it is (0, 0) (the producers'
    "not detected"), or when it is not finite. `coordinates="auto"` decides per frame: normalised when
    every visible point of every person lies in NORMALIZED_RANGE, pixels otherwise. Each frame's
    `coordinates` says which space it was read in.
    """
    if isinstance(pose_keypoint, dict):
        pose_keypoint = [pose_keypoint]
    if not isinstance(pose_keypoint, (list, tuple)) or not pose_keypoint:
        raise PoseError(
            "expected a POSE_KEYPOINT: a non-empty list with one {'people': [...], 'canvas_width', "
            "'canvas_height'} entry per image (connect a pose estimator's POSE_KEYPOINT output)"
        )
    if coordinates not in ("auto", "normalized", "pixels"):
        raise PoseError(f"coordinates must be 'auto', 'normalized' or 'pixels', not {coordinates!r}", "coordinates")
    frames = []
    for n, entry in enumerate(pose_keypoint):
        if not isinstance(entry, dict):
            raise PoseError(f"frame {n} of the POSE_KEYPOINT is a {type(entry).__name__}, not a dict")
        width, height = _canvas_of(entry, n)
        listed = list(entry.get("people") or [])
        if not listed:
            raise PoseError(
                f"no person in frame {n}: the pose estimator found nobody. Use an image with a clearly "
                "visible full-body person, or a pose preset.",
                "pose_keypoint",
            )
        people = [_person_points(p, n, k, min_confidence) for k, p in enumerate(listed)]
        space = _coordinate_space(people) if coordinates == "auto" else coordinates
        chosen = _select_person(people, listed, person, n)
        scale = torch.tensor([width, height], dtype=torch.float32) if space == "normalized" else 1.0
        hands = _hand_points(listed[chosen], min_confidence)
        frame = PoseFrame(people[chosen] * scale, width, height, space, None if hands is None else hands * scale)
        _check_on_canvas(frame, n, coordinates)
        frames.append(frame)
    return frames


def _check_on_canvas(frame: PoseFrame, n: int, coordinates: str):
    """Refuse a person with no visible keypoint on the canvas: a wrong coordinate space or canvas size."""
    points = frame.keypoints[frame.visible]
    size = torch.tensor([frame.width, frame.height], dtype=torch.float32)
    if bool(((points >= 0) & (points <= size)).all(-1).any()):
        return
    low, high = points.amin(0).tolist(), points.amax(0).tolist()
    where = f"its keypoints span x {low[0]:.0f}..{high[0]:.0f}, y {low[1]:.0f}..{high[1]:.0f}"
    if coordinates == "auto":
        raise PoseError(
            f"the person in frame {n} lies entirely outside the {frame.width}x{frame.height} canvas ({where}): "
            "the POSE_KEYPOINT's canvas_width/canvas_height do not match its keypoints",
            "pose_keypoint",
        )
    other = "pixels" if coordinates == "normalized" else "normalized"
    raise PoseError(
        f"read as {coordinates} coordinates, the person in frame {n} lies entirely outside the "
        f"{frame.width}x{frame.height} canvas ({where}): the pose looks like {other}; set coordinates to "
        f"'auto' or '{other}'",
        "coordinates",
    )


def _canvas_of(entry: dict, n: int) -> tuple[int, int]:
    try:
        width, height = int(entry["canvas_width"]), int(entry["canvas_height"])
    except (KeyError, TypeError, ValueError):
        raise PoseError(
            f"frame {n} has no usable canvas_width/canvas_height; the POSE_KEYPOINT must say the image size"
        ) from None
    if width <= 0 or height <= 0:
        raise PoseError(f"frame {n} has canvas {width}x{height}; both sides must be positive")
    return width, height


def _hand_points(person, min_confidence: float) -> torch.Tensor | None:
    """[2, 21, 2] (right, left), NaN where missing; None when the person has no hand keypoints."""
    if not isinstance(person, dict):
        return None
    hands = [person.get(f"hand_{side}_keypoints_2d") for side in ("right", "left")]
    given = [isinstance(h, (list, tuple)) and len(h) == HAND_KEYPOINTS * 3 for h in hands]
    if not any(given):
        return None
    absent = torch.full((HAND_KEYPOINTS, 2), math.nan)
    return torch.stack(
        [_missing_as_nan(h, min_confidence) if ok else absent for h, ok in zip(hands, given, strict=True)]
    )


def _missing_as_nan(flat, min_confidence: float = 0.0) -> torch.Tensor:
    """[N, 2] x, y from [x, y, confidence] * N, NaN where the point is missing."""
    xyc = torch.tensor([math.nan if v is None else float(v) for v in flat], dtype=torch.float32).view(-1, 3)
    xy, confidence = xyc[:, :2], xyc[:, 2]
    missing = (confidence <= min_confidence) | (xy == 0).all(dim=-1) | ~xyc.isfinite().all(dim=-1)
    return xy.masked_fill(missing[:, None], math.nan)


def _person_points(person, n: int, k: int, min_confidence: float) -> torch.Tensor:
    """[18, 2] float32, NaN where missing."""
    flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
    if not flat:
        return torch.full((NUM_KEYPOINTS, 2), math.nan)
    if len(flat) != NUM_KEYPOINTS * 3:
        raise PoseError(
            f"person {k} in frame {n} has {len(flat) // 3} body keypoints; only the OpenPose-18 / COCO-18 "
            f"layout (18 x [x, y, confidence]) is supported (BODY_25 and others are not)"
        )
    return _missing_as_nan(flat, min_confidence)


def _coordinate_space(people: list[torch.Tensor]) -> str:
    points = torch.cat(people)
    visible = points[~points.isnan().any(dim=-1)]
    low, high = NORMALIZED_RANGE
    return "normalized" if bool(((visible >= low) & (visible <= high)).all()) else "pixels"


def _bbox_area(points: torch.Tensor) -> float:
    points = points[~points.isnan().any(dim=-1)]
    if len(points) == 0:
        return -1.0
    extent = points.amax(dim=0) - points.amin(dim=0)
    return float(extent[0] * extent[1])


def _select_person(people: list[torch.Tensor], listed: list, person, n: int) -> int:
    if person in ("largest", LARGEST):
        areas = [_bbox_area(p) for p in people]
        best = max(range(len(people)), key=areas.__getitem__)  # first of equals
        if areas[best] < 0:
            raise PoseError(
                f"{len(people)} {'person' if len(people) == 1 else 'people'} in frame {n}, but every keypoint "
                f"is missing ({_why_missing(listed)}); use another image or a preset",
                "pose_keypoint",
            )
        return best
    if isinstance(person, bool) or not isinstance(person, int):
        raise PoseError(f"person must be a 0-based index or 'largest' (-1), not {person!r}", "person")
    if not 0 <= person < len(people):
        raise PoseError(
            f"person index {person} is out of range in frame {n}, which has {len(people)} "
            f"{'person' if len(people) == 1 else 'people'} (valid: 0..{len(people) - 1}, or -1 for the largest)",
            "person",
        )
    if _bbox_area(people[person]) < 0:
        raise PoseError(
            f"person {person} in frame {n} has no visible keypoint ({_why_missing(listed[person:person + 1])}); "
            "pick another person",
            "person",
        )
    return person


def _why_missing(listed: list) -> str:
    """How the keypoints of these people are missing, e.g. '18 NaN coordinates, 36 not detected'."""
    nan = zero = 0
    for person in listed:
        flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        for x, y, _ in zip(*[iter(flat or [])] * 3, strict=False):
            values = [math.nan if v is None else float(v) for v in (x, y)]
            nan += not all(math.isfinite(v) for v in values)
            zero += values == [0.0, 0.0]
    total = NUM_KEYPOINTS * len(listed)
    parts = [f"{nan} with NaN or infinite coordinates"] * bool(nan) + [f"{zero} at 0, 0 (not detected)"] * bool(zero)
    rest = total - nan - zero
    return ", ".join(parts + [f"{rest} below the confidence threshold or absent"] * bool(rest)) + f" of {total}"


# --- writing POSE_KEYPOINT, presets, rescaling --------------------------------------------------------


def to_pose_keypoint(frames: PoseFrame | Sequence[PoseFrame]) -> list[dict]:
    """POSE_KEYPOINT in pixels (confidence 1, missing points 0, 0, 0), one person per frame."""
    entries = []
    for frame in as_frames(frames):
        hands = (None, None) if frame.hands is None else [_flat(hand) for hand in frame.hands]
        person = {
            "pose_keypoints_2d": _flat(frame.keypoints),
            "face_keypoints_2d": None,
            "hand_left_keypoints_2d": hands[1],
            "hand_right_keypoints_2d": hands[0],
        }
        entries.append({"people": [person], "canvas_width": frame.width, "canvas_height": frame.height})
    return entries


def _flat(points: torch.Tensor) -> list[float]:
    """[x, y, 1] per point, [0, 0, 0] where it is missing."""
    flat = []
    for x, y in points.tolist():
        flat += [0.0, 0.0, 0.0] if math.isnan(x) else [x, y, 1.0]
    return flat


def pose_presets() -> tuple[str, ...]:
    """Names of the shipped poses (files in data/poses), sorted."""
    return tuple(sorted(path.stem for path in POSES_DIR.glob("*.json")))


def load_pose_preset(name: str) -> list[dict]:
    """A shipped pose as a fresh POSE_KEYPOINT (pixels, canvas 512 x 704)."""
    if name not in pose_presets():
        raise PoseError(f"unknown pose preset {name!r}; available: {', '.join(pose_presets())}")
    return json.loads((POSES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def rescale_frame(frame: PoseFrame, width: int, height: int, fit: Fit = "contain") -> PoseFrame:
    """The frame on a `width` x `height` canvas.

    "contain" keeps body proportions and fits the whole old canvas (centred, bands at the sides),
    "cover" keeps proportions and fills the new canvas (centred, the overflow is cropped),
    "stretch" scales x and y independently (distorts the body when the aspect ratio changes).
    """
    if width <= 0 or height <= 0:
        raise PoseError(f"cannot rescale a pose to {width}x{height}; both sides must be positive")
    sx, sy = width / frame.width, height / frame.height
    if fit == "stretch":
        scale = torch.tensor([sx, sy])
        offset = torch.zeros(2)
    elif fit in ("contain", "cover"):
        s = min(sx, sy) if fit == "contain" else max(sx, sy)
        scale = torch.tensor([s, s])
        offset = torch.tensor([(width - frame.width * s) / 2, (height - frame.height * s) / 2])
    else:
        raise PoseError(f"fit must be 'contain', 'cover' or 'stretch', not {fit!r}")
    hands = None if frame.hands is None else frame.hands * scale + offset
    return PoseFrame(frame.keypoints * scale + offset, width, height, frame.coordinates, hands)


# --- OpenPose colour render -------------------------------------------------------------------------


def render_pose(frames: PoseFrame | Sequence[PoseFrame], style: str = CONTROLNET_AUX_STYLE) -> torch.Tensor:
    """The OpenPose ControlNet hint: [B, H, W, 3] float in 0..1, black canvas, coloured limbs and joints.

    Limbs are filled ellipses (half-thickness STICK_WIDTH) and joints filled circles (JOINT_RADIUS),
    both scaled by the canvas short side / 512; `style` is one of RENDER_STYLES (OFFICIAL_STYLE, the
    official detector's, draws the hands too when the frame has them). Parts with a missing end are skipped.
    """
    if style not in RENDER_STYLES:
        raise PoseError(f"render style must be one of {', '.join(RENDER_STYLES)}, not {style!r}", "render_style")
    frames = as_frames(frames)
    width, height = canvas_size(frames)
    scale = min(width, height) / REFERENCE_SHORT_SIDE
    colors = torch.tensor(OPENPOSE_COLORS, dtype=torch.float32) / 255
    with single_threaded():
        images = torch.zeros(len(frames), height, width, 3)
        for image, frame in zip(images, frames, strict=True):
            if style == OFFICIAL_STYLE:
                _draw_joints(image, _points(frame.keypoints), colors, scale)
                _draw_limbs(image, _points(frame.keypoints), colors, scale, blend=LIMB_BRIGHTNESS)
                for hand in frame.hands if frame.hands is not None else ():
                    _draw_hand(image, _points(hand), scale)
            else:
                _draw_limbs(image, _points(frame.keypoints), colors * LIMB_BRIGHTNESS, scale, blend=1.0)
                _draw_joints(image, _points(frame.keypoints), colors, scale)
    return images


def _points(keypoints: torch.Tensor) -> list[complex | None]:
    return [None if math.isnan(x) else complex(x, y) for x, y in keypoints.tolist()]


def _draw_limbs(image: torch.Tensor, points, colors: torch.Tensor, scale: float, blend: float):
    for (a, b), color in zip(OPENPOSE_LIMBS, colors[: len(OPENPOSE_LIMBS)], strict=True):
        if points[a] is not None and points[b] is not None:
            fill_ellipse(image, points[a], points[b], STICK_WIDTH * scale, color, blend)


def _draw_joints(image: torch.Tensor, points, colors: torch.Tensor, scale: float):
    for point, color in zip(points, colors, strict=True):
        if point is not None:
            fill_ellipse(image, point, point, JOINT_RADIUS * scale, color)


def _draw_hand(image: torch.Tensor, points, scale: float):
    for k, (a, b) in enumerate(HAND_BONES):
        if points[a] is not None and points[b] is not None:
            color = torch.tensor(colorsys.hsv_to_rgb(k / len(HAND_BONES), 1.0, 1.0), dtype=torch.float32)
            fill_segment(image, points[a], points[b], HAND_BONE_HALF_WIDTH * scale, color)
    joint = torch.tensor(HAND_JOINT_COLOR, dtype=torch.float32) / 255
    for point in points:
        if point is not None:
            fill_ellipse(image, point, point, JOINT_RADIUS * scale, joint)
