"""The frozen base (UNet, VAE, text encoder), its tokenizer and the ControlNet, loaded offline.

Single-file SD 1.5 / SD 2.x checkpoints (ldm layout, as the pack's converted `hierafashdiff_sd21.safetensors`)
load through diffusers' single-file code with the small configs shipped in `configs/`; a diffusers folder
(unet/, vae/, text_encoder/, scheduler/) loads as it is. Nothing here reaches a model hub.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers/transformers read it: never reach a hub

import torch  # noqa: E402
from diffusers import AutoencoderKL, AutoencoderTiny, ControlNetModel, DDPMScheduler, UNet2DConditionModel  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import CLIPTextModel, CLIPTokenizer  # noqa: E402

from hierafash_core.errors import HieraFashError  # noqa: E402

from .export import controlnet_from_ldm, is_ldm_controlnet  # noqa: E402

CONFIGS = Path(__file__).parent / "configs"
CROSS_ATTENTION_KEY = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
FAMILY_BY_CONTEXT = {768: "sd15", 1024: "sd21-base"}
MAX_TOKENS = 77


class ModelError(HieraFashError):
    """A model file that cannot be used; the message names it and says what to pass instead."""


@dataclass
class BaseModel:
    unet: UNet2DConditionModel
    vae: AutoencoderKL | AutoencoderTiny
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    noise_scheduler: DDPMScheduler


def _checkpoint_keys(path: Path) -> dict[str, tuple[int, ...]]:
    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = state.get("state_dict", state)
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def detect_family(path: Path) -> str:
    """'sd15' or 'sd21-base' from the UNet's cross-attention width; ModelError for anything else."""
    shapes = _checkpoint_keys(path)
    shape = shapes.get(CROSS_ATTENTION_KEY)
    family = FAMILY_BY_CONTEXT.get(shape[1]) if shape else None
    if family is None:
        raise ModelError(f"{path} is not an SD 1.5 or SD 2.x checkpoint in the ldm layout (no "
                         f"{CROSS_ATTENTION_KEY} of width 768 or 1024): pass such a file, e.g. the pack's "
                         f"converted hierafashdiff_sd21.safetensors, or a diffusers folder", "base")
    return family


def default_tokenizer_dir() -> Path:
    """ComfyUI's CLIP BPE vocabulary (`comfy/sd1_tokenizer`): the same BPE serves SD 1.x and SD 2.x."""
    from hierafash_cli.runtime import comfyui_dir

    return Path(comfyui_dir()) / "comfy" / "sd1_tokenizer"


def tokenizer_dir(base: Path, tokenizer: Path | None) -> Path:
    """The tokenizer folder: the one given, a diffusers folder's own tokenizer/, else ComfyUI's."""
    if tokenizer:
        return Path(tokenizer)
    own = Path(base) / "tokenizer"
    return own if own.is_dir() else default_tokenizer_dir()


def load_tokenizer(folder: Path, pad_with_zero: bool) -> CLIPTokenizer:
    """The CLIP tokenizer, 77 tokens; SD 2.x (OpenCLIP) pads with id 0, i.e. `pad_token="!"`."""
    folder = Path(folder)
    if not (folder / "vocab.json").is_file() or not (folder / "merges.txt").is_file():
        raise ModelError(f"no CLIP tokenizer (vocab.json, merges.txt) in {folder}: pass --tokenizer with a folder "
                         f"holding them, e.g. ComfyUI's comfy/sd1_tokenizer", "tokenizer")
    extra = {"pad_token": "!"} if pad_with_zero else {}
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_TOKENS, local_files_only=True, **extra)


def pads_with_zero(unet: UNet2DConditionModel) -> bool:
    """SD 2.x (linear projections in its transformers) uses OpenCLIP's zero padding; SD 1.x pads with the end token."""
    return bool(unet.config.use_linear_projection)


