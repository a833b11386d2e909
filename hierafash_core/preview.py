"""Pictures for node previews: body-part regions tinted over an image."""

from __future__ import annotations

import torch

from .vocab import region_color


def overlay_regions(image: torch.Tensor, regions: dict, opacity: float = 0.45) -> torch.Tensor:
    """`image` [B, H, W, 3] with each region [B or 1, H, W] tinted in its kind's colour (later regions on top)."""
    out = image[..., :3].clone()
    for kind, mask in regions.items():
        color = torch.tensor(region_color(kind), dtype=out.dtype)
        alpha = (mask.reshape(-1, *mask.shape[-2:]).to(out) * opacity).unsqueeze(-1)
        out = out * (1 - alpha) + color * alpha
    return out
