"""Tiny, seeded, SD2-style models and a tiny dataset, built at test time (no download).

The shapes are what stock ComfyUI accepts for an exported ControlNet: channels in multiples of 64 (its
detected ControlNets use 64-channel heads and GroupNorm(32)), the 16/32/96/256 hint block, and a VAE that
downsamples 8x as the hint block does. The UNet uses linear projections (SD 2.x), so the tokenizer pads
with id 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CONTEXT_DIM = 32
SD15_CONTEXT_DIM = 768
CAPTIONS = [
    "Dress, Elegant, Party, Elongate Neck, Sense of Agility and Elegance, Long Dress, Short Sleeve, "
    "Regular Sleeve, V-Neck, Draped Hem",
    "Coat, British Style, Office, Youthful, Drape Feeling, Knee-length Coat, Long Sleeve, Shirt Sleeve, "
    "Lapel Collar, Flat Hem",
    "Skirt, Sweet, Date, Slimming, Playful Feeling, Short Skirt, Sleeveless, Regular Sleeve, Round Collar, "
    "Ruffle Hem",
    "Blouse, Casual, Travel, Youthful, Crisp Feeling, Short Blouse, Elbow-length Sleeve, Puffed Sleeve, "
    "Square Collar, Curved Hem",
]


def build_base(folder: Path, seed: int = 0, like_comfy_tiny_sd15: bool = False) -> Path:
    """A diffusers folder (unet/, vae/, text_encoder/, scheduler/, tokenizer/) of tiny random models.

    `like_comfy_tiny_sd15`: the UNet (and so the ControlNet) of the comfy tier's tiny_sd15 checkpoint
    (tests/support/build_tiny_models.py: 320 channels, one level, context 768, SD1-style), so a ControlNet
    trained on it runs beside that checkpoint in ComfyUI.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from hierafash_train.models import default_tokenizer_dir, save_base_folder

    torch.manual_seed(seed)
    context = SD15_CONTEXT_DIM if like_comfy_tiny_sd15 else CONTEXT_DIM
    if like_comfy_tiny_sd15:
        unet = UNet2DConditionModel(
            sample_size=8, block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
            up_block_types=("CrossAttnUpBlock2D",), cross_attention_dim=context, attention_head_dim=8)
    else:
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, block_out_channels=(64, 128), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=context, attention_head_dim=(1, 2),
            use_linear_projection=True, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, latent_channels=4,
                        norm_num_groups=8, sample_size=64)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=context, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, projection_dim=context, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=0))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, prediction_type="epsilon", clip_sample=False)
    return save_base_folder(folder, {"unet": unet, "vae": vae, "text_encoder": text_encoder, "scheduler": scheduler},
                            default_tokenizer_dir())


def build_dataset(root: Path, n: int = 8, size=(64, 64), seed: int = 0) -> Path:
    """`n` samples in the official layout: a coloured figure on white, its pose map, a vocabulary caption."""
    rng = np.random.default_rng(seed)
    width, height = size
    entries = []
    for i in range(n):
        target = np.full((height, width, 3), 255, np.uint8)
        pose = np.zeros((height, width, 3), np.uint8)
        x0 = int(rng.integers(8, width // 2))
        y0 = int(rng.integers(4, height // 4))
        target[y0:height - 4, x0:x0 + width // 3] = rng.integers(0, 255, 3, dtype=np.uint8)
        pose[y0:height - 4, x0 + width // 6 - 1:x0 + width // 6 + 1] = (255, 0, 85)
        for kind, array in (("gt", target), ("pose", pose)):
            rel = f"train_images/{i:04d}.png" if kind == "gt" else f"train_pose/pose_images/{i:04d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / rel)
        entries.append({"gt": f"train_images/{i:04d}.png", "pose": f"train_pose/pose_images/{i:04d}.png",
                        "caption": CAPTIONS[i % len(CAPTIONS)]})
    (root / "train.json").write_text(json.dumps(entries, indent=1))
    (root / "test.json").write_text(json.dumps(entries[:2], indent=1))
    return root
