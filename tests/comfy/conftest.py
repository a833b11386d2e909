"""Comfy-tier fixtures beyond the shared ones: the official replica under a name of its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPLICA_CKPT = "hfd_replica.ckpt"


@pytest.fixture(scope="session")
def official_replica(official_checkpoint) -> Path:
    """The same replica under another name (a hard link: no second build), for the converter's own tests."""
    path = official_checkpoint.with_name(REPLICA_CKPT)
    os.link(official_checkpoint, path)
    return path
