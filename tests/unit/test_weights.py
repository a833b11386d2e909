"""Reading, splitting and writing the official weights (hierafash_core.weights, checkpoint_reading,
safetensors_writing), without ComfyUI."""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import shutil
import sys
import types
import zipfile

import numpy as np
import pytest
import safetensors.torch
import torch

from hierafash_cli import convert_cmd
from hierafash_core import safetensors_writing as writing
from hierafash_core.checkpoint_reading import load_checkpoint
from hierafash_core.weights import comfyui_prediction_guess, convert_checkpoint, output_names, split_state_dict
from hierafash_core.weights_errors import (
    CheckpointLayoutError,
    CheckpointReadError,
    OutputExistsError,
    OutputWriteError,
    UnsafeCheckpointError,
    VerificationError,
    WeightsError,
)

CHECKPOINT_NAME, CONTROLNET_NAME = output_names()


def controlldm_state(seed=0) -> dict[str, torch.Tensor]:
    """A tiny state dict with the official key layout (shapes are irrelevant to the converter)."""
    gen = torch.Generator().manual_seed(seed)
    state = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.randn(8, 4, 3, 3, generator=gen),
        "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias": torch.randn(8, generator=gen),
        "model.diffusion_model.out.2.bias": torch.zeros(4, dtype=torch.float16),
        "first_stage_model.decoder.conv_in.weight": torch.randn(8, 4, 3, 3, generator=gen).to(torch.bfloat16),
        "cond_stage_model.model.positional_embedding": torch.randn(77, 8, generator=gen),
        "cond_stage_model.model.logit_scale": torch.tensor(4.6),
        "control_model.zero_convs.0.0.weight": torch.randn(8, 8, 1, 1, generator=gen),
        "control_model.input_hint_block.0.weight": torch.randn(16, 3, 3, 3, generator=gen),
        "alphas_cumprod": torch.linspace(0.99, 0.01, 1000, dtype=torch.float64),
        "logvar": torch.zeros(1000),
        "model_ema.decay": torch.tensor(0.9999),
        "model_ema.num_updates": torch.tensor(7, dtype=torch.int32),
        "first_stage_model.loss.logvar": torch.zeros(()),
    }
    return state


def lightning(state, **extra) -> dict:
    return {"epoch": 99, "global_step": 1234, "pytorch-lightning_version": "1.5.0", "state_dict": state,
            "hyper_parameters": {"learning_rate": 1e-5, "sd_locked": True, "only_mid_control": False},
            "callbacks": {"ModelCheckpoint{'monitor': None, 'every_n_train_steps': 50000}": {
                "monitor": None, "best_model_score": None, "dirpath": "./hiera_logs", "best_k_models": {},
                "kth_value": torch.tensor(float("inf")), "last_model_path": "./hiera_logs/last.ckpt"}},
            "optimizer_states": [{"state": {0: {"step": 3, "exp_avg": torch.zeros(2)}},
                                  "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999), "amsgrad": False,
                                                    "params": [0]}]}],
            "lr_schedulers": [], **extra}


@pytest.fixture
def models(tmp_path):
    return tmp_path / "models"


def convert(source, models, **kwargs):
    return convert_checkpoint(source, models / "checkpoints", models / "controlnet", **kwargs)


def save(tmp_path, obj, name="hfd.ckpt", **kwargs) -> pathlib.Path:
    path = tmp_path / name
    torch.save(obj, path, **kwargs)
    return path


# --- reading ------------------------------------------------------------------------------------------------


def test_lightning_checkpoint_with_plain_metadata_loads(tmp_path):
    state = controlldm_state()
    path = save(tmp_path, lightning(state))
    loaded = load_checkpoint(path)
    assert loaded.state_dict.keys() == state.keys()
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in state.items())
    assert loaded.training_info == {"epoch": 99, "global_step": 1234, "pytorch-lightning_version": "1.5.0"}


def test_plain_state_dict_loads(tmp_path):
    state = controlldm_state()
    assert load_checkpoint(save(tmp_path, state)).state_dict.keys() == state.keys()


