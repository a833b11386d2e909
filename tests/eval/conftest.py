"""Tiny, seeded, real-architecture CLIPs (transformers CLIPModel) with ComfyUI's SD1 tokenizer, built offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hierafash_cli.runtime import RuntimeMissing, comfyui_dir

pytest.importorskip("transformers", reason="the eval extra (transformers) builds the CLIP: pip install -e .[eval]")
pytest.importorskip("scipy", reason="the eval extra (scipy) gives the matrix square root: pip install -e .[eval]")

TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")
CLIP_VOCAB = 49408  # the OpenAI BPE vocabulary ComfyUI ships for SD1


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    """ComfyUI's SD1 CLIP tokenizer folder (the OpenAI CLIP vocabulary), read in place."""
    try:
        folder = comfyui_dir() / "comfy" / "sd1_tokenizer"
    except RuntimeMissing as exc:
        pytest.skip(f"no ComfyUI tree for its CLIP tokenizer ({exc}); run `make setup`")
    if not (folder / "vocab.json").is_file():
        pytest.skip(f"{folder} holds no vocab.json")
    return folder


def build_tiny_clip(folder: Path, tokenizer_dir: Path, projection_dim: int, seed: int) -> Path:
    """Save a seeded CLIPModel (ViT-B/32 geometry, 2 tiny layers per tower) and the tokenizer into `folder`."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tower = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(text_config=tower | {"vocab_size": CLIP_VOCAB, "max_position_embeddings": 77},
                        vision_config=tower | {"image_size": 224, "patch_size": 32}, projection_dim=projection_dim)
    CLIPModel(config).eval().save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, folder / name)  # into the test's temp folder, never the repo
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory, tokenizer_dir) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), tokenizer_dir, projection_dim=16, seed=0)


@pytest.fixture(scope="session")
def wider_clip(tmp_path_factory, tokenizer_dir) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("wider_clip"), tokenizer_dir, projection_dim=24, seed=1)


def draw_figures(folder: Path, count: int, seed: int, size=(64, 88), prefix: str = "") -> list[Path]:
    """`count` portrait images: a garment-like block of a random colour and height on white, seeded."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        pixels = np.full((size[1], size[0], 3), 255, np.uint8)
        top, bottom = rng.integers(5, 30), rng.integers(50, size[1] - 2)
        pixels[top:bottom, 16:48] = rng.integers(0, 255, size=3)
        pixels += rng.integers(0, 8, size=pixels.shape, dtype=np.uint8) * (pixels < 248)
        path = folder / f"{prefix}{i:06d}_0.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def write_test_json(root: Path, stems: list[str], captions: list[str]) -> Path:
    """The dataset's test.json layout: a list of {pose, gt, caption}, paths relative to the root."""
    entries = [{"pose": f"test_pose/{s}.png", "gt": f"test_images/{s}.jpg", "caption": c}
               for s, c in zip(stems, captions)]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "test.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


@pytest.fixture
def figures():
    """draw_figures, for tests that need image folders."""
    return draw_figures


@pytest.fixture
def test_json():
    """write_test_json, for tests that need a dataset split file."""
    return write_test_json
