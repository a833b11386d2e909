"""Each shipped workflow in the real ComfyUI frontend: fetched from the template URL, loaded with
app.loadGraphData, no missing or invalid nodes, queued from the UI on the tiny models, run to success;
the scheduler's stage preview appears in the node (web/js/hierafash_preview.js); the help pages resolve."""

from __future__ import annotations

import time
import uuid

import pytest
from support.workflow_runs import EDIT, EXPECTED_SAVES, NAMES, saved_images, small_run

from hierafash_cli import workflow as wf

FETCH_JSON = "(url) => fetch(url).then((r) => r.json())"
MISSING_TYPES = "(wf) => wf.nodes.map((n) => n.type).filter((t) => !(t in LiteGraph.registered_node_types))"
LOAD = "async (wf) => { await app.loadGraphData(wf); }"
# The canvas holds exactly the given workflow's nodes (ids and types).
SHOWS_GRAPH = """(wf) => { const key = (nodes) => nodes.map((n) => `${n.id}:${n.type}`).sort().join();
  return key(app.graph.nodes) === key(wf.nodes); }"""
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
# The frontend received a node's images (its output record; drawn nodes also hold them as imgs).
NODE_SHOWS_IMAGES = """(id) => !!(app.nodeOutputs?.[id]?.images?.length
  || app.graph.getNodeById(Number(id))?.imgs?.length)"""
LEGIBLE_ZOOM = 0.75  # below it node text is too small to read (the old templates opened at 0.31-0.5)
NOTE_IN_VIEW = """() => { const note = app.graph.nodes.find((n) => n.title === 'Start here');
  const r = app.canvas.canvas.getBoundingClientRect(), [x, y] = app.canvas.ds.convertOffsetToCanvas(note.pos);
  return x >= 0 && y >= 0 && x < r.width / 2 && y < r.height / 2; }"""


@pytest.fixture(scope="module")
def object_info(comfy, official_checkpoint, quality_model):
    return comfy.get("/object_info")  # after placing the model files: their loaders list them


DIALOG_COUNT = "() => document.querySelectorAll('.p-dialog').length"
NEXT_FRAME = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


# What the frontend reports about a loaded workflow: its missing-nodes / missing-models dialogs (frontend 1.32), or
# the errors panel that the "View details" button opens (1.47). Opens that panel; returns the text once every
# word is in it, else null.
REPORTED = """(words) => {
  const body = document.body.innerText, panel = /Errors? detected/.test(body);
  const details = [...document.querySelectorAll('button, a, span')].find((e) => e.innerText === 'View details');
  if (details && !panel) details.click();
  const dialogs = [...document.querySelectorAll('.p-dialog')].map((d) => d.innerText);
  const start = body.search(/Errors? detected/), end = body.indexOf('For more help', start);
  const text = dialogs.join('\\n') + (panel ? '\\n' + body.slice(start, end > start ? end : undefined) : '');
  return words.every((w) => text.toLowerCase().includes(w)) ? text : null;
}"""


def edited_copy(workflow: dict) -> dict:
    """A user's edited copy of a template gets its own workflow id: frontend 1.47 keys open tabs by that id and,
    given a second graph under an open tab's id, may show the open tab instead of the new graph."""
    return {**workflow, "id": str(uuid.uuid4())}


def load(page, workflow: dict) -> None:
    """Load a workflow as the app does and wait until the canvas shows it."""
    page.evaluate(LOAD, workflow)
    page.wait_for_function(SHOWS_GRAPH, arg=workflow, timeout=30_000)


def reported_problems(page, *words: str, timeout: float = 30_000) -> str:
    """Wait until the frontend reports every word (case-insensitive) about the loaded workflow; returns its text."""
    handle = page.wait_for_function(REPORTED, arg=[w.lower() for w in words], timeout=timeout)
    return handle.json_value()


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


def same_widgets(actual: list[str], expected: list[str]) -> bool:
    """The same widgets in the same order; the control-after-generate widget's own name differs between
    frontends (1.47 names it after its value), so only its place is compared."""
    return len(actual) == len(expected) and all(
        a == e or e == "control_after_generate" for a, e in zip(actual, expected))


