"""Convert the official HieraFashDiff checkpoint into safetensors for the stock loaders, inside ComfyUI."""

from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io, ui

from ..hierafash_core.weights import (
    DEFAULT_STEM,
    OutputExistsError,
    WeightsError,
    convert_checkpoint,
    output_names,
)
from .common import CATEGORY, advanced, input_error, schema

NODE_NAME = "HieraFash Convert Official Checkpoint"
PICKLED_EXTENSIONS = (".ckpt", ".pt", ".pth")


def pickled_checkpoints() -> list[str]:
    return [name for name in folder_paths.get_filename_list("checkpoints") if name.lower().endswith(PICKLED_EXTENSIONS)]


def output_paths(name: str) -> tuple[str, str]:
    checkpoint_name, controlnet_name = output_names(name)
    return (os.path.join(folder_paths.get_folder_paths("checkpoints")[0], checkpoint_name),
            os.path.join(folder_paths.get_folder_paths("controlnet")[0], controlnet_name))


def file_state(path: str | None):
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return None
    return stat.st_size, stat.st_mtime_ns


class ConvertCheckpoint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        checkpoint_name, controlnet_name = output_names(DEFAULT_STEM)
        return schema(
            node_id="HieraFashConvertCheckpoint",
            display_name=NODE_NAME,
            category=f"{CATEGORY}/models",
            search_aliases=["convert checkpoint", "hfd_100epochs", "official weights", "ckpt to safetensors",
                            "fashion model", "garment model"],
            description=(
                "Converts the official HieraFashDiff checkpoint (hfd_100epochs.ckpt from Hugging Face "
                "vmip-shu/HieraFashDiff, put in models/checkpoints) into two safetensors files: "
                f"checkpoints/{checkpoint_name} for Load Checkpoint and controlnet/{controlnet_name} for Load "
                "ControlNet Model. It reads the pickle without running code from it, writes atomically, verifies "
                "both files by reading them back, and does nothing when they are already up to date. Run it once, "
                "refresh the browser (R), and put ModelSamplingDiscrete (sampling 'eps') after Load Checkpoint: the "
                "model was trained to predict noise. HieraFash Load Official Model does all of this in one node."
            ),
            inputs=[
                io.Combo.Input("ckpt_name", options=pickled_checkpoints(),
                               tooltip="The pickled checkpoint to convert (.ckpt, .pt or .pth in models/checkpoints), "
                                       "e.g. hfd_100epochs.ckpt."),
                io.Boolean.Input("overwrite", default=False,
                                 tooltip="Replace output files that an earlier conversion wrote and that now hold "
                                         "other weights. Files this converter did not write are never replaced. "
                                         "Off: existing files are never touched and the node stops with an error."),
                advanced(io.String.Input, "name", default=DEFAULT_STEM,
                         tooltip="Output name stem: writes <name>_sd21.safetensors and "
                                 "<name>_pose_controlnet.safetensors."),
            ],
            outputs=[io.String.Output(display_name="report",
                                      tooltip="What was written, left unchanged or dropped, and how to sample.")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, name=None):
        if name is None:  # linked input: checked at run time
            return True
        try:
            output_names(name)
        except WeightsError as exc:
            return f"{NODE_NAME}: input 'name': {exc}"
        return True

    @classmethod
    def fingerprint_inputs(cls, ckpt_name, overwrite, name=DEFAULT_STEM):
        # Run again whenever the source or an output changes on disk, e.g. an output was deleted.
        try:
            outputs = output_paths(name)
        except WeightsError:
            outputs = ()
        source = folder_paths.get_full_path("checkpoints", ckpt_name)
        return ckpt_name, overwrite, name, [file_state(path) for path in (source, *outputs)]

    @classmethod
    def execute(cls, ckpt_name, overwrite, name=DEFAULT_STEM) -> io.NodeOutput:
        source = folder_paths.get_full_path("checkpoints", ckpt_name)
        if source is None:
            raise input_error(NODE_NAME, "ckpt_name", f"'{ckpt_name}' is not in models/checkpoints any more")
        try:
            checkpoint_path, controlnet_path = output_paths(name)
        except WeightsError as exc:
            raise input_error(NODE_NAME, "name", str(exc)) from None
        try:
            report = convert_checkpoint(source, os.path.dirname(checkpoint_path), os.path.dirname(controlnet_path),
                                        stem=name, overwrite=overwrite)
        except OutputExistsError as exc:
            fix = ("Change 'name'." if overwrite
                   else "Turn 'overwrite' on to replace an earlier conversion, or change 'name'.")
            raise input_error(NODE_NAME, "overwrite", f"{exc}. {fix}") from None
        except WeightsError as exc:
            raise input_error(NODE_NAME, "ckpt_name", str(exc)) from None
        text = report.summary()
        return io.NodeOutput(text, ui=ui.PreviewText(text))


NODES = [ConvertCheckpoint]
