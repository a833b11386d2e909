"""Pictures for node previews: body-part regions tinted over an image."""

from __future__ import annotations

import torch

# One colour per body part, readable on photos and on the black pose render.
REGION_COLORS = {
    "clothing_length": (0.95, 0.35, 0.25),
    "hem": (0.95, 0.75, 0.20),
    "sleeve_length": (0.25, 0.60, 0.95),
    "sleeve_type": (0.25, 0.60, 0.95),
    "collar": (0.45, 0.90, 0.40),
    "custom": (0.85, 0.40, 0.90),
}


def overlay_regions(image: torch.Tensor, regions: dict, opacity: float = 0.45) -> torch.Tensor:
    """`image` [B, H, W, 3] with each region [B or 1, H, W] tinted in its colour (later regions on top)."""
    out = image[..., :3].clone()
    for kind, mask in regions.items():
        color = torch.tensor(REGION_COLORS.get(kind, REGION_COLORS["custom"]), dtype=out.dtype)
        alpha = (mask.reshape(-1, *mask.shape[-2:]).to(out) * opacity).unsqueeze(-1)
        out = out * (1 - alpha) + color * alpha
    return out
