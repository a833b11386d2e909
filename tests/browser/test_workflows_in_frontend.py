"""Each shipped workflow in the real ComfyUI frontend: fetched from the template URL, loaded with
app.loadGraphData, no missing or invalid nodes, queued from the UI on the tiny models, run to success;
the scheduler's stage preview appears in the node (web/js/hierafash_preview.js); the help pages resolve."""

from __future__ import annotations

import time

import pytest
from support.workflow_runs import (
    EXPECTED_SAVES,
    NAMES,
    TINY_MODELS,
    saved_images,
    small_run,
    write_source_image,
)

from hierafash_cli import workflow as wf

FETCH_JSON = "(url) => fetch(url).then((r) => r.json())"
MISSING_TYPES = "(wf) => wf.nodes.map((n) => n.type).filter((t) => !(t in LiteGraph.registered_node_types))"
LOAD = "async (wf) => { await app.loadGraphData(wf); }"
DIALOGS = "() => [...document.querySelectorAll('.p-dialog')].map((d) => d.innerText)"
TOASTS = "() => [...document.querySelectorAll('.p-toast-message')].map((t) => t.innerText)"
NODE_STATE = """() => app.graph.nodes.map((n) => ({
  id: n.id, type: n.type, registered: n.type in LiteGraph.registered_node_types,
  backend: !!n.constructor.nodeData, has_errors: !!n.has_errors, mode: n.mode,
  widgets: (n.widgets || []).filter((w) => w.serialize !== false).map((w) => w.name),
}))"""
SET_WIDGETS = """(changes) => {
  for (const [id, name, value] of changes) {
    const widget = app.graph.getNodeById(id).widgets.find((w) => w.name === name);
    widget.value = value;
    widget.callback?.(value);
  }
  app.graph.setDirtyCanvas(true, true);
}"""
GRAPH_TO_PROMPT = "async () => JSON.parse(JSON.stringify(await app.graphToPrompt()))"
PREVIEWS = """() => app.graph.nodes.filter((n) => n.type === 'HieraFashHierarchicalPromptScheduler')
  .map((n) => [String(n.id), n.widgets.find((w) => w.name === 'stage_preview')?.value ?? null])"""
FIT = "() => app.extensionManager.command.execute('Comfy.Canvas.FitView')"


@pytest.fixture(scope="module", autouse=True)
def source_image(comfy_base):
    return write_source_image(comfy_base / "input")


@pytest.fixture(scope="module")
def object_info(comfy, source_image):
    return comfy.get("/object_info")  # after writing the source image: Load Image lists it


DIALOG_COUNT = "() => document.querySelectorAll('.p-dialog').length"
NEXT_FRAME = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def wait_for_dialog(page, *words: str, timeout: float = 30_000) -> list[str]:
    """Wait until an open dialog's text holds every word (case-insensitive); returns all dialog texts."""
    page.wait_for_function(
        """(words) => [...document.querySelectorAll('.p-dialog')].some(
            (d) => words.every((w) => d.innerText.toLowerCase().includes(w)))""",
        arg=[w.lower() for w in words], timeout=timeout)
    return page.evaluate(DIALOGS)


def close_dialogs(page) -> None:
    for _ in range(5):
        count = page.evaluate(DIALOG_COUNT)
        if not count:
            return
        page.keyboard.press("Escape")
        page.wait_for_function(f"(n) => ({DIALOG_COUNT})() < n", arg=count, timeout=10_000)
    raise AssertionError(f"dialogs stay open: {page.evaluate(DIALOGS)}")


def expected_widgets(info: dict) -> list[str]:
    """Widget names in the order the frontend creates (and saves) them, UI-only ones included."""
    names = []
    for w in wf.widgets(info):
        names += [w.name] + (["control_after_generate"] if w.control else []) + (["upload"] if w.upload else [])
    return names


def declared(prompt: dict, object_info: dict) -> dict:
    """The prompt without _meta and without inputs the node does not declare (UI-only widgets)."""
    out = {}
    for node_id, node in prompt.items():
        names = {n for section in object_info[node["class_type"]]["input"].values() for n in section}
        out[node_id] = {"class_type": node["class_type"],
                        "inputs": {k: v for k, v in node["inputs"].items() if k in names}}
    return out