def declared(prompt: dict, object_info: dict) -> dict:
    """The prompt without _meta and without inputs the node does not declare (UI-only widgets)."""
    out = {}
    for node_id, node in prompt.items():
        names = {n for section in object_info[node["class_type"]]["input"].values() for n in section}
        out[node_id] = {"class_type": node["class_type"],
                        "inputs": {k: v for k, v in node["inputs"].items() if k in names}}
    return out


def queue_from_ui(page, comfy, timeout: float = 900) -> dict:
    """Queue the loaded graph as the Run button does and return its history entry once it has finished."""
    known = set(comfy.get("/history"))
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
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

    # No missing node types: every type is registered before loading. The official file (or the small model that
    # `make quality FULL=1` installs) is in place, so the frontend reports nothing: the artist presses Run.
    assert page.evaluate(MISSING_TYPES, workflow) == []
    load(page, workflow)
    page.evaluate(NEXT_FRAME)
    assert not [d for d in page.evaluate(DIALOGS) if "missing" in d.lower()]
    assert not [t for t in page.evaluate(TOASTS) if "invalid" in t.lower() or "missing" in t.lower()]
    # It opens where the text is legible, with the "Start here" note in view.
    assert page.evaluate("() => app.canvas.ds.scale") >= LEGIBLE_ZOOM
    assert page.evaluate(NOTE_IN_VIEW)

    # No invalid nodes: all registered from the backend, with exactly the widgets the saved values are for.
    state = page.evaluate(NODE_STATE)
    assert len(state) == len(workflow["nodes"])
    for node in state:
        assert node["registered"] and not node["has_errors"], node
        if node["type"] not in wf.VIRTUAL_NODES:
            assert node["backend"], node
            assert same_widgets(node["widgets"], expected_widgets(object_info[node["type"]])), node
    saved = {n["id"]: n for n in workflow["nodes"]}
    roundtrip = page.evaluate(GRAPH_TO_PROMPT)["workflow"]
    for node in roundtrip["nodes"]:  # loading changed no value and no link; widgets appended since the save
        before = saved[node["id"]].get("widgets_values") or []  # come after the saved values
        assert (node.get("widgets_values") or [])[:len(before)] == before, node["id"]
    assert roundtrip["links"] == workflow["links"]

    # Shrink sizes and steps through the widgets ("custom" in Size and steps). A detail of its own keeps ComfyUI
    # from reusing a scheduler result cached by an earlier prompt.
    unique = [f"HieraFashHierarchicalPromptScheduler.detail=browser test {name}"]
    small = wf.apply_overrides(workflow, object_info, small_run(workflow) + unique)
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
    entry = queue_from_ui(page, comfy)
    assert entry["status"]["status_str"] == "success", entry["status"]
    prompt = entry["prompt"][2]
    assert {title: len(images) for title, images in saved_images(entry, prompt).items()} == EXPECTED_SAVES[name]

    # The garment regions show in their node, before and apart from any sampler, with the legend below them.
    for node_id, node in prompt.items():
        if node["class_type"] == "HieraFashPreviewGarmentRegions":
            assert entry["outputs"][node_id]["images"]
            page.wait_for_function(NODE_SHOWS_IMAGES, arg=node_id, timeout=60_000)

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
    load(page, queued["workflow"])
    close_dialogs(page)
    assert queue_from_ui(page, comfy)["status"]["status_str"] == "success"
    page.wait_for_function(f"() => ({PREVIEWS})().every(([, text]) => !!text)", timeout=60_000)
    assert all(text.startswith("(cached)") for _, text in page.evaluate(PREVIEWS))


# The text a Preview Any node shows (1.32 renders it as markdown, 1.47 as plain text; both hold it as a value).
SHOWN_TEXT = """() => app.graph.nodes.filter((n) => n.type === 'PreviewAny').map((n) => [n.title,
  (n.widgets || []).map((w) => w.value).find((v) => typeof v === 'string' && v) ?? null])"""


