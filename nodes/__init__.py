"""Thin ComfyUI V3 nodes, one module per concern; the method lives in hierafash_core."""

from . import design, schedule

NODES = [*design.NODES, *schedule.NODES]
