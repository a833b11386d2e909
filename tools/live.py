"""The live node schemas: start the pinned ComfyUI with this pack in a throwaway base and read /object_info."""

from __future__ import annotations

import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hierafash_cli.server import ComfyServer, prepare_base  # noqa: E402


@contextmanager
def live_server():
    """A running ComfyUI with only this pack, in a temporary base directory (no models)."""
    with tempfile.TemporaryDirectory(prefix="hierafash_live_") as tmp, \
            ComfyServer(prepare_base(Path(tmp) / "base")) as server:
        yield server


def object_info() -> dict:
    with live_server() as server:
        return server.get("/object_info")
