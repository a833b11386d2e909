"""The full quality benchmark's scoring and graphs (bench/quality_full.py), without ComfyUI."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import quality_full as full  # noqa: E402

from hierafash_core import oracles, synthetic  # noqa: E402
from hierafash_core.design import Design, make_attribute  # noqa: E402

SIZE = synthetic.DEFAULT_SIZE


def test_score_reads_counts_correct_measured_and_abstained():
    pairs = [({"style": "Casual", "collar": None, "hem": "Flat Hem"}, {"style": "Casual", "collar": "V-Neck",
                                                                        "hem": None}),
             ({"style": "Elegant", "collar": "V-Neck"}, {"style": "Casual", "collar": "V-Neck"})]
    scores = oracles.score_reads(pairs)
    assert scores["style"] == {"correct": 1, "measured": 2, "abstained": 0}
    assert scores["collar"] == {"correct": 1, "measured": 2, "abstained": 1}
    assert scores["hem"] == {"correct": 0, "measured": 0, "abstained": 0}  # not expected: not measured


def test_locality_counts_only_changes_outside_the_mask():
    rng = np.random.default_rng(0)
    source = rng.random((12, 8, 3))
    mask = np.zeros((12, 8))
    mask[2:6, 1:5] = 1
    inside_only = source.copy()
    inside_only[2:6, 1:5] = 0
    assert full.locality(inside_only, source, mask) == {"mean_abs": 0.0, "max_abs": 0.0, "changed_share": 0.0}
    outside = inside_only.copy()
    outside[10, 7, 1] += 0.5
    measured = full.locality(outside, source, mask)
    n_outside = 12 * 8 - 16
    assert np.isclose(measured["mean_abs"], 0.5 / n_outside)
    assert np.isclose(measured["max_abs"], 0.5)
    assert np.isclose(measured["changed_share"], 1 / n_outside)


def test_pick_edit_changes_a_visible_attribute_to_another_drawn_value():
    seen = set()
    for i, spec in enumerate(synthetic.sample_figures(60, seed=4)):
        garment = spec.garment
        field, value = full.pick_edit(garment, i)
        seen.add(field)
        assert value != getattr(garment, field)
        assert value in synthetic.DRAWN_VALUES[field]
        assert field in full.editable_fields(garment)
        assert not (field == "sleeve_length" and value == "Sleeveless")
    assert seen == set(full.ATTRIBUTE_FIELDS)
    sleeveless_jumpsuit = replace(synthetic.sample_figures(1, seed=4)[0].garment, category="Jumpsuit",
                                  sleeve_length="Sleeveless")
    assert full.editable_fields(sleeveless_jumpsuit) == ["clothing_length", "sleeve_length", "collar"]


def nodes_of(prompt: dict, class_type: str) -> list[dict]:
    return [n["inputs"] for n in prompt.values() if n["class_type"] == class_type]


def test_draft_graph_design_is_the_dataset_caption_and_flat_differs_only_in_the_prompt():
    garment = synthetic.sample_figures(3, seed=9)[2].garment
    hier = full.draft_graph(garment, "pose.png", tag="h", seed=5, steps=7, width=SIZE[0], height=SIZE[1])
    flat = full.draft_graph(garment, "pose.png", tag="f", seed=5, steps=7, width=SIZE[0], height=SIZE[1], flat=True)
    concept = nodes_of(hier, "HieraFashConceptIdeation")[0]
    design = Design(tuple(concept[f] for f in ("category", "style", "occasion", "effect", "feeling")),
                    concept["category"])
    for step in nodes_of(hier, "HieraFashAttributeIteration"):  # as the node builds it
        design = design.with_attribute(make_attribute(step["attribute"], step["value"], "", design.category))
    assert design.cumulative_prompts()[-1] == garment.caption()
    assert nodes_of(flat, "HieraFashHierarchicalPromptScheduler") == []
    assert [n["text"] for n in nodes_of(flat, "CLIPTextEncode")] == [garment.caption(), ""]
    for prompt in (hier, flat):
        sampler = nodes_of(prompt, "KSampler")[0]
        assert (sampler["seed"], sampler["steps"], sampler["denoise"]) == (5, 7, 1.0)


def test_by_area_draft_orders_attributes_by_the_figures_own_regions_and_changes_nothing_else():
    garment = synthetic.sample_figures(3, seed=9)[1].garment
    common = dict(tag="t", seed=5, steps=7, width=SIZE[0], height=SIZE[1])
    paper = full.draft_graph(garment, "pose.png", **common)
    by_area = full.draft_graph(garment, "pose.png", pose_json='[{"people": []}]', **common)
    (scheduler,) = nodes_of(by_area, "HieraFashHierarchicalPromptScheduler")
    assert scheduler["attribute_order"] == "by area"
    assert nodes_of(paper, "HieraFashHierarchicalPromptScheduler")[0]["attribute_order"] == "paper"
    (builder_id,) = [k for k, n in by_area.items() if n["class_type"] == "HieraFashPoseMaskBuilder"]
    assert scheduler["body_masks"] == [builder_id, 0]
    (keypoints,) = nodes_of(by_area, "HieraFashQualityPoseKeypoint")
    assert keypoints["pose_json"] == '[{"people": []}]'
    added = {"HieraFashPoseMaskBuilder", "HieraFashQualityPoseKeypoint"}
    assert sorted(n["class_type"] for n in by_area.values() if n["class_type"] not in added) == \
        sorted(n["class_type"] for n in paper.values())


def test_sequential_edit_chains_one_run_per_attribute_on_the_previous_picture():
    garment = synthetic.sample_figures(1, seed=9)[0].garment
    fields = ["clothing_length", "collar", "hem"]
    common = dict(tag="s", seed=5, steps=7, width=SIZE[0], height=SIZE[1])
    prompt = full.sequential_edit_graph(garment, fields, "src.png", "pose.png", "[]", **common)
    by_id = {k: n for k, n in prompt.items()}
    edits = [(k, n["inputs"]) for k, n in prompt.items() if n["class_type"] == "HieraFashAttributeEdit"]
    assert [e["edit_attributes"] for _, e in edits] == ["clothing length", "collar", "hem"]
    (source,) = [k for k, n in prompt.items() if n["class_type"] == "LoadImage" and n["inputs"]["image"] == "src.png"]
    assert edits[0][1]["image"] == [source, 0]
    for (previous, _), (_, edit) in zip(edits, edits[1:]):  # each run edits the decoded result of the one before
        decode = by_id[edit["image"][0]]
        sampler = by_id[decode["inputs"]["samples"][0]]
        assert decode["class_type"] == "VAEDecode" and sampler["inputs"]["latent_image"] == [previous, 1]
    assert sorted(n["inputs"]["seed"] for n in prompt.values() if n["class_type"] == "KSampler") == [5, 6, 7]
    assert not [n for n in prompt.values() if n["class_type"] == "HieraFashPreserveSource"]  # as the official demo
    one_pass = full.edit_graph(garment, fields, "src.png", "pose.png", "[]", **common)
    assert nodes_of(one_pass, "HieraFashAttributeEdit")[0]["edit_attributes"] == "clothing length, collar, hem"


def test_multi_edit_scores_each_target_the_concept_and_the_outside():
    truth = {"category": "Dress", "style": "Casual", "feeling": None, "collar": "V-Neck", "hem": "Flat Hem"}
    read = {"category": "Dress", "style": "Elegant", "feeling": "Crisp Feeling", "collar": "Boat Neck",
            "hem": "Flat Hem"}
    outside = {"mean_abs": 0.0, "max_abs": 0.0, "changed_share": 0.0}
    score = full.score_multi_edit(read, truth, {"collar": "Boat Neck", "hem": "Wavy Hem"}, outside)
    assert score["success"] == {"collar": True, "hem": False}
    assert (score["concept_kept"], score["concept_measured"]) == (1, 2)  # feeling: not measured in the truth
    rows = [{"multi_one_pass": score, "multi_sequential": {**score, "locality": {**outside, "mean_abs": 0.2,
                                                                                  "max_abs": 0.5}}}]
    summary = full.summarize(rows, ())
    assert summary["multi_one_pass"] == {"targets": 2, "success": 1, "concept_kept": 1, "concept_measured": 2,
                                         "locality_mean_abs": 0.0, "locality_max_abs": 0.0}
    assert summary["multi_sequential"]["locality_mean_abs"] == 0.2


def test_unmasked_edit_widens_every_region_to_the_whole_image_and_nothing_else():
    garment = synthetic.sample_figures(1, seed=9)[0].garment
    common = dict(tag="e", seed=3, steps=6, width=SIZE[0], height=SIZE[1])
    masked = full.edit_graph(garment, ["collar"], "src.png", "pose.png", "[]", **common)
    unmasked = full.edit_graph(garment, ["collar"], "src.png", "pose.png", "[]", masked=False, **common)
    assert nodes_of(masked, "SolidMask") == []
    solid = nodes_of(unmasked, "SolidMask")
    assert solid == [{"value": 1.0, "width": SIZE[0], "height": SIZE[1]}]
    builder = nodes_of(unmasked, "HieraFashPoseMaskBuilder")[0]
    assert builder["external_mode"] == "union" and "external_mask" in builder
    assert nodes_of(masked, "HieraFashAttributeEdit")[0]["edit_attributes"] == "collar"
    stripped = {k: v for k, v in builder.items() if k not in ("external_mask", "external_mode")}
    masked_builder = nodes_of(masked, "HieraFashPoseMaskBuilder")[0]
    assert stripped.keys() == masked_builder.keys()
    assert len(nodes_of(masked, "HieraFashPreserveSource")) == 1


def test_safe_read_abstains_without_a_garment_and_reads_a_figure():
    spec = synthetic.sample_figures(1, seed=21)[0]
    figure = synthetic.draw_figure(spec, *SIZE)
    read = full.safe_read(figure.image, figure.pose_keypoint)
    assert {k: read[k] for k, v in oracles.truth(spec).items() if v is not None} == {
        k: v for k, v in oracles.truth(spec).items() if v is not None}
    blank = np.ones_like(figure.image)
    assert full.safe_read(blank, figure.pose_keypoint) == dict.fromkeys(oracles.FIELDS)


def test_grid_places_each_tile_with_gaps(tmp_path):
    tiles = [[np.full((4, 3, 3), v) for v in (0.0, 0.5)], [np.full((4, 3, 3), v) for v in (1.0, 0.25)]]
    grid = np.asarray(Image.open(full.save_grid(tmp_path / "g.png", tiles)))
    assert grid.shape == (4 * 2 + 2, 3 * 2 + 2, 3)
    assert (grid[0, 0] == 0).all() and (grid[0, 5] == 128).all() and (grid[6, 5] == 64).all()
    assert (grid[4, :] == 255).all() and (grid[:, 3] == 255).all()


def test_summarize_groups_edits_by_field_and_counts_what_the_edit_kept():
    def row(field, success, kept, loc):
        edit = {"success": success, "others_kept": kept, "others_measured": 6, "locality": {"mean_abs": loc},
                "locality_raw": {"mean_abs": 2 * loc}}
        return {"truth": {"style": "Casual"}, "hierarchical": {"style": "Casual"}, "edit": {"field": field},
                "edit_masked": edit, "edit_unmasked": edit}

    summary = full.summarize([row("collar", True, 6, 0.0), row("collar", False, 4, 0.5), row("hem", True, 5, 0.1)],
                             ("hierarchical", "flat"))
    assert "flat" not in summary and summary["hierarchical"]["style"]["correct"] == 3
    assert summary["edit_masked"]["collar"] == {"edits": 2, "success": 1, "locality_mean_abs": 0.25,
                                                "locality_raw_mean_abs": 0.5}
    assert summary["edit_masked"]["hem"]["success"] == 1
    assert summary["edit_unmasked_others_kept"] == {"kept": 15, "measured": 18}


def test_install_copies_the_model_for_make_run_and_leaves_another_file_alone(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    (work / "models").mkdir(parents=True)
    for name in (full.QUALITY_CHECKPOINT, full.QUALITY_CONTROLNET):
        (work / "models" / name).write_bytes(name.encode())
    theirs = home / "models" / "controlnet" / full.QUALITY_CONTROLNET
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"the artist's own file")
    lines = full.install(work, home)
    assert (home / "models" / "checkpoints" / full.QUALITY_CHECKPOINT).read_bytes() == full.QUALITY_CHECKPOINT.encode()
    assert theirs.read_bytes() == b"the artist's own file"
    assert lines[0].startswith("installed for `make run`") and lines[1].startswith("left alone")
    assert full.install(work, home)[0].startswith("installed")  # the same file again: a no-op copy, not refused
