"""Attribute Edit (M(t) on the model, the source latent with its noise mask) and exact preservation."""

from __future__ import annotations

from comfy_api.latest import io

from ..hierafash_core.editing import composite_outside, plan_edit
from .common import CATEGORY, node_errors, schema
from .common import BodyMasks as BodyMasksType
from .common import Schedule as ScheduleType
from .sampling import EditSampling

EDIT = "HieraFash Attribute Edit"
PRESERVE = "HieraFash Preserve Source"


class AttributeEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashAttributeEdit",
            display_name=EDIT,
            category=f"{CATEGORY}/edit",
            search_aliases=["fashion edit", "garment edit", "edit dress", "edit sleeve", "edit collar", "edit hem",
                            "change sleeve", "outfit edit", "local edit", "inpaint attribute", "fashion"],
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
                io.String.Output(display_name="plan",
                                 tooltip="Where the edit starts and when each attribute's region opens; warnings "
                                         "(an attribute that gets no sampler step) come first."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, vae, image, schedule, body_masks, edit_attributes="all") -> io.NodeOutput:
        with node_errors(EDIT, "edit_attributes"):
            plan = plan_edit(schedule, body_masks, image.shape, edit_attributes,
                             model.get_model_object("model_sampling").percent_to_sigma)
        latent = {"samples": vae.encode(image[..., :3]), "noise_mask": plan.noise_mask(image.shape[0])}
        patched = EditSampling(plan, EDIT, cls.hidden.unique_id).patch(model)
        return io.NodeOutput(patched, latent, plan.union, plan.describe())


class PreserveSource(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashPreserveSource",
            display_name=PRESERVE,
            category=f"{CATEGORY}/edit",
            search_aliases=["exact preservation", "composite source", "keep background", "keep garment",
                            "keep outfit", "fashion edit composite"],
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
        with node_errors(PRESERVE, "source"):
            return io.NodeOutput(composite_outside(image, source[..., : image.shape[-1]], mask))


NODES = [AttributeEdit, PreserveSource]