@pytest.fixture
def lightning_modules(monkeypatch, tmp_path):
    """Importable stand-ins for Lightning classes whose code would leave a marker file if it ever ran."""
    marker = tmp_path / "lightning_code_ran"

    class AttributeDict(dict):
        def __setstate__(self, state):
            marker.touch()

    class ModelCheckpoint:
        def __reduce__(self):
            marker.touch()
            return super().__reduce__()

    for cls, module in ((AttributeDict, "pytorch_lightning.utilities.parsing"),
                        (ModelCheckpoint, "pytorch_lightning.callbacks.model_checkpoint")):
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            monkeypatch.setitem(sys.modules, ".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
        cls.__module__, cls.__qualname__ = module, cls.__name__
        setattr(sys.modules[module], cls.__name__, cls)
    return AttributeDict, ModelCheckpoint, marker


def test_known_lightning_metadata_loads_as_inert_records(tmp_path, lightning_modules):
    attribute_dict, model_checkpoint, marker = lightning_modules
    path = save(tmp_path, lightning(
        controlldm_state(),
        # Lightning < 1.5 keys callback states by the callback class itself.
        callbacks={model_checkpoint: {"best_model_path": pathlib.PosixPath("/runs/last.ckpt"),
                                      "best_model_score": np.float64(0.25)}},
        hyper_parameters=attribute_dict(learning_rate=1e-5, sd_locked=True),
        args=argparse.Namespace(gpus=[1], precision=32),
    ))
    sys.modules.pop("pytorch_lightning")  # loading must not need (or import) Lightning
    loaded = load_checkpoint(path)
    assert "model.diffusion_model.input_blocks.0.0.weight" in loaded.state_dict
    assert not marker.exists()


@pytest.fixture
def side_effect(tmp_path):
    return tmp_path / "payload_ran"


class SystemCall:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class ExecCall:
    def __init__(self, source):
        self.source = source

    def __reduce__(self):
        return exec, (self.source,)


def malicious(kind: str, marker: pathlib.Path, path: pathlib.Path) -> str:
    """Write a checkpoint whose unpickling would create `marker`; return what the refusal names."""
    payload = {"state_dict": controlldm_state()}
    if kind == "os.system in the zip format":
        torch.save({**payload, "x": SystemCall(f"touch {marker}")}, path)
        return f"the global '{os.system.__module__}.system'"
    if kind == "exec of code":
        torch.save({**payload, "x": ExecCall(f"open({str(marker)!r}, 'w').close()")}, path)
        return "the global 'exec'"
    # A protocol-5 STACK_GLOBAL in the archive: outside the subset torch's restricted unpickler reads at all.
    torch.save(payload, path)
    rezip(path, path, {"data.pkl": pickle.dumps({"x": SystemCall(f"touch {marker}")}, protocol=5)})
    return "an instruction outside the safe subset"


def rezip(source: pathlib.Path, target: pathlib.Path, replace: dict[str, bytes]) -> None:
    """Rewrite a torch zip archive with some entries (named below its top folder) replaced."""
    with zipfile.ZipFile(source) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries:
            archive.writestr(name, replace.get(name.split("/", 1)[1], data))


@pytest.mark.parametrize("kind", ["os.system in the zip format", "exec of code", "os.system in a protocol-5 pickle"])
def test_code_payloads_are_refused_and_nothing_runs(tmp_path, side_effect, kind):
    path = tmp_path / "evil.ckpt"
    refused_global = malicious(kind, side_effect, path)
    with pytest.raises(UnsafeCheckpointError) as refused:
        load_checkpoint(path)
    assert str(path) in str(refused.value)
    assert f"asks for {refused_global}" in str(refused.value)
    assert not side_effect.exists()


@pytest.mark.parametrize("payload", ["state dict", "os.system", "raw protocol-5 pickle"])
def test_the_legacy_format_is_refused_before_unpickling(tmp_path, side_effect, payload):
    path = tmp_path / "old.ckpt"
    if payload == "raw protocol-5 pickle":
        path.write_bytes(pickle.dumps({"x": SystemCall(f"touch {side_effect}")}, protocol=5))
    else:
        extra = {"x": SystemCall(f"touch {side_effect}")} if payload == "os.system" else {}
        torch.save(lightning(controlldm_state(), **extra), path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointReadError, match="legacy .* format, which is refused"):
        load_checkpoint(path)
    assert not side_effect.exists()


def test_a_refused_checkpoint_writes_nothing(tmp_path, side_effect, models):
    path = tmp_path / "evil.ckpt"
    malicious("os.system in the zip format", side_effect, path)
    with pytest.raises(UnsafeCheckpointError):
        convert(path, models)
    assert not models.exists() and not side_effect.exists()


@pytest.mark.parametrize("kept", [0.05, 0.5, 0.98])
def test_truncated_file_gives_a_clear_error(tmp_path, kept):
    data = save(tmp_path, lightning(controlldm_state()), "full.ckpt").read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: int(len(data) * kept)])
    with pytest.raises(CheckpointReadError, match="truncated or corrupt") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"<html>Not Found</html>", "not a PyTorch checkpoint")])
