"""The shipped workflows in the real ComfyUI: served as templates, converted UI -> API from /object_info, run on
the tiny models; their widgets still fit the live schemas; `hierafash run` headless; the help pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from PIL import Image
from support.workflow_runs import (
    EXPECTED_SAVES,
    HEIGHT,
    LEGACY,
    LEGACY_NAMES,
    NAMES,
    ROOT,
    STEPS,
    TINY_MODELS,
    WIDTH,
    saved_images,
    small_run,
    workflow_path,
    write_source_image,
)

from hierafash_cli import workflow as wf
from hierafash_cli import workflow_compat as compat
from hierafash_cli.run_cmd import EXIT_SETUP
from hierafash_core.synthetic import draw_figure, example_spec

SNAPSHOT = ROOT / "tests" / "data" / "widget_order.json"
LEGACY_EDIT = str(LEGACY / "hierafash_attribute_edit.json")  # Load Image + stock loaders: what `hierafash run` uploads
LEGACY_DRAFT = str(LEGACY / "hierafash_concept_to_draft.json")


@pytest.fixture(scope="module")
def source_image(comfy_base):
    return write_source_image(comfy_base / "input")


@pytest.fixture(scope="module")
def object_info(comfy, source_image, official_checkpoint, quality_model):
    return comfy.get("/object_info")  # after writing the source image and the model files: their loaders list them


def example_source() -> np.ndarray:
    """The Example Figure the edit template starts from, as SaveImage stores it (255 x, truncated)."""
    image = draw_figure(example_spec(), WIDTH, HEIGHT).image
    return np.clip(255.0 * image, 0, 255).astype(np.uint8)


def with_edit_mask_saved(prompt: dict, path: Path) -> dict:
    """The prompt plus a test node that writes Attribute Edit's edit_mask to `path`, unquantised."""
    edit = next(i for i, n in prompt.items() if n["class_type"] == "HieraFashAttributeEdit")
    return {**prompt, "hierafash_test_mask": {"class_type": "HieraFashTestSaveMask",
                                              "inputs": {"mask": [edit, 2], "path": str(path)}}}


def assert_source_exactly_outside(edited: np.ndarray, source: np.ndarray, mask_path: Path) -> None:
    """Outside the edit mask every pixel is the source's, bit for bit; inside, the edit changed some."""
    mask = safetensors.torch.load_file(str(mask_path))["mask"].reshape(-1, *edited.shape[:2])[0].numpy()
    outside = mask == 0
    assert outside.any() and (~outside).any()
    assert np.array_equal(edited[outside], source[outside])
    assert not np.array_equal(edited[~outside], source[~outside])


def load_image(comfy_base, image: dict) -> np.ndarray:
    return np.asarray(Image.open(comfy_base / "output" / image["subfolder"] / image["filename"]).convert("RGB"))


def test_the_pack_lists_its_templates_with_thumbnails(comfy):
    assert sorted(comfy.get("/workflow_templates")["hierafashdiff"]) == NAMES
    for name in NAMES:
        url = f"/api/workflow_templates/hierafashdiff/{urllib.parse.quote(name)}"
        assert comfy.get(f"{url}.json") == wf.load(workflow_path(name))
        with urllib.request.urlopen(f"{comfy.url}{url}.jpg") as reply:
            assert reply.read()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("name", NAMES + LEGACY_NAMES)
