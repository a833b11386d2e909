"""The synthetic benchmark: a seeded generator in the official layout, and oracles that read it back."""

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from hierafash_core import dataset, oracles, synthetic
from hierafash_core.design import split_items
from hierafash_core.errors import HieraFashError
from hierafash_core.pose import read_pose_keypoint, render_pose
from hierafash_core.vocab import attribute_kind, concept_values

SIZE = (128, 192)


def test_same_seed_same_figures_and_pixels():
    first, second = synthetic.sample_figures(6, seed=11), synthetic.sample_figures(6, seed=11)
    assert first == second
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(synthetic.draw_figure(a, *SIZE).image, synthetic.draw_figure(b, *SIZE).image)
    other = synthetic.sample_figures(6, seed=12)
    assert [s.garment for s in other] != [s.garment for s in first]


def test_every_drawn_value_is_a_vocabulary_word():
    for field in ("category", "style", "feeling"):
        assert set(synthetic.DRAWN_VALUES[field]) <= set(concept_values(field)), field
    for kind in ("clothing_length", "sleeve_length", "sleeve_type", "collar", "hem"):
        assert set(synthetic.DRAWN_VALUES[kind]) <= set(attribute_kind(kind).values), kind


def test_captions_have_ten_vocabulary_items_in_the_official_order():
    for spec in synthetic.sample_figures(40, seed=2):
        caption = spec.garment.caption()
        items = split_items(caption)
        assert len(items) == 10
        assert dataset.caption_vocabulary_problems(caption) == []
        garment = spec.garment
        assert items[0] == garment.category and items[4] == garment.feeling
        assert items[5] == f"{garment.clothing_length} {garment.category}"
        assert items[9] == garment.hem


def test_figures_are_drawn_with_the_garment_colour_on_white():
    spec = synthetic.sample_figures(1, seed=5)[0]
    image = synthetic.draw_figure(spec, *SIZE).image
    assert image.shape == (SIZE[1], SIZE[0], 3)
    assert np.allclose(image[0, 0], synthetic.BACKGROUND)
    garment = np.isclose(image, spec.garment.color, atol=1e-6).all(axis=-1)
    assert garment.sum() > 300  # a garment, not a speck


def test_written_dataset_reads_back_in_the_official_layout(tmp_path):
    root = synthetic.write_dataset(tmp_path / "synthetic", train=5, test=3, seed=7, width=SIZE[0], height=SIZE[1])
    report = dataset.check_dataset(root)
    assert report.ok and not report.problems, [str(p) for p in report.problems]
    assert report.samples == {"train": 5, "test": 3}
    entries = json.loads((root / "train.json").read_text())
    assert all(set(e) == {"pose", "gt", "caption"} for e in entries)
    truth = json.loads((root / "train_attributes.json").read_text())
    specs = synthetic.sample_figures(5, seed=7)
    for entry, spec in zip(entries, specs, strict=True):
        assert synthetic.FigureSpec.from_json(truth[entry["gt"]]) == spec
        assert entry["caption"] == spec.garment.caption()
        gt = np.asarray(Image.open(root / entry["gt"]).convert("RGB"), np.float32) / 255
        assert np.abs(gt - synthetic.draw_figure(spec, *SIZE).image).max() <= 0.5 / 255 + 1e-6
        stem = entry["gt"].split("/")[-1].removesuffix(".png")
        pose_keypoint = json.loads((root / f"train_pose/json/{stem}.json").read_text())
        pose_map = np.asarray(Image.open(root / entry["pose"]).convert("RGB"), np.float32) / 255
        rendered = render_pose(read_pose_keypoint(pose_keypoint))[0].numpy()
        assert np.abs(pose_map - rendered).max() <= 0.5 / 255 + 1e-6


def test_writer_never_writes_into_an_existing_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(HieraFashError, match="already exists"):
        synthetic.write_dataset(tmp_path, train=1, test=1)
    assert (tmp_path / "keep.txt").read_text() == "mine"


