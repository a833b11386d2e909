"""Saved workflows keep loading: the committed workflows against the committed widget-order snapshot, and the
UI -> API converter, overrides and missing-file messages on small hand-made graphs (no ComfyUI needed).

The live side (the running node schemas only append to the snapshot; the workflows fit them and run) is
tests/comfy/test_workflows.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hierafash_cli import workflow as wf

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
SNAPSHOT = json.loads((ROOT / "tests" / "data" / "widget_order.json").read_text())
SNAPSHOT_INFO = {node_id: wf.summary_as_object_info(summary) for node_id, summary in SNAPSHOT.items()}


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
    assert wf.check_widgets(workflow, SNAPSHOT_INFO, only=is_pack_node) == []


def test_the_check_catches_a_moved_widget_and_a_lost_output():
    workflow = wf.load(ROOT / "workflows" / "hierafash_concept_to_draft.json")
    moved = copy.deepcopy(SNAPSHOT)
    widgets = moved["HieraFashPoseMaskBuilder"]["widgets"]
    widgets.insert(0, ["mode", "COMBO"])  # a widget inserted before the others shifts every saved value
    problems = wf.check_widgets(workflow, {k: wf.summary_as_object_info(v) for k, v in moved.items()},
                                only=is_pack_node)
    assert any("HieraFashPoseMaskBuilder" in p and "'preset'" in p for p in problems)
    assert wf.compatibility_problems(SNAPSHOT, moved)

    shrunk = copy.deepcopy(SNAPSHOT)
    shrunk["HieraFashPoseMaskBuilder"]["outputs"] = shrunk["HieraFashPoseMaskBuilder"]["outputs"][:1]
    problems = wf.check_widgets(workflow, {k: wf.summary_as_object_info(v) for k, v in shrunk.items()},
                                only=is_pack_node)
    assert any("output 1" in p and "no longer exists" in p for p in problems)


def test_compatibility_allows_appending_and_refuses_the_rest():
    old = {"N": {"widgets": [["a", "INT"], ["b", "COMBO"]], "sockets": [["x", "IMAGE"]], "outputs": [["o", "MASK"]]}}
    appended = {"N": {"widgets": [["a", "INT"], ["b", "COMBO"], ["c", "FLOAT"]], "sockets": [["x", "IMAGE"],
                      ["y", "MASK"]], "outputs": [["o", "MASK"], ["p", "IMAGE"]]}}
    assert wf.compatibility_problems(old, appended) == []
    assert "gone" in wf.compatibility_problems(old, {})[0]
    swapped = copy.deepcopy(old)
    swapped["N"]["widgets"].reverse()
    assert "only append" in wf.compatibility_problems(old, swapped)[0]
    retyped = copy.deepcopy(old)
    retyped["N"]["sockets"] = [["x", "LATENT"]]
    assert "link inputs" in wf.compatibility_problems(old, retyped)[0]


# --- the converter on hand-made graphs --------------------------------------------------------------

OBJECT_INFO = {
    "Loader": {"input": {"required": {"ckpt_name": [["tiny.safetensors"], {}]}}, "input_order":
               {"required": ["ckpt_name"]}, "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Load"},
    "Sampler": {"input": {"required": {"model": ["MODEL", {}], "seed": ["INT", {"default": 0,
                                                                                 "control_after_generate": True}],
                                       "steps": ["INT", {"default": 20}], "name": ["COMBO", {"options": ["a", "b"]}]},
                          "optional": {"strength": ["FLOAT", {"default": 1.0}]}},
                "input_order": {"required": ["model", "seed", "steps", "name"], "optional": ["strength"]},
                "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "Sampler"},
    "Image": {"input": {"required": {"image": [["a.png"], {"image_upload": True}], "flag": ["BOOLEAN", {}]}},
              "output": ["IMAGE"], "output_name": ["IMAGE"], "display_name": "Load Image"},
    "Int": {"input": {"required": {"value": ["INT", {"control_after_generate": True}]}}, "output": ["INT"],
            "output_name": ["INT"], "display_name": "Int"},
    "Patch": {"input": {"required": {"model": ["MODEL", {}]}}, "output": ["MODEL"], "output_name": ["MODEL"],
              "display_name": "Patch"},
}


def node(id_, type_, values=None, inputs=(), title=None, mode=0, **extra):
    n = {"id": id_, "type": type_, "mode": mode, "inputs": [{"name": name, "type": t, "link": link}
                                                             for name, t, link in inputs], **extra}
    if values is not None:
        n["widgets_values"] = values
    if title:
        n["title"] = title
    return n


def graph():
    return {"version": 0.4, "nodes": [
        node(1, "Loader", ["big.safetensors"], title="Checkpoint",
             properties={"models": [{"name": "big.safetensors", "url": "https://example.org/big.ckpt",
                                     "directory": "checkpoints"}]}),
        node(2, "Patch", inputs=[("model", "MODEL", 1)], mode=wf.BYPASSED),
        node(3, "Reroute", inputs=[("", "*", 2)]),
        node(4, "Int", [7, "fixed"], title="Steps"),
        node(5, "Sampler", [42, "randomize", 20, "b"], inputs=[("model", "MODEL", 3), ("steps", "INT", 4)]),
        node(6, "Image", ["photo.png", "image", True]),
        node(7, "Note", ["a note"]),
        node(8, "Sampler", [1, "fixed", 3, "a", 0.5], inputs=[("model", "MODEL", 5)], mode=wf.MUTED),
    ], "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"], [3, 3, 0, 5, 0, "MODEL"],
                 [4, 4, 0, 5, 2, "INT"], [5, 1, 0, 8, 0, "MODEL"]]}


def test_to_api_follows_reroutes_and_bypasses_and_skips_ui_only_values():
    prompt = wf.to_api(graph(), OBJECT_INFO)
    assert set(prompt) == {"1", "4", "5", "6"}  # no Note, Reroute, bypassed or muted node
    assert prompt["5"]["inputs"] == {"model": ["1", 0], "seed": 42, "steps": ["4", 0], "name": "b",
                                     "strength": 1.0}  # appended widget missing from the save: its default
    assert prompt["4"]["inputs"] == {"value": 7}
    assert prompt["6"]["inputs"] == {"image": "photo.png", "flag": True}  # "image" is the upload button
    assert prompt["1"]["_meta"]["title"] == "Checkpoint" and prompt["6"]["_meta"]["title"] == "Load Image"


def test_to_api_takes_primitive_node_values_and_link_objects():
    g = {"version": 1, "nodes": [node(1, "Loader", ["tiny.safetensors"]),
                                 node(2, "PrimitiveNode", [9, "fixed"]),
                                 node(3, "Sampler", [0, "fixed", 20, "a"], inputs=[("model", "MODEL", 11),
                                                                                   ("steps", "INT", 12)])],
         "links": [{"id": 11, "origin_id": 1, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "MODEL"},
                   {"id": 12, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 2, "type": "INT"}]}
    assert wf.to_api(g, OBJECT_INFO)["3"]["inputs"]["steps"] == 9


def test_unknown_node_types_and_subgraphs_are_refused_with_the_fix():
    g = graph()
    g["nodes"].append(node(9, "SomePackNode", []))
    with pytest.raises(wf.WorkflowError, match="not installed.*SomePackNode.*Install the custom node packs"):
        wf.to_api(g, OBJECT_INFO)
    g = graph()
    g["definitions"] = {"subgraphs": [{"id": "x"}]}
    with pytest.raises(wf.WorkflowError, match="subgraphs"):
        wf.to_api(g, OBJECT_INFO)


def test_overrides_by_id_title_and_type_keep_positions():
    g = wf.apply_overrides(graph(), OBJECT_INFO, ["Steps.value=3", "5.seed=7", "Sampler.name=a",
                                                  "Load Image.flag=false", "Sampler.strength=0.25"])
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes[4]["widgets_values"] == [3, "fixed"]
    assert nodes[5]["widgets_values"] == [7, "randomize", 20, "a", 0.25]  # appended widget written in place
    assert nodes[8]["widgets_values"] == [1, "fixed", 3, "a", 0.25]  # every node of that type
    assert nodes[6]["widgets_values"] == ["photo.png", "image", False]
    assert graph()["nodes"][3]["widgets_values"] == [7, "fixed"]  # the input is not changed


@pytest.mark.parametrize("assignment, message", [
    ("Sampler.steps=3", "'steps' is connected to node 4; set that node instead"),
    ("Sampler.cfg=3", "has no widget 'cfg'; its widgets: seed, steps, name, strength"),
    ("Nope.seed=1", "no node has the id, title or type 'Nope'"),
    ("Steps.value=many", "value takes an integer, not 'many'"),
    ("Steps=3", "write NODE.INPUT=VALUE"),
])
def test_bad_overrides_say_what_is_wrong(assignment, message):
    with pytest.raises(wf.WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wf.apply_overrides(graph(), OBJECT_INFO, [assignment])


def test_model_mapping_and_missing_files():
    g = graph()
    missing = wf.missing_files(g, OBJECT_INFO)
    assert [(m.node_id, m.input, m.name, m.directory, m.url) for m in missing] == [
        ("1", "ckpt_name", "big.safetensors", "checkpoints", "https://example.org/big.ckpt"),
        ("6", "image", "photo.png", "input", None)]
    model = missing[0].describe({"checkpoints": ["/comfy/models/checkpoints"]})
    assert "put it in: /comfy/models/checkpoints" in model and "get it from: https://example.org/big.ckpt" in model
    assert "hierafash convert big.ckpt --models-dir /comfy/models" in model
    assert "--set \"6.image=/path/to/photo.png\"" in missing[1].describe({})

    mapped = wf.map_models(g, OBJECT_INFO, {"big.safetensors": "tiny.safetensors"})
    assert [m.name for m in wf.missing_files(mapped, OBJECT_INFO)] == ["photo.png"]
    assert wf.to_api(mapped, OBJECT_INFO)["1"]["inputs"] == {"ckpt_name": "tiny.safetensors"}


def test_check_widgets_flags_values_of_the_wrong_kind():
    g = graph()
    g["nodes"][4]["widgets_values"] = [42, "randomize", "twenty", "c"]
    problems = wf.check_widgets(g, OBJECT_INFO)
    assert any("'steps'" in p and "not an integer" in p for p in problems)
    assert any("'name'" in p and "not one of its choices" in p for p in problems)
    assert wf.check_widgets(graph(), OBJECT_INFO) == []
