"""Bench-only ComfyUI pack for `bench/quality.py --full`: hands a figure's known pose to Pose Mask Builder.

The synthetic test figures are jittered presets whose keypoints are known exactly (the dataset's
POSE_KEYPOINT JSON files); no stock node reads such a file, so this node parses the JSON text into the
POSE_KEYPOINT type. Loaded beside the pack and the bench probe, never shipped with the pack.
"""

from __future__ import annotations

import json

from comfy_api.latest import io

from hierafash_cli.probe_support import entrypoint, probe_schema

POSE_KEYPOINT = io.Custom("POSE_KEYPOINT")


class HieraFashQualityPoseKeypoint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return probe_schema("HieraFashQualityPoseKeypoint", [io.String.Input("pose_json", multiline=True)],
                            [POSE_KEYPOINT.Output(display_name="pose_keypoint")])

    @classmethod
    def execute(cls, pose_json) -> io.NodeOutput:
        return io.NodeOutput(json.loads(pose_json))


comfy_entrypoint = entrypoint(HieraFashQualityPoseKeypoint)
