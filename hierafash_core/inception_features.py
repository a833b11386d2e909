"""Inception-v3 pool features (2048-d) for the classic FID, from a weights file the user already has.

The weights are pytorch-fid's state dict (`pt_inception-2015-12-05-6726825d.pth`, the TF FID graph ported to
torchvision's layout); nothing is downloaded. The network is torchvision's Inception3 with pytorch-fid's FID
variant of the blocks (average pools that ignore padding; the last block max-pools), fc removed. Pixels are
prepared as pytorch-fid: RGB in 0..1, bilinear resize to 299 × 299 (align_corners=False), then 2x − 1.
Features go through the same folder cache as CLIP's (`clip_features.folder_features`), keyed on the file's hash.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .clip_features import file_digest, pick_device, read_state_dict
from .errors import HieraFashError

INCEPTION_SIZE = 299
FEATURE_WIDTH = 2048
FID_CLASSES = 1008  # the TF graph's classifier, stored in pytorch-fid's file and unused here
CLASSIFIER_KEYS = ("fc.weight", "fc.bias")
PREPROCESSING = "rgb01-bilinear299-alignfalse-2x-1-pytorch-fid/v1"  # part of the cache key
EXPECTED_FORMAT = ("pytorch-fid's Inception-v3 state dict (pt_inception-2015-12-05-6726825d.pth: torchvision "
                   "Inception3 keys, no AuxLogits, fc of 1008 classes optional)")


def _fid_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _FidPoolBranch:
    """Replaces a torchvision block's pooling branch (its last output) with the TF graph's pooling."""

    pool = staticmethod(_fid_pool)

    def _forward(self, x):
        outputs = super()._forward(x)
        outputs[-1] = self.branch_pool(self.pool(x))  # torchvision pools counting the zero padding; TF does not
        return outputs


def fid_inception_v3() -> torch.nn.Module:
    """torchvision's Inception3 with the FID graph's pooling, no aux head, no fc: (B, 3, 299, 299) -> (B, 2048)."""
    from torchvision.models import inception as tv

    class FidA(_FidPoolBranch, tv.InceptionA):
        pass

    class FidC(_FidPoolBranch, tv.InceptionC):
        pass

    class FidE(_FidPoolBranch, tv.InceptionE):
        pass

    class FidLastE(_FidPoolBranch, tv.InceptionE):
        pool = staticmethod(_max_pool)  # the TF graph's last block max-pools

    blocks = [tv.BasicConv2d, FidA, tv.InceptionB, FidC, tv.InceptionD, FidE, tv.InceptionAux]
    model = tv.Inception3(num_classes=FID_CLASSES, aux_logits=False, transform_input=False, init_weights=False,
                          inception_blocks=blocks)
    model.Mixed_7c = FidLastE(2048)
    model.fc = torch.nn.Identity()
    return model


def check_inception_keys(state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path):
    """Refuse a state dict whose keys or shapes differ from the FID Inception's, naming the file and the format."""
    given = {k: v for k, v in state_dict.items() if k not in CLASSIFIER_KEYS}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = sorted(k for k in set(given) & set(expected) if given[k].shape != expected[k].shape)
    if missing or unexpected or misshaped:
        raise HieraFashError(f"{path} is not {EXPECTED_FORMAT}: missing {missing[:4]} ({len(missing)}), not "
                             f"understood {unexpected[:4]} ({len(unexpected)}), other shape {misshaped[:4]}",
                             "inception")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/", 1)[-1].startswith("code/") for name in archive.namelist())


def inception_pixels(path: Path) -> np.ndarray:
    """(3, 299, 299) float32 in 0..1: the RGB image resized bilinearly as pytorch-fid (align_corners=False)."""
    with Image.open(path) as image:
        pixels = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
    resized = F.interpolate(pixels[None], size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear",
                            align_corners=False)
    return resized[0].numpy()


@dataclass
class LocalInception:
    model: torch.nn.Module  # fid_inception_v3(), eval mode, on `device`
    digest: str  # sha256 of the weights file: identifies the model in caches and reports
    source: str
    device: torch.device
    kind = "Inception"
    preprocessing = PREPROCESSING
    projection_dim = FEATURE_WIDTH

    def load_batch(self, paths: Sequence[Path]) -> np.ndarray:
        """(B, 3, 299, 299) float32 pixels of the given files."""
        return np.stack([inception_pixels(p) for p in paths])

    @torch.no_grad()
    def encode_crops(self, pixels: np.ndarray) -> np.ndarray:
        """2048-d pool features of (B, 3, 299, 299) pixels in 0..1."""
        scaled = torch.from_numpy(pixels).to(self.device) * 2.0 - 1.0
        return self.model(scaled).float().cpu().numpy()


def load_inception(path: Path | str, device: str | None = None) -> LocalInception:
    """The FID Inception-v3 holding the weights of a pytorch-fid state-dict file, checked key by key."""
    path = Path(path)
    if not path.is_file():
        raise HieraFashError(f"{path} is not a file: give {EXPECTED_FORMAT}", "inception")
    if _is_torchscript(path):
        raise HieraFashError(f"{path} is a TorchScript file (e.g. clean-fid's inception-2015-12-05.pt), which is not "
                             f"supported: give {EXPECTED_FORMAT}", "inception")
    model = fid_inception_v3()
    state_dict = read_state_dict(path, "inception")
    check_inception_keys(state_dict, model.state_dict(), path)
    model.load_state_dict({k: v for k, v in state_dict.items() if k not in CLASSIFIER_KEYS}, strict=True)
    target = pick_device(device)
    return LocalInception(model.float().eval().to(target), file_digest([path]), str(path), target)
