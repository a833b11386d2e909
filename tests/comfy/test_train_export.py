"""What `hierafash train` exports loads in the real ComfyUI: the ControlNet through the stock loader (and gives
the diffusers model's residuals), the LoRA through stock LoRA loading with every key applied."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from train.tiny_models import CONTEXT_DIM, build_base, build_dataset

from hierafash_cli.runtime import comfyui_dir

COMFY_SIDE = Path(__file__).resolve().parent.parent / "train" / "comfy_side.py"


def comfy_side(*args) -> None:
    subprocess.run([sys.executable, str(COMFY_SIDE), *map(str, args)], cwd=comfyui_dir(), check=True)


def random_controlnet_file(base_dir: Path, path: Path) -> Path:
    """A ControlNet for the tiny base with every weight random (zero convs too), in the ldm layout."""
    from hierafash_train import models
    from hierafash_train.export import controlnet_to_ldm

    controlnet = models.load_controlnet(models.load_base(base_dir).unet)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in controlnet.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    save_file(controlnet_to_ldm(controlnet.state_dict(), controlnet.config), str(path))
    return path


def test_trained_controlnet_loads_in_comfyui_and_matches_diffusers(tmp_path):
    from hierafash_train.loop import TrainConfig, train

    base = build_base(tmp_path / "base")
    start = random_controlnet_file(base, tmp_path / "start.safetensors")
    result = train(TrainConfig(dataset=build_dataset(tmp_path / "data"), base=base, output=tmp_path / "out",
                               controlnet=start, steps=2, lr=1e-3, progress=False))
    controlnet = result.trained.eval()
    generator = torch.Generator().manual_seed(1)
    inputs = {"x": torch.randn(2, 4, 8, 8, generator=generator), "hint": torch.rand(2, 3, 64, 64, generator=generator),
              "t": torch.tensor([500.0, 20.0]), "context": torch.randn(2, 77, CONTEXT_DIM, generator=generator)}
    save_file(inputs, str(tmp_path / "inputs.safetensors"))
    with torch.no_grad():
        down, mid = controlnet(inputs["x"], inputs["t"], encoder_hidden_states=inputs["context"],
                               controlnet_cond=inputs["hint"], return_dict=False)

    comfy_side("controlnet", result.export, tmp_path / "inputs.safetensors", tmp_path / "comfy.safetensors")
    with safe_open(str(tmp_path / "comfy.safetensors"), "pt") as f:
        assert f.metadata()["class"] == "ControlNet"  # the stock SD ControlNet, not a T2I adapter
    comfy = load_file(tmp_path / "comfy.safetensors")
    assert len([k for k in comfy if k.startswith("output.")]) == len(down)
    for i, ours in enumerate([*down, mid]):
        theirs = comfy[f"output.{i}" if i < len(down) else "middle.0"]
        assert theirs.shape == ours.shape
        assert ours.abs().max() > 0.1  # a real signal: random zero convs, not zeros compared with zeros
        assert (theirs - ours).abs().max() <= 1e-5, i


def test_lora_export_loads_with_stock_lora_loading(comfy_base, tmp_path):
    """A LoRA on a diffusers UNet shaped as the tiny SD1.5 checkpoint: every key lands on that checkpoint."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from hierafash_train.export import lora_to_kohya
    from hierafash_train.loop import LORA_TARGETS

    unet = UNet2DConditionModel(
        sample_size=8, block_out_channels=(320,), layers_per_block=1, down_block_types=("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",), cross_attention_dim=768, attention_head_dim=8)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    save_file(lora_to_kohya(get_peft_model_state_dict(unet), 4), str(tmp_path / "lora.safetensors"))

    checkpoint = comfy_base / "models" / "checkpoints" / "tiny_sd15.safetensors"
    comfy_side("lora", checkpoint, tmp_path / "lora.safetensors", tmp_path / "lora.json")
    report = json.loads((tmp_path / "lora.json").read_text())
    assert report["not_loaded"] == []
    # 4 transformer blocks (input, middle, 2 output) x 2 attentions x q, k, v, out
    assert len(report["patched"]) == 32
    assert {k.rsplit(".", 2)[-2] for k in report["patched"]} == {"to_q", "to_k", "to_v", "0"}


def test_shipped_full_size_configs_match_comfyuis_models(tmp_path):
    """SD 1.5 and SD 2.1-base: our UNet config is ComfyUI's template key for key, shape for shape, and our
    ldm export of a full-size ControlNet has exactly the keys and shapes of the ControlNet ComfyUI builds."""
    comfy_side("configs", tmp_path / "configs.json")
    report = json.loads((tmp_path / "configs.json").read_text())
    for family in ("sd15", "sd21-base"):
        assert report[family]["unet"] == [] and report[family]["controlnet"] == [], family
        assert report[family]["unet_keys"] == 686 and report[family]["controlnet_keys"] == 340, family
