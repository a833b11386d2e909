"""Pose from a photo: controlnet-aux's OpenPose detector, read into the POSE_KEYPOINT the rest of the pack reads.

controlnet-aux 0.0.10 (the `pose` extra) is imported only when a detector is built: importing it takes ~8 s
and it is not needed anywhere else. The detector's weights are local files, never downloaded:
`body_pose_model.pth` and `hand_pose_model.pth`, CMU OpenPose converted by the ControlNet authors, published in
the Hugging Face repository lllyasviel/Annotators. CMU licenses them for NON-COMMERCIAL use only.

POSE_KEYPOINT written here (the comfyui_controlnet_aux layout): one entry per image,
`{"people": [{"pose_keypoints_2d": [x, y, c] * 18, "hand_left_keypoints_2d": [x, y, c] * 21 or None,
"hand_right_keypoints_2d": ..., "face_keypoints_2d": None}], "canvas_width": W, "canvas_height": H}`,
every detected person, missing points as 0, 0, 0. Coordinates are stated by the caller: "pixels" of the
W x H image (pixel (i, j)'s centre at x = i, y = j, as the pack's other outputs) or "normalized" 0-1
(as comfyui_controlnet_aux's OpenPose writes).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from .errors import HieraFashError
from .pose import NUM_KEYPOINTS, PoseFrame, read_pose_keypoint, render_pose

BODY_WEIGHTS = "body_pose_model.pth"
HAND_WEIGHTS = "hand_pose_model.pth"
WEIGHTS_SOURCE = "https://huggingface.co/lllyasviel/Annotators"
WEIGHTS_LICENCE = "CMU OpenPose licence: non-commercial use only"
INSTALL_COMMAND = 'python -m pip install "controlnet-aux==0.0.10"   (or: pip install "hierafashdiff[pose]")'
NUM_HAND_KEYPOINTS = 21
DETECT_RESOLUTION = 512  # short side the official pipeline detects at (method.md §3.2)

Coordinates = Literal["pixels", "normalized"]


class PoseDetector(Protocol):
    """Anything that finds people in an image: RGB uint8 [H, W, 3] in, one POSE_KEYPOINT entry out (pixels)."""

    def __call__(self, image: np.ndarray) -> dict: ...


# --- controlnet-aux results -> POSE_KEYPOINT ---------------------------------------------------------


def pose_results_to_entry(poses: Sequence, width: int, height: int, coordinates: Coordinates = "pixels") -> dict:
    """One POSE_KEYPOINT entry from controlnet-aux `detect_poses` results (keypoints normalised 0-1).

    Body keypoints that are None and hand keypoints at negative coordinates (controlnet-aux's "not found")
    become 0, 0, 0; a hand that was not looked for or not found is None.
    """
    if coordinates not in ("pixels", "normalized"):
        raise HieraFashError(f"coordinates must be 'pixels' or 'normalized', not {coordinates!r}", "coordinates")
    scale = (width, height) if coordinates == "pixels" else (1.0, 1.0)
    people = []
    for pose in poses:
        people.append({
            "pose_keypoints_2d": _flatten(pose.body.keypoints, NUM_KEYPOINTS, scale),
            "face_keypoints_2d": None,
            "hand_left_keypoints_2d": _flatten(pose.left_hand, NUM_HAND_KEYPOINTS, scale),
            "hand_right_keypoints_2d": _flatten(pose.right_hand, NUM_HAND_KEYPOINTS, scale),
        })
    return {"people": people, "canvas_width": int(width), "canvas_height": int(height)}


def _flatten(keypoints, expected: int, scale: tuple[float, float]) -> list[float] | None:
    if not keypoints:
        return None
    if len(keypoints) != expected:
        raise HieraFashError(f"the detector returned {len(keypoints)} keypoints where {expected} were expected; "
                             f"use controlnet-aux 0.0.10 ({INSTALL_COMMAND})")
    flat = []
    for point in keypoints:
        found = point is not None and all(math.isfinite(v) and v >= 0 for v in (point.x, point.y))
        if not found:
            flat += [0.0, 0.0, 0.0]
        else:
            flat += [float(point.x) * scale[0], float(point.y) * scale[1], float(point.score)]
    return flat


def entry_frames(entry: dict) -> list[PoseFrame]:
    """Each person of a POSE_KEYPOINT entry written in pixels, as the pack reads them (missing points NaN)."""
    return [read_pose_keypoint([entry], person=k, coordinates="pixels")[0] for k in range(len(entry["people"]))]


def render_entry(entry: dict) -> torch.Tensor:
    """[H, W, 3] float 0..1: every person of a pixel-space entry in OpenPose colours (black when nobody)."""
    width, height = entry["canvas_width"], entry["canvas_height"]
    canvas = torch.zeros(height, width, 3)
    frames = entry_frames(entry)
    if frames:
        for image in render_pose(frames):  # later people paint over earlier ones where they overlap
            canvas = torch.where(image.any(dim=-1, keepdim=True), image, canvas)
    return canvas


def in_normalized(entry: dict) -> dict:
    """The same pixel-space entry with coordinates divided by the canvas size (missing points stay 0, 0, 0)."""
    width, height = entry["canvas_width"], entry["canvas_height"]

    def scale(flat):
        if flat is None:
            return None
        return [v / (width if i % 3 == 0 else height) if i % 3 < 2 else v for i, v in enumerate(flat)]

    people = [{key: scale(value) for key, value in person.items()} for person in entry["people"]]
    return {**entry, "people": people}


def person_summary(entry: dict) -> str:
    """'1 person (17/18 body keypoints; hands: left 21/21, right none)' or 'nobody found'."""
    people = entry["people"]
    if not people:
        return "nobody found"
    parts = []
    for person in people:
        body = _count_found(person["pose_keypoints_2d"])
        hands = ", ".join(f"{side} {_hand_text(person.get(f'hand_{side}_keypoints_2d'))}" for side in ("left", "right"))
        parts.append(f"{body}/{NUM_KEYPOINTS} body keypoints; hands: {hands}")
    noun = "person" if len(people) == 1 else "people"
    return f"{len(people)} {noun} (" + "), (".join(parts) + ")"


def _count_found(flat) -> int:
    return sum(1 for i in range(0, len(flat), 3) if flat[i + 2] > 0 and (flat[i], flat[i + 1]) != (0, 0))


def _hand_text(flat) -> str:
    return "none" if flat is None else f"{_count_found(flat)}/{NUM_HAND_KEYPOINTS}"


# --- the OpenPose detector ---------------------------------------------------------------------------


def missing_weights_message(name: str, folders: Sequence[Path | str]) -> str:
    """Where to put a missing weights file, where it comes from, and its licence."""
    listed = " or ".join(str(f) for f in folders) or "(no folder registered)"
    return (f"the OpenPose weights file {name} is not in {listed}: download {name} from {WEIGHTS_SOURCE} "
            f"and put it there ({WEIGHTS_LICENCE}); the pack never downloads it")


def _import_open_pose():
    try:
        from controlnet_aux.open_pose import Body, Hand, OpenposeDetector
    except ImportError as exc:
        raise HieraFashError(f"pose detection needs controlnet-aux, which is not installed ({exc}): run "
                             f"{INSTALL_COMMAND} in ComfyUI's Python environment and restart") from None
    return Body, Hand, OpenposeDetector


class OpenPoseDetector:
    """controlnet-aux's OpenPose (body, optionally hands) from local weight files, as a PoseDetector."""

    def __init__(self, body_weights: Path | str, hand_weights: Path | str | None = None, device: str = "cpu",
                 detect_resolution: int = DETECT_RESOLUTION):
        for path in (body_weights, hand_weights):
            if path is not None and not Path(path).is_file():
                raise HieraFashError(missing_weights_message(Path(path).name, [Path(path).parent]))
        Body, Hand, OpenposeDetector = _import_open_pose()
        hand = Hand(str(hand_weights)) if hand_weights is not None else None
        self.detector = OpenposeDetector(Body(str(body_weights)), hand)
        if device != "cpu":
            self.detector.body_estimation.to(device)
            if hand is not None:
                hand.to(device)
        self.hands = hand is not None
        self.detect_resolution = detect_resolution

    def __call__(self, image: np.ndarray) -> dict:
        """One POSE_KEYPOINT entry in pixels of `image` (RGB uint8 [H, W, 3]); detection at the short side
        `detect_resolution`, as the official pipeline."""
        height, width = image.shape[:2]
        poses = self.detector.detect_poses(_resize_short_side(image, self.detect_resolution),
                                           include_hand=self.hands)
        return pose_results_to_entry(poses, width, height, "pixels")


@functools.lru_cache(maxsize=1)
def _cached_openpose(body: str, hand: str | None, device: str, detect_resolution: int, _stamp) -> OpenPoseDetector:
    return OpenPoseDetector(body, hand, device, detect_resolution)


def load_openpose(body_weights: Path | str, hand_weights: Path | str | None = None, device: str = "cpu",
                  detect_resolution: int = DETECT_RESOLUTION) -> OpenPoseDetector:
    """An OpenPoseDetector, reused while the same files (unchanged on disk) and settings are asked for."""
    paths = [str(p) for p in (body_weights, hand_weights) if p is not None]
    stamp = tuple(os.stat(p).st_mtime_ns if os.path.isfile(p) else None for p in paths)
    return _cached_openpose(str(body_weights), None if hand_weights is None else str(hand_weights), str(device),
                            detect_resolution, stamp)


def _resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    from PIL import Image

    height, width = image.shape[:2]
    scale = short_side / min(width, height)
    if scale == 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(image).resize(size, resample))


