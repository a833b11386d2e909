"""Thin ComfyUI V3 nodes, one module per concern; the method lives in hierafash_core."""

from . import (
    convert,
    deprecated,
    design,
    edit,
    example_figure,
    official_model,
    pose,
    pose_detect,
    region_preview,
    run_settings,
    schedule,
)

NODES = [*design.NODES, *schedule.NODES, *pose.NODES, *pose_detect.NODES, *edit.NODES, *convert.NODES,
         *example_figure.NODES, *region_preview.NODES, *run_settings.NODES, *official_model.NODES,
         *deprecated.NODES]
