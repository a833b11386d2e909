"""Saved workflows keep loading as the pack grows: node schemas only ever append widgets, sockets and outputs
(CONTRIBUTING.md "Compatibility contract"), and a saved workflow's values still fit the schemas it meets.

* `schema_summary` is what saved workflows depend on in one node's /object_info entry (the committed
  snapshot, tests/data/widget_order.json, holds one per pack node; `summary_as_object_info` reads it back);
* `compatibility_problems` says how live schemas break a snapshot of earlier ones;
* `check_widgets` finds the values and links of a workflow that no longer fit.

Nothing here imports ComfyUI.
"""

from __future__ import annotations

from .workflow import (
    KIND_WORDS,
    MODEL_EXTENSIONS,
    UPLOAD_FLAGS,
    VIRTUAL_NODES,
    Widget,
    input_specs,
    link_table,
    node_label,
    sockets,
    walk_widget_values,
    widgets,
)


def schema_summary(info: dict) -> dict:
    """What saved workflows depend on: widget order, socket names, output order (see CONTRIBUTING.md)."""
    def widget_entry(w: Widget) -> list:
        flags = {k: True for k in ("control_after_generate", *UPLOAD_FLAGS) if w.options.get(k)}
        return [w.name, w.type, flags] if flags else [w.name, w.type]

    return {
        "widgets": [widget_entry(w) for w in widgets(info)],
        "sockets": [[name, typ if isinstance(typ, str) else "COMBO"] for name, typ in sockets(info)],
        "outputs": [[name, typ] for name, typ in zip(info.get("output_name", []), info.get("output", []))],
    }


def summary_as_object_info(summary: dict) -> dict:
    """An /object_info-shaped entry from a schema_summary (no defaults, no combo choices)."""
    required = {name: [typ, dict(rest[0]) if rest else {}] for name, typ, *rest in summary["widgets"]}
    required.update({name: [typ, {}] for name, typ in summary["sockets"]})
    return {"input": {"required": required}, "input_order": {"required": list(required)},
            "output": [typ for _, typ in summary["outputs"]], "output_name": [name for name, _ in summary["outputs"]]}


def check_widgets(workflow: dict, object_info: dict, only=None) -> list[str]:
    """Problems that would load this workflow wrongly: unknown node types, widget values of the wrong type or
    outside a combo's choices (a shifted position), links to slots that no longer exist.

    `object_info` may be a partial schema (e.g. a committed snapshot); `only` limits the check to node types
    for which it returns True. Model and input file names are not checked against choices.
    """
    problems = []
    links = link_table(workflow)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for node in workflow["nodes"]:
        if node["type"] in VIRTUAL_NODES or (only and not only(node["type"])):
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"{node_label(node)}: node type {node['type']} does not exist")
            continue
        values, slots, consumed = walk_widget_values(node, info)
        ws = widgets(info)
        extra = len(values) - consumed
        if extra > 0:
            problems.append(f"{node_label(node)}: {extra} more widget value(s) than the node has widgets "
                            f"({', '.join(w.name for w in ws)}): a widget was removed")
        for w in ws:
            if w.name not in slots:
                continue
            problem = _value_problem(w, values[slots[w.name]])
            if problem:
                problems.append(f"{node_label(node)}: widget {w.name!r}: {problem}")
        names = {n for n, *_ in input_specs(info)}
        outputs = info.get("output", [])
        for i in node.get("inputs") or []:
            if i.get("link") is not None and i["name"] not in names:
                problems.append(f"{node_label(node)}: linked input {i['name']!r} no longer exists")
        for origin_id, slot, typ in links.values():
            if origin_id != node["id"] or nodes.get(origin_id) is None:
                continue
            if slot >= len(outputs):
                problems.append(f"{node_label(node)}: a link leaves output {slot}, which no longer exists")
            elif typ not in (None, "*") and outputs[slot] not in (typ, "*"):
                problems.append(f"{node_label(node)}: output {slot} is now {outputs[slot]}, the link carries {typ}")
    return problems


def _value_problem(widget: Widget, value) -> str | None:
    if widget.type == "COMBO":
        if not isinstance(value, str) and not (widget.choices and value in widget.choices):
            return f"{value!r} is not a choice"
        if widget.upload or (isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)):
            return None  # file names depend on the installation
        if widget.choices and value not in widget.choices:
            return f"{value!r} is not one of its choices ({', '.join(map(str, widget.choices[:8]))}...)"
        return None
    expected = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}[widget.type]
    if isinstance(value, bool) and widget.type != "BOOLEAN" or not isinstance(value, expected):
        return f"{value!r} is not {KIND_WORDS[widget.type]}"
    return None


def compatibility_problems(snapshot: dict, live: dict) -> list[str]:
    """How the live schemas (node id -> schema_summary) break a snapshot of earlier ones; [] if they only grew."""
    problems = []
    for node_id, old in sorted(snapshot.items()):
        new = live.get(node_id)
        if new is None:
            problems.append(f"{node_id}: the node is gone; node ids are never removed or renamed "
                            "(mark it deprecated instead)")
            continue
        for kind, why in (("widgets", "saved widget values are positional"), ("outputs", "links use output indices")):
            before, now = old[kind], new[kind]
            if now[: len(before)] != before:
                problems.append(f"{node_id}: {kind} were {before}, now {now}: only append ({why})")
        gone = [s for s in old["sockets"] if s not in new["sockets"]]
        if gone:
            problems.append(f"{node_id}: link inputs {gone} are gone, renamed or retyped: saved links to them break")
    return problems
