"""The training loop: the paper's recipe (only the ControlNet trains, AdamW 1e-5, batch 4, fp32) on accelerate.

One script for one CPU, one GPU or many (`torch.distributed.run` / `accelerate launch`). Every random draw
(batch order, timesteps, noise, VAE posterior samples) comes from a generator seeded by (seed, micro-step,
rank), so a run is reproducible from `seed` and a resumed run continues exactly where the checkpoint left off.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast as accelerate_broadcast
from accelerate.utils import set_seed
from safetensors.torch import save_file
from tqdm.auto import tqdm

from hierafash_core.dataset import DatasetError, check_dataset, read_split
from hierafash_core.errors import HieraFashError
from hierafash_core.objective import PREDICTION_TYPES, hierarchical_loss
from hierafash_core.schedule import PAPER_BOUNDARIES

from . import models
from .data import SampleImages, TextEncoder, collate
from .export import controlnet_to_ldm, lora_to_kohya
from .sampling import predict_noise, sample_hierarchical, save_grid

MODES = ("controlnet", "lora", "base")
PRECISIONS = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
MAX_LISTED_PROBLEMS = 10


@dataclass
class TrainConfig:
    """Every option of `hierafash train`; the defaults are the paper's (method.md §2.5)."""

    dataset: Path
    base: Path
    output: Path
    mode: str = "controlnet"  # controlnet (the paper), lora, or base (UNet and ControlNet together, from scratch)
    controlnet: Path | None = None  # start the ControlNet from this file (else: a copy of the UNet encoder)
    tokenizer: Path | None = None  # CLIP vocab.json + merges.txt (default: ComfyUI's comfy/sd1_tokenizer)
    split: str = "train"
    steps: int = 1000  # optimizer steps
    max_minutes: float = 0.0  # stop (and export) after this much training time; 0: no limit
    batch_size: int = 4  # per process
    grad_accum: int = 1
    lr: float = 1e-5
    lr_warmup_steps: int = 0  # linear warm-up from lr / N to lr over the first N steps
    precision: str = "fp32"
    seed: int = 0
    checkpoint_every: int = 0  # 0: only the final export
    resume: str | None = None  # a checkpoint folder, or "latest"
    sample_every: int = 0  # 0: no sample grids
    sample_count: int = 2
    sample_steps: int = 20
    guidance: float = 9.0
    empty_prompts: float = 0.0  # share of captions emptied per step (caption dropout, for cfg > 1)
    cache_text: bool = False
    lora_rank: int = 8
    lora_alpha: float | None = None  # default: the rank (scale 1)
    prediction_type: str | None = None  # default: the base model's scheduler config
    save_dtype: str = "fp32"
    progress: bool = True
    boundaries: tuple = PAPER_BOUNDARIES

    def __post_init__(self):
        self.dataset, self.base, self.output = Path(self.dataset), Path(self.base), Path(self.output)
        checks = [("mode", self.mode in MODES, f"one of {', '.join(MODES)}"),
                  ("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
                  ("save_dtype", self.save_dtype in SAVE_DTYPES, f"one of {', '.join(SAVE_DTYPES)}"),
                  ("prediction_type", self.prediction_type in (None, *PREDICTION_TYPES),
                   f"one of {', '.join(PREDICTION_TYPES)}"),
                  ("steps", self.steps >= 1, "at least 1"),
                  ("max_minutes", self.max_minutes >= 0, "0 or more"),
                  ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("grad_accum", self.grad_accum >= 1, "at least 1"), ("lr", self.lr > 0, "positive"),
                  ("lr_warmup_steps", self.lr_warmup_steps >= 0, "0 or more"),
                  ("lora_rank", self.lora_rank >= 1, "at least 1"),
                  ("empty_prompts", 0 <= self.empty_prompts < 1, "in [0, 1)")]
        for name, ok, need in checks:
            if not ok:
                raise HieraFashError(f"{getattr(self, name)!r} is not valid: it must be {need}", name)


@dataclass
class TrainResult:
    step: int
    losses: list[float]  # one per optimizer step of this run (all ranks averaged)
    export: Path | None
    trained: torch.nn.Module = field(repr=False)  # the ControlNet, or the UNet carrying the LoRA
    base: models.BaseModel = field(repr=False)  # the frozen models as trained with


def checked_samples(config: TrainConfig, tokenizer):
    """The split's samples, after the validator passed; DatasetError listing the problems otherwise."""
    report = check_dataset(config.dataset, splits=(config.split,), tokenizer=tokenizer)
    if not report.ok:
        listed = "\n".join(f"  {p}" for p in report.errors[:MAX_LISTED_PROBLEMS])
        more = len(report.errors) - MAX_LISTED_PROBLEMS
        raise DatasetError(f"dataset {config.dataset} has {len(report.errors)} error(s); fix them and run again:\n"
                           f"{listed}" + (f"\n  ... and {more} more" if more > 0 else ""), "dataset")
    return read_split(config.dataset, config.split), report.warnings


def seeded_generator(seed: int, *parts: int) -> torch.Generator:
    """A CPU generator seeded from (seed, *parts): independent streams per purpose, step and rank."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0]))


def batch_indices(micro_step: int, n_samples: int, batch: int, rank: int, world: int, seed: int) -> list[int]:
    """This rank's sample indices at a micro-step: epochs are seeded permutations, split across ranks."""
    per_step = batch * world
    per_epoch = n_samples // per_step
    epoch, k = divmod(micro_step, per_epoch)
    order = torch.randperm(n_samples, generator=seeded_generator(seed, 1, epoch))
    start = k * per_step + rank * batch
    return order[start:start + batch].tolist()


def latest_checkpoint(output: Path) -> Path | None:
    found = sorted((output / "checkpoints").glob("step-*"))
    return found[-1] if found else None


def _resume_dir(config: TrainConfig) -> Path | None:
    if config.resume is None:
        return None
    path = latest_checkpoint(config.output) if config.resume == "latest" else Path(config.resume)
    if path is None or not (path / "state.json").is_file():
        raise HieraFashError(f"no checkpoint at {path or config.output / 'checkpoints'}: pass a "
                             f"checkpoints/step-NNNNNN folder of an earlier run, or 'latest' with its --output",
                             "resume")
    return path


def save_loss_plot(log_path: Path, plot_path: Path) -> Path:
    """The loss curve (from the JSONL log) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (hierarchical objective)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)
    return plot_path


class JointDenoiser(torch.nn.Module):
    """The UNet and its ControlNet as one trained module (mode "base"), so distributed training syncs both."""

    def __init__(self, unet, controlnet, weight_dtype):
        super().__init__()
        self.unet, self.controlnet, self.weight_dtype = unet, controlnet, weight_dtype

    def forward(self, noisy, t, context, pose):
        return predict_noise(self.unet, self.controlnet, noisy, t, context, pose, self.weight_dtype)


def training_loss(base, unet, controlnet, encode, batch, generator, weight_dtype, device,
                  boundaries=PAPER_BOUNDARIES, denoiser=None, empty_prompts=0.0) -> torch.Tensor:
    """One micro-batch's hierarchical loss: VAE latents, t per sample, C(t), noise, MSE. `denoiser`, when
    given, predicts instead of (unet, controlnet): the prepared JointDenoiser of mode "base"."""
    pose = batch["pose"].to(device, weight_dtype)
    with torch.no_grad():
        latents = models.encode_latents(base.vae, batch["target"].to(device, weight_dtype), generator)

    def predict(noisy, t, context):
        if denoiser is not None:
            return denoiser(noisy, t, context, pose)
        return predict_noise(unet, controlnet, noisy, t, context, pose, weight_dtype)

    loss, _ = hierarchical_loss(predict, encode, latents, batch["caption"], base.noise_scheduler.alphas_cumprod,
                                base.noise_scheduler.config.prediction_type, generator, boundaries, empty_prompts)
    return loss


def train(config: TrainConfig) -> TrainResult:
    """Train the ControlNet (or a UNet LoRA, or UNet and ControlNet together) with C(t); export at the end."""
    AcceleratorState._reset_state()  # accelerate keeps one state per process: let a later run pick its own precision
    accelerator = Accelerator(mixed_precision=PRECISIONS[config.precision],
                              gradient_accumulation_steps=config.grad_accum)
    resume = _resume_dir(config)
    tokenizer = models.load_tokenizer(models.tokenizer_dir(config.base, config.tokenizer), pad_with_zero=False)
    samples, warnings = checked_samples(config, tokenizer)  # before any model loads: bad data fails fast
    per_step = config.batch_size * accelerator.num_processes
    if len(samples) < per_step:
        raise HieraFashError(f"{len(samples)} samples is fewer than batch size x processes = {per_step}: lower "
                             f"--batch-size or add samples", "batch_size")
    if warnings:
        accelerator.print(f"dataset: {len(warnings)} warning(s), e.g. {warnings[0]}")

    set_seed(config.seed)  # the same initial weights on every rank (new hint block, LoRA matrices)
    base = models.load_base(config.base, config.tokenizer, config.prediction_type)
    weight_dtype = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[accelerator.mixed_precision]
    device = accelerator.device
    if config.mode == "controlnet":
        controlnet = models.load_controlnet(base.unet, config.controlnet).to(device)
        controlnet.train()
        trained = controlnet
    elif config.mode == "base":
        controlnet = models.load_controlnet(base.unet, config.controlnet).to(device)
        base.unet.requires_grad_(True)
        for m in (base.unet, controlnet):
            m.train()
        trained = JointDenoiser(base.unet, controlnet, weight_dtype)
    else:
        from peft import LoraConfig

        controlnet = (models.load_controlnet(base.unet, config.controlnet).requires_grad_(False)
                      .to(device, weight_dtype) if config.controlnet else None)
        base.unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                                         init_lora_weights="gaussian", target_modules=LORA_TARGETS))
        trained = base.unet
    base.unet.to(device, weight_dtype)
    base.vae.to(device, weight_dtype)
    base.text_encoder.to(device, weight_dtype)
    params = [p for p in trained.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()  # the trained weights stay fp32 under mixed precision
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    model, optimizer = accelerator.prepare(trained, optimizer)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s, config.lr_warmup_steps))
    accelerator.register_for_checkpointing(warmup)  # not prepared: accelerate would step it once per process
    unet = model if config.mode == "lora" else base.unet
    net = model if config.mode == "controlnet" else controlnet
    denoiser = model if config.mode == "base" else None

    encode = TextEncoder(base.tokenizer, base.text_encoder, device, weight_dtype, cache=config.cache_text)
    if config.cache_text:
        encode.prefill([s.caption for s in samples])
    images = SampleImages(samples)

    start_step = 0
    log_path = config.output / "loss.jsonl"
    if resume:
        accelerator.load_state(str(resume))
        start_step = json.loads((resume / "state.json").read_text())["step"]
    if accelerator.is_main_process:
        config.output.mkdir(parents=True, exist_ok=True)
        kept = log_path.read_text().splitlines()[:start_step] if resume and log_path.exists() else []
        log_path.write_text("".join(line + "\n" for line in kept))

    losses = []
    bar = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps,
               disable=not (config.progress and accelerator.is_main_process), desc="train")
    started = time.perf_counter()
    for step in bar:
        step_loss = 0.0
        for k in range(config.grad_accum):
            micro = step * config.grad_accum + k
            rows = batch_indices(micro, len(samples), config.batch_size, accelerator.process_index,
                                 accelerator.num_processes, config.seed)
            batch = collate([images[i] for i in rows])
            generator = seeded_generator(config.seed, 2, micro, accelerator.process_index)
            with accelerator.accumulate(model), accelerator.autocast():
                loss = training_loss(base, unet, net, encode, batch, generator, weight_dtype, device,
                                     config.boundaries, denoiser, config.empty_prompts)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
            step_loss += accelerator.gather(loss.detach()).mean().item() / config.grad_accum
        step_lr = warmup.get_last_lr()[0]
        warmup.step()
        losses.append(step_loss)
        done = step + 1
        bar.set_postfix(loss=f"{step_loss:.4f}")
        if accelerator.is_main_process:
            with log_path.open("a") as log:
                log.write(json.dumps({"step": done, "loss": step_loss, "lr": step_lr,
                                      "seconds": round(time.perf_counter() - started, 3)}) + "\n")
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
            save_checkpoint(accelerator, config.output / "checkpoints" / f"step-{done:06d}", done)
        if config.sample_every and done % config.sample_every == 0:
            save_samples(accelerator, config, base, unet, net, encode, images, weight_dtype, done)
        if config.max_minutes and out_of_time(accelerator, started, config.max_minutes):
            break
    bar.close()

    export = None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        export = export_trained(accelerator.unwrap_model(model), config, base)
        if log_path.read_text():
            save_loss_plot(log_path, config.output / "loss.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(start_step + len(losses), losses, export, accelerator.unwrap_model(model), base)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The share of the learning rate at optimizer step `step` (from 0): 1/N, 2/N, ... then 1. A fresh AdamW's
    first update moves every weight by the full lr, which undoes much of a trained model (--controlnet, --base
    from an earlier run); ramping up avoids that."""
    return 1.0 if warmup_steps == 0 else min(1.0, (step + 1) / warmup_steps)


def out_of_time(accelerator: Accelerator, started: float, max_minutes: float) -> bool:
    """Whether the time budget is spent, as the main process sees it, so every rank stops at the same step."""
    spent = torch.tensor([float(time.perf_counter() - started > 60 * max_minutes)], device=accelerator.device)
    return bool(accelerate_broadcast(spent).item())


def save_checkpoint(accelerator: Accelerator, folder: Path, step: int) -> None:
    """Model, optimizer and RNG state (accelerate), plus the step, for `--resume`."""
    accelerator.wait_for_everyone()
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / "state.json").write_text(json.dumps({"step": step}))
    accelerator.wait_for_everyone()