def load_base(base: Path | str, tokenizer: Path | None = None, prediction_type: str | None = None) -> BaseModel:
    """The base model from a single-file checkpoint or a diffusers folder, offline, frozen, on the CPU."""
    base = Path(base)
    if not base.exists():
        raise ModelError(f"{base} does not exist: pass an SD 1.5/2.x .safetensors/.ckpt or a diffusers folder",
                         "base")
    if base.is_dir():
        parts = {name: base / name for name in ("unet", "vae", "text_encoder", "scheduler")}
        missing = [name for name, p in parts.items() if not p.is_dir()]
        if missing:
            raise ModelError(f"diffusers folder {base} lacks {', '.join(missing)}/: pass a folder with unet/, vae/, "
                             f"text_encoder/ and scheduler/, or a single-file checkpoint", "base")
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet", local_files_only=True)
        vae = load_vae(base / "vae")
        text_encoder = CLIPTextModel.from_pretrained(base / "text_encoder", local_files_only=True)
        scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler", local_files_only=True)
    else:
        from diffusers import StableDiffusionPipeline

        config = CONFIGS / detect_family(base)
        pipe = StableDiffusionPipeline.from_single_file(
            str(base), config=str(config), local_files_only=True, safety_checker=None, feature_extractor=None,
            tokenizer=load_tokenizer(tokenizer_dir(base, tokenizer), pad_with_zero=True), requires_safety_checker=False)
        unet, vae, text_encoder = pipe.unet, pipe.vae, pipe.text_encoder
        scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    if prediction_type:
        scheduler = DDPMScheduler.from_config(scheduler.config, prediction_type=prediction_type)
    tokenizer = load_tokenizer(tokenizer_dir(base, tokenizer), pads_with_zero(unet))
    for model in (unet, vae, text_encoder):
        model.requires_grad_(False)
        model.eval()
    return BaseModel(unet, vae, text_encoder, tokenizer, scheduler)


BASE_PARTS = ("unet", "vae", "text_encoder", "scheduler")
TOKENIZER_FILES = ("vocab.json", "merges.txt")  # the BPE files load_tokenizer reads


def save_base_folder(folder: Path, parts: dict, tokenizer: Path) -> Path:
    """Write a diffusers folder that `load_base` reads: `parts` (unet, vae, text_encoder, scheduler) and the
    BPE files of the `tokenizer` folder."""
    for name in BASE_PARTS:
        parts[name].save_pretrained(Path(folder) / name)
    (Path(folder) / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(Path(tokenizer) / name, Path(folder) / "tokenizer" / name)
    return Path(folder)


def load_vae(folder: Path) -> AutoencoderKL | AutoencoderTiny:
    """A diffusers VAE folder: AutoencoderKL (SD's), or AutoencoderTiny (a TAESD) when its config says so."""
    config = json.loads((Path(folder) / "config.json").read_text())
    kind = AutoencoderTiny if config.get("_class_name") == "AutoencoderTiny" else AutoencoderKL
    return kind.from_pretrained(folder, local_files_only=True)


def encode_latents(vae, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images in [-1, 1] -> the UNet's latents (scaled): a posterior sample for AutoencoderKL, a TAESD's own."""
    encoded = vae.encode(images)
    raw = encoded.latents if isinstance(vae, AutoencoderTiny) else encoded.latent_dist.sample(generator=generator)
    return raw.float() * vae.config.scaling_factor


def vae_downscale(vae) -> int:
    """How many pixels one latent covers along a side (8 for SD's VAE and for TAESD)."""
    config = vae.config
    levels = config.encoder_block_out_channels if isinstance(vae, AutoencoderTiny) else config.block_out_channels
    return 2 ** (len(levels) - 1)


def load_controlnet(unet: UNet2DConditionModel, path: Path | str | None = None) -> ControlNetModel:
    """A ControlNet with the UNet's trunk: copied from the UNet (zero convs at zero), or read from a file
    (ldm `control_model.*` layout, as the pack's converted pose ControlNet, or diffusers keys)."""
    if path is None:
        return ControlNetModel.from_unet(unet)
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path} does not exist: pass a ControlNet .safetensors, or omit --controlnet to start "
                         f"from the UNet", "controlnet")
    controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
    state = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu",
                                                                                  weights_only=True)
    if is_ldm_controlnet(state):
        state = controlnet_from_ldm(state, controlnet.config)
    try:
        result = controlnet.load_state_dict(state, strict=False)
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"{path} does not fit this base model's ControlNet ({str(exc).splitlines()[0]}): pass a "
                         f"ControlNet trained for this base, or omit --controlnet", "controlnet") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(f"{path} does not fit this base model's ControlNet ({len(result.missing_keys)} missing, "
                         f"{len(result.unexpected_keys)} unexpected keys, e.g. "
                         f"{(result.missing_keys or result.unexpected_keys)[0]}): pass a ControlNet trained for "
                         f"this base, or omit --controlnet", "controlnet")
    return controlnet
