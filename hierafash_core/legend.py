"""A colour legend under a preview image, so that a tinted region can be read without knowing the colours.

Pillow draws the text (it comes with ComfyUI and torchvision); it is imported where the legend is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .preview import overlay_regions
from .vocab import attribute_kind, attribute_label, is_vocabulary_kind, region_color

SWATCH = 14  # legend swatch side, pixels at a 512-pixel-wide image
MIN_SCALE = 1.0


def legend_rows(width: int, entries: Sequence[tuple[str, tuple[float, float, float]]]) -> np.ndarray:
    """An [h, width, 3] float strip listing each (label, rgb) as a swatch and its label, wrapped to the width."""
    from PIL import Image, ImageDraw, ImageFont

    scale = max(MIN_SCALE, width / 512)
    font = ImageFont.load_default(size=round(12 * scale))
    swatch, pad = round(SWATCH * scale), round(6 * scale)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cells = [(label, rgb, swatch + pad + round(measure.textlength(label, font=font)) + 2 * pad)
             for label, rgb in entries]
    lines, line, used = [], [], pad
    for cell in cells:
        if line and used + cell[2] > width:
            lines.append(line)
            line, used = [], pad
        line.append(cell)
        used += cell[2]
    lines.append(line)
    row_height = swatch + 2 * pad
    canvas = Image.new("RGB", (width, row_height * len(lines)), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    for n, line in enumerate(lines):
        x, y = pad, n * row_height + pad
        for label, rgb, cell_width in line:
            draw.rectangle([x, y, x + swatch, y + swatch], fill=tuple(round(255 * c) for c in rgb))
            draw.text((x + swatch + pad, y + swatch / 2), label, fill=(235, 235, 235), font=font, anchor="lm")
            x += cell_width
    return np.asarray(canvas, dtype=np.float32) / 255


def with_legend(images: torch.Tensor, entries: Sequence[tuple[str, tuple[float, float, float]]]) -> torch.Tensor:
    """`images` [B, H, W, 3] with the legend added below each (taller images; nothing of the picture covered)."""
    if not entries:
        return images
    strip = torch.from_numpy(legend_rows(images.shape[2], entries)).to(images)
    return torch.cat([images, strip.expand(images.shape[0], -1, -1, -1)], dim=1)


def region_preview(backdrop: torch.Tensor, regions: dict) -> torch.Tensor:
    """`backdrop` [B, H, W, 3] tinted with every region {kind: [B or 1, H, W]} and a legend naming each colour;
    kinds that share one region (sleeve length and sleeve type) share one legend entry."""
    groups: list[tuple[list[str], torch.Tensor]] = []
    for kind, mask in regions.items():
        same = next((g for g in groups if g[1].shape == mask.shape and torch.equal(g[1], mask)), None)
        if same:
            same[0].append(kind)
        else:
            groups.append(([kind], mask))
    shown = {kinds[0]: mask for kinds, mask in groups}
    entries = []
    for kinds, mask in groups:
        names = ", ".join(attribute_label(k) for k in kinds)
        ids = ", ".join(attribute_kind(k).id for k in kinds if is_vocabulary_kind(k))
        empty = "" if bool(mask.gt(0).any()) else ": empty"
        entries.append((f"{names} ({ids}){empty}" if ids else f"{names}{empty}", region_color(kinds[0])))
    return with_legend(overlay_regions(backdrop, shown), entries)
