"""Test-only ComfyUI pack: a probe that records what actually reaches the UNet at each evaluation.

It patches a clone of the MODEL with keyed wrappers (and chains the denoise mask function), and
appends one JSON line per event to the file named by its `log_path` input:
- {"ev": "unet", "sigma", "batch", "cond_or_uncond", "stages", "control"} per UNet call;
- {"ev": "mask", "sigma", "mask": [[...]]} per evaluation of a masked (inpainting) run.
HieraFashTestSaveMask writes a MASK to a file unquantised; HieraFashTestPoseKeypoint reads a POSE_KEYPOINT from JSON.
"""

import json

from comfy_api.latest import io

from hierafash_cli.probe_support import entrypoint, pack_sampling, probe_schema

STAGE_KEY = "hierafashdiff_stage"
PROBE_KEY = "hierafash_test_probe"
sampling = pack_sampling()


class HieraFashTestProbe(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return probe_schema("HieraFashTestProbe", [io.Model.Input("model"), io.String.Input("log_path")],
                            [io.Model.Output()], not_idempotent=True)

    @classmethod
    def execute(cls, model, log_path) -> io.NodeOutput:
        stage_of_uuid = {}

        def log(**event):
            with open(log_path, "a") as f:
                f.write(json.dumps(event) + "\n")

        def calc_cond_batch(executor, model_, conds, x_in, timestep, model_options):
            for cond_list in conds:
                for c in cond_list or []:
                    stage_of_uuid[c["uuid"]] = c.get(STAGE_KEY)
            return executor(model_, conds, x_in, timestep, model_options)

        def apply_model(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
            cond_or_uncond = list(transformer_options.get("cond_or_uncond", []))
            uuids = transformer_options.get("uuids", [])
            log(ev="unet", sigma=float(transformer_options["sigmas"][0]), batch=int(x.shape[0]),
                cond_or_uncond=cond_or_uncond,
                stages=[stage_of_uuid.get(u) for u, kind in zip(uuids, cond_or_uncond) if kind == 0],
                control=control is not None)
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

        def denoise_mask(sigma, mask, extra_options):
            log(ev="mask", sigma=float(sigma[0]), mask=mask[0, 0].tolist())
            return mask

        return io.NodeOutput(sampling.patched_with(model, PROBE_KEY, denoise_mask, calc_cond_batch=calc_cond_batch,
                                                   apply_model=apply_model))


class HieraFashTestPoseKeypoint(io.ComfyNode):
    """POSE_KEYPOINT from JSON text, to feed hand-made poses to the pack."""

    @classmethod
    def define_schema(cls):
        return probe_schema("HieraFashTestPoseKeypoint", [io.String.Input("pose_json", multiline=True)],
                            [io.Custom("POSE_KEYPOINT").Output()])

    @classmethod
    def execute(cls, pose_json) -> io.NodeOutput:
        return io.NodeOutput(json.loads(pose_json))


class HieraFashTestSaveMask(io.ComfyNode):
    """Writes a MASK as float32 safetensors to `path`, unquantised (an 8-bit image would round soft edges)."""

    @classmethod
    def define_schema(cls):
        return probe_schema("HieraFashTestSaveMask", [io.Mask.Input("mask"), io.String.Input("path")],
                            is_output_node=True, not_idempotent=True)

    @classmethod
    def execute(cls, mask, path) -> io.NodeOutput:
        import safetensors.torch

        safetensors.torch.save_file({"mask": mask.detach().float().cpu().contiguous()}, path)
        return io.NodeOutput()


comfy_entrypoint = entrypoint(HieraFashTestProbe, HieraFashTestPoseKeypoint, HieraFashTestSaveMask)
