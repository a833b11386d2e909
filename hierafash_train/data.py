"""Batches from the dataset (target in [-1, 1], pose in [0, 1], raw caption), and the text encoder with its cache.

Captions stay raw until the loop has drawn t: the objective truncates each to C(t) before encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from hierafash_core.dataset import Sample
from hierafash_core.objective import distinct_captions


def load_image(path, scale: str) -> torch.Tensor:
    """RGB image -> [3, H, W] float: 'signed' to [-1, 1] (the target), 'unit' to [0, 1] (the pose hint)."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    return tensor * 2 - 1 if scale == "signed" else tensor


class SampleImages(torch.utils.data.Dataset):
    def __init__(self, samples: Sequence[Sample]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        return {"target": load_image(sample.gt, "signed"), "pose": load_image(sample.pose, "unit"),
                "caption": sample.caption}


def collate(items: list[dict]) -> dict:
    return {"target": torch.stack([i["target"] for i in items]), "pose": torch.stack([i["pose"] for i in items]),
            "caption": [i["caption"] for i in items]}


class TextEncoder:
    """Frozen CLIP text encoder: captions -> [B, 77, dim] hidden states (last layer, as diffusers' SD pipelines).

    With `cache`, each distinct text is encoded once and kept on the CPU; a caption has at most seven distinct
    truncations, so a dataset of N captions encodes at most 7 N texts over the whole run.
    """

    def __init__(self, tokenizer, text_encoder, device, dtype, cache: bool = False):
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.device, self.dtype = device, dtype
        self.cache: dict[str, torch.Tensor] | None = {} if cache else None

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    def prefill(self, captions: Sequence[str], batch: int = 32) -> int:
        """Encode every truncation of these captions now; returns how many distinct texts the cache holds."""
        texts = sorted({c for caption in captions for c in distinct_captions(caption)} - set(self.cache))
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            for text, hidden in zip(chunk, self._encode(chunk).cpu()):
                self.cache[text] = hidden
        return len(self.cache)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self.cache is None:
            return self._encode(texts)
        missing = sorted(set(texts) - set(self.cache))
        if missing:
            for text, hidden in zip(missing, self._encode(missing).cpu()):
                self.cache[text] = hidden
        return torch.stack([self.cache[t] for t in texts]).to(self.device)
