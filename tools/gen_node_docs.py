"""Generate the node help pages from the live node schemas, so they cannot drift from the nodes.

    .venv/bin/python tools/gen_node_docs.py

Writes web/docs/<NodeId>.md (the ComfyUI frontend shows it in the node's help panel) for every node of this
pack, and docs/nodes.md (all nodes, for the README). Inputs and outputs, their types, defaults, choices and
descriptions come from /object_info (the nodes' own tooltips); the short usage notes below are the only
hand-written part. Re-run it after changing a node's inputs, outputs or tooltips.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from live import object_info as live_object_info  # noqa: E402

from hierafash_cli.workflow import pack_nodes  # noqa: E402
from hierafash_core.vocab import attribute_kinds  # noqa: E402

WEB_DOCS = ROOT / "web" / "docs"
NODES_MD = ROOT / "docs" / "nodes.md"
WORKFLOWS = ROOT / "workflows"
MAX_CHOICES = 12


def attribute_list() -> str:
    return "\n".join(f"  - **{k.label}** ({k.id}; edits the {k.body_part.replace('_', ' ')}): {', '.join(k.values)}"
                     for k in attribute_kinds())


NOTES = {
    "HieraFashConceptIdeation": """\
- The concept conditions only the **ideation stage**: the noisiest steps (DDPM t ≥ 900 by default, the first
  tenth of the trajectory). Attributes come after it, one sub-stage each.
- Pick values from the lists, type extra items in *custom_concept* (comma separated), or both. Leave every
  list at *(none)* to type the whole concept freely.
- The *category* completes clothing-length values ("Long" → "Long Dress") and tells Pose Mask Builder which
  garment the regions are for when the design is connected to it.
- Next: chain **HieraFash Attribute Iteration** nodes after it.""",
    "HieraFashAttributeIteration": f"""\
- One node per attribute, chained after Concept Ideation: each adds a sub-stage whose prompt is the previous
  prompt plus this attribute (P_C + A1, P_C + A1 + A2, …). The paper's order is A1…A5 below.
- The *value* must belong to the chosen *attribute*:

{attribute_list()}

