"""Pose From Image: OpenPose (controlnet-aux) on each image -> POSE_KEYPOINT, the pose render and a report."""

from __future__ import annotations

import os

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..hierafash_core.pose_detect import (
    BODY_WEIGHTS,
    DETECT_RESOLUTION,
    HAND_WEIGHTS,
    WEIGHTS_LICENCE,
    WEIGHTS_SOURCE,
    pose_from_images,
)
from .common import CATEGORY, advanced, node_errors, schema
from .pose import POSE_KEYPOINT

NODE_NAME = "HieraFash Pose From Image"
MODEL_FOLDER = "openpose"  # models/openpose, plus any openpose: entry of extra_model_paths.yaml
folder_paths.add_model_folder_path(MODEL_FOLDER, os.path.join(folder_paths.models_dir, MODEL_FOLDER))


def weight_choices(default: str) -> list[str]:
    """The .pth files in the openpose folders, always with the official name (a missing file errors at run)."""
    found = [name for name in folder_paths.get_filename_list(MODEL_FOLDER) if name.lower().endswith(".pth")]
    return sorted({default, *found})


def weights_state(name: str):
    path = folder_paths.get_full_path(MODEL_FOLDER, name)
    if path is None:
        return None
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


class PoseFromImage(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashPoseFromImage",
            display_name=NODE_NAME,
            category=f"{CATEGORY}/pose",
            search_aliases=["openpose", "pose estimation", "pose from photo", "detect pose", "controlnet aux pose",
                            "keypoints from image", "fashion pose", "garment photo", "model pose",
                            "dress photo"],
            description=(
                "Finds the people in each image with OpenPose (controlnet-aux, the pack's 'pose' extra) and gives "
                "their POSE_KEYPOINT for the Pose Mask Builder, their OpenPose render and a report that lists "
                f"every frame, those with nobody included. Weights: {BODY_WEIGHTS} and {HAND_WEIGHTS} from "
                f"{WEIGHTS_SOURCE}, put in models/{MODEL_FOLDER} ({WEIGHTS_LICENCE}). Nothing is downloaded."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photos to read poses from; a batch gives one entry per image."),
                io.Combo.Input("coordinates", options=["pixels", "normalized"], default="pixels",
                               tooltip="Space of the POSE_KEYPOINT output: pixels of the image (as the pack's other "
                                       "nodes and DWPose) or 0-1 (as comfyui_controlnet_aux's OpenPose)."),
                io.Boolean.Input("hands", default=True,
                                 tooltip="Also find hand keypoints (as the official pose maps); off is faster."),
                advanced(io.Int.Input, "detect_resolution", default=DETECT_RESOLUTION, min=64, max=2048, step=64,
                         tooltip="Short side the image is resized to for detection; the official pipeline uses "
                                 "512. Keypoints come back in the input image's size either way."),
                advanced(io.Combo.Input, "body_model", options=weight_choices(BODY_WEIGHTS), default=BODY_WEIGHTS,
                         tooltip=f"OpenPose body weights in models/{MODEL_FOLDER}."),
                advanced(io.Combo.Input, "hand_model", options=weight_choices(HAND_WEIGHTS), default=HAND_WEIGHTS,
                         tooltip=f"OpenPose hand weights in models/{MODEL_FOLDER}; used when hands is on."),
            ],
            outputs=[
                POSE_KEYPOINT.Output(display_name="pose_keypoint",
                                     tooltip="Every detected person per image (OpenPose-18 body, hands when on), "
                                             "in the chosen coordinates; an image with nobody has no people."),
                io.Image.Output(display_name="pose_image",
                                tooltip="The people in OpenPose colours on black, at the input's size."),
                io.String.Output(display_name="report",
                                 tooltip="People and keypoints found per frame, the frames with nobody, the "
                                         "detector used."),
            ],
        )

    @classmethod
    def fingerprint_inputs(cls, hands=True, body_model=BODY_WEIGHTS, hand_model=HAND_WEIGHTS, **_):
        """Run again when a weights file appears, changes or goes, not only when a widget changes."""
        names = [body_model, hand_model] if hands else [body_model]
        return tuple(weights_state(name) for name in names)

    @classmethod
    def execute(cls, image, coordinates="pixels", hands=True, detect_resolution=DETECT_RESOLUTION,
                body_model=BODY_WEIGHTS, hand_model=HAND_WEIGHTS) -> io.NodeOutput:
        bar = comfy.utils.ProgressBar(image.shape[0])
        with node_errors(NODE_NAME, "body_model"):
            entries, pose_image, report = pose_from_images(
                image, folder_paths.get_folder_paths(MODEL_FOLDER), body_model, hand_model if hands else None,
                str(comfy.model_management.get_torch_device()), detect_resolution, coordinates,
                progress=bar.update_absolute)
        return io.NodeOutput(entries, pose_image, report)


NODES = [PoseFromImage]
