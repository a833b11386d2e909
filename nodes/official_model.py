"""Load the official HieraFashDiff checkpoint in one node: converted once, safely, then loaded as ComfyUI's own
MODEL (noise-predicting, as trained), CLIP, VAE and pose CONTROL_NET."""

from __future__ import annotations

import os
import re

import comfy.controlnet
import comfy.sd
import comfy.utils
import folder_paths
from comfy_api.latest import io
from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete

from ..hierafash_core.weights import DEFAULT_STEM, OFFICIAL_CKPT, OFFICIAL_CKPT_URL, WeightsError, convert_checkpoint
from .common import CATEGORY, HieraFashInputError, input_error, schema
from .convert import file_state, output_paths, pickled_checkpoints

NODE_NAME = "HieraFash Load Official Model"


def output_stem(ckpt_name: str) -> str:
    """The official file converts to the names the workflows use; any other to names after its own stem."""
    if os.path.basename(ckpt_name) == OFFICIAL_CKPT:
        return DEFAULT_STEM
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(os.path.basename(ckpt_name))[0]).lstrip("._-")
    return stem[:100] or DEFAULT_STEM


def progress_bar():
    """A callback driving ComfyUI's progress bar in whole percent (one message per percent, not per tensor)."""
    bar, shown = comfy.utils.ProgressBar(100), [-1]

    def update(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent != shown[0]:
            shown[0] = percent
            bar.update_absolute(percent)

    return update


def missing_message(ckpt_name: str) -> str:
    """Which file is missing, the folder it goes in and where it comes from."""
    folder = folder_paths.get_folder_paths("checkpoints")[0]
    return str(input_error(NODE_NAME, "ckpt_name", f"'{ckpt_name}' is not in {folder}: download {OFFICIAL_CKPT} "
                                                   f"from {OFFICIAL_CKPT_URL} into that folder, then press R"))


class LoadOfficialModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashLoadOfficialModel",
            display_name=NODE_NAME,
            category=f"{CATEGORY}/models",
            search_aliases=["hfd_100epochs", "official model", "load fashion model", "garment model",
                            "load checkpoint", "fashion model", "dress model", "fashion"],
            description=(
                "Loads the official HieraFashDiff weights (hfd_100epochs.ckpt from Hugging Face "
                "vmip-shu/HieraFashDiff, put in models/checkpoints). The first run converts the file once, "
                "without running code from it, into models/checkpoints/hierafashdiff_sd21.safetensors and "
                "models/controlnet/hierafashdiff_pose_controlnet.safetensors (a progress bar shows it); later "
                "runs load those. The model comes out ready to sample, set up as it was trained: no "
                "ModelSamplingDiscrete node is needed."
            ),
            inputs=[
                io.Combo.Input("ckpt_name", options=pickled_checkpoints(),
                               tooltip="The official checkpoint in models/checkpoints (hfd_100epochs.ckpt). "
                                       "Converted once; the two converted files are reused afterwards."),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL", tooltip="The image model, set up as HieraFashDiff was trained: "
                                                              "connect it to the sampler and the scheduler."),
                io.Clip.Output(display_name="CLIP", tooltip="The text encoder (OpenCLIP ViT-H), for the prompts."),
                io.Vae.Output(display_name="VAE", tooltip="The image encoder/decoder."),
                io.ControlNet.Output(display_name="CONTROL_NET",
                                     tooltip="The pose ControlNet HieraFashDiff trained: feed it the pose image."),
            ],
        )

    @classmethod
    def validate_inputs(cls, ckpt_name):
        # Taking ckpt_name here replaces ComfyUI's "value not in list" with where the file goes and comes from.
        if folder_paths.get_full_path("checkpoints", ckpt_name) is None:
            return missing_message(ckpt_name)
        return True

    @classmethod
    def fingerprint_inputs(cls, ckpt_name):
        # Load again when the source file changes. Not on the converted files: the first run writes them, and
        # watching them would reload (and re-run everything after this node) once for nothing.
        return ckpt_name, file_state(folder_paths.get_full_path("checkpoints", ckpt_name))

    @classmethod
    def execute(cls, ckpt_name) -> io.NodeOutput:
        source = folder_paths.get_full_path("checkpoints", ckpt_name)
        if source is None:
            raise HieraFashInputError(missing_message(ckpt_name))
        stem = output_stem(ckpt_name)
        checkpoint_path, controlnet_path = output_paths(stem)
        try:
            convert_checkpoint(source, os.path.dirname(checkpoint_path), os.path.dirname(controlnet_path),
                               stem=stem, progress=progress_bar())
        except WeightsError as exc:
            raise input_error(NODE_NAME, "ckpt_name", str(exc)) from None
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
            checkpoint_path, output_vae=True, output_clip=True,
            embedding_directory=folder_paths.get_folder_paths("embeddings"))
        (eps_model,) = ModelSamplingDiscrete().patch(model, "eps", False)  # the stock node's own patch
        return io.NodeOutput(eps_model, clip, vae, comfy.controlnet.load_controlnet(controlnet_path))


NODES = [LoadOfficialModel]
