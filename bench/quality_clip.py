"""A tiny CLIP trained on the synthetic figures: the feature extractor behind the benchmark's FID, Coverage and
CLIP-S (hierafash_core.metrics), since no pretrained CLIP can be downloaded here and a random one measures nothing.

- Image tower: four strided 3×3 convolutions over the figure at half size (64 × 96), the 4 × 6 map flattened
  (where a hem or a sleeve ends is position, which a global pool would lose), one linear layer to 128-d.
- Text tower: one learned vector per (field, value) of the caption's ten items, summed (a bag of items: the
  synthetic captions' order carries nothing), one linear layer to 128-d. Values never seen in training share
  one vector per field.
- Symmetric InfoNCE with a learned temperature, as CLIP. Trained on freshly drawn figures with a little pixel
  noise (a model's drafts are never clean renders), seeded, on the CPU in about a minute.

A ruler must be shown to measure: `zero_shot_accuracy` reads each field back from held-out figures (the truth
caption against the same caption with that field set to each other drawn value), as CLIP's zero-shot test does.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hierafash_core import oracles, synthetic

FIELDS = ("category", "style", "occasion", "effect", "feeling", "clothing_length", "sleeve_length", "sleeve_type",
          "collar", "hem")
UNSEEN = "<unseen>"
WIDTH, HEIGHT = synthetic.DEFAULT_SIZE[0] // 2, synthetic.DEFAULT_SIZE[1] // 2
EMBED = 128


class TinyClip(torch.nn.Module):
    def __init__(self, vocabulary: list[str]):
        super().__init__()
        self.vocabulary = vocabulary
        self.index = {token: i for i, token in enumerate(vocabulary)}
        channels = (3, 32, 64, 128, 128)
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(a, b, 3, stride=2, padding=1)
                                         for a, b in zip(channels, channels[1:]))
        self.image_out = torch.nn.Linear(128 * (HEIGHT // 16) * (WIDTH // 16), EMBED)
        self.items = torch.nn.EmbeddingBag(len(vocabulary), EMBED, mode="sum")
        self.text_out = torch.nn.Linear(EMBED, EMBED)
        self.log_scale = torch.nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, 96, 64] in 0..1 -> unit [N, 128]."""
        x = images * 2 - 1
        for conv in self.convs:
            x = F.gelu(conv(x))
        return F.normalize(self.image_out(x.flatten(1)), dim=1)

    def encode_garments(self, garments) -> torch.Tensor:
        """Garments (synthetic.Garment) -> unit [N, 128]."""
        tokens = torch.tensor([[self.index.get(f"{f}={getattr(g, f)}", self.index[f"{f}={UNSEEN}"]) for f in FIELDS]
                               for g in garments])
        return F.normalize(self.text_out(self.items(tokens)), dim=1)


def as_input(images) -> torch.Tensor:
    """[H, W, 3] float 0..1 arrays at the figure size -> [N, 3, 96, 64] (2 × 2 means)."""
    x = torch.as_tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2)
    return F.avg_pool2d(x, 2)


def draw(specs) -> list[np.ndarray]:
    """The figures' images at the default size (no pose maps: the tiny CLIP does not read them)."""
    width, height = synthetic.DEFAULT_SIZE
    return [synthetic.colorize(synthetic.draw_labels(s, width, height), s.garment.color) for s in specs]


def train(count: int = 3000, steps: int = 600, batch: int = 96, seed: int = 0, noise: float = 0.03) -> TinyClip:
    """A tiny CLIP trained on `count` figures drawn at `seed` (never the benchmark's dataset seed)."""
    torch.manual_seed(seed)
    specs = synthetic.sample_figures(count, seed)
    vocabulary = sorted({f"{f}={getattr(s.garment, f)}" for s in specs for f in FIELDS} |
                        {f"{f}={UNSEEN}" for f in FIELDS})
    model = TinyClip(vocabulary)
    images = as_input(draw(specs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randperm(count, generator=generator)[:batch]
        pixels = images[rows] + noise * torch.randn(images[rows].shape, generator=generator)
        logits = model.encode_images(pixels) @ model.encode_garments([specs[i].garment for i in rows]).T
        logits = logits * model.log_scale.exp()
        labels = torch.arange(len(rows))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def image_features(model: TinyClip, images) -> np.ndarray:
    return model.encode_images(as_input(images)).numpy()


@torch.no_grad()
def text_features(model: TinyClip, garments) -> np.ndarray:
    return model.encode_garments(garments).numpy()


@torch.no_grad()
def zero_shot_accuracy(model: TinyClip, specs, images) -> dict[str, tuple[int, int]]:
    """Per drawn field: (figures whose true value scores highest among the drawn values, figures showing the
    field). As for the oracles, a sleeveless figure shows no sleeve type and a jumpsuit no hem."""
    features = torch.as_tensor(image_features(model, images))
    scores = {}
    for field, values in synthetic.DRAWN_VALUES.items():
        correct = shown = 0
        for spec, feature in zip(specs, features, strict=True):
            if oracles.truth(spec)[field] is None:
                continue
            options = [replace(spec.garment, **{field: v}) for v in values]
            best = int((torch.as_tensor(text_features(model, options)) @ feature).argmax())
            correct += values[best] == getattr(spec.garment, field)
            shown += 1
        scores[field] = (correct, shown)
    return scores


def save(model: TinyClip, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "tiny_clip.pt")
    (folder / "vocabulary.json").write_text(json.dumps(model.vocabulary))
    return folder


def load(folder: Path) -> TinyClip:
    model = TinyClip(json.loads((folder / "vocabulary.json").read_text()))
    model.load_state_dict(torch.load(folder / "tiny_clip.pt", weights_only=True))
    return model.eval()
