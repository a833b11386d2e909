"""CLIP features: the paper's preprocessing, an OpenAI-layout state dict, and clean-fid's own pipeline."""

from __future__ import annotations

import importlib.util
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hierafash_core import clip_features as cf
from hierafash_core.metrics import frechet_distance_between


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualBlock(nn.Module):
    """OpenAI CLIP's block: torch's MultiheadAttention (packed in_proj) and a c_fc / c_proj MLP."""

    def __init__(self, width: int, heads: int, causal_length: int | None = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(),
                                             c_proj=nn.Linear(4 * width, width)))
        self.mask = None if causal_length is None else torch.full((causal_length,) * 2, float("-inf")).triu(1)

    def forward(self, x):  # (length, batch, width), as OpenAI's
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=self.mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, causal_length=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualBlock(width, heads, causal_length) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class OpenAIVisual(nn.Module):
    def __init__(self, width=64, layers=2, patch=32, grid=7, embed=16):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width))
        self.ln_pre, self.ln_post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, width // 64)
        self.proj = nn.Parameter(torch.randn(width, embed))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj


class OpenAIClip(nn.Module):
    """A tiny CLIP in OpenAI's `model.py` layout and arithmetic (x @ proj, argmax-token pooling)."""

    def __init__(self, width=64, layers=2, embed=16, context=77, vocab=49408):
        super().__init__()
        self.visual = OpenAIVisual(width, layers, embed=embed)
        self.transformer = Transformer(width, layers, width // 64, causal_length=context)
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.1)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed))
        self.logit_scale = nn.Parameter(torch.tensor(2.3))

    def encode_text(self, tokens):
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection


@pytest.fixture(scope="module")
def openai_clip():
    torch.manual_seed(0)
    model = OpenAIClip().eval()
    with torch.no_grad():  # move every weight off its default so a swapped or untransposed tensor shows
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return model


@pytest.fixture
def photos(tmp_path, figures):
    return figures(tmp_path / "photos", 6, seed=7, size=(90, 130))


def test_the_crop_is_torchvisions_resize_and_centre_crop(photos):
    transforms = pytest.importorskip("torchvision.transforms", reason="torchvision is the reference crop")
    reference = transforms.Compose([transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
                                    transforms.CenterCrop(224)])
    for path in photos:
        for size in ((90, 130), (131, 90), (224, 224), (512, 704)):
            image = Image.open(path).convert("RGB").resize(size)
            np.testing.assert_array_equal(cf.clip_crop(image), np.asarray(reference(image)))


def test_a_lightning_openai_state_dict_gives_the_openai_models_features(tmp_path, openai_clip, tokenizer_dir,
                                                                        photos):
    checkpoint = tmp_path / "my_clip.ckpt"
    torch.save({"epoch": 44, "state_dict": {f"model.{k}": v for k, v in openai_clip.state_dict().items()}},
               checkpoint)
    clip = cf.load_clip(checkpoint, tokenizer=tokenizer_dir, device="cpu")
    assert clip.projection_dim == 16
    assert clip.logit_scale == pytest.approx(float(openai_clip.logit_scale.detach().exp()), rel=1e-6)
    ours = cf.image_features(clip, photos, batch_size=4)
    with torch.no_grad():
        expected = openai_clip.visual(cf.normalise(cf.crop_batch(photos))).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    captions = ["Dress, Elegant, Party", "Coat, British Style, Office, Youthful, Drape Feeling, Long Coat"]
    tokens = clip.tokenizer(captions, padding="max_length", max_length=77, return_tensors="pt")["input_ids"]
    after_end = torch.cumsum(tokens == 49407, dim=1) > 1
    tokens[after_end] = 0  # clip.tokenize pads with 0 after the end token
    with torch.no_grad():
        expected_text = openai_clip.encode_text(tokens).numpy()
    np.testing.assert_allclose(clip.encode_texts(captions), expected_text, rtol=1e-4, atol=1e-5)


def test_a_state_dict_that_is_no_clip_is_refused(tmp_path):
    checkpoint = tmp_path / "unet.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.weight": torch.zeros(2)}}, checkpoint)
    with pytest.raises(cf.HieraFashError, match="not an OpenAI-layout CLIP state dict"):
        cf.load_clip(checkpoint, device="cpu")


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")  # clean-fid's sqrtm call
def test_fid_agrees_with_clean_fids_own_folder_pipeline(tmp_path, figures, tiny_clip):
    """clean-fid's compute_fid (its loader, uint8 handling, statistics) with the tiny CLIP as its feature model."""
    if importlib.util.find_spec("cleanfid") is None:
        pytest.skip("clean-fid is not installed: it is a test-only cross-check in the `test` extra")
    from cleanfid import fid as cleanfid_fid
    from torchvision import transforms

    real = figures(tmp_path / "real", 24, seed=11)
    fake = figures(tmp_path / "fake", 24, seed=12, size=(70, 90))
    clip = cf.load_clip(tiny_clip, device="cpu")
    crop = transforms.Compose([transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
                               transforms.CenterCrop(224)])
    normalise = transforms.Normalize(cf.CLIP_MEAN, cf.CLIP_STD)

    def extractor(batch):  # clean-fid hands float images in 0..255, as its CLIP_fx
        with torch.no_grad():
            return clip.model.visual_projection(clip.model.vision_model(normalise(batch / 255.0)).pooler_output)

    reference = cleanfid_fid.compute_fid(
        str(tmp_path / "real"), str(tmp_path / "fake"), mode="clean", custom_feat_extractor=extractor,
        custom_fn_resize=lambda array: np.asarray(crop(Image.fromarray(array))).astype(np.uint8),
        num_workers=0, batch_size=8, device=torch.device("cpu"), verbose=False, use_dataparallel=False)
    ours = frechet_distance_between(cf.image_features(clip, real), cf.image_features(clip, fake)).value
    assert ours == pytest.approx(reference, rel=1e-4)