def test_empty_or_foreign_file_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "hfd.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=message):
        load_checkpoint(path)


def test_missing_file_gives_a_clear_error(tmp_path):
    with pytest.raises(CheckpointReadError, match="cannot open"):
        load_checkpoint(tmp_path / "absent.ckpt")


# --- splitting ----------------------------------------------------------------------------------------------


def test_split_routes_every_key():
    split = split_state_dict({**controlldm_state(), "cond_stage_model.model.unexpected_head.weight": torch.ones(1),
                              "mystery": torch.ones(1)})
    assert set(split.controlnet) == {"control_model.zero_convs.0.0.weight", "control_model.input_hint_block.0.weight"}
    assert "alphas_cumprod" in split.checkpoint and "cond_stage_model.model.unexpected_head.weight" in split.checkpoint
    assert all(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model."))
               for k in split.checkpoint if k != "alphas_cumprod")
    dropped = {k: reason for reason, keys in split.dropped.items() for k in keys}
    assert set(dropped) == {"logvar", "model_ema.decay", "model_ema.num_updates", "first_stage_model.loss.logvar",
                            "mystery"}
    assert "EMA" in dropped["model_ema.decay"] and "unrecognised" in dropped["mystery"]


@pytest.mark.parametrize("prefix, part", [("control_model.", "ControlNet"), ("cond_stage_model.", "text encoder"),
                                          ("model.diffusion_model.", "UNet")])
def test_split_refuses_a_checkpoint_missing_a_part(prefix, part):
    state = {k: v for k, v in controlldm_state().items() if not k.startswith(prefix)}
    with pytest.raises(CheckpointLayoutError, match=f"no {part} weights"):
        split_state_dict(state)


@pytest.mark.parametrize("spread, guess", [(0.2, "v_prediction"), (0.05, "eps")])
def test_comfyui_prediction_guess_follows_its_heuristic(spread, guess):
    state = controlldm_state()
    probe = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"
    state[probe] = torch.randn(320, generator=torch.Generator().manual_seed(1)) * spread
    assert comfyui_prediction_guess(state) == guess
    del state[probe]
    assert comfyui_prediction_guess(state) == "eps"
    # A crafted UNet without the weights the guess reads still converts (the guess is only a remark).
    del state["model.diffusion_model.input_blocks.0.0.weight"]
    assert comfyui_prediction_guess(state) == "eps"


# --- writing ------------------------------------------------------------------------------------------------


def test_convert_writes_verified_safetensors(tmp_path, models):
    state = controlldm_state()
    report = convert(save(tmp_path, lightning(state)), models)
    assert [(o.kind, o.status) for o in report.outputs] == [("checkpoint", "written"), ("controlnet", "written")]
    checkpoint = safetensors.torch.load_file(models / "checkpoints" / CHECKPOINT_NAME)
    controlnet = safetensors.torch.load_file(models / "controlnet" / CONTROLNET_NAME)
    split = split_state_dict(state)
    for written, expected in ((checkpoint, split.checkpoint), (controlnet, split.controlnet)):
        assert written.keys() == expected.keys()
        assert all(written[k].dtype == v.dtype and torch.equal(written[k], v) for k, v in expected.items())
    with safetensors.safe_open(str(models / "controlnet" / CONTROLNET_NAME), "pt") as f:
        assert f.metadata()[writing.DIGEST_KEY] == writing.content_digest(split.controlnet)
    assert "epsilon" in report.summary() and "ModelSamplingDiscrete" in report.summary()


