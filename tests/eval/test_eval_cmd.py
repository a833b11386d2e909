"""`hierafash eval generation` and `hierafash eval edit` end to end on a tiny random CLIP and drawn images."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hierafash_cli.__main__ import main

CAPTION = "Dress, Elegant, Party, Slimming, Drape Feeling, Long Dress, Short Sleeve, Puffed Sleeve, V-Neck, Slit Hem"


def reference_clip_s(clip_dir, image_paths, captions) -> float:
    """CLIP-S through CLIPModel's own forward (logits_per_image) and torchvision's CLIP preprocessing."""
    from torchvision import transforms
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(clip_dir).eval()
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    preprocess = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in image_paths])
    tokens = tokenizer(captions, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                       pixel_values=pixels).logits_per_image
    return float(torch.diagonal(logits).mean())


def run_eval(argv, capsys):
    code = main(["eval", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()[-1] if err.strip() else ""  # the last line: after any loading bars


@pytest.fixture
def generation_set(tmp_path, figures, test_json):
    real = figures(tmp_path / "real", 12, seed=1)
    same = tmp_path / "same"
    shutil.copytree(tmp_path / "real", same)
    figures(tmp_path / "other", 12, seed=2, size=(80, 80))
    split = test_json(tmp_path / "data", [p.stem.removesuffix("_0") for p in real], [CAPTION] * len(real))
    return tmp_path, split


def test_generation_end_to_end(generation_set, tiny_clip, capsys):
    root, split = generation_set
    output, plot = root / "out" / "generation.json", root / "out" / "generation.png"
    code, out, err = run_eval(["generation", "--real", root / "real", "--fake", root / "same", root / "other",
                               "--captions", split, "--clip", tiny_clip, "--k", 5, "--cache-dir", root / "cache",
                               "--output", output, "--plot", plot], capsys)
    assert code == 0, err
    report = json.loads(output.read_text())
    same, other = report["results"]
    assert (same["setting"], other["setting"]) == ("same", "other")
    assert abs(same["fid"]) < 1e-6 and same["coverage"] == 1.0 and same["precision"] == 1.0
    assert other["fid"] > 1e-3 and other["coverage"] < 1.0
    expected_digest = hashlib.sha256((tiny_clip / "config.json").read_bytes()
                                     + (tiny_clip / "model.safetensors").read_bytes()).hexdigest()
    assert report["clip"]["sha256"] == expected_digest
    assert report["settings"]["nearest_k"] == 5 and same["caption_items"] == 10
    images = sorted((root / "other").iterdir())
    assert other["clip_s"] == pytest.approx(reference_clip_s(tiny_clip, images, [CAPTION] * 12), rel=1e-4)
    assert "same" in out and "coverage" in out and expected_digest[:12] in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reads_the_cache_and_a_touched_file_is_recomputed(generation_set, tiny_clip, capsys):
    root, _ = generation_set
    argv = ["generation", "--real", root / "real", "--fake", root / "other", "--clip", tiny_clip, "--k", 5,
            "--cache-dir", root / "cache", "--output", root / "run.json"]
    assert run_eval(argv, capsys)[0] == 0
    first = json.loads((root / "run.json").read_text())
    assert run_eval(argv, capsys)[0] == 0
    second = json.loads((root / "run.json").read_text())
    assert second["reference"]["from_cache"] and second["results"][0]["from_cache"]
    assert second["results"][0]["fid"] == first["results"][0]["fid"]
    touched = sorted((root / "other").iterdir())[0]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert run_eval(argv, capsys)[0] == 0
    third = json.loads((root / "run.json").read_text())
    assert third["reference"]["from_cache"] and not third["results"][0]["from_cache"]


def test_a_cached_reference_from_a_wider_clip_is_refused(generation_set, tiny_clip, wider_clip, capsys):
    root, _ = generation_set
    argv = ["generation", "--fake", root / "other", "--k", 5, "--cache-dir", root / "cache",
            "--output", root / "run.json"]
    assert run_eval([*argv, "--real", root / "real", "--clip", wider_clip], capsys)[0] == 0
    cached = json.loads((root / "run.json").read_text())["reference"]["cache_file"]
    code, _, err = run_eval([*argv, "--real", cached, "--clip", tiny_clip], capsys)
    assert code == 2
    assert err.startswith("hierafash eval generation: --real: the features in")
    assert "have width 24 but the CLIP projects to 16" in err


def test_prdc_with_too_few_images_is_refused(generation_set, tiny_clip, capsys):
    root, _ = generation_set
    code, _, err = run_eval(["generation", "--real", root / "real", "--fake", root / "other", "--clip", tiny_clip,
                             "--no-cache"], capsys)
    assert code == 2
    assert "hierafash eval generation: --real: PRDC with k = 25 needs at least 26 images, got 12" in err


@pytest.fixture
def edit_set(tmp_path, figures, test_json):
    """Sources, masks over a fixed box, and edits that change exactly that box by +100 in red."""
    sources = figures(tmp_path / "source", 10, seed=3)
    mask = np.zeros((88, 64), np.uint8)
    mask[40:70, 10:54] = 255
    for folder in ("masks", "edited"):
        (tmp_path / folder).mkdir()
    for path in sources:
        pixels = np.asarray(Image.open(path)).copy()
        pixels[40:70, 10:54] = (20, 60, 90)
        Image.fromarray(pixels).save(path)
        edited = pixels.copy()
        edited[40:70, 10:54, 0] += 100
        Image.fromarray(edited).save(tmp_path / "edited" / path.name)
        Image.fromarray(mask).save(tmp_path / "masks" / path.name)
    split = test_json(tmp_path / "data", [p.stem.removesuffix("_0") for p in sources], [CAPTION] * len(sources))
    return tmp_path, split


def test_edit_end_to_end(edit_set, tiny_clip, capsys):
    root, split = edit_set
    output = root / "edit.json"
    code, out, err = run_eval(["edit", "--source", root / "source", "--edited", root / "edited",
                               "--masks", root / "masks", "--attribute", "A2", "--captions", split,
                               "--clip", tiny_clip, "--k", 3, "--no-cache", "--output", output,
                               "--plot", root / "edit.png"], capsys)
    assert code == 0, err
    report = json.loads(output.read_text())
    (row,) = report["results"]
    assert row["setting"] == "A2" and row["change_outside_mask"] == 0.0
    assert row["change_inside_mask"] == pytest.approx(100 / 255 / 3, rel=1e-6)
    assert row["mask_fraction"] == pytest.approx(30 * 44 / (88 * 64))
    assert row["caption_items"] == 6  # 5 + one attribute edited, as extra_txt.py
    first_six = ", ".join(CAPTION.split(", ")[:6])
    edited = sorted((root / "edited").iterdir())
    assert row["clip_s"] == pytest.approx(reference_clip_s(tiny_clip, edited, [first_six] * 10), rel=1e-4)
    assert report["reference"]["role"] == "--source" and "no --real given" in out


def test_edit_pairs_files_by_name(edit_set, tiny_clip, capsys):
    root, _ = edit_set
    next(iter(sorted((root / "edited").iterdir()))).rename(root / "edited" / "stray.png")
    code, _, err = run_eval(["edit", "--source", root / "source", "--edited", root / "edited", "--masks",
                             root / "masks", "--attribute", "A2", "--clip", tiny_clip, "--k", 3, "--no-cache"], capsys)
    assert code == 2
    assert err.startswith("hierafash eval edit: --edited: 10 files do not pair by name")
    assert "stray" in err


@pytest.mark.parametrize("folder", ["edited", "masks"])
def test_edit_refuses_an_edit_or_mask_of_another_size(edit_set, tiny_clip, capsys, folder):
    root, _ = edit_set
    victim = sorted((root / folder).iterdir())[0]
    Image.open(victim).resize((32, 44)).save(victim)
    code, _, err = run_eval(["edit", "--source", root / "source", "--edited", root / "edited", "--masks",
                             root / "masks", "--attribute", "A2", "--clip", tiny_clip, "--k", 3, "--no-cache"], capsys)
    assert code == 2
    assert f"hierafash eval edit: --{folder}: {victim.name} is 32×44 but its source is 64×88" in err


def test_edit_needs_one_attribute_set_per_folder(edit_set, tiny_clip, capsys):
    root, _ = edit_set
    code, _, err = run_eval(["edit", "--source", root / "source", "--edited", root / "edited", "--masks",
                             root / "masks", "--attribute", "A2", "A9", "--clip", tiny_clip], capsys)
    assert code == 2 and "hierafash eval edit: --attribute: 1 --edited folders but 2 --attribute values" in err
