"""`hierafash train --mode base` (UNet and ControlNet together), the time budget, and a TAESD as the VAE: what the
synthetic benchmark's small model is trained with (bench/quality_model.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderTiny
from safetensors.torch import load_file

from hierafash_train import models
from hierafash_train.export import controlnet_from_ldm
from hierafash_train.loop import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import quality_model  # noqa: E402


def test_base_mode_trains_unet_and_controlnet_and_writes_a_base_that_loads(tiny_base, tiny_dataset, tmp_path):
    frozen = models.load_base(tiny_base)
    before_unet = {k: v.clone() for k, v in frozen.unet.state_dict().items()}
    result = train(TrainConfig(dataset=tiny_dataset, base=tiny_base, output=tmp_path / "out", mode="base", steps=2,
                               lr=1e-3, progress=False))
    assert result.export == tmp_path / "out" / "base"
    trained_unet = result.trained.unet.state_dict()
    assert sum(not torch.equal(before_unet[k], trained_unet[k]) for k in before_unet) > len(before_unet) // 2
    zero_convs = [k for k, v in result.trained.controlnet.state_dict().items() if k.startswith("controlnet_down")]
    assert any(result.trained.controlnet.state_dict()[k].abs().max() > 0 for k in zero_convs)  # left zero init

    reloaded = models.load_base(result.export)
    for key, value in reloaded.unet.state_dict().items():
        assert torch.equal(value, trained_unet[key]), key
    exported = load_file(tmp_path / "out" / "controlnet.safetensors")
    state = controlnet_from_ldm(exported, result.trained.controlnet.config)
    for key, value in result.trained.controlnet.state_dict().items():
        assert torch.equal(state[key], value), key
    # and it trains on from there, as any base
    again = train(TrainConfig(dataset=tiny_dataset, base=result.export, output=tmp_path / "again", steps=1,
                              lr=1e-3, progress=False))
    assert again.export.name == "controlnet.safetensors"


def test_max_minutes_stops_after_the_step_that_spends_it_and_still_exports(tiny_base, tiny_dataset, tmp_path):
    result = train(TrainConfig(dataset=tiny_dataset, base=tiny_base, output=tmp_path / "out", steps=50,
                               max_minutes=1e-9, lr=1e-3, progress=False))
    assert result.step == 1 and len(result.losses) == 1
    assert (tmp_path / "out" / "loss.jsonl").read_text().count("\n") == 1
    assert result.export.is_file()


def box_vae() -> AutoencoderTiny:
    vae = AutoencoderTiny(latent_channels=4, scaling_factor=quality_model.SCALING_FACTOR)
    quality_model.set_box_vae(vae)
    return vae


def test_box_vae_encodes_the_8x8_mean_colour_and_decodes_flat_regions_back():
    colours = torch.rand(3, 2, 2, generator=torch.Generator().manual_seed(0))
    image = colours.repeat_interleave(32, 1).repeat_interleave(32, 2)[None]  # [1, 3, 64, 64], 32 px blocks
    image[:, :, 5, 9] = 1.0  # one odd pixel: the latent is its cell's mean
    with torch.no_grad():
        vae = box_vae()
        raw = vae.encode(image * 2 - 1).latents
        decoded = (vae.decode(raw).sample + 1) / 2
    cell_means = torch.nn.functional.avg_pool2d(image, 8)
    expected = quality_model.LATENT_GAIN * (cell_means - quality_model.LATENT_CENTRE)
    assert raw.shape == (1, 4, 8, 8)
    assert torch.allclose(raw[:, :3], expected, atol=1e-6)
    assert raw[:, 3].abs().max() == 0
    interior = decoded[0, :, 40:56, 40:56]  # inside the last block, away from the odd pixel and the edges
    assert torch.allclose(interior, colours[:, 1, 1, None, None].expand_as(interior), atol=0.01)


def test_a_taesd_base_trains(tiny_base, tiny_dataset, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    shutil.rmtree(base / "vae")
    box_vae().save_pretrained(base / "vae")
    loaded = models.load_base(base)
    assert isinstance(loaded.vae, AutoencoderTiny) and models.vae_downscale(loaded.vae) == 8
    result = train(TrainConfig(dataset=tiny_dataset, base=base, output=tmp_path / "out", steps=2, lr=1e-3,
                               sample_every=2, sample_count=1, sample_steps=2, progress=False))
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert (tmp_path / "out" / "samples" / "step-000002.png").is_file()
