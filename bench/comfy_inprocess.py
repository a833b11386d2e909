"""The pinned ComfyUI, in this process: this pack and the bench probe loaded, prompts run by PromptExecutor.

Import order matters (see the ComfyUI reference, section 8): CLI args are parsed before
`comfy.model_management` is imported, and the top-level `utils` package before `nodes`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from pathlib import Path

from hierafash_cli.runtime import comfyui_dir

REQUIRED_NODES = ("HieraFashAttributeEdit", "HieraFashHierarchicalPromptScheduler", "HieraFashBenchCounter",
                  "HieraFashBenchCapture")


class _Server:
    """The attributes PromptExecutor and its progress handler touch."""

    client_id = None
    last_node_id = None
    last_prompt_id = None
    sockets_metadata: dict = {}

    def send_sync(self, event, data, sid=None):
        pass


def _is_probe(module) -> bool:
    # Checked in the module's own namespace: some modules (torch.ops) answer any getattr.
    namespace = getattr(module, "__dict__", None)
    return isinstance(namespace, dict) and namespace.get("HIERAFASH_BENCH_PROBE") is True


class InProcessComfy:
    def __init__(self, base: Path, device: str, verbose: bool = False):
        tree = str(comfyui_dir())
        if tree not in sys.path:
            sys.path.insert(0, tree)
        argv = ["main.py", "--base-directory", str(base), "--database-url", "sqlite:///:memory:",
                "--disable-api-nodes"]
        if device == "cpu":
            argv.append("--cpu")
        saved_argv, sys.argv = sys.argv, argv
        try:
            import comfy.options

            comfy.options.enable_args_parsing()
            import comfy.cli_args  # noqa: F401
            import folder_paths  # noqa: F401  (reads --base-directory at import)
            import utils.extra_config  # noqa: F401  (before nodes, or comfy/utils.py shadows `utils`)
        finally:
            sys.argv = saved_argv
        import comfy.model_management
        import comfy.utils
        import execution
        import nodes

        if not verbose:
            logging.getLogger().setLevel(logging.ERROR)
        comfy.utils.set_progress_bar_enabled(False)
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        missing = [n for n in REQUIRED_NODES if n not in nodes.NODE_CLASS_MAPPINGS]
        if missing:
            raise RuntimeError(f"ComfyUI did not load {missing}: the pack or the bench probe failed to import")
        self.execution = execution
        self.nodes = nodes
        self.device_name = str(comfy.model_management.get_torch_device())
        self.probe = next(m for m in list(sys.modules.values()) if _is_probe(m))
        # LRU keeps every graph's upstream cached while graphs alternate; only the sampler (its seed
        # changes) and what follows it re-execute.
        # Every cache key either runtime's executor reads ("ram_inactive" is newer than 0.3.75; 0 as main.py's
        # default without --cache-ram); an executor ignores keys it does not know.
        self.executor = execution.PromptExecutor(_Server(), cache_type=execution.CacheType.LRU,
                                                 cache_args={"lru": 10_000, "ram": 16.0, "ram_inactive": 0.0})

    @property
    def counts(self) -> dict:
        return self.probe.STATE["counts"]

    @property
    def model_s(self) -> dict:
        return self.probe.STATE["model_s"]

    @property
    def captured(self) -> dict:
        return self.probe.STATE["captured"]

    @property
    def model_sampling(self):
        return self.probe.STATE["model_sampling"]

    def fill_defaults(self, prompt: dict) -> dict:
        """Give every required input the graph leaves out its schema default, as the editor does: the
        benchmark graphs name what they compare and keep working when a node gains a defaulted input."""
        for node in prompt.values():
            required = self.nodes.NODE_CLASS_MAPPINGS[node["class_type"]].INPUT_TYPES().get("required", {})
            for name, spec in required.items():
                if name in node["inputs"] or len(spec) < 2 or "default" not in (spec[1] or {}):
                    continue
                node["inputs"][name] = spec[1]["default"]
        return prompt

    def run(self, prompt: dict) -> float:
        """Validate (untimed), reset the counters, execute; returns the wall seconds of the execution (and
        keeps this process's CPU seconds for it in `last_cpu_s`)."""
        prompt = self.fill_defaults(prompt)
        prompt_id = str(uuid.uuid4())
        valid, error, outputs, node_errors = asyncio.run(self.execution.validate_prompt(prompt_id, prompt, None))
        if not valid:
            raise RuntimeError(f"invalid prompt: {error} {node_errors}")
        for node in prompt.values():
            if node["class_type"] == "HieraFashBenchCounter":
                self.probe.reset_counts(node["inputs"]["tag"])
        start, start_cpu = time.perf_counter(), time.process_time()
        self.executor.execute(prompt, prompt_id, extra_data={}, execute_outputs=outputs)
        elapsed = time.perf_counter() - start
        self.last_cpu_s = time.process_time() - start_cpu
        if not self.executor.success:
            errors = [m[1] for m in self.executor.status_messages if m[0] == "execution_error"]
            raise RuntimeError("; ".join(f"{e.get('node_type')}: {e.get('exception_message')}" for e in errors))
        return elapsed
