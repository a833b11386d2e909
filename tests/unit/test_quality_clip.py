"""The synthetic benchmark's tiny CLIP (bench/quality_clip.py) and the feature metrics built on it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import quality_clip  # noqa: E402
import quality_full as full  # noqa: E402

from hierafash_core import synthetic  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip():
    return quality_clip.train(count=300, steps=60, batch=64, seed=3)  # a brief run: the fields colour and length show


def test_a_brief_run_reads_colour_and_length_far_above_chance(tiny_clip):
    specs = synthetic.sample_figures(60, 4321)
    accuracy = quality_clip.zero_shot_accuracy(tiny_clip, specs, quality_clip.draw(specs))
    assert accuracy["style"][1] == accuracy["clothing_length"][1] == 60
    assert accuracy["style"][0] / 60 >= 0.9  # chance 1/6
    assert accuracy["clothing_length"][0] / 60 >= 0.8  # chance 1/5
    sleeveless = sum(s.garment.sleeve_length == "Sleeveless" for s in specs)
    assert accuracy["sleeve_type"][1] == 60 - sleeveless  # a field the figure does not show is not counted


def test_saved_model_gives_the_same_features(tiny_clip, tmp_path):
    specs = synthetic.sample_figures(4, 9)
    images = quality_clip.draw(specs)
    loaded = quality_clip.load(quality_clip.save(tiny_clip, tmp_path / "clip"))
    assert np.array_equal(quality_clip.image_features(loaded, images), quality_clip.image_features(tiny_clip, images))
    garments = [s.garment for s in specs]
    assert np.array_equal(quality_clip.text_features(loaded, garments), quality_clip.text_features(tiny_clip, garments))


def test_metrics_rank_the_true_figures_above_blank_canvases(tiny_clip, tmp_path):
    """A perfect model (the test figures themselves) against one that draws nothing (white canvases)."""
    work = tmp_path / "work"
    synthetic.write_dataset(work / "dataset", 4, 12, seed=5)
    quality_clip.save(tiny_clip, work / "tiny_clip")  # generation_metrics reuses a cached model
    entries = sorted(json.loads((work / "dataset" / "test.json").read_text()), key=lambda e: e["gt"])
    rows = [{"figure": e["gt"]} for e in entries[:8]]
    for row in rows:
        stem = Path(row["figure"]).stem
        full.save_image(work / "images" / "hierarchical" / f"{stem}.png",
                        full.load_image(work / "dataset" / row["figure"]))
        full.save_image(work / "images" / "flat" / f"{stem}.png", np.ones((*synthetic.DEFAULT_SIZE[::-1], 3)))
    scores = full.generation_metrics(work, rows)
    assert {"fresh_figures", "hierarchical", "flat"} <= set(scores) and "no_pose" not in scores
    perfect, blank = scores["hierarchical"], scores["flat"]
    assert perfect["fid"] < blank["fid"] and scores["fresh_figures"]["fid"] < blank["fid"]
    assert perfect["coverage"] > blank["coverage"]
    assert perfect["clip_s"] > blank["clip_s"]
    assert scores["nearest_k"] == 5 and scores["count"] == 8
