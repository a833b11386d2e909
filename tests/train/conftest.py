"""Training-tier fixtures: one tiny seeded base model per session, tiny datasets per test."""

from __future__ import annotations

import pytest
from train.tiny_models import build_base, build_dataset


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A diffusers folder of tiny SD2-style models (UNet, VAE, CLIP text encoder, scheduler, tokenizer)."""
    return build_base(tmp_path_factory.mktemp("tiny_base"))


@pytest.fixture
def tiny_dataset(tmp_path):
    """Eight 64x64 samples in the official layout."""
    return build_dataset(tmp_path / "dataset")
