"""Body pose: ComfyUI POSE_KEYPOINT in, one person per frame out, OpenPose colour render for ControlNet.

POSE_KEYPOINT is a list with one entry per image:
`{"people": [{"pose_keypoints_2d": [x, y, c] * 18, ...}], "canvas_width": W, "canvas_height": H}`.
Producers disagree on the coordinate space (controlnet_aux OpenPose writes 0-1, DWPose and core SDPose
write pixels) and on confidence (1.0 everywhere, or real scores), so the space is decided per frame and
reported, and confidence only marks points as missing. Missing points become NaN, never the corner.

Pixel coordinates put pixel (i, j)'s centre at x = i, y = j, as OpenPose and cv2 drawing do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from .errors import HieraFashError

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

# The render every OpenPose ControlNet was trained on: limb k joins OPENPOSE_LIMBS[k] in colour
# OPENPOSE_COLORS[k] at 60 % brightness, then joint i is drawn on top in OPENPOSE_COLORS[i].
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

    `person` is an index into each frame's people or "largest" (biggest bounding box of visible points).
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
        people = [_person_points(p, n, k, min_confidence) for k, p in enumerate(entry.get("people") or [])]
        if not people:
            raise PoseError(
                f"no person in frame {n}: the pose estimator found nobody. Use an image with a clearly "
                "visible full-body person, or a pose preset."
            )
        space = _coordinate_space(people) if coordinates == "auto" else coordinates
        points = _select_person(people, person, n)
        if space == "normalized":
            points = points * torch.tensor([width, height], dtype=torch.float32)
        frames.append(PoseFrame(points, width, height, space))
    return frames


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
    xyc = torch.tensor([math.nan if v is None else float(v) for v in flat], dtype=torch.float32).view(-1, 3)
    xy, confidence = xyc[:, :2], xyc[:, 2]
    missing = (confidence <= min_confidence) | (xy == 0).all(dim=-1) | ~xyc.isfinite().all(dim=-1)
    return xy.masked_fill(missing[:, None], math.nan)


def _coordinate_space(people: list[torch.Tensor]) -> str:
    points = torch.cat(people)
    points = points[~points.isnan().any(dim=-1)]
    low, high = NORMALIZED_RANGE
    return "normalized" if bool(((points >= low) & (points <= high)).all()) else "pixels"


def _bbox_area(points: torch.Tensor) -> float:
    points = points[~points.isnan().any(dim=-1)]
    if len(points) == 0:
        return -1.0
    extent = points.amax(dim=0) - points.amin(dim=0)
    return float(extent[0] * extent[1])


def _select_person(people: list[torch.Tensor], person, n: int) -> torch.Tensor:
    if person == "largest":
        areas = [_bbox_area(p) for p in people]
        best = max(range(len(people)), key=areas.__getitem__)  # first of equals
        if areas[best] < 0:
            raise PoseError(f"no person in frame {n} has any visible keypoint; use another image or a preset")
        return people[best]
    if isinstance(person, bool) or not isinstance(person, int):
        raise PoseError(f"person must be a 0-based index or 'largest', not {person!r}")
    if not 0 <= person < len(people):
        raise PoseError(
            f"person index {person} is out of range in frame {n}, which has {len(people)} "
            f"{'person' if len(people) == 1 else 'people'} (valid: 0..{len(people) - 1}, or 'largest')"
        )
    if _bbox_area(people[person]) < 0:
        raise PoseError(f"person {person} in frame {n} has no visible keypoint; pick another person")
    return people[person]


# --- writing POSE_KEYPOINT, presets, rescaling --------------------------------------------------------


def to_pose_keypoint(frames: PoseFrame | Sequence[PoseFrame]) -> list[dict]:
    """POSE_KEYPOINT in pixels (confidence 1, missing points 0, 0, 0), one person per frame."""
    entries = []
    for frame in as_frames(frames):
        flat = []
        for x, y in frame.keypoints.tolist():
            flat += [0.0, 0.0, 0.0] if math.isnan(x) else [x, y, 1.0]
        person = {
            "pose_keypoints_2d": flat,
            "face_keypoints_2d": None,
            "hand_left_keypoints_2d": None,
            "hand_right_keypoints_2d": None,
        }
        entries.append({"people": [person], "canvas_width": frame.width, "canvas_height": frame.height})
    return entries


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
    return PoseFrame(frame.keypoints * scale + offset, width, height, frame.coordinates)


# --- OpenPose colour render -------------------------------------------------------------------------


def render_pose(frames: PoseFrame | Sequence[PoseFrame]) -> torch.Tensor:
    """The OpenPose ControlNet hint: [B, H, W, 3] float in 0..1, black canvas, coloured limbs and joints.

    Limbs are filled ellipses (half-thickness STICK_WIDTH) and joints filled circles (JOINT_RADIUS),
    both scaled by the canvas short side / 512. Limbs or joints with a missing end are skipped.
    """
    frames = as_frames(frames)
    width, height = canvas_size(frames)
    scale = min(width, height) / REFERENCE_SHORT_SIDE
    colors = torch.tensor(OPENPOSE_COLORS, dtype=torch.float32) / 255
    with single_threaded():
        images = torch.zeros(len(frames), height, width, 3)
        for image, frame in zip(images, frames, strict=True):
            _draw_skeleton(image, frame, colors, scale)
    return images


def _draw_skeleton(image: torch.Tensor, frame: PoseFrame, colors: torch.Tensor, scale: float):
    points = [None if math.isnan(x) else complex(x, y) for x, y in frame.keypoints.tolist()]
    for (a, b), color in zip(OPENPOSE_LIMBS, colors[: len(OPENPOSE_LIMBS)], strict=True):
        if points[a] is not None and points[b] is not None:
            _fill_ellipse(image, points[a], points[b], STICK_WIDTH * scale, color * LIMB_BRIGHTNESS)
    for point, color in zip(points, colors, strict=True):
        if point is not None:
            _fill_ellipse(image, point, point, JOINT_RADIUS * scale, color)


def _fill_ellipse(image: torch.Tensor, a: complex, b: complex, half_width: float, color: torch.Tensor):
    """Paint the ellipse whose major axis is the segment a-b (a circle when a == b)."""
    centre, half_length = (a + b) / 2, max(abs(b - a) / 2, half_width)
    u = (b - a) / abs(b - a) if b != a else 1 + 0j
    # axis-aligned half extents of the rotated ellipse
    hx = math.hypot(half_length * u.real, half_width * u.imag)
    hy = math.hypot(half_length * u.imag, half_width * u.real)
    height, width = image.shape[:2]
    x0, x1 = max(math.ceil(centre.real - hx), 0), min(math.floor(centre.real + hx) + 1, width)
    y0, y1 = max(math.ceil(centre.imag - hy), 0), min(math.floor(centre.imag + hy) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    dx = torch.arange(x0, x1, dtype=torch.float32)[None, :] - centre.real
    dy = torch.arange(y0, y1, dtype=torch.float32)[:, None] - centre.imag
    along = (dx * u.real + dy * u.imag) / half_length
    across = (dy * u.real - dx * u.imag) / half_width
    region = image[y0:y1, x0:x1]
    region.copy_(torch.where((along.square() + across.square() <= 1)[..., None], color, region))
