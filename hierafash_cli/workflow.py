"""Saved (UI-format) ComfyUI workflows: read them against the live node schemas, change them, convert them.

ComfyUI's editor saves LiteGraph graphs (version 0.4: links as arrays; 1.0: links as objects) whose
`widgets_values` are positional: one entry per widget in the node's input order, plus UI-only entries
the frontend adds (the "fixed"/"randomize" control after a seed, the upload button of Load Image).
`POST /prompt` wants the API format instead; only the frontend's `graphToPrompt` converts, in
JavaScript. This module does the same in Python, driven by `/object_info`, so tests and
`hierafash run` can execute the shipped workflows without a browser:

* `to_api(workflow, object_info)` -> API prompt (virtual nodes dropped, Reroutes followed, bypassed
  nodes wired through, muted nodes dropped; subgraphs are not supported);
* `apply_overrides` / `map_models` change widget values in the UI workflow itself by node id, title or type;
* `missing_files` finds model (and input image) files the server does not have, with where they go and
  where to get them from the loader's `properties.models`.

Checking saved workflows and node schemas for compatibility is `workflow_compat`.

Nothing here imports ComfyUI.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from hierafash_core.weights import (  # noqa: F401  (OFFICIAL_*: where the CLI and tests read them)
    DEFAULT_STEM,
    OFFICIAL_CKPT,
    OFFICIAL_CKPT_PAGE,
    OFFICIAL_CKPT_URL,
    OFFICIAL_REPO,
    output_names,
)

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
UPLOAD_FLAGS = {"image_upload": "image", "video_upload": "video", "audio_upload": "audio"}
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "GroupNode"}
MUTED, BYPASSED = 2, 4
KIND_WORDS = {"INT": "an integer", "FLOAT": "a number", "STRING": "text", "BOOLEAN": "true or false"}
MODEL_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".onnx")

# The names `hierafash convert` gives the official weights.
CHECKPOINT_NAME, CONTROLNET_NAME = output_names(DEFAULT_STEM)
# The synthetic benchmark's small model (QUALITY.md): trained on this machine, so nothing to download.
QUALITY_CHECKPOINT, QUALITY_CONTROLNET = "hierafash_quality.safetensors", "hierafash_quality_pose_cn.safetensors"
MADE_HERE = {name: "`make quality FULL=1` (it trains the synthetic benchmark's small model and installs it for "
                   "`make run`; QUALITY.md)" for name in (QUALITY_CHECKPOINT, QUALITY_CONTROLNET)}


class WorkflowError(ValueError):
    """The workflow cannot be read, changed or converted as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Widget:
    name: str
    type: str  # INT, FLOAT, STRING, BOOLEAN or COMBO
    options: dict
    choices: tuple | None = None

    @property
    def control(self) -> bool:
        """The frontend adds a "control after generate" value right after this widget's value."""
        return bool(self.options.get("control_after_generate"))

    @property
    def upload(self) -> str | None:
        """The frontend adds an upload button (serialized as "image"/"video"/"audio") after this widget."""
        return next((kind for flag, kind in UPLOAD_FLAGS.items() if self.options.get(flag)), None)

    @property
    def default(self):
        if "default" in self.options:
            return self.options["default"]
        if self.choices:
            return self.choices[0]
        return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(self.type)


# --- schemas ---------------------------------------------------------------------------------------

def input_specs(info: dict):
    """(name, type, options, optional) for every declared input in the frontend's order."""
    order = info.get("input_order") or {sec: list(info.get("input", {}).get(sec, {})) for sec in ("required",
                                                                                              "optional")}
    for section in ("required", "optional"):
        declared = info.get("input", {}).get(section, {})
        for name in order.get(section, []):
            spec = declared[name]
            yield name, spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}), section


def widgets(info: dict) -> list[Widget]:
    """The node's widgets, in the order the frontend creates them (and saves their values)."""
    out = []
    for name, typ, opts, _ in input_specs(info):
        if opts.get("forceInput"):
            continue
        if isinstance(typ, list):
            out.append(Widget(name, "COMBO", opts, tuple(typ)))
        elif typ == "COMBO":
            out.append(Widget(name, "COMBO", opts, tuple(opts.get("options", ()))))
        elif typ in WIDGET_TYPES:
            out.append(Widget(name, typ, opts))
    return out


