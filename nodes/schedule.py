"""Hierarchical Prompt Scheduler: compiles the design's stages into stock, step-ranged conditioning."""

from __future__ import annotations

import logging

import comfy.samplers
import node_helpers
from comfy_api.latest import io, ui

from ..hierafash_core.schedule import PAPER_BOUNDARIES, CompiledSchedule, compile_schedule, parse_boundaries
from ..hierafash_core.vocab import ATTRIBUTE_ORDERS, official_added_prompt
from .common import CATEGORY, advanced, input_error, node_errors, schema, validation_result
from .common import BodyMasks as BodyMasksType
from .common import Design as DesignType
from .common import Schedule as ScheduleType

NODE_NAME = "HieraFash Hierarchical Prompt Scheduler"
STAGE_KEY = "hierafashdiff_stage"  # tags each conditioning entry with its stage index


def sampler_sigmas(model, scheduler: str, steps: int):
    model_sampling = model.get_model_object("model_sampling")
    return comfy.samplers.calculate_sigmas(model_sampling, scheduler, steps), model_sampling.percent_to_sigma


def encode_ranged(clip, compiled: CompiledSchedule) -> list:
    """One conditioning entry per stage, each limited to its percent range; equal prompts encode once."""
    encoded: dict[str, list] = {}
    out = []
    for k, (stage, (start, end)) in enumerate(zip(compiled.schedule.stages, compiled.ranges())):
        if stage.prompt not in encoded:
            encoded[stage.prompt] = clip.encode_from_tokens_scheduled(clip.tokenize(stage.prompt))
        out += node_helpers.conditioning_set_values(
            encoded[stage.prompt], {"start_percent": start, "end_percent": end, STAGE_KEY: k}
        )
    return out


class HierarchicalPromptScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashHierarchicalPromptScheduler",
            display_name=NODE_NAME,
            category=f"{CATEGORY}/design",
            search_aliases=["prompt schedule", "hierarchical prompt", "timestep prompt", "stage schedule",
                            "fashion prompt", "garment prompt", "dress prompt", "outfit prompt", "fashion"],
            description=(
                "Turns the design into prompts over the steps of the drawing: the concept alone for the first, "
                "roughest steps, then one more attribute at a time, then the full prompt. Its output works with "
                "any stock sampler. After a run the node shows which steps use which prompt; a warning, if any, "
                "is on the first line."
            ),
            inputs=[
                DesignType.Input("design", tooltip="Concept Ideation followed by Attribute Iteration nodes."),
                io.Clip.Input("clip", tooltip="The text encoder of your checkpoint."),
                io.Model.Input("model", tooltip="The model you sample with: it decides which steps belong to which "
                                                "stage (the model is not changed)."),
                io.Int.Input("steps", default=20, min=1, max=10000,
                             tooltip="Your sampler's steps: connect the same value to both (Size and Steps does). "
                                     "The preview shows which of them use which prompt."),
                io.Combo.Input("scheduler", options=list(comfy.samplers.SCHEDULER_NAMES), default="normal",
                               tooltip="Your sampler's scheduler, for the preview."),
                io.String.Input("detail", default="", tooltip="Extra words for the last steps only, "
                                                               "e.g. fabric or colour details."),
                advanced(io.String.Input, "suffix", default="",
                         tooltip="Text appended to every stage's prompt, e.g. quality tags. The official demo "
                                 f"appends '{official_added_prompt()}'."),
                advanced(io.String.Input, "boundaries", default=", ".join(str(b) for b in PAPER_BOUNDARIES),
                         tooltip="Where each stage begins, on the model's noise scale from 999 (pure noise) "
                                 "to 0 (the finished picture), decreasing: above the first value only the concept "
                                 "guides; each further value brings in the next attribute. The paper's: 900, 800, "
                                 "710, 630, 560, 500."),
                io.Combo.Input("attribute_order", options=list(ATTRIBUTE_ORDERS), default="paper",
                               tooltip="When each attribute joins. 'paper': each at its own place in the order "
                                       "clothing length, sleeve length, sleeve type, collar, hem (what the model was "
                                       "trained on); a missing attribute leaves its place to the one before. "
                                       "'as chained': in the order of your nodes. 'by area': the largest body part "
                                       "first (needs body_masks)."),
                BodyMasksType.Input("body_masks", optional=True,
                                    tooltip="Regions from Pose Mask Builder, for attribute_order 'by area'."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive",
                                       tooltip="The prompts, each for its own steps: the sampler's positive "
                                               "(through Apply Pose ControlNet); use a plain negative beside it."),
                ScheduleType.Output(display_name="schedule",
                                    tooltip="The compiled schedule, for the editing and pose nodes."),
                io.String.Output(display_name="preview", tooltip="Which steps use which prompt; any warning (a "
                                                                 "stage that gets no step) is on the first line."),
            ],
        )

    @classmethod
    def validate_inputs(cls, boundaries=None):
        if boundaries is None:  # a linked input is checked at run time
            return True
        return validation_result(NODE_NAME, "boundaries", lambda: parse_boundaries(boundaries))

    @classmethod
    def execute(cls, design, clip, model, steps, scheduler, detail="", suffix="",
                boundaries="900, 800, 710, 630, 560, 500", attribute_order="paper", body_masks=None) -> io.NodeOutput:
        if clip is None:
            raise input_error(NODE_NAME, "clip", "no text encoder: load a checkpoint that contains one, "
                                                 "or add a CLIP loader")
        areas = body_masks and {kind: float(mask.sum()) for kind, mask in body_masks.by_kind.items()}
        sigmas, percent_to_sigma = sampler_sigmas(model, scheduler, steps)
        with node_errors(NODE_NAME, "boundaries"):
            compiled = compile_schedule(design, parse_boundaries(boundaries), sigmas, percent_to_sigma,
                                        detail=detail, suffix=suffix, order=attribute_order, areas=areas,
                                        header=f"{steps} step{'' if steps == 1 else 's'}, {scheduler} scheduler")
        for warning in compiled.warnings:
            logging.warning("%s: %s at %d %s steps", NODE_NAME, warning, steps, scheduler)
        return io.NodeOutput(encode_ranged(clip, compiled), compiled, compiled.preview,
                             ui=ui.PreviewText(compiled.preview))


NODES = [HierarchicalPromptScheduler]
