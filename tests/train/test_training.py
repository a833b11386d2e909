"""The training loop on tiny seeded models: what trains, that it learns, resume, text cache, bad data, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hierafash_core.dataset import DatasetError
from hierafash_core.errors import HieraFashError
from hierafash_train import models
from hierafash_train.export import controlnet_from_ldm
from hierafash_train.loop import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set[str]:
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def config(tiny_base, dataset, output, **overrides) -> TrainConfig:
    return TrainConfig(dataset=dataset, base=tiny_base, output=output, progress=False, **overrides)


def test_one_controlnet_step_changes_the_controlnet_only(tiny_base, tiny_dataset, tmp_path):
    frozen = models.load_base(tiny_base)
    init = models.load_controlnet(frozen.unet)
    torch.manual_seed(0)
    result = train(config(tiny_base, tiny_dataset, tmp_path / "out", steps=1, lr=1e-3))
    for name in ("unet", "vae", "text_encoder"):
        assert changed(snapshot(getattr(frozen, name)), getattr(result.base, name)) == set(), name
    assert not any(p.requires_grad for p in result.base.unet.parameters())
    moved = changed(snapshot(init), result.trained)
    zero_convs = {k for k in moved if k.startswith(("controlnet_down_blocks", "controlnet_mid_block"))}
    assert zero_convs and moved  # the zero convolutions, whose gradient is non-zero at the start, moved
    exported = load_file(result.export)
    assert all(k.startswith("control_model.") for k in exported)
    back = controlnet_from_ldm(exported, result.trained.config)
    assert all(torch.equal(back[k], v) for k, v in result.trained.state_dict().items())


def test_one_lora_step_changes_only_the_lora(tiny_base, tiny_dataset, tmp_path):
    frozen = models.load_base(tiny_base)
    result = train(config(tiny_base, tiny_dataset, tmp_path / "out", steps=1, mode="lora", lr=1e-3))
    after = result.trained.state_dict()
    lora = {k for k in after if "lora_" in k}
    base_keys = {k.replace(".base_layer", ""): k for k in after if "lora_" not in k}
    original = frozen.unet.state_dict()
    assert all(torch.equal(original[k], after[v]) for k, v in base_keys.items())
    assert lora and all(p.requires_grad == ("lora_" in n) for n, p in result.trained.named_parameters())
    exported = load_file(result.export)
    assert {k.rsplit(".", 2)[-2] if k.endswith("weight") else "alpha" for k in exported} == {
        "lora_down", "lora_up", "alpha"}
    assert all(k.startswith("lora_unet_") for k in exported)


def test_loss_falls_on_a_small_fixed_batch(tiny_base, tmp_path):
    from train.tiny_models import build_dataset

    dataset = build_dataset(tmp_path / "four", n=4)
    result = train(config(tiny_base, dataset, tmp_path / "out", steps=50, lr=1e-3))
    first, last = result.losses[:10], result.losses[-10:]
    assert sum(last) / 10 < 0.8 * sum(first) / 10, result.losses
    log = [json.loads(line) for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == list(range(1, 51)) and [row["loss"] for row in log] == result.losses
    assert (tmp_path / "out" / "loss.png").stat().st_size > 0


def test_resume_reproduces_an_uninterrupted_run(tiny_base, tiny_dataset, tmp_path):
    options = dict(lr=1e-3, grad_accum=2, lr_warmup_steps=3)  # the warm-up's position is resumed too
    whole = train(config(tiny_base, tiny_dataset, tmp_path / "whole", steps=4, **options))
    first = train(config(tiny_base, tiny_dataset, tmp_path / "parts", steps=2, checkpoint_every=1, **options))
    assert (tmp_path / "parts" / "checkpoints" / "step-000001").is_dir()
    resumed = train(config(tiny_base, tiny_dataset, tmp_path / "parts", steps=4,
                           resume=str(tmp_path / "parts" / "checkpoints" / "step-000001"), **options))
    assert first.losses[:1] == whole.losses[:1] and resumed.losses == whole.losses[1:]
    for key, value in whole.trained.state_dict().items():
        assert torch.equal(value, resumed.trained.state_dict()[key]), key
    assert (tmp_path / "parts" / "loss.jsonl").read_text().count("\n") == 4


def test_warmup_ramps_the_learning_rate_up_to_lr(tiny_base, tiny_dataset, tmp_path):
    train(config(tiny_base, tiny_dataset, tmp_path / "out", steps=5, lr=1e-3, lr_warmup_steps=3))
    logged = [json.loads(line)["lr"] for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert logged == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3])


@pytest.mark.parametrize(("option", "value"), [("empty_prompts", 1.0), ("lr_warmup_steps", -1)])
def test_out_of_range_options_are_refused_by_name(tiny_base, tiny_dataset, tmp_path, option, value):
    with pytest.raises(HieraFashError) as refused:
        config(tiny_base, tiny_dataset, tmp_path, **{option: value})
    assert refused.value.input_name == option


def test_text_cache_gives_the_same_training(tiny_base, tiny_dataset, tmp_path):
    plain = train(config(tiny_base, tiny_dataset, tmp_path / "plain", steps=2, lr=1e-3))
    cached = train(config(tiny_base, tiny_dataset, tmp_path / "cached", steps=2, lr=1e-3, cache_text=True))
    assert plain.losses == pytest.approx(cached.losses, rel=1e-5)
    for key, value in plain.trained.state_dict().items():
        assert torch.allclose(value, cached.trained.state_dict()[key], atol=1e-6), key


def test_sample_grid_is_drawn_with_the_schedule(tiny_base, tiny_dataset, tmp_path):
    train(config(tiny_base, tiny_dataset, tmp_path / "out", steps=1, sample_every=1, sample_steps=3))
    from PIL import Image

    with Image.open(tmp_path / "out" / "samples" / "step-000001.png") as grid:
        assert grid.size == (3 * 64, 2 * 64)  # pose | target | sample, two rows


def test_bad_dataset_gets_the_validators_message(tiny_base, tiny_dataset, tmp_path):
    (tiny_dataset / "train_pose" / "pose_images" / "0003.png").unlink()
    with pytest.raises(DatasetError) as err:
        train(config(tiny_base, tiny_dataset, tmp_path / "out", steps=1))
    assert "0003.png" in str(err.value) and "file is missing" in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written before the data is known good
    cli = subprocess.run([sys.executable, "-m", "hierafash_cli", "train", "--dataset", str(tiny_dataset),
                          "--base", str(tiny_base), "--output", str(tmp_path / "out")],
                         cwd=REPO, capture_output=True, text=True)
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert cli.stderr.startswith("hierafash train: --dataset: dataset ") and "0003.png" in cli.stderr


def test_cli_trains_and_exports(tiny_base, tiny_dataset, tmp_path):
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    cli = subprocess.run([sys.executable, "-m", "hierafash_cli", "train", "--dataset", str(tiny_dataset),
                          "--base", str(tiny_base), "--output", str(tmp_path / "out"), "--steps", "2",
                          "--batch-size", "2", "--no-progress", "--cache-text"],
                         cwd=REPO, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "exported:" in cli.stdout and (tmp_path / "out" / "controlnet.safetensors").is_file()


def test_help_documents_every_option():
    from dataclasses import fields

    cli = subprocess.run([sys.executable, "-m", "hierafash_cli", "train", "--help"], cwd=REPO, capture_output=True,
                         text=True, check=True)
    options = {f.name for f in fields(TrainConfig)} - {"progress", "boundaries"}  # --no-progress; bands: the paper's
    missing = [name for name in options if f"--{name.replace('_', '-')}" not in cli.stdout]
    assert missing == [] and "--no-progress" in cli.stdout


def test_bf16_then_lora_with_a_frozen_controlnet_in_one_process(tiny_base, tiny_dataset, tmp_path):
    mixed = train(config(tiny_base, tiny_dataset, tmp_path / "bf16", steps=1, precision="bf16"))
    assert next(mixed.base.unet.parameters()).dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in mixed.trained.parameters())  # trained weights stay fp32
    lora = train(config(tiny_base, tiny_dataset, tmp_path / "lora", steps=1, mode="lora", controlnet=mixed.export))
    assert lora.export.name == "lora.safetensors" and len(lora.losses) == 1