def sockets(info: dict) -> list[tuple[str, str]]:
    """(name, type) of the inputs that are only ever links."""
    names = {w.name for w in widgets(info)}
    return [(name, typ) for name, typ, _, _ in input_specs(info) if name not in names]


# --- reading a UI workflow -------------------------------------------------------------------------

def load(path: str | Path) -> dict:
    try:
        workflow = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"cannot read workflow {path}: {exc}") from None
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        if isinstance(workflow, dict) and all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            raise WorkflowError(f"{path} is an API-format prompt, not a saved workflow; queue it with POST /prompt")
        raise WorkflowError(f"{path} is not a ComfyUI workflow (no 'nodes' list)")
    return workflow


def node_label(node: dict) -> str:
    title = node.get("title")
    return f"node {node['id']} ({node['type']}{f' {title!r}' if title else ''})"


def _slots(node: dict, info: dict) -> tuple[list, dict[str, int]]:
    """The node's widgets_values as a list and each widget's index in it."""
    values, slots, _ = walk_widget_values(node, info)
    return values, slots


def walk_widget_values(node: dict, info: dict) -> tuple[list, dict[str, int], int]:
    """_slots, plus how many saved values the node's widgets account for."""
    values = node.get("widgets_values")
    if isinstance(values, dict):  # a few nodes save {name: value}
        return values, {w.name: w.name for w in widgets(info) if w.name in values}, len(values)
    values = list(values or [])
    slots, i = {}, 0
    for w in widgets(info):
        if i >= len(values):
            break  # widgets appended after the workflow was saved: their defaults apply
        slots[w.name] = i
        i += 1
        if w.control and i < len(values) and values[i] in CONTROL_VALUES:
            i += 1
        if w.upload and i < len(values) and values[i] == w.upload:
            i += 1
    return values, slots, i


def widget_values(node: dict, info: dict) -> dict:
    """{widget name: value} for the widgets the saved node has values for."""
    values, slots = _slots(node, info)
    return {name: values[index] for name, index in slots.items()}


def link_table(workflow: dict) -> dict[int, tuple[int, int, str]]:
    """{link id: (origin node id, origin slot, type)}, from either saved link format."""
    out = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):  # version 1.0
            out[link["id"]] = (link["origin_id"], link["origin_slot"], link.get("type"))
        else:  # version 0.4: [id, origin_id, origin_slot, target_id, target_slot, type]
            out[link[0]] = (link[1], link[2], link[5] if len(link) > 5 else None)
    return out


def _linked_inputs(node: dict) -> dict[str, int]:
    return {i["name"]: i["link"] for i in node.get("inputs") or [] if i.get("link") is not None}


def _check_supported(workflow: dict, object_info: dict) -> None:
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("this workflow contains subgraphs, which `hierafash run` does not convert yet; "
                            "unpack them in the editor (right click > Unpack Subgraph) and save again")
    missing = sorted({f"{n['type']} ({node_label(n)})" for n in workflow["nodes"]
                      if n["type"] not in object_info and n["type"] not in VIRTUAL_NODES
                      and n.get("mode", 0) not in (MUTED, BYPASSED)})
    if missing:
        raise WorkflowError("node types not installed in this ComfyUI: " + ", ".join(missing)
                            + ". Install the custom node packs that provide them.")


# --- UI -> API -------------------------------------------------------------------------------------

