"""Sample grids during training, drawn with the hierarchical schedule: at each DDIM step t the prompt is C(t)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler
from PIL import Image

from hierafash_core.objective import caption_at
from hierafash_core.schedule import PAPER_BOUNDARIES

from .models import vae_downscale


def predict_noise(unet, controlnet, latents, t, context, pose, weight_dtype):
    """The UNet's prediction, with the ControlNet's residuals added when there is a ControlNet."""
    extra = {}
    if controlnet is not None:
        down, mid = controlnet(latents, t, encoder_hidden_states=context, controlnet_cond=pose, return_dict=False)
        extra = {"down_block_additional_residuals": [d.to(weight_dtype) for d in down],
                 "mid_block_additional_residual": mid.to(weight_dtype)}
    return unet(latents.to(weight_dtype), t, encoder_hidden_states=context.to(weight_dtype), **extra).sample


@torch.no_grad()
def sample_hierarchical(unet, controlnet, vae, encode, scheduler_config, captions, poses, steps=20, guidance=9.0,
                        seed=0, weight_dtype=torch.float32, boundaries=PAPER_BOUNDARIES) -> torch.Tensor:
    """Images in [-1, 1] for these captions and pose maps ([B, 3, H, W] in [0, 1]), DDIM with CFG."""
    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps)
    factor = vae_downscale(vae)
    batch, _, height, width = poses.shape
    shape = (batch, unet.config.in_channels, height // factor, width // factor)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(poses.device)
    latents = latents * scheduler.init_noise_sigma
    uncond = encode([""] * batch)
    for t in scheduler.timesteps:
        cond = encode([caption_at(c, int(t), boundaries) for c in captions])
        both = torch.cat([latents, latents])
        eps = predict_noise(unet, controlnet, both, t, torch.cat([uncond, cond]), torch.cat([poses, poses]),
                            weight_dtype).float()
        eps_uncond, eps_cond = eps.chunk(2)
        latents = scheduler.step(eps_uncond + guidance * (eps_cond - eps_uncond), t, latents).prev_sample
    return vae.decode((latents / vae.config.scaling_factor).to(weight_dtype)).sample.float().clamp(-1, 1)


def save_grid(path: Path, rows: list[list[torch.Tensor]]) -> Path:
    """Rows of [3, H, W] images in [-1, 1] (pose, target, sample per row) as one PNG."""
    tiles = [np.concatenate([((img.detach().cpu().float().permute(1, 2, 0).numpy() + 1) * 127.5)
                             .clip(0, 255).astype(np.uint8) for img in row], axis=1) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)
    return path
