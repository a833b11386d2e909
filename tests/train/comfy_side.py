"""The ComfyUI side of the export checks, run with the runtime's python inside the ComfyUI tree (cwd):

    python comfy_side.py controlnet CONTROLNET.safetensors INPUTS.safetensors OUT.safetensors
        ComfyUI's stock loader reads the exported ControlNet; its residuals for the given inputs go to OUT.
    python comfy_side.py lora CHECKPOINT.safetensors LORA.safetensors OUT.json
        ComfyUI's stock LoRA loading applies the LoRA to the checkpoint; OUT lists the patched weights and
        every "lora key not loaded" line it logged.
    python comfy_side.py configs OUT.json
        The shipped full-size diffusers configs (SD 1.5, SD 2.1-base), built on the meta device, against
        ComfyUI's own templates: the UNet through ComfyUI's diffusers-key map, and our ldm ControlNet export
        against the ControlNet ComfyUI builds for that config. OUT holds every key or shape that differs.
"""

import json
import logging
import os
import sys

sys.path.insert(0, os.getcwd())

import comfy.cli_args  # noqa: E402

comfy.cli_args.args.cpu = True  # before comfy.model_management is imported

import comfy.controlnet  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def controlnet(path, inputs_path, out_path):
    net = comfy.controlnet.load_controlnet(path)
    model = net.control_model.float()
    inputs = load_file(inputs_path)
    with torch.no_grad():
        out = model(inputs["x"], inputs["hint"], inputs["t"], inputs["context"])
    result = {f"output.{i}": o.contiguous() for i, o in enumerate(out["output"])}
    result |= {f"middle.{i}": o.contiguous() for i, o in enumerate(out["middle"])}
    save_file(result, out_path, metadata={"class": type(net).__name__, "model": type(model).__name__})


def lora(checkpoint, lora_path, out_path):
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    model = comfy.sd.load_checkpoint_guess_config(checkpoint, output_vae=False, output_clip=False)[0]
    patched, _ = comfy.sd.load_lora_for_models(model, None, comfy.utils.load_torch_file(lora_path, safe_load=True),
                                               1.0, 0)
    with open(out_path, "w") as f:
        json.dump({"patched": sorted(patched.patches), "not_loaded": [m for m in messages if "not loaded" in m]}, f)


def _shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _differences(ours: dict, theirs: dict) -> list[str]:
    out = [f"only ours: {k}" for k in ours.keys() - theirs.keys()]
    out += [f"only ComfyUI: {k}" for k in theirs.keys() - ours.keys()]
    return out + [f"{k}: {ours[k]} vs {theirs[k]}" for k in ours.keys() & theirs.keys() if ours[k] != theirs[k]]


def configs(out_path):
    import comfy.cldm.cldm
    import comfy.model_detection
    import comfy.ops
    from accelerate import init_empty_weights
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from diffusers import ControlNetModel, UNet2DConditionModel

    from hierafash_train.export import LDM_PREFIX, controlnet_to_ldm
    from hierafash_train.models import CONFIGS

    report = {}
    ops = comfy.ops.disable_weight_init
    for family in ("sd15", "sd21-base"):
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIGS / family / "unet"))
            net = ControlNetModel.from_config(ControlNetModel.load_config(CONFIGS / family / "controlnet"))
        ours_unet = _shapes(unet)
        config = comfy.model_detection.unet_config_from_diffusers_unet(unet.state_dict())
        if config is None:
            report[family] = {"unet": ["no ComfyUI template matches the shipped UNet config"]}
            continue
        comfy_unet = _shapes(UNetModel(**config, device="meta", operations=ops))
        key_map = comfy.utils.unet_to_diffusers(config)  # diffusers key -> ldm key
        mapped = {ldm: ours_unet[diffusers] for diffusers, ldm in key_map.items() if diffusers in ours_unet}
        cn_config = comfy.model_detection.unet_config_from_diffusers_unet(net.state_dict())
        cn_config = {k: v for k, v in cn_config.items() if k != "out_channels"}
        comfy_cn = _shapes(comfy.cldm.cldm.ControlNet(hint_channels=3, **cn_config, device="meta", operations=ops))
        exported = {k.removeprefix(LDM_PREFIX): tuple(v.shape)
                    for k, v in controlnet_to_ldm(net.state_dict(), net.config).items()}
        unmapped = [f"not in ComfyUI's map: {k}" for k in ours_unet.keys() - key_map.keys()]
        report[family] = {"unet": unmapped + _differences(mapped, comfy_unet), "unet_keys": len(ours_unet),
                          "controlnet": _differences(exported, comfy_cn), "controlnet_keys": len(exported)}
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    {"controlnet": controlnet, "lora": lora, "configs": configs}[sys.argv[1]](*sys.argv[2:])