# --- the oracles: the ruler must be shown to measure -------------------------------------------------

TARGET = 0.98


@pytest.mark.parametrize("size", [(128, 192), (128, 176)])
def test_oracles_read_each_attribute_back_on_a_fresh_held_out_set(size):
    specs = synthetic.sample_figures(160, seed=424242 + size[1])  # a seed no development run used
    scores = oracles.accuracy(specs, *size)
    for field in oracles.FIELDS:
        values = {oracles.truth(spec)[field] for spec in specs} - {None}
        assert values == set(synthetic.DRAWN_VALUES[field]), f"{field}: the sample must hold every drawn value"
        correct, measured = scores[field]
        assert measured >= 60, field
        assert correct / measured >= TARGET, f"{field}: {correct}/{measured}"


def test_oracles_read_the_written_files_back(tmp_path):
    root = synthetic.write_dataset(tmp_path / "synthetic", train=1, test=12, seed=31)
    truth = json.loads((root / "test_attributes.json").read_text())
    for entry in json.loads((root / "test.json").read_text()):
        image = np.asarray(Image.open(root / entry["gt"]).convert("RGB"), np.float32) / 255
        stem = entry["gt"].split("/")[-1].removesuffix(".png")
        pose_keypoint = json.loads((root / f"test_pose/json/{stem}.json").read_text())
        expected = oracles.truth(synthetic.FigureSpec.from_json(truth[entry["gt"]]))
        assert oracles.read_figure(image, pose_keypoint) == expected


def test_an_oracle_reads_the_value_drawn_not_the_caption():
    spec = synthetic.sample_figures(1, seed=3)[0]
    for collar in synthetic.COLLARS:
        changed = replace(spec, garment=replace(spec.garment, collar=collar))
        image = synthetic.draw_figure(changed, *SIZE).image
        points = synthetic.pose_frame(changed, *SIZE).keypoints.numpy()
        assert oracles.read_attributes(image, points)["collar"] == collar


def _soften(image: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur: the soft edges a small model draws."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]
    return 0.25 * rows[:-2] + 0.5 * rows[1:-1] + 0.25 * rows[2:]


def test_oracles_still_measure_soft_edges():
    specs = synthetic.sample_figures(100, seed=909)
    scores = {field: [0, 0] for field in oracles.FIELDS}
    for spec in specs:
        image = _soften(synthetic.draw_figure(spec, *SIZE).image)
        read = oracles.read_attributes(image, synthetic.pose_frame(spec, *SIZE).keypoints.numpy())
        for field, expected in oracles.truth(spec).items():
            if expected is not None:
                scores[field][0] += read[field] == expected
                scores[field][1] += 1
    for field, (correct, measured) in scores.items():
        assert correct / measured >= 0.95, f"{field}: {correct}/{measured}"


def test_example_figure_is_what_its_spec_says():
    spec = synthetic.example_spec()
    image = synthetic.draw_figure(spec, 512, 704).image
    assert image.shape == (704, 512, 3)
    assert np.array_equal(image, synthetic.draw_figure(synthetic.example_spec(), 512, 704).image)
    points = synthetic.pose_frame(spec, 512, 704).keypoints.numpy()
    assert oracles.read_attributes(image, points) == oracles.truth(spec)


def test_garment_present_on_every_drawn_figure_and_not_on_blank_or_skin():
    for spec in synthetic.sample_figures(60, seed=31):
        figure = synthetic.draw_figure(spec, *SIZE)
        keypoints = synthetic.pose_frame(spec, *SIZE).keypoints.numpy()
        assert oracles.garment_present(figure.image, keypoints), spec.garment
    keypoints = synthetic.pose_frame(synthetic.sample_figures(1, seed=31)[0], *SIZE).keypoints.numpy()
    blank = np.ones((SIZE[1], SIZE[0], 3), np.float32)
    assert not oracles.garment_present(blank, keypoints)
    assert not oracles.garment_present(blank * np.array(synthetic.SKIN, np.float32), keypoints)
