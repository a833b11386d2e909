"""Shared fixtures. The `comfy` tier starts the real, pinned ComfyUI headless on 127.0.0.1 with this
pack loaded from the working tree and tiny models built (seeded) for the session."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hierafash_cli.runtime import RuntimeMissing, comfyui_dir, comfyui_version, installed_runtime
from hierafash_cli.server import ComfyServer, prepare_base
from hierafash_core.weights import OFFICIAL_CKPT

TESTS = Path(__file__).resolve().parent
PROBE_PACK = TESTS / "comfy_nodes" / "hierafash_test_probe"
TINY_CHECKPOINT = "tiny_sd15.safetensors"
TINY_CONTROLNET = "tiny_pose_cn.safetensors"


def pytest_report_header(config):
    try:
        return f"ComfyUI runtime: {installed_runtime().name} (ComfyUI {comfyui_version()} at {comfyui_dir()})"
    except RuntimeMissing as exc:
        return f"ComfyUI runtime: none ({exc})"


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("comfy", "browser"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory) -> Path:
    """A ComfyUI base directory with this pack, the test probe pack and the tiny models."""
    base = prepare_base(tmp_path_factory.mktemp("comfy_base"), {"hierafash_test_probe": PROBE_PACK})
    subprocess.run([sys.executable, str(TESTS / "support" / "build_tiny_models.py"), "--out", str(base / "models")],
                   cwd=comfyui_dir(), check=True)
    return base


@pytest.fixture(scope="session")
def official_checkpoint(comfy_base) -> Path:
    """A seeded, shrunk replica of the official checkpoint (its key layout and Lightning wrapper) under the released
    file's name in models/checkpoints: what an artist who downloaded it has."""
    path = comfy_base / "models" / "checkpoints" / OFFICIAL_CKPT  # the name the templates' loader expects
    start = time.perf_counter()
    subprocess.run([sys.executable, str(TESTS / "support" / "build_official_replica.py"), "--out", str(path)],
                   cwd=comfyui_dir(), check=True)
    print(f"built {path.name}: {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - start:.1f} s")
    return path


@pytest.fixture(scope="session")
def quality_model(comfy_base, tmp_path_factory) -> Path:
    """The synthetic benchmark's small model as `make quality FULL=1` makes it (built, one `hierafash train
    --mode base` step, converted), under the names its template loads; the checkpoint's path."""
    from hierafash_cli.workflow import QUALITY_CHECKPOINT, QUALITY_CONTROLNET
    from hierafash_core.synthetic import write_dataset

    work = tmp_path_factory.mktemp("quality_model")
    builder = TESTS.parent / "bench" / "quality_model.py"
    subprocess.run([sys.executable, str(builder), "build", str(work / "base"), "--seed", "4"], check=True)
    subprocess.run([sys.executable, "-m", "hierafash_cli", "train", "--mode", "base", "--dataset",
                    str(write_dataset(work / "dataset", 2, 1, seed=4)), "--base", str(work / "base"), "--output",
                    str(work / "trained"), "--steps", "1", "--batch-size", "1", "--no-progress"],
                   cwd=TESTS.parent, check=True)
    checkpoint = comfy_base / "models" / "checkpoints" / QUALITY_CHECKPOINT
    subprocess.run([sys.executable, str(builder), "to-comfy", str(work / "trained" / "base"), str(checkpoint)],
                   cwd=comfyui_dir(), check=True)
    (work / "trained" / "controlnet.safetensors").rename(comfy_base / "models" / "controlnet" / QUALITY_CONTROLNET)
    return checkpoint


@pytest.fixture(scope="session")
def comfy(comfy_base):
    """The running ComfyUI server (one per session), stopped by its PID at the end."""
    with ComfyServer(comfy_base, device="cpu") as server:
        yield server
    print(f"ComfyUI log: {server.log_path}")


@pytest.fixture
def probe_log(tmp_path):
    """A fresh probe log file and a reader for it."""
    path = tmp_path / "probe.jsonl"

    def read(ev=None):
        if not path.exists():
            return []
        events = [json.loads(line) for line in path.read_text().splitlines()]
        return [e for e in events if ev is None or e["ev"] == ev]

    read.path = str(path)
    return read
