"""Build API-format prompts for tests and benchmarks without importing ComfyUI: the one graph builder."""

from __future__ import annotations

import re

from .designs import PAPER_ATTRIBUTES, PAPER_CONCEPT_FIELDS

TINY_CHECKPOINT = "tiny_sd15.safetensors"
TINY_CONTROLNET = "tiny_pose_cn.safetensors"

__all__ = ["PAPER_ATTRIBUTES", "Graph", "Node", "add_scheduler", "base_models", "hierarchical_design", "parse_preview"]


class Graph:
    """A tiny builder: `ref = g.add("KSampler", seed=0, ...)` returns [node_id, 0]-style links."""

    def __init__(self):
        self.nodes: dict[str, dict] = {}

    def add(self, class_type: str, **inputs) -> Node:
        node_id = str(len(self.nodes) + 1)
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return Node(node_id)

    def prompt(self) -> dict:
        return self.nodes


class Node(str):
    def out(self, index: int) -> list:
        return [str(self), index]


def hierarchical_design(g: Graph, attributes=PAPER_ATTRIBUTES, concept=PAPER_CONCEPT_FIELDS) -> list:
    """Concept Ideation (`concept`: its widgets) + one Attribute Iteration per (label, value), as an artist
    chains them."""
    design = g.add("HieraFashConceptIdeation", **concept, custom_concept="").out(0)
    for label, value in attributes:
        design = g.add("HieraFashAttributeIteration", design=design, attribute=label, value=value,
                       custom_text="").out(0)
    return design


def add_scheduler(g: Graph, design, clip, model, steps=20, scheduler="normal", **widgets) -> Node:
    """The Hierarchical Prompt Scheduler with the paper's defaults; outputs: positive, schedule, preview."""
    inputs = dict(detail="", suffix="", boundaries="900, 800, 710, 630, 560, 500", attribute_order="paper")
    return g.add("HieraFashHierarchicalPromptScheduler", design=design, clip=clip, model=model, steps=steps,
                 scheduler=scheduler, **{**inputs, **widgets})


def base_models(g: Graph):
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=TINY_CHECKPOINT)
    return ckpt.out(0), ckpt.out(1), ckpt.out(2)


def parse_preview(text: str) -> list[tuple[int, int] | None]:
    """Per stage, the (first, last) step from the scheduler's preview text (None: no step)."""
    spans = []
    for line in text.splitlines():
        if line.startswith(" ") or line.startswith("WARNING") or "-" not in line or "prompt:" in line:
            continue
        m = re.search(r"steps (\d+)-(\d+) \(\d+\)|0 steps$", line)
        if m:
            spans.append((int(m.group(1)), int(m.group(2))) if m.group(1) else None)
    return spans
