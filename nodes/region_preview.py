"""Preview Garment Regions: every body-part region on the image, with a legend, before anything is sampled."""

from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from ..hierafash_core.legend import region_preview
from .common import CATEGORY, schema
from .common import BodyMasks as BodyMasksType

NODE_NAME = "HieraFash Preview Garment Regions"


class PreviewGarmentRegions(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashPreviewGarmentRegions",
            display_name=NODE_NAME,
            category=f"{CATEGORY}/pose",
            search_aliases=["preview masks", "mask legend", "sleeve mask", "collar mask", "hem mask", "dress regions",
                            "garment regions", "fashion regions", "outfit mask", "sleeve"],
            description=(
                "Shows the regions an attribute edit may repaint (clothing length, sleeves, collar, hem), each in "
                "its colour, with a legend. Run it on its own (it is an output node) to check the masks before "
                "sampling."
            ),
            inputs=[
                BodyMasksType.Input("body_masks", tooltip="The regions, from HieraFash Pose Mask Builder."),
                io.Image.Input("image", optional=True,
                               tooltip="Shown under the regions; without it they are drawn on black."),
            ],
            outputs=[io.Image.Output(display_name="preview", tooltip="The tinted image with its legend below.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, body_masks, image=None) -> io.NodeOutput:
        height, width = body_masks.size
        backdrop = image[..., :3] if image is not None else torch.zeros(1, height, width, 3)
        preview = region_preview(backdrop, body_masks.by_kind)
        return io.NodeOutput(preview, ui=ui.PreviewImage(preview, cls=cls))


NODES = [PreviewGarmentRegions]