def test_warnings_show_on_the_first_line_and_as_a_toast(app_page, comfy, object_info):
    """One ddim_uniform step (at t = 1) gives the concept stage no step and starts below the edit start: the stage
    preview in the scheduler and the edit plan in its Preview Any say so on their first line, and the frontend
    raises a toast for each."""
    page = app_page
    workflow = page.evaluate(FETCH_JSON, f"/api/workflow_templates/hierafashdiff/{EDIT}.json")
    one_step = wf.apply_overrides(workflow, object_info, small_run(workflow) + [
        "HieraFashSizeAndSteps.steps=1", "HieraFashHierarchicalPromptScheduler.detail=browser warning test"])
    load(page, edited_copy(one_step))
    close_dialogs(page)
    assert queue_from_ui(page, comfy)["status"]["status_str"] == "success"

    page.wait_for_function(f"() => ({PREVIEWS})().every(([, text]) => !!text)", timeout=60_000)
    ((_, preview),) = page.evaluate(PREVIEWS)
    stage_warning = preview.splitlines()[0].partition("WARNING: ")[2]
    assert stage_warning.startswith("stage 'concept' gets no sampler step"), preview  # 1 step: only the detail
    page.wait_for_function(f"() => ({SHOWN_TEXT})().every(([, text]) => !!text)", timeout=60_000)
    ((plan_title, plan),) = page.evaluate(SHOWN_TEXT)
    plan_warning = plan.strip().splitlines()[0].partition("WARNING: ")[2]
    assert plan.strip().startswith("WARNING: ") and "set the sampler's denoise to 1.0" in plan_warning, plan

    (scheduler,) = [n["title"] for n in one_step["nodes"] if n["type"] == "HieraFashHierarchicalPromptScheduler"]
    for title in (scheduler, plan_title):
        page.wait_for_function("(t) => [...document.querySelectorAll('.p-toast-message')]"
                               ".some((m) => m.innerText.includes(t))", arg=title, timeout=30_000)
    toasts = [" ".join(t.split()) for t in page.evaluate(TOASTS)]
    assert [t for t in toasts if scheduler in t and stage_warning[:60] in t], toasts
    assert [t for t in toasts if plan_title in t and plan_warning[:60] in t], toasts

    # Run again (a new detail, so the scheduler runs again): each node's new warning replaces its old toast.
    (scheduler_id,) = [n["id"] for n in one_step["nodes"] if n["type"] == "HieraFashHierarchicalPromptScheduler"]
    page.evaluate(SET_WIDGETS, [[scheduler_id, "detail", "browser warning test, again"]])
    assert queue_from_ui(page, comfy)["status"]["status_str"] == "success"
    page.wait_for_function(f"() => ({PREVIEWS})().every(([, text]) => text.includes('again'))", timeout=60_000)
    page.evaluate(NEXT_FRAME)
    toasts = page.evaluate(TOASTS)
    assert len([t for t in toasts if scheduler in t]) == 1 and len([t for t in toasts if plan_title in t]) == 1, toasts
    assert page.errors == []


def test_a_missing_model_is_named_with_its_folder_and_download(app_page):
    """The template's loader names the official file in properties.models: a frontend without that file lists it,
    with its folder, and offers to download it (here under another name, since this server has the file)."""
    page = app_page
    workflow = page.evaluate(FETCH_JSON, f"/api/workflow_templates/hierafashdiff/{NAMES[0]}.json")
    (loader,) = [n for n in workflow["nodes"] if n["type"] == "HieraFashLoadOfficialModel"]
    assert loader["properties"]["models"] == [{"name": wf.OFFICIAL_CKPT, "url": wf.OFFICIAL_CKPT_URL,
                                               "directory": "checkpoints"}]
    loader["widgets_values"][0] = loader["properties"]["models"][0]["name"] = "hfd_not_downloaded.ckpt"
    load(page, edited_copy(workflow))
    report = reported_problems(page, "hfd_not_downloaded.ckpt", "checkpoints")
    assert "download" in report.lower()
    close_dialogs(page)


def test_the_checks_catch_a_missing_node_type(app_page):
    """Negative control: a workflow using a node type nobody registered is caught by the same checks."""
    page = app_page
    workflow = page.evaluate(FETCH_JSON, f"/api/workflow_templates/hierafashdiff/{NAMES[0]}.json")
    workflow["nodes"][-1]["type"] = "HieraFashNotARealNode"
    assert page.evaluate(MISSING_TYPES, workflow) == ["HieraFashNotARealNode"]
    load(page, edited_copy(workflow))
    assert "missing node" in reported_problems(page, "HieraFashNotARealNode").lower()
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
