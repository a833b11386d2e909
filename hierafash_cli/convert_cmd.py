"""`hierafash convert`: turn the official pickled checkpoint into two safetensors files for ComfyUI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hierafash_core.weights import DEFAULT_STEM, OutputExistsError, WeightsError, convert_checkpoint, output_names

from .server import DEFAULT_HOME


def cmd_convert(args) -> int:
    models = Path(args.models_dir)
    try:
        report = convert_checkpoint(args.checkpoint, models / "checkpoints", models / "controlnet",
                                    stem=args.name, overwrite=args.overwrite)
    except OutputExistsError as exc:
        hint = "" if args.overwrite else " Re-run with --overwrite to replace an earlier conversion."
        print(f"hierafash convert: error: {exc}.{hint}", file=sys.stderr)
        return 1
    except WeightsError as exc:
        print(f"hierafash convert: error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `convert` on the `hierafash` command's subparsers."""
    checkpoint_name, controlnet_name = output_names(DEFAULT_STEM)
    parser = subparsers.add_parser(
        "convert", help="convert the official HieraFashDiff .ckpt into safetensors for ComfyUI",
        description="Read a pickled HieraFashDiff checkpoint (hfd_100epochs.ckpt) without running code from it and "
                    f"write MODELS_DIR/checkpoints/{checkpoint_name} (SD 2.x: UNet, VAE, text encoder) and "
                    f"MODELS_DIR/controlnet/{controlnet_name} (the pose ControlNet). Both are verified by "
                    "reading them back; re-running on the same input is a no-op. Sample the checkpoint with "
                    "ModelSamplingDiscrete (sampling eps) after the loader: the model predicts epsilon.")
    parser.add_argument("checkpoint", type=Path, help="the pickled checkpoint, e.g. hfd_100epochs.ckpt")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_HOME / "models",
                        help="ComfyUI's models folder (default: %(default)s, the one `hierafash serve` uses)")
    parser.add_argument("--name", default=DEFAULT_STEM,
                        help="output name stem: writes STEM_sd21.safetensors and STEM_pose_controlnet.safetensors "
                             "(default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace output files that an earlier conversion wrote (never a file the converter "
                             "did not write)")
    parser.set_defaults(func=cmd_convert)
    return parser
