"""What `hierafash train` exports loads in the real ComfyUI: the ControlNet through the stock loader (and gives
the diffusers model's residuals), the LoRA through stock LoRA loading with every key applied."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from support.graphs import TINY_CHECKPOINT, Graph, add_scheduler, base_models, hierarchical_design
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


@pytest.fixture(scope="module")
def sd15_like_base(tmp_path_factory):
    """A tiny diffusers base whose UNet is the tiny_sd15 checkpoint's: what it trains runs beside that checkpoint."""
    return build_base(tmp_path_factory.mktemp("sd15_like"), like_comfy_tiny_sd15=True)


def test_trained_lora_loads_with_stock_lora_loading(comfy_base, sd15_like_base, tmp_path):
    from hierafash_train.loop import TrainConfig, train

    result = train(TrainConfig(dataset=build_dataset(tmp_path / "data"), base=sd15_like_base, output=tmp_path / "out",
                               mode="lora", lora_rank=4, steps=1, progress=False))
    checkpoint = comfy_base / "models" / "checkpoints" / TINY_CHECKPOINT
    comfy_side("lora", checkpoint, result.export, tmp_path / "lora.json")
    report = json.loads((tmp_path / "lora.json").read_text())
    assert report["not_loaded"] == []
    # 4 transformer blocks (input, middle, 2 output) x 2 attentions x q, k, v, out
    assert len(report["patched"]) == 32
    assert {k.rsplit(".", 2)[-2] for k in report["patched"]} == {"to_q", "to_k", "to_v", "0"}


def test_trained_controlnet_samples_through_the_packs_nodes(comfy, comfy_base, sd15_like_base, tmp_path):
    """Trained, exported, loaded by the stock ControlNetLoader, applied by HieraFash Apply Pose ControlNet, sampled."""
    from hierafash_train.loop import TrainConfig, train

    dataset = build_dataset(tmp_path / "data")
    result = train(TrainConfig(dataset=dataset, base=sd15_like_base, output=tmp_path / "out", steps=2, lr=1e-3,
                               progress=False))
    shutil.copy(result.export, comfy_base / "models" / "controlnet" / "trained_by_hierafash.safetensors")
    shutil.copy(dataset / "train_pose" / "pose_images" / "0000.png", comfy_base / "input" / "trained_pose.png")

    def sample(strength):
        g = Graph()
        model, clip, _ = base_models(g)
        sched = add_scheduler(g, hierarchical_design(g), clip, model, steps=4)
        pose = g.add("HieraFashApplyPoseControlNet", positive=sched.out(0),
                     negative=g.add("CLIPTextEncode", text="", clip=clip).out(0),
                     control_net=g.add("ControlNetLoader", control_net_name="trained_by_hierafash.safetensors").out(0),
                     pose_image=g.add("LoadImage", image="trained_pose.png").out(0), strength=strength,
                     band="all steps (official code)", start_percent=0.0, end_percent=1.0)
        latent = g.add("EmptyLatentImage", width=64, height=64, batch_size=1).out(0)
        sampled = g.add("KSampler", model=model, positive=pose.out(0), negative=pose.out(1), latent_image=latent,
                        seed=3, steps=4, cfg=5.0, sampler_name="euler", scheduler="normal", denoise=1.0)
        save = g.add("SaveLatent", samples=sampled.out(0), filename_prefix=f"latents/trained_cn_{strength}")
        item = comfy.run(g.prompt())["outputs"][save]["latents"][0]
        return load_file(comfy_base / "output" / item["subfolder"] / item["filename"])["latent_tensor"].float()

    with_control, without = sample(1.0), sample(0.0)
    assert torch.isfinite(with_control).all() and with_control.shape == (1, 4, 8, 8)
    assert not torch.equal(with_control, without)  # the trained ControlNet takes part in sampling


def test_shipped_full_size_configs_match_comfyuis_models(tmp_path):
    """SD 1.5 and SD 2.1-base: our UNet config is ComfyUI's template key for key, shape for shape, and our
    ldm export of a full-size ControlNet has exactly the keys and shapes of the ControlNet ComfyUI builds."""
    comfy_side("configs", tmp_path / "configs.json")
    report = json.loads((tmp_path / "configs.json").read_text())
    for family in ("sd15", "sd21-base"):
        assert report[family]["unet"] == [] and report[family]["controlnet"] == [], family
        assert report[family]["unet_keys"] == 686 and report[family]["controlnet_keys"] == 340, family
