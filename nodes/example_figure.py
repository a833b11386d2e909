"""Example Figure: a licence-clean source design drawn by the pack itself, so an edit can start with nothing."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..hierafash_core.synthetic import draw_figure, example_spec, sample_figures
from .common import CATEGORY, schema
from .pose import POSE_KEYPOINT

NODE_NAME = "HieraFash Example Figure"


class ExampleFigure(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashExampleFigure",
            display_name=NODE_NAME,
            category=CATEGORY,
            search_aliases=["example dress", "sample garment", "fashion figure", "test image", "outfit example"],
            description=(
                "Draws a simple dressed figure with its exact pose, so you can try an attribute edit without "
                "an image of your own. Figure 0 is the templates' knee-length dress; other numbers draw other "
                "garments and poses. Replace it with Load Image (and a pose estimator) for real designs."
            ),
            inputs=[
                io.Int.Input("figure", default=0, min=0, max=2**31 - 1,
                             tooltip="0: the templates' example dress. Any other number: another garment and pose "
                                     "(the same number always draws the same figure)."),
                io.Int.Input("width", default=512, min=64, max=2048, step=8, tooltip="Image width in pixels."),
                io.Int.Input("height", default=704, min=64, max=2048, step=8, tooltip="Image height in pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The figure on a white background."),
                POSE_KEYPOINT.Output(display_name="pose_keypoint",
                                     tooltip="The figure's exact pose, in pixels: connect it to Pose Mask Builder."),
                io.String.Output(display_name="caption",
                                 tooltip="The garment in the paper's ten-item caption: concepts, then attributes."),
            ],
        )

    @classmethod
    def execute(cls, figure, width, height) -> io.NodeOutput:
        spec = example_spec() if figure == 0 else sample_figures(1, figure)[0]
        figure = draw_figure(spec, width, height)
        return io.NodeOutput(torch.from_numpy(figure.image)[None], figure.pose_keypoint, figure.caption)


NODES = [ExampleFigure]