def test_workflow_runs_on_the_tiny_models(comfy, comfy_base, object_info, source_image, name, tmp_path):
    """The templates on the official replica (their loader converts it) or the benchmark's small model, the legacy
    saves on the tiny models."""
    workflow = wf.map_models(wf.load(workflow_path(name)), object_info, TINY_MODELS)
    workflow = wf.apply_overrides(workflow, object_info, small_run(workflow))
    assert wf.missing_files(workflow, object_info) == []
    prompt = wf.to_api(workflow, object_info)
    mask_path = tmp_path / "edit_mask.safetensors"
    if "Save edit" in EXPECTED_SAVES[name]:
        prompt = with_edit_mask_saved(prompt, mask_path)

    entry = comfy.run(prompt, workflow)

    saves = saved_images(entry, prompt)
    assert {title: len(images) for title, images in saves.items()} == EXPECTED_SAVES[name]
    pictures = {title: load_image(comfy_base, images[0]) for title, images in saves.items()}
    assert all(p.shape == (HEIGHT, WIDTH, 3) for p in pictures.values())
    if "Save edit" in pictures:  # exact preservation: outside the edit mask, the source bit for bit
        source = pictures.get("Save draft", example_source() if name in NAMES
                              else np.asarray(Image.open(source_image).convert("RGB")))
        assert_source_exactly_outside(pictures["Save edit"], source, mask_path)
        plan = next(o["text"][0] for i, o in entry["outputs"].items() if prompt[i]["class_type"] == "PreviewAny")
        assert plan.startswith("editing ")
    previews = [o["text"][0] for i, o in entry["outputs"].items()
                if prompt[i]["class_type"] == "HieraFashHierarchicalPromptScheduler"]
    (scheduler,) = {n["inputs"]["scheduler"] for n in prompt.values() if n["class_type"] == "KSampler"}
    assert previews and all(p.startswith(f"{STEPS} steps, {scheduler}") for p in previews)  # Steps feeds them


@pytest.mark.parametrize("name", NAMES + LEGACY_NAMES)
def test_workflow_widgets_fit_the_live_schemas(object_info, name):
    workflow = wf.load(workflow_path(name))
    assert compat.check_widgets(workflow, object_info) == []


def test_live_node_schemas_only_append_to_the_committed_snapshot(object_info):
    snapshot = json.loads(SNAPSHOT.read_text())
    live = {node_id: compat.schema_summary(info) for node_id, info in wf.pack_nodes(object_info).items()}
    assert compat.compatibility_problems(snapshot, live) == []
    unrecorded = sorted(set(live) - set(snapshot))
    assert not unrecorded, f"record their widget order: .venv/bin/python tools/snapshot_widgets.py ({unrecorded})"


def test_every_node_has_a_help_page_served_to_the_frontend(comfy, object_info):
    nodes_md = (ROOT / "docs" / "nodes.md").read_text()
    for node_id, info in wf.pack_nodes(object_info).items():
        path = ROOT / "web" / "docs" / f"{node_id}.md"
        assert path.is_file(), f"no help page for {node_id}: run .venv/bin/python tools/gen_node_docs.py"
        text = path.read_text()
        names = [n for section in ("required", "optional") for n in info["input"].get(section, {})]
        names += list(info.get("output_name", []))
        missing = [n for n in names if f"**{n}**" not in text]
        assert not missing, f"{path.name} does not describe {missing}: run .venv/bin/python tools/gen_node_docs.py"
        assert f"## {info['display_name']}" in nodes_md
        with urllib.request.urlopen(f"{comfy.url}/extensions/hierafashdiff/docs/{node_id}.md") as reply:
            assert reply.read().decode() == text
    assert "/extensions/hierafashdiff/js/hierafash_preview.js" in comfy.get("/extensions")


