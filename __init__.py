"""HieraFashDiff for ComfyUI: hierarchical fashion design (concept -> attributes) with one-pass editing.

Registered through `comfy_entrypoint()` (ComfyUI's V3 node API). The method itself lives in
`hierafash_core`, which imports without ComfyUI.
"""

import os

try:
    from comfy_api.latest import ComfyExtension
except ImportError as exc:
    # pytest imports this file while collecting the tests below it; anywhere else it is a mistake.
    if "PYTEST_VERSION" not in os.environ:
        raise ImportError(
            "hierafashdiff is a ComfyUI custom node pack and must be loaded by ComfyUI (clone it into "
            "ComfyUI/custom_nodes/). Its method, hierafash_core, imports on its own."
        ) from exc
else:
    from .nodes import NODES

    WEB_DIRECTORY = "./web"

    class HieraFashExtension(ComfyExtension):
        async def get_node_list(self):
            return list(NODES)

    async def comfy_entrypoint() -> HieraFashExtension:
        return HieraFashExtension()
