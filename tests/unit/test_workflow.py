"""Saved (UI-format) workflows read, changed and converted to API prompts on small hand-made graphs
(hierafash_cli.workflow; no ComfyUI needed). The compatibility checks are tests/unit/test_workflow_compat.py."""

from __future__ import annotations

import pytest
from support.ui_graphs import OBJECT_INFO, graph, node

from hierafash_cli import workflow as wf


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

    made_here = wf.MissingFile("1", "Load Checkpoint", "ckpt_name", wf.QUALITY_CHECKPOINT, None, None).describe({})
    assert "nothing to download" in made_here and "make quality FULL=1" in made_here
    stranger = wf.MissingFile("1", "Load Checkpoint", "ckpt_name", "other.safetensors", None, None).describe({})
    assert "does not say where to get it" in stranger

    mapped = wf.map_models(g, OBJECT_INFO, {"big.safetensors": "tiny.safetensors"})
    assert [m.name for m in wf.missing_files(mapped, OBJECT_INFO)] == ["photo.png"]
    assert wf.to_api(mapped, OBJECT_INFO)["1"]["inputs"] == {"ckpt_name": "tiny.safetensors"}