def hierafash(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "hierafash_cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_hierafash_run_reproduces_the_edit_workflow_headless(comfy, comfy_base, object_info, source_image, tmp_path):
    source = write_source_image(tmp_path, "my_design.png")
    # The edit mask, from the same workflow and overrides run through the API (the mask is pose geometry).
    reference = wf.map_models(wf.load(LEGACY / "hierafash_attribute_edit.json"), object_info, TINY_MODELS)
    reference = wf.apply_overrides(reference, object_info, small_run(reference))
    mask_path = tmp_path / "edit_mask.safetensors"
    comfy.run(with_edit_mask_saved(wf.to_api(reference, object_info), mask_path), reference)
    model_args = [a for old, new in TINY_MODELS.items() for a in ("--model", f"{old}={new}")]
    edit = wf.load(LEGACY / "hierafash_attribute_edit.json")
    set_args = [a for s in small_run(edit) + [f"Load Image.image={source}"] for a in ("--set", s)]
    out = tmp_path / "out"
    users_file = comfy_base / "input" / "my_design.png"  # a user's own file of the same name must survive
    users_file.write_bytes(b"not the uploaded image")

    result = hierafash("run", LEGACY_EDIT, "--home", str(comfy_base), "--out", str(out),
                       *model_args, *set_args)

    assert result.returncode == 0, result.stderr
    assert users_file.read_bytes() == b"not the uploaded image"
    images = sorted(out.glob("*.png"))
    assert images == sorted(Path(line) for line in result.stdout.splitlines() if line.endswith(".png"))
    assert len(images) == 1 and images[0].name.startswith("edit_")
    edited = np.asarray(Image.open(images[0]).convert("RGB"))
    assert edited.shape == (HEIGHT, WIDTH, 3)
    assert_source_exactly_outside(edited, np.asarray(Image.open(source).convert("RGB")), mask_path)
    assert next(out.glob("*_Edit_plan.txt")).read_text().startswith("editing ")
    embedded = json.loads(Image.open(images[0]).info["workflow"])  # the PNG carries the workflow as run
    loader = next(n for n in embedded["nodes"] if n["type"] == "CheckpointLoaderSimple")
    assert loader["widgets_values"][0] == TINY_MODELS[wf.CHECKPOINT_NAME]


@pytest.fixture
def without_converted_models(comfy_base, tmp_path):
    """The server's models folder without the files the templates' loader converted earlier in the session."""
    moved = []
    for folder, name in (("checkpoints", wf.CHECKPOINT_NAME), ("controlnet", wf.CONTROLNET_NAME)):
        path = comfy_base / "models" / folder / name
        if path.exists():
            moved.append((path, path.rename(tmp_path / name)))
    yield
    for path, aside in moved:
        aside.rename(path)


def test_hierafash_run_names_the_missing_model_its_folder_and_source(comfy, comfy_base, tmp_path,
                                                                    without_converted_models):
    result = hierafash("run", LEGACY_DRAFT, "--attach", str(comfy.port),
                       "--out", str(tmp_path / "out"), timeout=120)

    assert result.returncode == EXIT_SETUP
    err = result.stderr
    for name, folder in ((wf.CHECKPOINT_NAME, "checkpoints"), (wf.CONTROLNET_NAME, "controlnet")):
        assert f"model file '{name}' is missing" in err
        assert f"put it in: {comfy_base / 'models' / folder}" in err
    assert f"get it from: {wf.OFFICIAL_CKPT_URL}" in err
    assert f"hierafash convert {wf.OFFICIAL_CKPT} --models-dir {comfy_base / 'models'}" in err
    assert not any((tmp_path / "out").glob("*"))  # nothing written


def test_hierafash_run_reports_bad_overrides_before_running(comfy, tmp_path):
    result = hierafash("run", LEGACY_DRAFT, "--attach", str(comfy.port),
                       "--set", "KSampler.steps=8", "--out", str(tmp_path), timeout=120)
    assert result.returncode == EXIT_SETUP
    assert "'steps' is connected to node" in result.stderr and "set that node instead" in result.stderr


def test_artists_find_the_nodes_by_garment_words_and_expert_widgets_fold_away(object_info):
    ours = {node_id: info for node_id, info in object_info.items() if node_id.startswith("HieraFash")}
    if not any(info.get("search_aliases") for info in ours.values()):
        pytest.skip("this ComfyUI has no node search aliases (0.3.75); they show from 0.30 on")
    aliases = {node_id: " ".join(info.get("search_aliases") or []) for node_id, info in ours.items()}
    for node_id in ("HieraFashConceptIdeation", "HieraFashAttributeIteration", "HieraFashAttributeEdit"):
        assert all(word in aliases[node_id] for word in ("garment", "outfit", "fashion")), node_id
    for word in ("sleeve", "collar", "hem", "dress"):
        assert word in aliases["HieraFashAttributeIteration"] and word in aliases["HieraFashAttributeEdit"], word
    scheduler = ours["HieraFashHierarchicalPromptScheduler"]["input"]["required"]
    assert scheduler["boundaries"][1].get("advanced") is True and scheduler["suffix"][1].get("advanced") is True
    assert not scheduler["steps"][1].get("advanced")
