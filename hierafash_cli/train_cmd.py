"""`hierafash train`: train the pose ControlNet (or a UNet LoRA) with the hierarchical objective C(t).

The options map one to one onto `hierafash_train.loop.TrainConfig`; the training code (and the train extra
it needs) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hierafash_core.errors import HieraFashError

PRECISIONS = ("fp32", "bf16", "fp16")
OPTION_OF = {"dataset": "--dataset", "base": "--base", "controlnet": "--controlnet", "tokenizer": "--tokenizer",
             "batch_size": "--batch-size", "resume": "--resume", "mode": "--mode", "precision": "--precision",
             "steps": "--steps", "grad_accum": "--grad-accum", "lr": "--lr", "lr_warmup_steps": "--lr-warmup-steps",
             "lora_rank": "--lora-rank", "save_dtype": "--save-dtype", "max_minutes": "--max-minutes",
             "prediction_type": "--prediction-type", "empty_prompts": "--empty-prompts"}


def cmd_train(args) -> int:
    try:
        from hierafash_train.loop import TrainConfig, train
    except ImportError as exc:
        print(f"hierafash train: the train extra is not installed ({exc}): pip install 'hierafashdiff[train]'",
              file=sys.stderr)
        return 2
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "no_progress")}
    try:
        result = train(TrainConfig(**options, progress=not args.no_progress))
    except HieraFashError as exc:
        option = OPTION_OF.get(exc.input_name or "", exc.input_name or "input")
        print(f"hierafash train: {option}: {exc.problem}", file=sys.stderr)
        return 2
    if result.export:
        print(f"trained {result.step} steps; final loss {result.losses[-1]:.4f}" if result.losses else
              f"already at step {result.step}")
        print(f"exported: {result.export}  (loss log and plot: {result.export.parent}/loss.jsonl, loss.png)")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `train` on the `hierafash` command's subparsers."""
    parser = subparsers.add_parser(
        "train", help="train the pose ControlNet (or a UNet LoRA) with the hierarchical prompt schedule",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train with the HieraFashDiff objective: each sample draws t in 0..999 and sees its caption "
                    "cut to t's band (concepts at high noise, one more attribute per band, the full caption "
                    "below t = 500). Defaults are the paper's: only the ControlNet trains, AdamW lr 1e-5, "
                    "batch 4, fp32. Runs offline on one CPU/GPU, or on many with `torch.distributed.run` / "
                    "`accelerate launch -m hierafash_cli train ...`. Writes OUTPUT/controlnet.safetensors "
                    "(ldm layout, for ComfyUI's ControlNetLoader) or OUTPUT/lora.safetensors (kohya layout, for "
                    "LoraLoader), loss.jsonl, loss.png, samples/ and checkpoints/.")

    def add_path(flag: str, help_text: str, required: bool = False) -> None:
        parser.add_argument(flag, type=Path, required=required, default=None, help=help_text)

    add_path("--dataset", "dataset root holding train.json/test.json (lists of {pose, gt, caption}, paths relative "
                          "to the root); checked before training", required=True)
    add_path("--base", "base model: an SD 1.5 / SD 2.x single-file checkpoint in the ldm layout (e.g. the pack's "
                       "converted hierafashdiff_sd21.safetensors), or a diffusers folder", required=True)
    add_path("--output", "output folder (created)", required=True)
    parser.add_argument("--mode", choices=("controlnet", "lora", "base"), default="controlnet",
                        help="controlnet: train only the ControlNet (the paper); lora: a LoRA on the UNet's "
                             "attention (ControlNet frozen if --controlnet is given, else none); base: the UNet "
                             "and the ControlNet together, for a base that is not trained yet (the synthetic "
                             "benchmark's small model); also writes OUTPUT/base/, a diffusers folder")
    add_path("--controlnet", "start from this ControlNet (ldm control_model.* or diffusers keys, e.g. the pack's "
                             "hierafashdiff_pose_controlnet.safetensors); default: a copy of the UNet encoder")
    add_path("--tokenizer", "folder with CLIP vocab.json and merges.txt; default: the base folder's tokenizer/, "
                            "else ComfyUI's comfy/sd1_tokenizer")
    parser.add_argument("--split", default="train", help="which split file to train on (SPLIT.json)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps in total (resume counts on)")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="stop after this many minutes of training and export what was trained (0: no limit)")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per process per micro-step")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-steps per optimizer step")
    parser.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (constant after the warm-up)")
    parser.add_argument("--lr-warmup-steps", type=int, default=0,
                        help="ramp the learning rate linearly up to --lr over the first N steps; worth it when "
                             "training on from trained weights, which a fresh AdamW's first full-size steps upset")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="mixed precision: frozen models in this dtype, trained weights stay fp32")
    parser.add_argument("--seed", type=int, default=0, help="seeds initial weights, batch order, t and noise")
    parser.add_argument("--checkpoint-every", type=int, default=0,
                        help="save a resumable checkpoint every N steps into OUTPUT/checkpoints (0: never)")
    parser.add_argument("--resume", default=None,
                        help="continue from a checkpoints/step-NNNNNN folder, or 'latest' in OUTPUT")
    parser.add_argument("--sample-every", type=int, default=0,
                        help="draw a sample grid (pose | target | sample) every N steps into OUTPUT/samples, "
                             "with the hierarchical schedule (0: never)")
    parser.add_argument("--sample-count", type=int, default=2, help="samples per grid (the split's first)")
    parser.add_argument("--sample-steps", type=int, default=20, help="DDIM steps per sample")
    parser.add_argument("--guidance", type=float, default=9.0, help="CFG scale of the samples (the demo's 9)")
    parser.add_argument("--empty-prompts", type=float, default=0.0,
                        help="share of captions replaced by an empty prompt at each step (caption dropout, as "
                             "diffusers' --proportion_empty_prompts; e.g. 0.1), so the model learns the "
                             "unconditional branch that cfg > 1 needs; the paper trains with 0")
    parser.add_argument("--cache-text", action="store_true",
                        help="encode each caption's (at most 7) truncations once and reuse them; costs 77 x "
                             "width floats of CPU memory per distinct text")
    parser.add_argument("--lora-rank", type=int, default=8, help="LoRA rank (--mode lora)")
    parser.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    parser.add_argument("--prediction-type", choices=("epsilon", "v_prediction"), default=None,
                        help="what the base predicts (default: its scheduler config; SD 2.x 768-v needs "
                             "v_prediction; HieraFashDiff is epsilon)")
    parser.add_argument("--save-dtype", choices=("fp32", "fp16", "bf16"), default="fp32",
                        help="dtype of the exported weights")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train)
    return parser
