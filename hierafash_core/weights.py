"""The official HieraFashDiff weights: read them without running pickled code, split them into two
safetensors files that ComfyUI's stock loaders accept, write those atomically and verify them.

`hfd_100epochs.ckpt` (Hugging Face `vmip-shu/HieraFashDiff`) is a pickled PyTorch Lightning checkpoint of an
LDM `ControlLDM` (method.md §2): an SD 2.x base under `model.diffusion_model.` (UNet), `first_stage_model.`
(KL VAE) and `cond_stage_model.` (OpenCLIP ViT-H text encoder), plus the trained ControlNet under
`control_model.`, with the training state (optimizer, callbacks, loops) beside the `state_dict`.

ε-prediction: HieraFashDiff predicts ε (method.md §2.1). ComfyUI 0.3.75 guesses v versus ε for SD 2.x from
one weight (`SD20.model_type`: the spread of `output_blocks.11.1.transformer_blocks.0.norm1.bias`) and
honours no key or file metadata that could override the guess for SD 2.x; changing that weight would
change the model. So the converted file keeps the trained weights unchanged, and workflows put the stock
`ModelSamplingDiscrete` node (sampling = eps) after the checkpoint loader. `comfyui_prediction_guess`
tells what ComfyUI would pick without that node.

Reading the checkpoint without running pickled code is hierafash_core.checkpoint_reading; writing and verifying
the outputs is hierafash_core.safetensors_writing; their errors (all WeightsError) are in hierafash_core.weights_errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint_reading import load_checkpoint
from .safetensors_writing import (
    WrittenFile,
    check_free_space,
    data_size,
    holds,
    plan_output,
    refuse_foreign,
    unchanged_file,
    write_output,
)
from .weights_errors import CheckpointLayoutError, OutputExistsError, WeightsError, first_line

DEFAULT_STEM = "hierafashdiff"
# The released weights (one file), where they come from.
OFFICIAL_REPO = "vmip-shu/HieraFashDiff"
OFFICIAL_CKPT = "hfd_100epochs.ckpt"
OFFICIAL_CKPT_URL = f"https://huggingface.co/{OFFICIAL_REPO}/resolve/main/{OFFICIAL_CKPT}"
OFFICIAL_CKPT_PAGE = f"https://huggingface.co/{OFFICIAL_REPO}/blob/main/{OFFICIAL_CKPT}"
CHECKPOINT_SUFFIX = "_sd21.safetensors"
CONTROLNET_SUFFIX = "_pose_controlnet.safetensors"


# --- splitting ----------------------------------------------------------------------------------------------

UNET_PREFIX = "model.diffusion_model."
CONTROLNET_PREFIX = "control_model."
CHECKPOINT_PARTS = {UNET_PREFIX: "UNet", "first_stage_model.": "VAE", "cond_stage_model.": "text encoder"}
# LDM keeps its noise schedule as buffers. Stock SD 2.x checkpoints carry them too; ComfyUI ignores them.
SCHEDULE_BUFFERS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "scale_factor",
})
# Checked before the parts above: the VAE's loss lives under the VAE's prefix.
TRAINING_ONLY_PREFIXES = {
    "model_ema.": "EMA copy of the UNet (training only)",
    "first_stage_model.loss.": "VAE training loss (training only)",
}
TRAINING_ONLY_KEYS = {"logvar": "learned loss weighting (training only)"}
UNRECOGNISED = "unrecognised (in neither output)"


@dataclass(frozen=True)
class SplitCheckpoint:
    checkpoint: dict[str, torch.Tensor]  # UNet, VAE, text encoder (+ schedule buffers), for CheckpointLoaderSimple
    controlnet: dict[str, torch.Tensor]  # control_model.*, for ControlNetLoader
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> keys


def _training_only_reason(key: str) -> str | None:
    for prefix, reason in TRAINING_ONLY_PREFIXES.items():
        if key.startswith(prefix):
            return reason
    return TRAINING_ONLY_KEYS.get(key)


def split_state_dict(state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike = "checkpoint"):
    """Route every key of a ControlLDM state dict: SD 2.x checkpoint, ControlNet, or dropped with a reason."""
    checkpoint, controlnet, dropped = {}, {}, {}
    for key, tensor in state_dict.items():
        reason = _training_only_reason(key)
        if reason:
            dropped.setdefault(reason, []).append(key)
        elif key.startswith(CONTROLNET_PREFIX):
            controlnet[key] = tensor
        elif key.startswith(tuple(CHECKPOINT_PARTS)) or key in SCHEDULE_BUFFERS:
            checkpoint[key] = tensor
        else:
            dropped.setdefault(UNRECOGNISED, []).append(key)
    present = {name for prefix, name in CHECKPOINT_PARTS.items() if any(k.startswith(prefix) for k in checkpoint)}
    if controlnet:
        present.add("ControlNet")
    missing = [name for name in [*CHECKPOINT_PARTS.values(), "ControlNet"] if name not in present]
    if missing:
        raise CheckpointLayoutError(
            f"{source}: not a HieraFashDiff (ControlLDM) checkpoint: no {', no '.join(missing)} weights "
            f"(expected keys under {', '.join([*CHECKPOINT_PARTS, CONTROLNET_PREFIX])})"
        )
    return SplitCheckpoint(checkpoint, controlnet, dropped)


V_PREDICTION_PROBE = UNET_PREFIX + "output_blocks.11.1.transformer_blocks.0.norm1.bias"


def comfyui_prediction_guess(checkpoint: Mapping[str, torch.Tensor]) -> str:
    """"eps" or "v_prediction": what ComfyUI 0.3.75 picks for this SD 2.x checkpoint with no node overriding it.

    Mirrors `comfy/supported_models.py` SD20.model_type, which we cannot import here.
    """
    first = checkpoint.get(UNET_PREFIX + "input_blocks.0.0.weight")
    in_channels = first.shape[1] if first is not None and first.ndim > 1 else None
    probe = checkpoint.get(V_PREDICTION_PROBE)
    if in_channels == 4 and probe is not None and probe.numel() and torch.std(probe.float(), correction=0) > 0.09:
        return "v_prediction"
    return "eps"


# --- the conversion -----------------------------------------------------------------------------------------

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def output_names(stem: str = DEFAULT_STEM) -> tuple[str, str]:
    """The checkpoint and ControlNet file names for an output stem; the stem must be a plain file name."""
    if not _STEM.fullmatch(stem or ""):
        raise WeightsError(f"output name {stem!r} is not a plain file name: use letters, digits, '.', '_' "
                           "or '-' (no folders), starting with a letter or digit")
    return stem + CHECKPOINT_SUFFIX, stem + CONTROLNET_SUFFIX


@dataclass(frozen=True)
class ConversionReport:
    source: Path
    outputs: tuple[WrittenFile, ...]
    dropped: dict[str, list[str]]
    comfyui_guess: str
    training_info: dict[str, int | str]

    def summary(self) -> str:
        info = ", ".join(f"{k} {v}" for k, v in self.training_info.items())
        lines = [f"HieraFashDiff conversion of {self.source.name}" + (f" ({info})" if info else "")]
        for out in self.outputs:
            lines.append(f"  {out.kind:<10} {out.status:<9} {out.path}  ({out.tensors} tensors, "
                         f"{out.size / 2**20:,.1f} MiB, sha256 {out.digest[:12]})")
        for reason, keys in self.dropped.items():
            shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
            lines.append(f"  dropped    {len(keys)} key(s), {reason}: {shown}")
        guess = ("v-prediction for this file and sample it wrongly" if self.comfyui_guess == "v_prediction"
                 else "eps for this file too, but that guess is a heuristic")
        lines.append("  sampling   epsilon-prediction: put ModelSamplingDiscrete (sampling eps) after the checkpoint "
                     f"loader. Without it ComfyUI would guess {guess}.")
        return "\n".join(lines)


def convert_checkpoint(source: str | os.PathLike, checkpoints_dir: str | os.PathLike,
                       controlnet_dir: str | os.PathLike, stem: str = DEFAULT_STEM,
                       overwrite: bool = False, progress: Callable[[int, int], None] | None = None
                       ) -> ConversionReport:
    """Convert a ControlLDM checkpoint into `<checkpoints_dir>/<stem>_sd21.safetensors` and
    `<controlnet_dir>/<stem>_pose_controlnet.safetensors`; `progress(bytes written, bytes to write)` follows
    the writing.

    Nothing is written unless both outputs can be: an existing output with other content stops the
    conversion before either file is touched, unless `overwrite` is set and the file is one this converter
    wrote; nor when the disk lacks room for both. Every failure is a WeightsError.
    """
    try:
        return _convert(Path(source), Path(checkpoints_dir), Path(controlnet_dir), stem, overwrite, progress)
    except WeightsError:
        raise
    except Exception as exc:  # a crafted file may find a failure no check above names: it is still ours to report
        raise WeightsError(f"{source}: cannot convert it ({type(exc).__name__}: {first_line(exc)[:300]})") from None


def _convert(source: Path, checkpoints_dir: Path, controlnet_dir: Path, stem: str, overwrite: bool,
             progress: Callable[[int, int], None] | None) -> ConversionReport:
    checkpoint_name, controlnet_name = output_names(stem)
    loaded = load_checkpoint(source)
    parts = split_state_dict(loaded.state_dict, loaded.path)
    provenance = {"hierafashdiff.source": loaded.path.name, "hierafashdiff.prediction": "epsilon"}
    outputs = [
        plan_output("checkpoint", Path(checkpoints_dir) / checkpoint_name, parts.checkpoint, provenance),
        plan_output("controlnet", Path(controlnet_dir) / controlnet_name, parts.controlnet, provenance),
    ]
    identical = {out.path for out in outputs if out.path.exists() and holds(out)}
    conflicts = [str(out.path) for out in outputs if out.path.exists() and out.path not in identical]
    if conflicts and not overwrite:
        raise OutputExistsError(f"{' and '.join(conflicts)} already exist(s) with other content; "
                                "not replacing without overwrite")
    for conflict in conflicts:
        refuse_foreign(Path(conflict))
    pending = [out for out in outputs if out.path not in identical]
    check_free_space(pending)
    total, done = sum(data_size(out) for out in pending), 0

    def advance(nbytes: int) -> None:
        nonlocal done
        done += nbytes
        progress(done, total)

    written = tuple(unchanged_file(out) if out.path in identical else write_output(out, overwrite, progress and advance)
                    for out in outputs)
    return ConversionReport(loaded.path, written, parts.dropped, comfyui_prediction_guess(parts.checkpoint),
                            loaded.training_info)