def save_samples(accelerator, config, base, unet, controlnet, encode, images, weight_dtype, step) -> None:
    """A grid (pose | target | sample) for the first samples, drawn with C(t), on the main process."""
    if accelerator.is_main_process:
        items = [images[i] for i in range(min(config.sample_count, len(images)))]
        batch = collate(items)
        poses = batch["pose"].to(accelerator.device, weight_dtype)
        nets = [m for m in (accelerator.unwrap_model(unet), controlnet and accelerator.unwrap_model(controlnet))
                if m is not None]
        modes = [m.training for m in nets]
        for m in nets:
            m.eval()
        drawn = sample_hierarchical(nets[0], nets[1] if len(nets) > 1 else None, base.vae, encode,
                                    base.noise_scheduler.config, batch["caption"], poses, config.sample_steps,
                                    config.guidance, config.seed, weight_dtype, config.boundaries)
        for m, mode in zip(nets, modes):
            m.train(mode)
        rows = [[item["pose"] * 2 - 1, item["target"], image] for item, image in zip(items, drawn)]
        save_grid(config.output / "samples" / f"step-{step:06d}.png", rows)
    accelerator.wait_for_everyone()


def export_trained(trained: torch.nn.Module, config: TrainConfig, base: models.BaseModel) -> Path:
    """The ControlNet as ldm `control_model.*` safetensors, or the LoRA in kohya keys: what stock ComfyUI loads.
    Mode "base" also writes OUTPUT/base/, a diffusers folder (fp32) of the trained UNet beside the frozen parts,
    which `--base` takes for further training; it returns that folder."""
    dtype = SAVE_DTYPES[config.save_dtype]
    meta = {"hierafashdiff.training": json.dumps({k: str(v) for k, v in asdict(config).items()})}
    if config.mode == "base":
        folder = models.save_base_folder(
            config.output / "base", {"unet": trained.unet, "vae": base.vae, "text_encoder": base.text_encoder,
                                     "scheduler": base.noise_scheduler},
            models.tokenizer_dir(config.base, config.tokenizer))  # the tokenizer it was trained with
        state = controlnet_to_ldm(trained.controlnet.state_dict(), trained.controlnet.config)
        save_file({k: v.detach().to(dtype).contiguous() for k, v in state.items()},
                  str(config.output / "controlnet.safetensors"), metadata=meta)
        return folder
    if config.mode == "controlnet":
        state = controlnet_to_ldm(trained.state_dict(), trained.config)
        path = config.output / "controlnet.safetensors"
    else:
        from peft.utils import get_peft_model_state_dict

        state = lora_to_kohya(get_peft_model_state_dict(trained), config.lora_alpha or config.lora_rank)
        path = config.output / "lora.safetensors"
    save_file({k: v.detach().to(dtype).contiguous() for k, v in state.items()}, str(path), metadata=meta)
    return path
