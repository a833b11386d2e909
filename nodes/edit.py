"""Attribute Edit (the region schedule on the model, the source latent with its noise mask) and exact
preservation."""

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
                "Changes chosen attributes of an existing design in one run of the sampler: each attribute "
                "repaints only its body part, starting at its own step, and everything else stays the source. "
                "Connect its model and latent to any stock sampler (denoise 1.0) with the scheduler's positive."
            ),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with; a patched clone is returned."),
                io.Vae.Input("vae", tooltip="Encodes the source image."),
                io.Image.Input("image", tooltip="The design to edit (width and height multiples of 8)."),
                ScheduleType.Input("schedule", tooltip="From the prompt scheduler: the garment as it should be "
                                                       "after the edit."),
                BodyMasksType.Input("body_masks", tooltip="Garment regions from Pose Mask Builder, for this image."),
                io.String.Input("edit_attributes", default="all",
                                tooltip="Which of the design's attributes to edit: 'all', or labels / positions, "
                                        "e.g. 'collar, hem' or '4, 5'. The others only describe the garment."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The model that repaints only the edited regions, "
                                                              "each from its own step; sample with it."),
                io.Latent.Output(display_name="latent",
                                 tooltip="The design to edit, encoded for the sampler, with every edited region "
                                         "marked as the part it may change."),
                io.Mask.Output(display_name="edit_mask",
                               tooltip="Every edited region together, for HieraFash Preserve Source."),
                io.String.Output(display_name="plan",
                                 tooltip="From which step each attribute changes; any warning (an attribute "
                                         "that gets no step) is on the first line."),
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
                            "keep outfit", "fashion edit composite",
                            "keep dress", "garment"],
            description=(
                "Keeps the design exactly: outside the edited regions the result is the source image, pixel for "
                "pixel (decoding alone would change it slightly); inside, the edit; a soft mask blends the seam."
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