- *custom_text* replaces the value but keeps the attribute's body part; the attribute *custom* adds free text
  that has no body part (an edit can only change it through Pose Mask Builder's *external_mask*).
- To edit a design, describe the garment as it should be and name the attributes to change in
  **HieraFash Attribute Edit**'s *edit_attributes*. A design can fork: two chains can share the first nodes.""",
    "HieraFashHierarchicalPromptScheduler": """\
- Connect the model you sample with and set *steps* and *scheduler* to your sampler's. The shipped workflows
  feed **HieraFash Size and Steps** into both, so they cannot disagree.
- The output *positive* is ordinary conditioning with one timestep range per stage: use it with any stock
  sampler (KSampler, KSamplerAdvanced, SamplerCustomAdvanced) and a plain negative prompt beside it.
- After a run the node shows its **stage preview**: which sampler steps fall in which stage. A stage that gets
  no step is a warning on the first line (the box is outlined and a toast pops up): use more steps, or move the
  *boundaries*. The same text is the *preview* output.
- *boundaries* are DDPM timesteps (999 = pure noise): the paper's 900, 800, 710, 630, 560, 500.
- *suffix* is added to every stage (the official demo adds quality tags and "white background"); *detail*
  only to the final stage.""",
    "HieraFashPoseMaskBuilder": """\
- **For a draft**: pick a *preset* pose and the canvas size; connect *pose_image* to HieraFash Apply Pose
  ControlNet.
- **For an edit**: connect the image being edited to *image* (the canvas then follows the image) and the
  design to *design*; connect *body_masks* to HieraFash Attribute Edit. For a real photo, connect the
  POSE_KEYPOINT of a pose estimator (OpenPose or DWPose from comfyui_controlnet_aux) to *pose_keypoint*;
  normalized and pixel coordinates are both read (*coordinates* = auto).
- The node previews the regions over the image; the *report* output lists every estimated keypoint or
  fallback. Region sizes follow the body (in shoulder widths), not pixels: *grow* and *feather* too.""",
    "HieraFashApplyPoseControlNet": """\
- Applies the HieraFashDiff pose ControlNet to positive and negative alike (one shared ControlNet, so both stay
  in one UNet batch). Use the ControlNet converted from the official checkpoint
  (`hierafashdiff_pose_controlnet.safetensors`) with **Load ControlNet Model**.
- *band*: *all steps* matches the official code; *attribute stages* starts the pose after the concept stage
  (connect the scheduler's *schedule*); *custom percent* uses *start_percent* / *end_percent*.""",
    "HieraFashAttributeEdit": """\
- Edits attributes of an existing image **in one sampling pass**: connect its *model* and *latent* to a stock
  sampler at **denoise 1.0**, with the scheduler's positive (through the pose ControlNet) and a negative.
  Each edited attribute's region opens in its own sub-stage; outside the regions the latent stays the source.
- *edit_attributes*: `all`, attribute labels (`collar, hem`) or positions (`4, 5`). The design's other
  attributes only describe the garment.
- The image's width and height must be multiples of 8, and *body_masks* must come from Pose Mask Builder
  with this image connected.
- Steps before the edit starts reuse the noised source and skip the UNet; the *plan* output says from which
  step each attribute changes. Any warning (an attribute that gets no step, a denoise below 1.0) is on its first
  line, and a Preview Any showing the plan raises a toast.
- Finish with **HieraFash Preserve Source** for pixel-exact preservation outside the regions.""",
    "HieraFashPreserveSource": """\
- Connect the decoded edit to *image*, the original image to *source* and Attribute Edit's *edit_mask* to
  *mask*. Outside the mask the result is the source bit for bit (the VAE round trip alone would change it
  slightly); a feathered mask blends the seam.""",
    "HieraFashExampleFigure": """\
- A design to edit when you have none: a dressed figure the pack draws itself (no licence strings attached),
  with its exact pose. Connect *image* to Pose Mask Builder's *image* and to Attribute Edit, and
  *pose_keypoint* to Pose Mask Builder's *pose_keypoint*.
- *figure* 0 is the templates' knee-length dress; other numbers draw other garments and poses.
- For your own design use **Load Image** instead, with a pose estimator (HieraFash Pose From Image).""",
    "HieraFashPreviewGarmentRegions": """\
- Connect Pose Mask Builder's *body_masks* (and the image). Each region is tinted in its colour and a legend
  below the picture names the colours; regions that coincide (sleeve length and sleeve type) share an entry.
- It is an output node: queue a graph that ends here to check the masks without sampling anything.""",
    "HieraFashSizeAndSteps": """\
- One switch for the whole workflow: *quick try* (256 x 352, 20 steps: minutes on a CPU) or *paper*
  (512 x 704, 100 steps, the official demo's settings: use a GPU), or *custom* with the values below.
- Connect *width* and *height* to every size input (the empty latent, Pose Mask Builder) and *steps* to the
  sampler and the prompt scheduler, so they always agree.""",
    "HieraFashConvertCheckpoint": """\
- Put the released `hfd_100epochs.ckpt` (Hugging Face vmip-shu/HieraFashDiff) in `models/checkpoints`, pick it
  and queue; then press **R** to refresh the model lists. The command line does the same:
  `hierafash convert hfd_100epochs.ckpt`.
- Load the results with **Load Checkpoint** followed by **ModelSamplingDiscrete (eps)**, and **Load ControlNet
  Model**.""",
}


# The paper's symbols, for readers of the paper: the nodes' own texts speak a designer's words instead.
IN_THE_PAPER = {
    "HieraFashConceptIdeation": "The high-level concept P_C. Alone, it conditions the ideation stage of the "
                                "hierarchical schedule C(t), DDPM timesteps t ≥ 900 by default.",
    "HieraFashAttributeIteration": "One apparel attribute A_i (A1 clothing length … A5 hem). Its iteration "
                                   "sub-stage of C(t) is conditioned on P_C + A1 + … + A_i.",
    "HieraFashHierarchicalPromptScheduler": "Compiles C(t): P_C for t ≥ 900, P_C + A1 for 800 ≤ t < 900, and so "
                                            "on down the boundaries 900, 800, 710, 630, 560, 500, then the full "
                                            "prompt (the official get_t_conditioning), as timestep-ranged "
                                            "conditioning.",
    "HieraFashAttributeEdit": "M(t), the edit mask over the trajectory: attribute A_i's region opens at its official "
                              f"start, t = {', '.join(str(k.edit_start) for k in attribute_kinds())} for A1 … A5, "
                              "and stays open; before the first start the latent is the noised source and those "
                              "steps skip the UNet.",
    "HieraFashPreserveSource": "Exact preservation: outside the union of the edited regions of M(t) the output is "
                               "the source, so the VAE round trip leaves no trace there.",
    "HieraFashPoseMaskBuilder": "The regions of the attributes: clothing length (A1), sleeves (A2, A3), collar (A4), "
                                "hem (A5).",
    "HieraFashApplyPoseControlNet": "The pose condition of the paper's pose ControlNet; the official code applies it "
                                    "at every timestep.",
    "HieraFashLoadOfficialModel": "The model predicts the noise ε (ε-prediction), as the paper trained it; the "
                                  "loader sets that, since ComfyUI may guess otherwise for an SD 2.x checkpoint.",
    "HieraFashConvertCheckpoint": "The model predicts the noise ε (epsilon-prediction), hence ModelSamplingDiscrete "
                                  "set to eps.",
}