def test_progress_follows_the_bytes_written(tmp_path, models):
    state = controlldm_state()
    calls = []
    convert(save(tmp_path, lightning(state)), models, progress=lambda done, total: calls.append((done, total)))
    split = split_state_dict(state)
    total = sum(t.numel() * t.element_size() for part in (split.checkpoint, split.controlnet) for t in part.values())
    assert len(calls) == len(split.checkpoint) + len(split.controlnet)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls) and calls[-1] == (total, total)
    calls.clear()
    convert(save(tmp_path, lightning(state)), models, progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # nothing to write


def test_rerun_on_identical_outputs_is_a_no_op(tmp_path, models):
    source = save(tmp_path, lightning(controlldm_state()))
    convert(source, models)
    paths = [models / "checkpoints" / CHECKPOINT_NAME, models / "controlnet" / CONTROLNET_NAME]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in paths]
    # Identity is the content: the same weights from another file with other metadata are still identical.
    other = save(tmp_path, lightning(controlldm_state(), epoch=3), "copy.ckpt")
    report = convert(other, models)
    assert [o.status for o in report.outputs] == ["unchanged", "unchanged"]
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in paths] == before


def test_existing_output_is_not_overwritten_without_the_flag(tmp_path, models):
    occupied = models / "controlnet" / CONTROLNET_NAME
    occupied.parent.mkdir(parents=True)
    occupied.write_bytes(b"the user's own file")
    source = save(tmp_path, lightning(controlldm_state()))
    with pytest.raises(OutputExistsError, match="overwrite") as refused:
        convert(source, models)
    assert str(occupied) in str(refused.value)
    assert occupied.read_bytes() == b"the user's own file"
    assert not (models / "checkpoints" / CHECKPOINT_NAME).exists()  # neither output is written


@pytest.mark.parametrize("foreign", ["not safetensors", "safetensors without our digest", "ours, edited since"])
def test_overwrite_never_replaces_a_file_this_converter_did_not_write(tmp_path, models, foreign):
    # A shared workflow can carry overwrite = true: it may replace our own outputs only.
    occupied = models / "checkpoints" / CHECKPOINT_NAME
    if foreign == "ours, edited since":
        convert(save(tmp_path, lightning(controlldm_state(seed=2)), "mine.ckpt"), models)
        data = bytearray(occupied.read_bytes())
        data[-1] ^= 0xFF  # the last tensor byte: the recorded digest no longer matches
        occupied.write_bytes(data)
    else:
        occupied.parent.mkdir(parents=True)
        if foreign == "not safetensors":
            occupied.write_bytes(b"the user's own file")
        else:
            safetensors.torch.save_file({"w": torch.ones(3)}, occupied, metadata={"note": "a user's merge"})
    before = occupied.read_bytes()
    with pytest.raises(OutputExistsError, match="not written by this converter.*even with overwrite"):
        convert(save(tmp_path, lightning(controlldm_state())), models, overwrite=True)
    assert occupied.read_bytes() == before
    assert not (models / "controlnet" / CONTROLNET_NAME).exists() or foreign == "ours, edited since"


def test_overwrite_replaces_an_earlier_conversion(tmp_path, models):
    convert(save(tmp_path, lightning(controlldm_state(seed=0))), models)
    report = convert(save(tmp_path, lightning(controlldm_state(seed=1)), "other.ckpt"), models, overwrite=True)
    assert [o.status for o in report.outputs] == ["replaced", "replaced"]
    written = safetensors.torch.load_file(models / "controlnet" / CONTROLNET_NAME)
    expected = split_state_dict(controlldm_state(seed=1)).controlnet
    assert all(torch.equal(written[k], v) for k, v in expected.items())


def test_outputs_take_the_umasks_mode(tmp_path, models):
    previous = os.umask(0o022)
    try:
        convert(save(tmp_path, lightning(controlldm_state())), models)
    finally:
        os.umask(previous)
    for path in (models / "checkpoints" / CHECKPOINT_NAME, models / "controlnet" / CONTROLNET_NAME):
        assert path.stat().st_mode & 0o777 == 0o644  # mkstemp would leave 0600


