"""What the test and bench probe packs (tests/comfy_nodes, bench/comfy_nodes) share: the pack's sampler hooks,
a probe node's schema and a probe pack's entry point.

Only those packs import this, inside the ComfyUI that `server.prepare_base` links them into (it needs ComfyUI's
`comfy_api`). ComfyUI imports each custom pack under a path-derived module name, so a probe pack cannot import
the pack or another probe pack; this installed module is where they meet.
"""

from __future__ import annotations

import importlib.util

from comfy_api.latest import ComfyExtension, io

from .server import PACK_DIR


def pack_sampling():
    """The pack's nodes/sampling.py, loaded by path (it imports only ComfyUI and torch): its `patched_with`
    registers a probe's wrappers as the pack registers its own."""
    path = PACK_DIR / "nodes" / "sampling.py"
    spec = importlib.util.spec_from_file_location("hierafash_sampling_for_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe_schema(node_id: str, inputs: list, outputs: list | tuple = (), **options) -> io.Schema:
    """A probe node's schema, in the "testing" category; `options` are further io.Schema fields."""
    return io.Schema(node_id=node_id, category="testing", inputs=list(inputs), outputs=list(outputs), **options)


def entrypoint(*nodes: type[io.ComfyNode]):
    """A probe pack's `comfy_entrypoint`, registering `nodes`."""

    class ProbeExtension(ComfyExtension):
        async def get_node_list(self):
            return list(nodes)

    async def comfy_entrypoint() -> ComfyExtension:
        return ProbeExtension()

    return comfy_entrypoint
