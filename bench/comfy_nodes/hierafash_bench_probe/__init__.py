"""Bench-only ComfyUI pack: counts UNet evaluations and hands results back to an in-process harness.

Loaded next to HieraFashDiff by `bench/run_bench.py` (never shipped with the pack). State lives in
this module (`STATE`); the harness finds the module in `sys.modules` by its `HIERAFASH_BENCH_PROBE`
marker, because ComfyUI imports custom packs under a path-derived module name.

- HieraFashBenchCounter: a clone of the MODEL with a keyed APPLY_MODEL wrapper that counts, per
  `tag`, every UNet call, the rows in those batches, and the calls that carried a ControlNet, and a
  keyed CALC_COND_BATCH wrapper that times every model evaluation (ControlNet + UNet), so the harness
  can tell the time spent outside the model. It also keeps the model's `model_sampling`, so the
  harness can compute sigma schedules without a second load.
- HieraFashBenchCapture: an output node that stores its optional inputs (latents, images, mask) in
  memory under `tag`, instead of writing files, so the harness can compare tensors.
"""

from __future__ import annotations

import time

from comfy_api.latest import io

from hierafash_cli.probe_support import entrypoint, pack_sampling, probe_schema

HIERAFASH_BENCH_PROBE = True
WRAPPER_KEY = "hierafash_bench_probe"
STATE: dict = {"counts": {}, "model_s": {}, "captured": {}, "model_sampling": None}
sampling = pack_sampling()


def reset_counts(tag: str) -> None:
    STATE["counts"][tag] = {"calls": 0, "rows": 0, "control_calls": 0}
    STATE["model_s"][tag] = 0.0


class HieraFashBenchCounter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return probe_schema("HieraFashBenchCounter", [io.Model.Input("model"), io.String.Input("tag")],
                            [io.Model.Output()])

    @classmethod
    def execute(cls, model, tag) -> io.NodeOutput:
        STATE["model_sampling"] = model.get_model_object("model_sampling")
        counts, model_s = STATE["counts"], STATE["model_s"]

        def calc_cond_batch(executor, *args, **kwargs):
            start = time.perf_counter()
            try:
                return executor(*args, **kwargs)
            finally:
                model_s[tag] = model_s.get(tag, 0.0) + time.perf_counter() - start

        def apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
            entry = counts.setdefault(tag, {"calls": 0, "rows": 0, "control_calls": 0})
            entry["calls"] += 1
            entry["rows"] += int(x.shape[0])
            entry["control_calls"] += control is not None
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

        return io.NodeOutput(sampling.patched_with(model, WRAPPER_KEY, apply_model=apply_model,
                                                   calc_cond_batch=calc_cond_batch))


class HieraFashBenchCapture(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return probe_schema(
            "HieraFashBenchCapture",
            [
                io.String.Input("tag"),
                io.Latent.Input("latent", optional=True),
                io.Latent.Input("source_latent", optional=True),
                io.Image.Input("image", optional=True),
                io.Image.Input("raw_image", optional=True),
                io.Image.Input("source_image", optional=True),
                io.Mask.Input("mask", optional=True),
                io.Mask.Input("other_mask", optional=True),
            ],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, tag, latent=None, source_latent=None, image=None, raw_image=None, source_image=None,
                mask=None, other_mask=None) -> io.NodeOutput:
        STATE["captured"][tag] = {
            "latent": None if latent is None else latent["samples"].detach().float().cpu(),
            "source_latent": None if source_latent is None else source_latent["samples"].detach().float().cpu(),
            "image": image, "raw_image": raw_image, "source_image": source_image,
            "mask": mask, "other_mask": other_mask,
        }
        return io.NodeOutput()


comfy_entrypoint = entrypoint(HieraFashBenchCounter, HieraFashBenchCapture)
