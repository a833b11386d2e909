"""Attribute Edit (M(t) on the model, the source latent with its noise mask) and exact preservation."""

from __future__ import annotations

import logging

import comfy.patcher_extension
import comfy.utils
import torch
from comfy_api.latest import io

from ..hierafash_core.editing import (
    EditError,
    compile_mask_schedule,
    composite_outside,
    edit_start_timestep,
    parse_edited,
    stack_attribute_masks,
    union_mask,
)
from ..hierafash_core.noise import timestep_to_percent
from .common import CATEGORY, input_error, schema
from .common import BodyMasks as BodyMasksType
from .common import Schedule as ScheduleType

EDIT = "HieraFash Attribute Edit"
PRESERVE = "HieraFash Preserve Source"
WRAPPER_KEY = "hierafashdiff"


def patch_model(model, mask_schedule, attribute_masks: torch.Tensor, edited_union: torch.Tensor):
    """A clone of `model` with M(t) chained into its denoise mask function.

    While no region is open (before the edit starts) the whole latent is pinned to the noised source,
    so the UNet result is discarded anyway: a keyed PREDICT_NOISE wrapper skips that call. A keyed
    OUTER_SAMPLE wrapper returns the source latent exactly where the sampler was never allowed to edit
    (the last step would otherwise leave float rounding there), and warns when a later patch replaced M(t).
    """
    patched = model.clone()
    previous = patched.model_options.get("denoise_mask_function")
    resized: dict = {}
    skip_next_prediction = [False]
    mask_calls = [0]

    def denoise_mask_function(sigma, denoise_mask, extra_options):
        mask_calls[0] += 1
        if previous is not None:
            denoise_mask = previous(sigma, denoise_mask, extra_options)
        region = mask_schedule.region_at(float(sigma[0]))
        if not region:
            skip_next_prediction[0] = True
            return torch.zeros_like(denoise_mask)
        key = (region, tuple(denoise_mask.shape), denoise_mask.device, denoise_mask.dtype)
        if key not in resized:
            resized[key] = comfy.utils.reshape_mask(union_mask(attribute_masks, region), denoise_mask.shape).to(
                denoise_mask)
        return torch.minimum(denoise_mask, resized[key])

    def predict_noise(executor, x, timestep, model_options, seed):
        if skip_next_prediction[0]:  # set by the mask function of this very evaluation
            skip_next_prediction[0] = False
            return torch.zeros_like(x)
        return executor(x, timestep, model_options, seed)

    def outer_sample(executor, noise, latent_image, sampler, sigmas, denoise_mask=None, *args, **kwargs):
        mask_calls[0] = 0
        out = executor(noise, latent_image, sampler, sigmas, denoise_mask, *args, **kwargs)
        if denoise_mask is None or latent_image.shape != out.shape:
            return out
        if mask_calls[0] == 0:
            logging.warning("%s: M(t) never ran: a later node replaced the denoise mask function (e.g. Differential "
                            "Diffusion applied after Attribute Edit). Apply such nodes before Attribute Edit.", EDIT)
            return out
        regions = comfy.utils.reshape_mask(edited_union, out.shape).to(out.device)
        requested = comfy.utils.reshape_mask(denoise_mask, out.shape).to(out.device)
        never_edited = (regions == 0) | (requested == 0)
        return torch.where(never_edited, latent_image.to(out), out)

    patched.set_model_denoise_mask_function(denoise_mask_function)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, predict_noise)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, outer_sample)
    return patched


class AttributeEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashAttributeEdit",
            display_name=EDIT,
            category=f"{CATEGORY}/edit",
            search_aliases=["fashion edit", "local edit", "blended latent diffusion", "M(t)", "inpaint attribute"],
            description=(
                "Edits the attributes of an existing image in one sampling pass: each attribute changes only its "
                "body part, in its own sub-stage of the trajectory (M(t)), and everything else stays the source. "
                "Connect its model and latent to any stock sampler with denoise 1.0, and the scheduler's positive."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with; a patched clone is returned."),
                io.Vae.Input("vae", tooltip="Encodes the source image."),
                io.Image.Input("image", tooltip="The source image (width and height multiples of 8)."),
                ScheduleType.Input("schedule", tooltip="The scheduler's schedule: the design whose attributes apply."),
                BodyMasksType.Input("body_masks", tooltip="Regions from Pose Mask Builder, for this image."),
                io.String.Input("edit_attributes", default="all",
                                tooltip="Which of the design's attributes to edit: 'all', or labels / positions, "
                                        "e.g. 'collar, hem' or '4, 5'. The others only describe the garment."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The model with M(t); sample with it."),
                io.Latent.Output(display_name="latent",
                                 tooltip="The source latent with the union of edited regions as its noise mask."),
                io.Mask.Output(display_name="edit_mask",
                               tooltip="The union of edited regions, for HieraFash Preserve Source."),
                io.String.Output(display_name="plan", tooltip="Where the edit starts and which region opens when."),
            ],
        )

    @classmethod
    def execute(cls, model, vae, image, schedule, body_masks, edit_attributes="all") -> io.NodeOutput:
        batch, height, width = image.shape[:3]
        if height % 8 or width % 8:
            raise input_error(EDIT, "image", f"{width}x{height} is not a multiple of 8: crop or scale the image "
                                             "(e.g. ImageScale) first, and build the masks for that size")
        if body_masks.size != (height, width):
            mh, mw = body_masks.size
            raise input_error(EDIT, "body_masks", f"the regions are {mw}x{mh} but the image is {width}x{height}: "
                                                  "connect this image to Pose Mask Builder's image input")
        try:
            edited = parse_edited(edit_attributes, schedule.schedule)
            masks = stack_attribute_masks(schedule.schedule, body_masks)
        except EditError as exc:
            raise input_error(EDIT, "edit_attributes", str(exc)) from None
        if masks.shape[1] not in (1, batch):
            raise input_error(EDIT, "body_masks", f"{masks.shape[1]} mask frames for {batch} images: build the "
                                                  "masks from this image batch")
        percent_to_sigma = model.get_model_object("model_sampling").percent_to_sigma
        mask_schedule = compile_mask_schedule(schedule, edited, percent_to_sigma)
        union = union_mask(masks, tuple(edited))
        if not bool((union > 0).any()):
            raise input_error(EDIT, "body_masks", "the edited regions are empty: check the pose and the grow setting")
        latent = {"samples": vae.encode(image[..., :3]),
                  "noise_mask": union.reshape(-1, 1, height, width).expand(batch, -1, -1, -1).clone()}
        return io.NodeOutput(patch_model(model, mask_schedule, masks, union), latent, union,
                             describe_plan(schedule.schedule, edited, mask_schedule))


def describe_plan(schedule, edited: list[int], mask_schedule) -> str:
    attributes = [s.attribute for s in schedule.stages if s.attribute is not None]
    start = edit_start_timestep(schedule, edited)
    lines = [f"editing {', '.join(attributes[i].text for i in edited)}; "
             f"starts at t = {start:g} (percent {timestep_to_percent(start + 0.5):.4f}); "
             "earlier steps keep the noised source and skip the UNet"]
    for stage, region in zip(schedule.stages, mask_schedule.regions):
        if stage.t_low > start:
            lines.append(f"{stage.name}: - (before the edit starts: the noised source)")
            continue
        opened = ", ".join(attributes[i].text for i in region)
        partly = f" (from t = {start:g})" if stage.t_high - 1 > start else ""
        lines.append(f"{stage.name}: {opened}{partly}")
    return "\n".join(lines)


class PreserveSource(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashPreserveSource",
            display_name=PRESERVE,
            category=f"{CATEGORY}/edit",
            search_aliases=["exact preservation", "composite source", "keep background"],
            description=(
                "Exact preservation: outside the edit mask the result is the source image, bit for bit (the VAE "
                "round trip otherwise changes it slightly); inside, the edit; a feathered mask blends the seam."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The decoded edit."),
                io.Image.Input("source", tooltip="The original image."),
                io.Mask.Input("mask", tooltip="Attribute Edit's edit_mask."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The edit, with the source outside the mask.")],
        )

    @classmethod
    def execute(cls, image, source, mask) -> io.NodeOutput:
        try:
            return io.NodeOutput(composite_outside(image, source[..., : image.shape[-1]], mask))
        except EditError as exc:
            raise input_error(PRESERVE, "mask" if "mask" in str(exc) else "source", str(exc)) from None


NODES = [AttributeEdit, PreserveSource]
