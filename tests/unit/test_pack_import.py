"""Importing the pack outside ComfyUI fails with a clear message; the core imports on its own."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, env=env, capture_output=True, text=True)


def test_importing_the_pack_outside_comfyui_says_what_to_do():
    result = run_python(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('hierafashdiff', {str(ROOT / '__init__.py')!r},\n"
        f"    submodule_search_locations=[{str(ROOT)!r}])\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['hierafashdiff'] = module\n"
        "spec.loader.exec_module(module)\n"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: hierafashdiff is a ComfyUI custom node pack"), result.stderr
    assert "custom_nodes" in last


def test_the_core_imports_without_comfyui():
    result = run_python(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "import hierafash_core.schedule, hierafash_core.editing, hierafash_core.masks, hierafash_core.weights\n"
        "assert not any(name == 'comfy' or name.startswith('comfy.') for name in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