# --- a batch, as the node runs it --------------------------------------------------------------------


def detect_batch(detector: PoseDetector, images: torch.Tensor, coordinates: Coordinates = "pixels",
                 progress: Callable[[int], None] | None = None) -> tuple[list[dict], torch.Tensor, str]:
    """POSE_KEYPOINT (one entry per image), the pose renders [B, H, W, 3] and a report that lists every
    frame, frames with nobody included. `images` is ComfyUI's IMAGE, [B, H, W, C] float 0..1."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise HieraFashError(f"expected a batch of images [B, H, W, C], got shape {tuple(images.shape)}", "image")
    if coordinates not in ("pixels", "normalized"):
        raise HieraFashError(f"coordinates must be 'pixels' or 'normalized', not {coordinates!r}", "coordinates")
    entries, renders, lines = [], [], []
    pixels = (images[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    for n, image in enumerate(pixels):
        entry = detector(image)
        renders.append(render_entry(entry))
        entries.append(entry if coordinates == "pixels" else in_normalized(entry))
        lines.append(f"frame {n}: {person_summary(entry)}")
        if progress is not None:
            progress(n + 1)
    nobody = [str(n) for n, entry in enumerate(entries) if not entry["people"]]
    lines.append(f"nobody found in frame(s) {', '.join(nobody)}: their POSE_KEYPOINT entries are empty"
                 if nobody else f"a person found in every frame; coordinates: {coordinates}")
    return entries, torch.stack(renders), "\n".join(lines)


def find_weights(name: str, folders: Sequence[Path | str], input_name: str) -> Path:
    """The first `folders` entry holding file `name`; an error naming the file, the folders and the source."""
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            return path
    raise HieraFashError(missing_weights_message(name, folders), input_name)


def pose_from_images(images: torch.Tensor, folders: Sequence[Path | str], body_model: str = BODY_WEIGHTS,
                     hand_model: str | None = HAND_WEIGHTS, device: str = "cpu",
                     detect_resolution: int = DETECT_RESOLUTION, coordinates: Coordinates = "pixels",
                     progress: Callable[[int], None] | None = None) -> tuple[list[dict], torch.Tensor, str]:
    """OpenPose from the weight files named, found in `folders`, on a batch of images (`detect_batch`);
    the report ends with the detector used."""
    body = find_weights(body_model, folders, "body_model")
    hand = None if hand_model is None else find_weights(hand_model, folders, "hand_model")
    detector = load_openpose(body, hand, device, detect_resolution)
    entries, renders, report = detect_batch(detector, images, coordinates, progress)
    used = f"{body.name} + {hand.name}" if hand is not None else f"{body.name} (no hands)"
    return entries, renders, f"{report}\ndetector: OpenPose {used} at short side {detect_resolution}, {device}"
