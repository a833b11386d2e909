"""Size and Steps: one switch between a quick try and the paper's settings, feeding every size and step input."""

from __future__ import annotations

from comfy_api.latest import io

from .common import CATEGORY, input_error, schema

NODE_NAME = "HieraFash Size and Steps"
CUSTOM = "custom (the values below)"
# (width, height, steps). Quick: a quarter of the pixels and a fifth of the steps; 20 ddim_uniform steps still
# give every stage of the paper's schedule at least one step.
PRESETS = {
    "quick try (256 x 352, 20 steps)": (256, 352, 20),
    "paper (512 x 704, 100 steps)": (512, 704, 100),
}


class SizeAndSteps(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashSizeAndSteps",
            display_name=NODE_NAME,
            category=CATEGORY,
            search_aliases=["quick settings", "resolution", "image size", "steps", "fast preview",
                            "fashion quick try", "garment size", "dress size"],
            description=(
                "Width, height and steps for a whole workflow from one choice: a quick try (minutes on a CPU) or "
                "the paper's settings (512 x 704, 100 steps; use a GPU). Connect its outputs to every size and "
                "steps input so that they always agree."
            ),
            inputs=[
                io.Combo.Input("preset", options=[*PRESETS, CUSTOM], default=next(iter(PRESETS)),
                               tooltip="Quick try, the paper's settings, or the values below."),
                io.Int.Input("width", default=512, min=64, max=2048, step=8, tooltip="Used with 'custom'."),
                io.Int.Input("height", default=704, min=64, max=2048, step=8, tooltip="Used with 'custom'."),
                io.Int.Input("steps", default=50, min=1, max=1000, tooltip="Used with 'custom'."),
            ],
            outputs=[
                io.Int.Output(display_name="width", tooltip="Image width in pixels."),
                io.Int.Output(display_name="height", tooltip="Image height in pixels."),
                io.Int.Output(display_name="steps", tooltip="Sampler steps (also for the prompt scheduler)."),
            ],
        )

    @classmethod
    def execute(cls, preset, width, height, steps) -> io.NodeOutput:
        if preset == CUSTOM:
            return io.NodeOutput(width, height, steps)
        if preset not in PRESETS:
            raise input_error(NODE_NAME, "preset", f"{preset!r} is not a preset: choose one of "
                                                   f"{', '.join([*PRESETS, CUSTOM])}")
        return io.NodeOutput(*PRESETS[preset])


NODES = [SizeAndSteps]
