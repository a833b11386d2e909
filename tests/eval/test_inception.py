"""The optional Inception FID (`--inception`): a seeded torchvision Inception-v3 built here, never downloaded."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hierafash_cli.__main__ import main
from hierafash_core.errors import HieraFashError
from hierafash_core.inception_features import load_inception

CALIBRATION_SEED = 0


def inception_state_dict() -> dict[str, torch.Tensor]:
    """A seeded torchvision inception_v3 in pytorch-fid's file layout (1008-class fc), batch norms calibrated."""
    from torchvision.models import inception_v3

    torch.manual_seed(CALIBRATION_SEED)
    model = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running stats = this batch's: without them random features vanish (~1e-8)
    with torch.no_grad():
        model.train()(torch.rand(4, 3, 96, 96) * 2 - 1)
    return model.state_dict()


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception-test.pth"
    torch.save(inception_state_dict(), path)
    return path


def run_eval(argv, capsys):
    code = main(["eval", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()[-1] if err.strip() else ""


def pytorch_fid_model(weights, monkeypatch):
    """pytorch-fid's own FID Inception, fed our weights file instead of its download."""
    inception = pytest.importorskip("pytorch_fid.inception", reason="pytorch-fid is a test-only cross-check")
    state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict)
    return inception


def test_features_equal_pytorch_fids_with_the_same_weights(tmp_path, figures, inception_weights, monkeypatch):
    paths = figures(tmp_path / "a", 1, seed=3) + figures(tmp_path / "b", 1, seed=4, size=(80, 80))
    ours = load_inception(inception_weights)
    features = np.concatenate([ours.encode_crops(ours.load_batch([p])) for p in paths])
    reference = pytorch_fid_model(inception_weights, monkeypatch).InceptionV3([3]).eval()
    with torch.no_grad():
        expected = np.concatenate([reference(torch.from_numpy(np.array(Image.open(p).convert("RGB"), np.float32)
                                                              / 255.0).permute(2, 0, 1)[None])[0].flatten(1).numpy()
                                   for p in paths])
    assert features.shape == (2, 2048) and features.std(0).mean() > 1e-3
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).mean())


def test_generation_reports_inception_fid_end_to_end(tmp_path, figures, tiny_clip, inception_weights, capsys):
    figures(tmp_path / "real", 3, seed=1)
    shutil.copytree(tmp_path / "real", tmp_path / "same")
    figures(tmp_path / "other", 3, seed=2, size=(80, 80))
    output = tmp_path / "generation.json"
    argv = ["generation", "--real", tmp_path / "real", "--fake", tmp_path / "same", tmp_path / "other",
            "--clip", tiny_clip, "--inception", inception_weights, "--k", 2, "--cache-dir", tmp_path / "cache",
            "--output", output]
    code, out, err = run_eval(argv, capsys)
    assert code == 0, err
    report = json.loads(output.read_text())
    same, other = report["results"]
    assert other["fid_inception"] > 1.0 and abs(same["fid_inception"]) < 1e-9 * other["fid_inception"]
    assert same["fid_inception_covariance_offset"] == 0.0  # 3 images in 2048 dims: the exact low-rank trace
    assert report["inception"]["sha256"] == hashlib.sha256(inception_weights.read_bytes()).hexdigest()
    assert "FID (Inc)" in out and report["inception"]["sha256"][:12] in out
    code, _, err = run_eval(argv, capsys)  # a re-run reads both models' features from the cache
    assert code == 0, err
    rerun = json.loads(output.read_text())["results"][1]
    assert rerun["fid_inception"] == other["fid_inception"] and rerun["from_cache"]
    assert rerun["inception_cache_file"] == other["inception_cache_file"] != other["cache_file"]


def test_a_state_dict_with_other_keys_is_refused_naming_the_file(tmp_path, figures, tiny_clip, capsys):
    figures(tmp_path / "real", 3, seed=1)
    from torchvision.models import inception_v3

    weights = tmp_path / "torchvision_imagenet_layout.pth"  # torchvision's own file: an aux head, 1000 classes
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), weights)
    code, _, err = run_eval(["generation", "--real", tmp_path / "real", "--fake", tmp_path / "real", "--clip",
                             tiny_clip, "--inception", weights, "--k", 2, "--no-cache"], capsys)
    assert code == 2
    assert err.startswith("hierafash eval generation: --inception: ")
    assert str(weights) in err and "pt_inception-2015-12-05-6726825d.pth" in err and "AuxLogits" in err


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_a_torchscript_file_is_refused_with_the_supported_format(tmp_path):
    scripted = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(scripted))
    with pytest.raises(HieraFashError, match=r"TorchScript.*pt_inception-2015-12-05-6726825d\.pth"):
        load_inception(scripted)


def test_a_cached_clip_reference_cannot_serve_the_inception_fid(tmp_path, figures, tiny_clip, inception_weights,
                                                                capsys):
    figures(tmp_path / "real", 3, seed=1)
    output = tmp_path / "clip_only.json"
    common = ["--fake", tmp_path / "real", "--clip", tiny_clip, "--k", 2, "--cache-dir", tmp_path / "cache"]
    code, _, err = run_eval(["generation", "--real", tmp_path / "real", *common, "--output", output], capsys)
    assert code == 0, err
    cached = json.loads(output.read_text())["reference"]["cache_file"]
    code, _, err = run_eval(["generation", "--real", cached, *common, "--inception", inception_weights], capsys)
    assert code == 2
    assert err == ("hierafash eval generation: --real: a cached features .npz holds CLIP features only: give the "
                   "image folder when --inception is used")
