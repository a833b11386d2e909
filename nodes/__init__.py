"""Thin ComfyUI V3 nodes, one module per concern; the method lives in hierafash_core."""

from . import convert, design, edit, pose, pose_detect, schedule

NODES = [*design.NODES, *schedule.NODES, *pose.NODES, *pose_detect.NODES, *edit.NODES, *convert.NODES]