def to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt the frontend would queue for this workflow."""
    _check_supported(workflow, object_info)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = link_table(workflow)

    def source(link_id, seen=()):
        """The [node id, slot] (or ("value", v)) a link really comes from, or None."""
        if link_id not in links or link_id in seen:
            return None
        origin_id, slot, typ = links[link_id]
        origin = nodes.get(origin_id)
        if origin is None or origin.get("mode", 0) == MUTED:
            return None
        seen = (*seen, link_id)
        if origin["type"] == "Reroute":
            return source(next(iter(_linked_inputs(origin).values()), None), seen)
        if origin["type"] == "PrimitiveNode":
            return ("value", (origin.get("widgets_values") or [None])[0])
        if origin.get("mode", 0) == BYPASSED:  # pass the input of the same type straight through
            inputs = [i for i in origin.get("inputs") or [] if i.get("link") is not None]
            same_slot = [i for n, i in enumerate(origin.get("inputs") or []) if n == slot and i in inputs]
            matching = [i for i in same_slot + inputs if typ in (None, "*") or i.get("type") in (typ, "*")]
            return source(matching[0]["link"], seen) if matching else None
        return [str(origin_id), slot]

    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        info = object_info[node["type"]]
        values = widget_values(node, info)
        linked = _linked_inputs(node)
        widget_names = {w.name: w for w in widgets(info)}
        inputs = {}
        for name, _, _, _ in input_specs(info):
            if name in linked:
                src = source(linked[name])
                if isinstance(src, tuple):
                    inputs[name] = src[1]
                    continue
                if src is not None:
                    inputs[name] = src
                    continue
            if name in values:
                inputs[name] = values[name]
            elif name in widget_names and name not in linked:
                inputs[name] = widget_names[name].default
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": title(node, object_info)}}
    return prompt


# --- changing widget values ------------------------------------------------------------------------

def title(node: dict, object_info: dict) -> str:
    """The title the editor shows: the node's own, else its type's display name."""
    return node.get("title") or (object_info.get(node["type"]) or {}).get("display_name") or node["type"]


def find_nodes(workflow: dict, object_info: dict, selector: str) -> list[dict]:
    """Nodes whose id, title or type is `selector` (the first kind that matches wins)."""
    nodes = [n for n in workflow["nodes"] if n["type"] not in VIRTUAL_NODES]
    for key in (lambda n: str(n["id"]), lambda n: title(n, object_info), lambda n: n["type"]):
        found = [n for n in nodes if key(n) == selector]
        if found:
            return found
    known = ", ".join(f"{n['id']}: {title(n, object_info)!r} ({n['type']})" for n in nodes)
    raise WorkflowError(f"no node has the id, title or type {selector!r}; the nodes are {known}")


def coerce(widget: Widget, text):
    """A --set value as the widget's type."""
    if not isinstance(text, str):
        return text
    try:
        if widget.type == "INT":
            return int(text)
        if widget.type == "FLOAT":
            return float(text)
    except ValueError:
        raise WorkflowError(f"{widget.name} takes {KIND_WORDS[widget.type]}, not {text!r}") from None
    if widget.type == "BOOLEAN":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise WorkflowError(f"{widget.name} takes true or false, not {text!r}")
    return text


def set_widget(workflow: dict, node: dict, info: dict, name: str, value) -> None:
    """Set one widget value in place, filling in defaults for widgets the saved node does not have yet."""
    by_name = {w.name: w for w in widgets(info)}
    if name not in by_name:
        raise WorkflowError(f"{node_label(node)} has no widget {name!r}; its widgets: {', '.join(by_name) or 'none'}")
    link = _linked_inputs(node).get(name)
    if link is not None:
        origin = link_table(workflow).get(link, (None,))[0]
        raise WorkflowError(f"{node_label(node)}: {name!r} is connected to node {origin}; set that node instead")
    widget = by_name[name]
    values, slots = _slots(node, info)
    if isinstance(values, dict):
        values[name] = coerce(widget, value)
        return
    if name not in slots:  # complete the saved values with the defaults of appended widgets
        for w in widgets(info)[len(slots):]:
            slots[w.name] = len(values)
            values.append(w.default)
            if w.control:
                values.append("fixed")
            if w.upload:
                values.append(w.upload)
    values[slots[name]] = coerce(widget, value)
    node["widgets_values"] = values


def parse_assignment(text: str) -> tuple[str, str, str]:
    """'<node id, title or type>.<input>=<value>' -> (selector, input, value)."""
    target, sep, value = text.partition("=")
    selector, dot, name = target.rpartition(".")
    if not sep or not dot or not selector or not name:
        raise WorkflowError(f"--set {text!r}: write NODE.INPUT=VALUE, where NODE is a node id, title or type")
    return selector.strip(), name.strip(), value