def test_no_room_on_the_disk_writes_nothing(tmp_path, models, monkeypatch):
    source = save(tmp_path, lightning(controlldm_state()))
    # A disk with 1 MiB free: simulated, as a test cannot fill a real disk.
    monkeypatch.setattr(writing.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(2**40, 2**40, 2**20))
    with pytest.raises(OutputWriteError, match="not enough free disk space.*MiB margin"):
        convert(source, models)
    assert leftovers(models / "checkpoints") == [] and leftovers(models / "controlnet") == []


def test_other_weights_are_a_conflict_too(tmp_path, models):
    convert(save(tmp_path, lightning(controlldm_state(seed=0))), models)
    with pytest.raises(OutputExistsError):
        convert(save(tmp_path, lightning(controlldm_state(seed=1)), "other.ckpt"), models)


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_interrupted_write_leaves_no_half_written_file(tmp_path, models, monkeypatch):
    source = save(tmp_path, lightning(controlldm_state()))
    written = []

    def write_then_fail(file, tensor):
        if written:
            raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of the tensor data
        written.append(tensor)
        file.write(writing._raw_bytes(tensor))

    monkeypatch.setattr(writing, "_write_tensor", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        convert(source, models)
    assert leftovers(models / "checkpoints") == [] and leftovers(models / "controlnet") == []


def test_interrupted_overwrite_keeps_the_old_file(tmp_path, models, monkeypatch):
    convert(save(tmp_path, lightning(controlldm_state(seed=0))), models)
    old = models / "checkpoints" / CHECKPOINT_NAME
    previous = old.read_bytes()
    monkeypatch.setattr(writing, "_write_tensor", lambda file, tensor: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OutputWriteError, match="disk full.*nothing was replaced"):
        convert(save(tmp_path, lightning(controlldm_state(seed=1)), "other.ckpt"), models, overwrite=True)
    assert old.read_bytes() == previous
    assert leftovers(old.parent) == [CHECKPOINT_NAME]


def test_a_file_that_does_not_read_back_right_is_not_published(tmp_path, models, monkeypatch):
    def write_flipped(file, tensor):
        data = bytearray(writing._raw_bytes(tensor).tobytes())
        data[0] ^= 0xFF
        file.write(data)

    monkeypatch.setattr(writing, "_write_tensor", write_flipped)
    with pytest.raises(VerificationError, match="differ"):
        convert(save(tmp_path, lightning(controlldm_state())), models)
    assert leftovers(models / "checkpoints") == []


@pytest.mark.parametrize("stem", ["", "../escape", "a/b", ".hidden", "x" * 101])
def test_output_name_must_be_a_plain_file_name(stem):
    with pytest.raises(WeightsError, match="plain file name"):
        output_names(stem)


# --- the console command ------------------------------------------------------------------------------------


def run_cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="hierafash")
    convert_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["convert", *map(str, argv)])
    return args.func(args)


def test_cli_converts_refuses_and_overwrites(tmp_path, models, capsys):
    source = save(tmp_path, lightning(controlldm_state()))
    assert run_cli(source, "--models-dir", models, "--name", "hfd") == 0
    assert (models / "checkpoints" / "hfd_sd21.safetensors").is_file()
    assert (models / "controlnet" / "hfd_pose_controlnet.safetensors").is_file()
    assert "written" in capsys.readouterr().out

    other = save(tmp_path, lightning(controlldm_state(seed=1)), "other.ckpt")
    assert run_cli(other, "--models-dir", models, "--name", "hfd") == 1
    assert "--overwrite" in capsys.readouterr().err
    assert run_cli(other, "--models-dir", models, "--name", "hfd", "--overwrite") == 0
    assert capsys.readouterr().out.count(" replaced ") == 2


def test_cli_reports_an_unreadable_checkpoint(tmp_path, models, capsys):
    path = tmp_path / "hfd.ckpt"
    path.write_bytes(b"PK\x03\x04 cut short")
    assert run_cli(path, "--models-dir", models) == 1
    assert str(path) in capsys.readouterr().err


def test_cli_default_models_dir_is_the_served_home():
    from hierafash_cli.server import DEFAULT_HOME

    parser = argparse.ArgumentParser()
    convert_cmd.add_parser(parser.add_subparsers())
    assert parser.parse_args(["convert", "x.ckpt"]).models_dir == DEFAULT_HOME / "models"
