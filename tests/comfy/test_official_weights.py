"""The official checkpoint's layout, converted, loads through ComfyUI's stock loaders and samples as ε with the
hierarchical schedule and the pose ControlNet. Uses a seeded replica of hfd_100epochs.ckpt (conftest.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
import safetensors.torch
from support.graphs import PAPER_ATTRIBUTES, Graph, add_scheduler, hierarchical_design

from hierafash_cli import convert_cmd
from hierafash_cli.server import ComfyError
from hierafash_core.weights import CHECKPOINT_PARTS, CONTROLNET_PREFIX, SCHEDULE_BUFFERS, convert_checkpoint

STEM = "hfd_replica"  # also what HieraFash Load Official Model names its conversion of hfd_replica.ckpt
CHECKPOINT = f"{STEM}_sd21.safetensors"
CONTROLNET = f"{STEM}_pose_controlnet.safetensors"
STEPS = 4  # the UNet costs seconds per step on a CPU: few steps, and boundaries that give each stage one
BOUNDARIES = "900, 600"  # concept for t >= 900, +attribute for 600 <= t < 900, then the detail stage
SD_LATENT_SCALE = 0.18215  # KSampler returns latents divided by it (SD's latent format)
# ComfyUI warns with these when a loaded file lacks weights the model it built expects.
MISSING_WEIGHT_WARNINGS = ("unet missing", "clip missing", "missing controlnet keys", "no CLIP/text encoder weights")


@pytest.fixture(scope="module")
def converted(official_replica, comfy_base):
    models = comfy_base / "models"
    start = time.perf_counter()
    report = convert_checkpoint(official_replica, models / "checkpoints", models / "controlnet", stem=STEM)
    print(f"converted {official_replica.name} in {time.perf_counter() - start:.1f} s\n{report.summary()}")
    yield report
    for out in report.outputs:  # 1 GB of disk that no later module reads
        Path(out.path).unlink(missing_ok=True)


class ServerLog:
    """The server log written since this object was made."""

    def __init__(self, comfy):
        self.path = Path(comfy.log_path)
        self.start = self.path.stat().st_size

    def since(self) -> str:
        with open(self.path, errors="replace") as f:
            f.seek(self.start)
            return f.read()


def sample(comfy, comfy_base, probe_log, eps_patch: bool, schedule_and_pose: bool, prefix: str,
           official_loader: str | None = None):
    """Sample the converted checkpoint at 64x64; return (final latent, probe events).

    With `schedule_and_pose`: C(t) from our scheduler plus the pose ControlNet on both conds, as the workflows do.
    One attribute keeps the text encodes few: the full-size OpenCLIP-H takes seconds per prompt on a CPU.
    With `official_loader` (a checkpoint name): everything comes from HieraFash Load Official Model instead of the
    stock loaders.
    """
    g = Graph()
    if official_loader:
        loader = g.add("HieraFashLoadOfficialModel", ckpt_name=official_loader)
        control_net = loader.out(3)
    else:
        loader = g.add("CheckpointLoaderSimple", ckpt_name=CHECKPOINT)
        control_net = g.add("ControlNetLoader", control_net_name=CONTROLNET).out(0)
    model, clip, vae = loader.out(0), loader.out(1), loader.out(2)
    if eps_patch:
        model = g.add("ModelSamplingDiscrete", model=model, sampling="eps", zsnr=False).out(0)
    positive = negative = g.add("CLIPTextEncode", text="", clip=clip).out(0)
    if schedule_and_pose:
        design = hierarchical_design(g, attributes=PAPER_ATTRIBUTES[:1])
        positive = add_scheduler(g, design, clip, model, steps=STEPS, scheduler="normal", boundaries=BOUNDARIES).out(0)
        pose = g.add("EmptyImage", width=64, height=64, batch_size=1, color=0).out(0)
        controlled = g.add("ControlNetApplyAdvanced", positive=positive, negative=negative,
                           control_net=control_net, image=pose,
                           strength=1.0, start_percent=0.0, end_percent=1.0, vae=vae)
        positive, negative = controlled.out(0), controlled.out(1)
    sampled = g.add("KSampler", model=g.add("HieraFashTestProbe", model=model, log_path=probe_log.path).out(0),
                    positive=positive, negative=negative,
                    latent_image=g.add("EmptyLatentImage", width=64, height=64, batch_size=1).out(0),
                    seed=3, steps=STEPS, cfg=5.0, sampler_name="euler", scheduler="normal", denoise=1.0)
    saved = g.add("SaveLatent", samples=sampled.out(0), filename_prefix=f"latents/{prefix}")
    if schedule_and_pose:
        g.add("SaveImage", images=g.add("VAEDecode", samples=sampled.out(0), vae=vae).out(0), filename_prefix=prefix)
    entry = comfy.run(g.prompt())
    file = entry["outputs"][str(saved)]["latents"][0]
    latent = safetensors.torch.load_file(comfy_base / "output" / file["subfolder"] / file["filename"])["latent_tensor"]
    return latent, probe_log("unet")


def noise_kept(latent, unet_calls) -> float:
    """Final latent spread over the initial noise's. The replica's UNet predicts exactly 0, so ε-sampling keeps the
    initial noise (1.0) while v-sampling shrinks it towards 0."""
    return float(latent.float().std()) * SD_LATENT_SCALE / unet_calls[0]["sigma"]


def test_conversion_splits_the_official_layout(converted):
    assert [(out.kind, out.status) for out in converted.outputs] == [("checkpoint", "written"),
                                                                     ("controlnet", "written")]
    assert {"logvar", "model_ema.decay", "model_ema.num_updates"} == {k for keys in converted.dropped.values()
                                                                      for k in keys}
    assert converted.training_info == {"epoch": 99, "global_step": 460000, "pytorch-lightning_version": "1.5.0"}
    checkpoint, controlnet = (safetensors.torch.load_file(out.path) for out in converted.outputs)
    assert {k for k in checkpoint if not k.startswith(tuple(CHECKPOINT_PARTS))} <= SCHEDULE_BUFFERS
    assert all(any(k.startswith(p) for k in checkpoint) for p in CHECKPOINT_PARTS)
    assert controlnet and all(k.startswith(CONTROLNET_PREFIX) for k in controlnet)
    # The replica's v-prediction probe weight is spread like a v model's: ComfyUI alone would guess v.
    assert converted.comfyui_guess == "v_prediction"


def test_stock_loaders_accept_both_files_and_the_model_samples_as_eps(comfy, comfy_base, converted, probe_log):
    log = ServerLog(comfy)
    start = time.perf_counter()
    latent, unet_calls = sample(comfy, comfy_base, probe_log, eps_patch=True, schedule_and_pose=True,
                                prefix="official_eps")
    print(f"load, encode, {STEPS} steps with C(t) and the pose ControlNet, decode: {time.perf_counter() - start:.1f} s")
    loaded = log.since()
    assert not [w for w in MISSING_WEIGHT_WARNINGS if w in loaded], loaded
    assert len(unet_calls) == STEPS
    assert all(call["control"] and call["batch"] == 2 for call in unet_calls), unet_calls
    stages = [call["stages"][0] for call in unet_calls]
    assert stages == sorted(stages) and set(stages) == {0, 1, 2}, stages  # concept, +attribute, detail
    assert latent.shape == (1, 4, 8, 8) and latent.isfinite().all()
    assert 0.8 < noise_kept(latent, unet_calls) < 1.25  # ε: the zero prediction leaves the noise as it was


def test_without_the_eps_patch_comfyui_samples_the_replica_as_v(comfy, comfy_base, converted, probe_log):
    # Why workflows need ModelSamplingDiscrete (eps): ComfyUI's own guess takes this checkpoint for v-prediction.
    latent, unet_calls = sample(comfy, comfy_base, probe_log, eps_patch=False, schedule_and_pose=False,
                                prefix="official_guess")
    assert noise_kept(latent, unet_calls) < 0.3


def test_convert_node_finds_the_outputs_up_to_date(comfy, converted):
    g = Graph()
    node = g.add("HieraFashConvertCheckpoint", ckpt_name=converted.source.name, overwrite=False, name=STEM)
    report = comfy.run(g.prompt())["outputs"][str(node)]["text"][0]
    assert report.count(" unchanged ") == 2, report
    assert CHECKPOINT in report and CONTROLNET in report and "ModelSamplingDiscrete" in report


# overwrite = true is saved in workflows: a shared one must not replace a file the converter did not write either.
@pytest.mark.parametrize(("overwrite", "name", "refusal"), [(False, "occupied", "overwrite"),
                                                            (True, "foreign", "not written by this converter")],
                         ids=["without_the_switch", "with_the_switch"])
def test_convert_node_never_replaces_a_file_it_did_not_write(comfy, comfy_base, converted, overwrite, name, refusal):
    occupied = comfy_base / "models" / "controlnet" / f"{name}_pose_controlnet.safetensors"
    occupied.write_bytes(b"someone else's file")
    g = Graph()
    g.add("HieraFashConvertCheckpoint", ckpt_name=converted.source.name, overwrite=overwrite, name=name)
    with pytest.raises(ComfyError, match=refusal) as refused:
        comfy.run(g.prompt())
    assert str(occupied) in str(refused.value)
    assert occupied.read_bytes() == b"someone else's file"
    assert not (comfy_base / "models" / "checkpoints" / f"{name}_sd21.safetensors").exists()  # nothing half-done


def test_cli_convert_finds_the_outputs_up_to_date(comfy_base, converted, capsys):
    parser = argparse.ArgumentParser()
    convert_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["convert", str(converted.source), "--models-dir", str(comfy_base / "models"),
                              "--name", STEM])
    assert args.func(args) == 0
    assert capsys.readouterr().out.count(" unchanged ") == 2


def test_official_loader_gives_an_eps_model_clip_vae_and_the_pose_controlnet(comfy, comfy_base, converted, probe_log):
    # `converted` wrote the files this node names after the replica: the node finds them up to date and loads them.
    log = ServerLog(comfy)
    latent, unet_calls = sample(comfy, comfy_base, probe_log, eps_patch=False, schedule_and_pose=True,
                                prefix="official_loader", official_loader=converted.source.name)
    assert not [w for w in MISSING_WEIGHT_WARNINGS if w in log.since()]
    assert len(unet_calls) == STEPS and all(call["control"] for call in unet_calls), unet_calls
    # ComfyUI alone guesses v for the replica (noise shrinks, see above): the node forces ε.
    assert 0.8 < noise_kept(latent, unet_calls) < 1.25
    assert {p.name for p in (comfy_base / "models" / "checkpoints").glob(f"{STEM}*.safetensors")} == {CHECKPOINT}


def test_official_loader_refuses_a_crafted_file_with_the_converters_error(comfy, comfy_base):
    crafted = comfy_base / "models" / "checkpoints" / "crafted.ckpt"
    crafted.write_bytes(b"\x80\x02}q\x00.")  # a bare pickle: torch's legacy format, refused unread
    g = Graph()
    loader = g.add("HieraFashLoadOfficialModel", ckpt_name=crafted.name)
    latent = g.add("EmptyLatentImage", width=64, height=64, batch_size=1).out(0)
    g.add("PreviewImage", images=g.add("VAEDecode", samples=latent, vae=loader.out(2)).out(0))
    with pytest.raises(ComfyError, match="HieraFash Load Official Model: input 'ckpt_name': .*legacy"):
        comfy.run(g.prompt())
    assert not list((comfy_base / "models" / "checkpoints").glob("crafted*.safetensors"))
