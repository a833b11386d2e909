"""Comfy-tier fixtures beyond the shared ones: a replica of the official checkpoint, built once per session."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hierafash_cli.runtime import comfyui_dir

SUPPORT = Path(__file__).resolve().parent.parent / "support"
REPLICA_CKPT = "hfd_replica.ckpt"


@pytest.fixture(scope="session")
def official_replica(comfy_base) -> Path:
    """A seeded, shrunk replica of hfd_100epochs.ckpt (official key layout, Lightning wrapper) in the server's
    models/checkpoints, where the converter node finds it."""
    path = comfy_base / "models" / "checkpoints" / REPLICA_CKPT
    start = time.perf_counter()
    subprocess.run([sys.executable, str(SUPPORT / "build_official_replica.py"), "--out", str(path)],
                   cwd=comfyui_dir(), check=True)
    print(f"built {path.name}: {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - start:.1f} s")
    return path