def apply_overrides(workflow: dict, object_info: dict, assignments: list[str]) -> dict:
    """A copy of the workflow with every 'NODE.INPUT=VALUE' applied (to each node the selector matches)."""
    workflow = copy.deepcopy(workflow)
    _check_supported(workflow, object_info)
    for text in assignments:
        selector, name, value = parse_assignment(text)
        for node in find_nodes(workflow, object_info, selector):
            set_widget(workflow, node, object_info[node["type"]], name, value)
    return workflow


def map_models(workflow: dict, object_info: dict, mapping: dict[str, str]) -> dict:
    """A copy with every combo widget whose value is a key of `mapping` set to the mapped value."""
    workflow = copy.deepcopy(workflow)
    _check_supported(workflow, object_info)
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        info = object_info[node["type"]]
        values = widget_values(node, info)
        for w in widgets(info):
            if w.type == "COMBO" and values.get(w.name) in mapping:
                set_widget(workflow, node, info, w.name, mapping[values[w.name]])
    return workflow


# --- missing files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MissingFile:
    node_id: str
    node: str  # label of the node
    input: str
    name: str
    directory: str | None  # model folder (checkpoints, controlnet, ...) or "input"
    url: str | None

    def describe(self, folders: dict[str, list[str]] | None = None) -> str:
        if self.directory == "input":
            where = (folders or {}).get("input", ["ComfyUI's input folder"])[0]
            return (f"input file {self.name!r} ({self.node}, input {self.input}) is not in {where}: put it there, or "
                    f"pass a path: --set \"{self.node_id}.{self.input}=/path/to/{self.name}\"")
        lines = [f"model file {self.name!r} is missing ({self.node}, input {self.input})"]
        if self.directory:
            paths = (folders or {}).get(self.directory)
            lines.append(f"  put it in: {paths[0] if paths else f'models/{self.directory}'}"
                         f"{'' if paths else ' (of your ComfyUI)'}")
        if self.url:
            source = self.url.split("?")[0].rstrip("/").split("/")[-1]
            lines.append(f"  get it from: {self.url}")
            if source.endswith((".ckpt", ".pt", ".pth")) and not self.name.endswith((".ckpt", ".pt", ".pth")):
                paths = (folders or {}).get(self.directory or "")
                models_dir = f" --models-dir {Path(paths[0]).parent}" if paths else ""
                lines.append(f"  that is the released {source}; turn it into {self.name} with "
                             f"`hierafash convert {source}{models_dir}` (it writes both HieraFashDiff files)")
        elif self.name in MADE_HERE:
            lines.append(f"  nothing to download: it is made on this machine by {MADE_HERE[self.name]}")
        elif not self.directory:
            lines.append("  the workflow does not say where to get it (no properties.models entry on the node)")
        return "\n".join(lines)


def missing_files(workflow: dict, object_info: dict) -> list[MissingFile]:
    """Model files and input images that the workflow names but the server does not list."""
    _check_supported(workflow, object_info)
    entries = {}
    for node in workflow["nodes"]:
        for model in (node.get("properties") or {}).get("models") or []:
            if isinstance(model, dict) and model.get("name"):
                entries.setdefault(model["name"], model)
    for model in workflow.get("models") or []:
        if isinstance(model, dict) and model.get("name"):
            entries.setdefault(model["name"], model)
    missing = []
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        info = object_info[node["type"]]
        linked = _linked_inputs(node)
        values = widget_values(node, info)
        for w in widgets(info):
            value = values.get(w.name)
            if w.type != "COMBO" or w.name in linked or not isinstance(value, str) or value in (w.choices or ()):
                continue
            entry = entries.get(value) or {}
            where = ("input", None) if w.upload else (entry.get("directory"), entry.get("url"))
            if w.upload or entry or value.lower().endswith(MODEL_EXTENSIONS):
                missing.append(MissingFile(str(node["id"]), node_label(node), w.name, value, *where))
    return missing


PACK_MODULE = "custom_nodes.hierafashdiff"


def pack_nodes(object_info: dict) -> dict:
    """The /object_info entries of this pack's nodes."""
    return {name: info for name, info in object_info.items() if info.get("python_module") == PACK_MODULE}
