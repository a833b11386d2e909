"""The synthetic benchmark's small model (bench/quality_model.py) loads through ComfyUI's stock checkpoint loader as
SD 1.5 with a TAESD, and computes there what the diffusers models `hierafash train` trained compute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hierafash_cli.runtime import comfyui_dir

BUILDER = Path(__file__).resolve().parents[2] / "bench" / "quality_model.py"


def test_small_model_checkpoint_is_detected_and_matches_diffusers(tmp_path):
    folder, checkpoint, report = tmp_path / "base", tmp_path / "small.safetensors", tmp_path / "parity.json"
    subprocess.run([sys.executable, str(BUILDER), "build", str(folder), "--seed", "3"], check=True)
    for args in (("to-comfy", folder, checkpoint), ("compare", folder, checkpoint, report)):
        subprocess.run([sys.executable, str(BUILDER), *map(str, args)], cwd=comfyui_dir(), check=True)
    parity = json.loads(report.read_text())
    assert (parity["model"], parity["vae"]) == ("SD15", "TAESD")
    assert parity["unet_max_abs"] > 0.1 and parity["unet_max_diff"] < 1e-4  # a real prediction, the same one
    assert parity["text_max_abs"] > 0.5 and parity["text_max_diff"] < 1e-2  # 11 identity layers change nothing
    assert parity["latent_max_diff"] < 1e-5 and parity["image_max_diff"] < 1e-5