def wait_for_history(comfy, known: set, timeout: float = 900) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = comfy.get("/history")
        new = {k: v for k, v in history.items() if k not in known}
        done = {k: v for k, v in new.items() if v.get("status", {}).get("completed") is not None
                and (v["status"]["completed"] or v["status"]["status_str"] != "success")}
        if done:
            assert len(new) == 1, f"one prompt expected, got {list(new)}"
            return next(iter(done.values()))
        time.sleep(0.5)
    raise AssertionError(f"the queued workflow did not finish within {timeout}s")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_loads_and_runs_from_the_frontend(app_page, comfy, object_info, tmp_path, name):
    page = app_page
    assert name in page.evaluate(FETCH_JSON, "/workflow_templates")["hierafashdiff"]
    workflow = page.evaluate(FETCH_JSON, f"/api/workflow_templates/hierafashdiff/{name}.json")

    # No missing node types: every type is registered before loading, and loading shows no missing-nodes dialog.
    assert page.evaluate(MISSING_TYPES, workflow) == []
    page.evaluate(LOAD, workflow)
    # The loaders' properties.models open the missing-models dialog (this server has only the tiny models);
    # once it shows, loading has finished and any missing-nodes dialog would be open too.
    dialogs = wait_for_dialog(page, "Missing Models")
    assert not [d for d in dialogs if "missing nodes" in d.lower()]
    (models,) = [d for d in dialogs if "Missing Models" in d]
    assert f"checkpoints / {wf.CHECKPOINT_NAME}" in models and f"controlnet / {wf.CONTROLNET_NAME}" in models
    close_dialogs(page)
    assert not [t for t in page.evaluate(TOASTS) if "invalid" in t.lower()]

    # No invalid nodes: all registered from the backend, with exactly the widgets the saved values are for.
    state = page.evaluate(NODE_STATE)
    assert len(state) == len(workflow["nodes"])
    for node in state:
        assert node["registered"] and not node["has_errors"], node
        if node["type"] not in wf.VIRTUAL_NODES:
            assert node["backend"], node
            assert node["widgets"] == expected_widgets(object_info[node["type"]]), node
    saved = {n["id"]: n for n in workflow["nodes"]}
    roundtrip = page.evaluate(GRAPH_TO_PROMPT)["workflow"]
    for node in roundtrip["nodes"]:  # loading changed no value and no link
        assert (node.get("widgets_values") or []) == (saved[node["id"]].get("widgets_values") or []), node["id"]
    assert roundtrip["links"] == workflow["links"]

    # Switch the loaders to the tiny models and shrink sizes and steps, through the widgets.
    # A detail of its own keeps ComfyUI from reusing a scheduler result cached by an earlier prompt.
    unique = [f"HieraFashHierarchicalPromptScheduler.detail=browser test {name}"]
    small = wf.apply_overrides(wf.map_models(workflow, object_info, TINY_MODELS), object_info,
                               small_run(workflow) + unique)
    changes = []
    for before, after in zip(workflow["nodes"], small["nodes"]):
        if before["type"] in wf.VIRTUAL_NODES:
            continue
        old, new = (wf.widget_values(n, object_info[n["type"]]) for n in (before, after))
        changes += [[after["id"], k, v] for k, v in new.items() if old.get(k) != v]
    assert changes
    page.evaluate(SET_WIDGETS, changes)

    # The converter agrees with the frontend's own graphToPrompt.
    queued = page.evaluate(GRAPH_TO_PROMPT)
    assert declared(queued["output"], object_info) == declared(wf.to_api(queued["workflow"], object_info),
                                                                object_info)
    assert declared(queued["output"], object_info) == declared(wf.to_api(small, object_info), object_info)

    # Queue from the UI and wait for success.
    known = set(comfy.get("/history"))
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    entry = wait_for_history(comfy, known)
    assert entry["status"]["status_str"] == "success", entry["status"]
    prompt = entry["prompt"][2]
    assert {title: len(images) for title, images in saved_images(entry, prompt).items()} == EXPECTED_SAVES[name]

    # The scheduler's preview text appears in the node.
    page.wait_for_function(f"() => ({PREVIEWS})().every(([, text]) => !!text)", timeout=60_000)
    for node_id, text in page.evaluate(PREVIEWS):
        assert text == entry["outputs"][node_id]["text"][0]
        assert f"browser test {name}" in text and "prompt:" in text
    assert page.errors == []

    page.evaluate(FIT)
    page.evaluate(NEXT_FRAME)  # the canvas redraws on the next animation frame
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000

    # Queued again as a fresh graph, every node is cached: ComfyUI sends no preview, and the node says why.
    page.evaluate(LOAD, queued["workflow"])
    close_dialogs(page)
    known = set(comfy.get("/history"))
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    assert wait_for_history(comfy, known)["status"]["status_str"] == "success"
    page.wait_for_function(f"() => ({PREVIEWS})().every(([, text]) => !!text)", timeout=60_000)
    assert all(text.startswith("(cached)") for _, text in page.evaluate(PREVIEWS))


def test_the_checks_catch_a_missing_node_type(app_page):
    """Negative control: a workflow using a node type nobody registered is caught by the same checks."""
    page = app_page
    workflow = page.evaluate(FETCH_JSON, f"/api/workflow_templates/hierafashdiff/{NAMES[0]}.json")
    workflow["nodes"][-1]["type"] = "HieraFashNotARealNode"
    assert page.evaluate(MISSING_TYPES, workflow) == ["HieraFashNotARealNode"]
    page.evaluate(LOAD, workflow)
    wait_for_dialog(page, "missing nodes", "HieraFashNotARealNode")
    close_dialogs(page)


def test_frontend_finds_every_help_page_and_the_preview_extension(app_page, object_info):
    page = app_page
    for node_id in wf.pack_nodes(object_info):
        module = page.evaluate("(t) => LiteGraph.registered_node_types[t].nodeData.python_module", node_id)
        assert module == wf.PACK_MODULE  # the help panel then reads /extensions/hierafashdiff/docs/<id>.md
        status = page.evaluate("(u) => fetch(u).then((r) => r.status)", f"/extensions/hierafashdiff/docs/{node_id}.md")
        assert status == 200, node_id
    assert page.evaluate("() => app.extensions.some((e) => e.name === 'hierafashdiff.SchedulePreview')")
    assert page.errors == []
    # The preview box is display only: a new scheduler saves exactly its own widgets.
    values = page.evaluate("""() => { const n = LiteGraph.createNode('HieraFashHierarchicalPromptScheduler');
        app.graph.add(n); const s = n.serialize(); app.graph.remove(n); return s.widgets_values; }""")
    scheduler = object_info["HieraFashHierarchicalPromptScheduler"]
    assert len(values) == len(wf.widgets(scheduler))