def one_line(text) -> str:
    return " ".join(str(text).split())


def type_text(typ, opts: dict) -> str:
    if isinstance(typ, list) or typ == "COMBO":
        choices = typ if isinstance(typ, list) else opts.get("options", [])
        shown = ", ".join(f"`{c}`" for c in choices[:MAX_CHOICES])
        more = f", … ({len(choices) - MAX_CHOICES} more)" if len(choices) > MAX_CHOICES else ""
        return f"choice: {shown}{more}" if choices else "choice"
    if typ in ("INT", "FLOAT"):
        bounds = [f"{k} {opts[k]}" for k in ("min", "max") if k in opts and abs(opts[k]) < 1e15]
        return f"{typ.lower()}{' (' + ', '.join(bounds) + ')' if bounds else ''}"
    if typ in ("STRING", "BOOLEAN"):
        return typ.lower()
    return f"`{typ}`"


def default_text(typ, opts: dict) -> str:
    if "default" not in opts:
        return ""
    value = opts["default"]
    return f"`{value}`" if value != "" else "(empty)"


# Lists, not tables: ComfyUI's help panel is narrow and cuts wide tables off.
def inputs_list(info: dict) -> str:
    rows = []
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            typ, *rest = info["input"][section][name]
            opts = rest[0] if rest and isinstance(rest[0], dict) else {}
            facts = [type_text(typ, opts)] + (["optional"] if section == "optional" else [])
            default = default_text(typ, opts)
            facts += [f"default {default}"] if default else []
            rows.append(f"- **{name}** ({', '.join(facts)}): {one_line(opts.get('tooltip', ''))}")
    return "\n".join(rows)


def outputs_list(info: dict) -> str:
    tooltips = info.get("output_tooltips") or [None] * len(info.get("output", []))
    rows = [f"- **{name}** (`{typ}`): {one_line(tip or '')}"
            for name, typ, tip in zip(info.get("output_name", []), info.get("output", []), tooltips)]
    return "\n".join(rows) if rows else "None: an output node."


def used_in(node_id: str) -> list[str]:
    names = []
    for path in sorted(WORKFLOWS.glob("*.json")):
        if any(n.get("type") == node_id for n in json.loads(path.read_text()).get("nodes", [])):
            names.append(path.stem)
    return names


def page(node_id: str, info: dict, level: int = 1) -> str:
    h = "#" * level
    meta = f"Node id `{node_id}` · category *{info.get('category', '')}*"
    if info.get("search_aliases"):
        meta += " · search: " + ", ".join(info["search_aliases"])
    if info.get("deprecated"):
        meta += " · **deprecated**"
    parts = [f"{h} {info.get('display_name') or node_id}", "", info.get("description", "").strip(), "", meta, "",
             f"{h}# Inputs", "", inputs_list(info), "", f"{h}# Outputs", "", outputs_list(info)]
    if node_id in NOTES:
        parts += ["", f"{h}# How to use it", "", NOTES[node_id]]
    if node_id in IN_THE_PAPER:
        parts += ["", f"{h}# In the paper", "", IN_THE_PAPER[node_id]]
    workflows = used_in(node_id)
    if workflows:
        parts += ["", f"{h}# In the shipped workflows", "",
                  ", ".join(f"`workflows/{w}.json`" for w in workflows)
                  + " (Workflow > Browse Templates > hierafashdiff)."]
    return "\n".join(parts).rstrip() + "\n"


def write(nodes: dict) -> list[Path]:
    WEB_DOCS.mkdir(parents=True, exist_ok=True)
    written = []
    for node_id, info in nodes.items():
        path = WEB_DOCS / f"{node_id}.md"
        path.write_text(page(node_id, info))
        written.append(path)
    toc = "\n".join(f"- [{info.get('display_name') or nid}](#{nid.lower()})" for nid, info in nodes.items())
    sections = "\n".join(f'<a id="{nid.lower()}"></a>\n\n' + page(nid, info, level=2) for nid, info in nodes.items())
    NODES_MD.parent.mkdir(parents=True, exist_ok=True)
    NODES_MD.write_text(
        "# Nodes\n\nEvery node of the pack: what it is for, its inputs and outputs. Generated from the node schemas "
        "by `tools/gen_node_docs.py`; the same pages appear in ComfyUI's node help panel (`web/docs/`).\n\n"
        f"{toc}\n\n{sections}")
    written.append(NODES_MD)
    return written


def main() -> int:
    order = list(NOTES)  # the order an artist meets the nodes in; others follow by name
    nodes = dict(sorted(pack_nodes(live_object_info()).items(),
                        key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))
    stale = sorted(set(p.stem for p in WEB_DOCS.glob("*.md")) - set(nodes))
    for path in write(nodes):
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"note: web/docs has pages for nodes that are not registered: {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
