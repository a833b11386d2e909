"""Saved workflows keep loading (hierafash_cli.workflow_compat): the committed workflows against the committed
widget-order snapshot, and the checks on small hand-made graphs (no ComfyUI needed). The UI -> API converter,
overrides and missing-file messages are tests/unit/test_workflow.py.

The live side (the running node schemas only append to the snapshot; the workflows fit them and run) is
tests/comfy/test_workflows.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from support.ui_graphs import OBJECT_INFO, graph

from hierafash_cli import workflow as wf
from hierafash_cli import workflow_compat as compat

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
SNAPSHOT = json.loads((ROOT / "tests" / "data" / "widget_order.json").read_text())
SNAPSHOT_INFO = {node_id: compat.summary_as_object_info(summary) for node_id, summary in SNAPSHOT.items()}


def is_pack_node(node_type: str) -> bool:
    return node_type.startswith("HieraFash")


# --- the committed workflows -----------------------------------------------------------------------

def test_there_are_three_shipped_workflows():
    assert [p.stem for p in WORKFLOWS] == ["hierafash_attribute_edit", "hierafash_concept_to_draft",
                                           "hierafash_generate_then_edit"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_is_in_the_editors_format_with_a_note_and_a_thumbnail(path):
    workflow = wf.load(path)
    assert workflow["version"] == 0.4
    assert all(isinstance(link, list) and len(link) == 6 for link in workflow["links"])
    assert workflow["last_node_id"] == max(n["id"] for n in workflow["nodes"])
    assert any(n["type"] in ("Note", "MarkdownNote") and "hierafash" in n["widgets_values"][0]
               for n in workflow["nodes"])
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff" and thumbnail.stat().st_size < 200_000


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_loaders_name_the_official_weights_and_sample_epsilon(path):
    workflow = wf.load(path)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node_type, name, directory in (("CheckpointLoaderSimple", wf.CHECKPOINT_NAME, "checkpoints"),
                                       ("ControlNetLoader", wf.CONTROLNET_NAME, "controlnet")):
        (loader,) = [n for n in workflow["nodes"] if n["type"] == node_type]
        assert loader["widgets_values"][0] == name
        (model,) = loader["properties"]["models"]
        assert model["name"] == name and model["directory"] == directory
        assert model["url"].startswith(f"https://huggingface.co/{wf.OFFICIAL_REPO}/")
    (eps,) = [n for n in workflow["nodes"] if n["type"] == "ModelSamplingDiscrete"]
    assert eps["widgets_values"][0] == "eps"
    checkpoint = next(n["id"] for n in workflow["nodes"] if n["type"] == "CheckpointLoaderSimple")
    # every MODEL the graph samples with comes through ModelSamplingDiscrete
    model_links = [link for link in workflow["links"] if link[5] == "MODEL"]
    assert all(link[3] == eps["id"] for link in model_links if link[1] == checkpoint)
    assert all(nodes[link[1]]["type"] != "CheckpointLoaderSimple" for link in model_links
               if nodes[link[3]]["type"] == "KSampler")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_pack_nodes_in_committed_workflows_fit_the_committed_widget_order(path):
    workflow = wf.load(path)
    used = {n["type"] for n in workflow["nodes"] if is_pack_node(n["type"])}
    assert used <= set(SNAPSHOT), f"unrecorded node types {used - set(SNAPSHOT)}: run tools/snapshot_widgets.py"
    assert compat.check_widgets(workflow, SNAPSHOT_INFO, only=is_pack_node) == []


def test_the_check_catches_a_moved_widget_and_a_lost_output():
    workflow = wf.load(ROOT / "workflows" / "hierafash_concept_to_draft.json")
    moved = copy.deepcopy(SNAPSHOT)
    widgets = moved["HieraFashPoseMaskBuilder"]["widgets"]
    widgets.insert(0, ["mode", "COMBO"])  # a widget inserted before the others shifts every saved value
    problems = compat.check_widgets(workflow, {k: compat.summary_as_object_info(v) for k, v in moved.items()},
                                only=is_pack_node)
    assert any("HieraFashPoseMaskBuilder" in p and "'preset'" in p for p in problems)
    assert compat.compatibility_problems(SNAPSHOT, moved)

    shrunk = copy.deepcopy(SNAPSHOT)
    shrunk["HieraFashPoseMaskBuilder"]["outputs"] = shrunk["HieraFashPoseMaskBuilder"]["outputs"][:1]
    problems = compat.check_widgets(workflow, {k: compat.summary_as_object_info(v) for k, v in shrunk.items()},
                                only=is_pack_node)
    assert any("output 1" in p and "no longer exists" in p for p in problems)


def test_compatibility_allows_appending_and_refuses_the_rest():
    old = {"N": {"widgets": [["a", "INT"], ["b", "COMBO"]], "sockets": [["x", "IMAGE"]], "outputs": [["o", "MASK"]]}}
    appended = {"N": {"widgets": [["a", "INT"], ["b", "COMBO"], ["c", "FLOAT"]], "sockets": [["x", "IMAGE"],
                      ["y", "MASK"]], "outputs": [["o", "MASK"], ["p", "IMAGE"]]}}
    assert compat.compatibility_problems(old, appended) == []
    assert "gone" in compat.compatibility_problems(old, {})[0]
    swapped = copy.deepcopy(old)
    swapped["N"]["widgets"].reverse()
    assert "only append" in compat.compatibility_problems(old, swapped)[0]
    retyped = copy.deepcopy(old)
    retyped["N"]["sockets"] = [["x", "LATENT"]]
    assert "link inputs" in compat.compatibility_problems(old, retyped)[0]


# --- hand-made graphs -------------------------------------------------------------------------------


def test_check_widgets_flags_values_of_the_wrong_kind():
    g = graph()
    g["nodes"][4]["widgets_values"] = [42, "randomize", "twenty", "c"]
    problems = compat.check_widgets(g, OBJECT_INFO)
    assert any("'steps'" in p and "not an integer" in p for p in problems)
    assert any("'name'" in p and "not one of its choices" in p for p in problems)
    assert compat.check_widgets(graph(), OBJECT_INFO) == []
