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
TEMPLATES = sorted((ROOT / "workflows").glob("*.json"))
LEGACY = sorted((ROOT / "tests" / "data" / "legacy_workflows").glob("*.json"))  # the 0.1.0 templates, kept as saves
WORKFLOWS = TEMPLATES + LEGACY
SEARCH_WORDS = {"fashion": 4, "garment": 4, "dress": 3, "edit": 3}  # what an artist types: how many it must find
SMALL_MODEL_TEMPLATE = "Fashion garment design then edit - small model trained here, no download"
SNAPSHOT = json.loads((ROOT / "tests" / "data" / "widget_order.json").read_text())
SNAPSHOT_INFO = {node_id: compat.summary_as_object_info(summary) for node_id, summary in SNAPSHOT.items()}


def is_pack_node(node_type: str) -> bool:
    return node_type.startswith("HieraFash")


# --- the committed workflows -----------------------------------------------------------------------

def test_four_templates_whose_names_an_artist_reads_and_searches():
    # The frontend shows and searches a pack's template by its file name alone.
    names = [p.stem.lower() for p in TEMPLATES]
    assert len(names) == 4 and len(LEGACY) == 3
    for word, count in SEARCH_WORDS.items():
        assert sum(word in name for name in names) == count, word
    assert not any("_" in name for name in names)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_workflow_is_in_the_editors_format_with_a_note(path):
    workflow = wf.load(path)
    assert workflow["version"] == 0.4
    assert all(isinstance(link, list) and len(link) == 6 for link in workflow["links"])
    assert workflow["last_node_id"] == max(n["id"] for n in workflow["nodes"])
    assert any(n["type"] in ("Note", "MarkdownNote") and "hierafash" in n["widgets_values"][0]
               for n in workflow["nodes"])


def assert_loads_the_official_download(workflow: dict) -> None:
    types = [n["type"] for n in workflow["nodes"]]
    assert "CheckpointLoaderSimple" not in types and "ControlNetLoader" not in types
    (loader,) = [n for n in workflow["nodes"] if n["type"] == "HieraFashLoadOfficialModel"]
    (model,) = loader["properties"]["models"]  # what the frontend's Download button fetches: the file it loads
    assert model == {"name": loader["widgets_values"][0], "directory": "checkpoints", "url": wf.OFFICIAL_CKPT_URL}
    assert model["url"].endswith("/" + model["name"])
    (settings,) = [n for n in workflow["nodes"] if n["type"] == "HieraFashSizeAndSteps"]
    assert settings["widgets_values"][0].startswith("quick try")


def assert_loads_the_small_model_made_here(workflow: dict) -> None:
    from hierafash_core.synthetic import DEFAULT_SIZE

    loaders = {n["type"]: n for n in workflow["nodes"] if n["type"] in ("CheckpointLoaderSimple", "ControlNetLoader")}
    assert loaders["CheckpointLoaderSimple"]["widgets_values"] == [wf.QUALITY_CHECKPOINT]
    assert loaders["ControlNetLoader"]["widgets_values"] == [wf.QUALITY_CONTROLNET]
    assert not any((n.get("properties") or {}).get("models") for n in workflow["nodes"])  # nothing to download
    assert "HieraFashLoadOfficialModel" not in [n["type"] for n in workflow["nodes"]]
    (settings,) = [n for n in workflow["nodes"] if n["type"] == "HieraFashSizeAndSteps"]
    assert settings["widgets_values"][:3] == ["custom (the values below)", *DEFAULT_SIZE]  # the size it was trained at


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_has_a_thumbnail_the_loader_of_its_model_and_one_size_switch(path):
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff" and thumbnail.stat().st_size < 200_000
    workflow = wf.load(path)
    if path.stem == SMALL_MODEL_TEMPLATE:
        assert_loads_the_small_model_made_here(workflow)
    else:
        assert_loads_the_official_download(workflow)
    (settings,) = [n for n in workflow["nodes"] if n["type"] == "HieraFashSizeAndSteps"]
    fed = {(link[3], link[4]) for link in workflow["links"] if link[1] == settings["id"]}
    samplers = [n["id"] for n in workflow["nodes"] if n["type"] in ("KSampler", "HieraFashHierarchicalPromptScheduler")]
    for node_id in samplers:  # every sampler and scheduler takes its steps from the switch
        inputs = next(n for n in workflow["nodes"] if n["id"] == node_id)["inputs"]
        steps = next(i for i, slot in enumerate(inputs) if slot["name"] == "steps")
        assert (node_id, steps) in fed, node_id
    assert workflow["extra"]["ds"]["scale"] >= 0.75  # opens legible


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: p.stem)
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
    workflow = wf.load(ROOT / "tests" / "data" / "legacy_workflows" / "hierafash_concept_to_draft.json")
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
