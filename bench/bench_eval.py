"""Evaluation feature extraction: batched + threaded decoding vs a naive per-image loop, and the cache-hit re-run.

Run from the repository root: `.venv-floor/bin/python bench/bench_eval.py [--images 96] [--geometry vit-b-32]`.
Builds a random-weight CLIP offline (the ViT-B/32 geometry of the paper's CLIP by default, or a tiny one),
draws portrait images at the official 512 x 704, and times, in one process, paired and interleaved:
  naive     open, crop and encode one image at a time (batch 1, no decoding threads);
  batched   `clip_features.image_features` (batch 32, decoding threads ahead of the forward);
  cache hit `clip_features.folder_features` once its cache entry exists (listing, key, load);
and the model-hash time that every run pays. Prints images/s and ratios of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hierafash_core import clip_features as cf  # noqa: E402

GEOMETRIES = {
    "vit-b-32": ({"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
                 {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12, "num_attention_heads": 8},
                 512),
    "tiny": ({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2},
             {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}, 16),
}


def build_clip(folder: Path, geometry: str) -> Path:
    """A seeded, random-weight CLIPModel with the given geometry, saved as an HF folder."""
    from transformers import CLIPConfig, CLIPModel

    vision, text, projection = GEOMETRIES[geometry]
    torch.manual_seed(0)
    config = CLIPConfig(vision_config=vision | {"image_size": 224, "patch_size": 32},
                        text_config=text | {"vocab_size": 49408, "max_position_embeddings": 77},
                        projection_dim=projection)
    CLIPModel(config).eval().save_pretrained(folder)
    return folder


def draw_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = np.full((704, 512, 3), 255, np.uint8)
        pixels[rng.integers(50, 200):rng.integers(400, 690), 120:390] = rng.integers(0, 255, size=3)
        pixels = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)  # texture to decode
        path = folder / f"{i:06d}_0.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def naive_features(clip: cf.LocalClip, paths) -> np.ndarray:
    """What a first attempt does: one image at a time, decoded on the calling thread."""
    return np.concatenate([clip.encode_crops(cf.load_clip_crop(p)[None]) for p in paths])


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="vit-b-32")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        clip_dir = build_clip(root / "clip", args.geometry)
        paths = draw_images(root / "images", args.images)
        clip = cf.load_clip(clip_dir, device=args.device)
        hash_s, _ = timed(cf.file_digest, [clip_dir / "config.json", clip_dir / "model.safetensors"])
        naive_features(clip, paths[:2]), cf.image_features(clip, paths[:2])  # warm-up: first-call allocations
        naive, batched = [], []
        for round_index in range(args.rounds):  # AB, BA, ...: slow drifts of the machine's load hit both alike
            order = (("naive", naive), ("batched", batched))[:: 1 if round_index % 2 == 0 else -1]
            for name, times in order:
                function = naive_features if name == "naive" else cf.image_features
                seconds, features = timed(function, clip, paths)
                times.append(seconds)
            assert features.shape == (args.images, clip.projection_dim)
        miss_s, _ = timed(cf.folder_features, clip, paths, root / "cache")
        hits = [timed(cf.folder_features, clip, paths, root / "cache")[0] for _ in range(5)]
        assert cf.folder_features(clip, paths, root / "cache").from_cache
    naive_s, batched_s, hit_s = statistics.median(naive), statistics.median(batched), statistics.median(hits)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"CLIP features, {args.geometry} geometry (random weights), {args.images} PNGs at 512x704, "
          f"device {clip.device}, torch threads {args.threads}, {os.cpu_count()} CPUs, load average {load}")
    print(f"naive per-image loop : {args.images / naive_s:8.1f} images/s  (median of {args.rounds}: {naive_s:.2f} s)")
    print(f"batched + threads    : {args.images / batched_s:8.1f} images/s  (median of {args.rounds}: "
          f"{batched_s:.2f} s)   speed-up {naive_s / batched_s:.2f}x")
    print(f"first run, cached    : {miss_s:.2f} s;  cache-hit re-run: {hit_s * 1000:.1f} ms "
          f"({miss_s / hit_s:.0f}x faster)")
    print(f"model hash (sha256 of the weights, paid by every run): {hash_s * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
