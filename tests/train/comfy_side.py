"""The ComfyUI side of the export checks, run with the runtime's python inside the ComfyUI tree (cwd):

    python comfy_side.py controlnet CONTROLNET.safetensors INPUTS.safetensors OUT.safetensors
        ComfyUI's stock loader reads the exported ControlNet; its residuals for the given inputs go to OUT.
    python comfy_side.py lora CHECKPOINT.safetensors LORA.safetensors OUT.json
        ComfyUI's stock LoRA loading applies the LoRA to the checkpoint; OUT lists the patched weights and
        every "lora key not loaded" line it logged.
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


if __name__ == "__main__":
    {"controlnet": controlnet, "lora": lora}[sys.argv[1]](*sys.argv[2:])
