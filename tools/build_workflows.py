"""Build the shipped workflows in the real ComfyUI frontend, save them as the editor saves them, draw thumbnails.

    .venv-floor/bin/python tools/build_workflows.py [--only NAME] [--no-thumbnails | --thumbnails-only]

Build with the floor runtime: a file saved by its older frontend loads in both supported frontends.

Each graph below is a small spec: nodes (type, title, widget values by name, column), links by slot name and
groups. The script starts the pinned ComfyUI with this pack (no models needed), opens the frontend in Debian's
Chromium, creates the nodes through LiteGraph, sets widget values by name, connects slots by name, and writes
`app.graphToPrompt().workflow` (UI format, version 0.4) to workflows/<name>.json, saved to open at a legible
zoom. The JPEG thumbnail beside it shows what the template is about, drawn by the pack's own code: its example
figure, the pose map and the garment regions with their legend.

Widget positions are therefore whatever the running frontend and node schemas make them; re-run this only
for a deliberate change of a shipped workflow (saved workflows must keep loading: see CONTRIBUTING.md).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

from frontend import apply_settings, launch, open_app  # noqa: E402
from live import live_server  # noqa: E402

from hierafash_cli.workflow import (  # noqa: E402
    CHECKPOINT_NAME,
    CONTROLNET_NAME,
    OFFICIAL_CKPT,
    OFFICIAL_CKPT_PAGE,
    OFFICIAL_CKPT_URL,
    QUALITY_CHECKPOINT,
    QUALITY_CONTROLNET,
)
from hierafash_core.pose import CONTROLNET_AUX_STYLE  # noqa: E402
from hierafash_core.synthetic import DEFAULT_SIZE  # noqa: E402

WORKFLOWS = ROOT / "workflows"
THUMB_MAX_BYTES = 180_000  # the template browser asks for small thumbnails; keep a margin under 200 KB
OPENING_ZOOM = 0.85  # tests/browser checks that templates open at least this legible

NOTE_COLOR = {"color": "#432", "bgcolor": "#653"}
OFFICIAL_SUFFIX = "best quality, extremely detailed, masterpiece, 8k, canon, film still, white background"
NEGATIVE = ("lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, cropped, worst quality, "
            "low quality, blurry, watermark, text, nsfw, headscarf, hat")
SEED = 11  # the official demo's seed
QUICK_PRESET = "quick try (256 x 352, 20 steps)"

OFFICIAL_MODEL = {"name": OFFICIAL_CKPT, "url": OFFICIAL_CKPT_URL, "directory": "checkpoints"}

MODELS_TEXT = f"""**Models.** One file: the official `{OFFICIAL_CKPT}` ([vmip-shu/HieraFashDiff]({OFFICIAL_CKPT_PAGE})),
in `models/checkpoints/`. The *Download* button of the missing-models list fetches exactly that file. On its first
run, *Load HieraFashDiff* converts it once, without running code from it, into
`checkpoints/{CHECKPOINT_NAME}` and `controlnet/{CONTROLNET_NAME}` (a progress bar shows it), and loads those
from then on. Its model already predicts noise (eps), as the paper's does."""


def note(title: str, text: str, col: int = 0, band: int = 0, size=(440, 640)) -> dict:
    return {"key": "note", "type": "MarkdownNote", "title": title, "col": col, "band": band, "size": list(size),
            "widgets": {"text": text}, "extra": NOTE_COLOR}


def model_nodes(col=0) -> list[dict]:
    return [
        {"key": "settings", "type": "HieraFashSizeAndSteps", "title": "Size and steps: start with 'quick try'",
         "col": col, "widgets": {"preset": QUICK_PRESET}, "width": 330},
        {"key": "model", "type": "HieraFashLoadOfficialModel", "title": "Load HieraFashDiff (hfd_100epochs.ckpt)",
         "col": col, "widgets": {"ckpt_name": OFFICIAL_CKPT}, "properties": {"models": [OFFICIAL_MODEL]},
         "width": 330},
        {"key": "negative", "type": "CLIPTextEncode", "title": "What the picture should not show", "col": col,
         "widgets": {"text": NEGATIVE}, "width": 330},
    ]


def model_links() -> list[tuple]:
    return [("model", "CLIP", "negative", "clip")]


ATTRIBUTE_TITLES = {"clothing length": "Clothing length", "sleeve length": "Sleeve length",
                    "sleeve type": "Sleeve type", "collar": "Collar", "hem": "Hem"}


def design_nodes(prefix: str, values: list[tuple[str, str]], col: int, band: int = 0, concept=True) -> list[dict]:
    nodes = []
    if concept:
        nodes.append({"key": "concept", "type": "HieraFashConceptIdeation",
                      "title": "Concept: category, style, occasion, effect, feeling", "col": col, "band": band,
                      "widgets": {"category": "Dress", "style": "Elegant", "occasion": "Party",
                                  "effect": "Elongate Neck", "feeling": "Sense of Agility and Elegance",
                                  "custom_concept": ""}, "width": 330})
    for n, attribute, value in values:
        title = ATTRIBUTE_TITLES[attribute] + (" (the edit's new value)" if prefix == "e" else "")
        nodes.append({"key": f"{prefix}{n}", "type": "HieraFashAttributeIteration", "title": title, "col": col,
                      "band": band, "widgets": {"attribute": attribute, "value": value, "custom_text": ""},
                      "width": 330})
    return nodes


def chain(keys: list[str]) -> list[tuple]:
    return [(a, "design", b, "design") for a, b in zip(keys, keys[1:])]


def scheduler(key: str, col: int, band: int = 0, title="Prompt schedule: the concept first, then each attribute"):
    return {"key": key, "type": "HieraFashHierarchicalPromptScheduler", "title": title, "col": col, "band": band,
            "widgets": {"scheduler": "ddim_uniform", "detail": "", "suffix": OFFICIAL_SUFFIX}, "width": 380}


def sampler(key: str, col: int, band: int = 0, title="KSampler") -> dict:
    return {"key": key, "type": "KSampler", "title": title, "col": col, "band": band,
            "widgets": {"seed": SEED, "control_after_generate": "fixed", "cfg": 9.0,
                        "sampler_name": "ddim", "scheduler": "ddim_uniform", "denoise": 1.0}}


DRAFT_ATTRIBUTES = [(1, "clothing length", "Long"), (2, "sleeve length", "Short Sleeve"),
                    (3, "sleeve type", "Regular Sleeve"), (4, "collar", "V-Neck"), (5, "hem", "Draped Hem")]


def pose_node(key: str, col: int, band: int = 0) -> dict:
    return {"key": key, "type": "HieraFashPoseMaskBuilder", "title": "Pose and garment regions", "col": col,
            "band": band, "widgets": {"preset": "front_standing", "category": "Dress"}}


def regions_preview(key: str, col: int, band: int = 0) -> dict:
    return {"key": key, "type": "HieraFashPreviewGarmentRegions", "title": "Garment regions (check before running)",
            "col": col, "band": band, "size": [300, 480]}


def draft_part(col: int, design_key="a5", band=0) -> tuple[list[dict], list[tuple]]:
    """Scheduler, pose preset, pose ControlNet, sampler and save for a draft from the design at design_key."""
    nodes = [
        scheduler("sched", col, band),
        pose_node("pose", col, band),
        # The pose holds at all steps, which needs no schedule: one wire less (the node asks for it otherwise).
        {"key": "apply", "type": "HieraFashApplyPoseControlNet", "title": "Hold the pose (pose ControlNet)",
         "col": col + 1, "band": band, "widgets": {"strength": 1.0, "band": "all steps (official code)"}},
        {"key": "latent", "type": "EmptyLatentImage", "title": "Draft canvas (size from Size and steps)",
         "col": col + 1, "band": band, "widgets": {"batch_size": 1}},
        sampler("sampler", col + 1, band, "Draw the draft"),
        {"key": "decode", "type": "VAEDecode", "title": "Decode the draft", "col": col + 2, "band": band},
        {"key": "save", "type": "SaveImage", "title": "Save draft", "col": col + 2, "band": band,
         "widgets": {"filename_prefix": "hierafashdiff/draft"}, "size": [360, 460]},
    ]
    links = [
        (design_key, "design", "sched", "design"), ("model", "CLIP", "sched", "clip"),
        ("model", "MODEL", "sched", "model"), ("settings", "steps", "sched", "steps"),
        (design_key, "design", "pose", "design"),
        ("settings", "width", "pose", "width"), ("settings", "height", "pose", "height"),
        ("sched", "positive", "apply", "positive"), ("negative", "CONDITIONING", "apply", "negative"),
        ("model", "CONTROL_NET", "apply", "control_net"), ("pose", "pose_image", "apply", "pose_image"),
        ("settings", "width", "latent", "width"), ("settings", "height", "latent", "height"),
        ("model", "MODEL", "sampler", "model"), ("apply", "positive", "sampler", "positive"),
        ("apply", "negative", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        ("settings", "steps", "sampler", "steps"),
        ("sampler", "LATENT", "decode", "samples"), ("model", "VAE", "decode", "vae"),
        ("decode", "IMAGE", "save", "images"),
    ]
    return nodes, links


def edit_part(col: int, design_key: str, image: tuple[str, str], edit_attributes: str, band=0, p="x",
              pose: str | None = None):
    """Scheduler, one-pass Attribute Edit, sampler, exact preservation and save; the regions come from `pose`
    (a Pose Mask Builder key) or from a builder of their own fed by the image and its keypoints."""
    nodes = [
        scheduler(f"{p}sched", col, band, "Prompt schedule of the edited design"),
        {"key": f"{p}edit", "type": "HieraFashAttributeEdit", "title": f"Edit only: {edit_attributes}",
         "col": col + 1, "band": band, "widgets": {"edit_attributes": edit_attributes}, "width": 320},
        {"key": f"{p}apply", "type": "HieraFashApplyPoseControlNet", "title": "Hold the pose (pose ControlNet)",
         "col": col + 1, "band": band, "widgets": {"strength": 1.0, "band": "all steps (official code)"}},
        {"key": f"{p}plan", "type": "PreviewAny", "title": "Edit plan: which steps change what", "col": col + 1,
         "band": band, "width": 320},
        sampler(f"{p}sampler", col + 2, band, "Draw the edit (denoise 1.0)"),
        {"key": f"{p}decode", "type": "VAEDecode", "title": "Decode the edit", "col": col + 2, "band": band},
        {"key": f"{p}keep", "type": "HieraFashPreserveSource", "title": "Keep everything else exactly",
         "col": col + 3, "band": band},
        {"key": f"{p}save", "type": "SaveImage", "title": "Save edit", "col": col + 3, "band": band,
         "widgets": {"filename_prefix": "hierafashdiff/edit"}, "size": [360, 460]},
    ]
    links = []
    if pose is None:
        pose = f"{p}pose"
        nodes += [pose_node(pose, col, band), regions_preview(f"{p}regions", col, band)]
        links += [(*image, pose, "image"), (design_key, "design", pose, "design"),
                  (pose, "body_masks", f"{p}regions", "body_masks"), (*image, f"{p}regions", "image")]
    links += [
        (design_key, "design", f"{p}sched", "design"), ("model", "CLIP", f"{p}sched", "clip"),
        ("model", "MODEL", f"{p}sched", "model"), ("settings", "steps", f"{p}sched", "steps"),
        ("model", "MODEL", f"{p}edit", "model"), ("model", "VAE", f"{p}edit", "vae"), (*image, f"{p}edit", "image"),
        (f"{p}sched", "schedule", f"{p}edit", "schedule"), (pose, "body_masks", f"{p}edit", "body_masks"),
        (f"{p}sched", "positive", f"{p}apply", "positive"), ("negative", "CONDITIONING", f"{p}apply", "negative"),
        ("model", "CONTROL_NET", f"{p}apply", "control_net"), (pose, "pose_image", f"{p}apply", "pose_image"),
        (f"{p}edit", "plan", f"{p}plan", "source"),
        (f"{p}edit", "model", f"{p}sampler", "model"), (f"{p}apply", "positive", f"{p}sampler", "positive"),
        (f"{p}apply", "negative", f"{p}sampler", "negative"), (f"{p}edit", "latent", f"{p}sampler", "latent_image"),
        ("settings", "steps", f"{p}sampler", "steps"),
        (f"{p}sampler", "LATENT", f"{p}decode", "samples"), ("model", "VAE", f"{p}decode", "vae"),
        (f"{p}decode", "IMAGE", f"{p}keep", "image"), (*image, f"{p}keep", "source"),
        (f"{p}edit", "edit_mask", f"{p}keep", "mask"), (f"{p}keep", "image", f"{p}save", "images"),
    ]
    return nodes, links


FIRST_STEPS = f"""**First steps**

1. In **Size and steps**, keep *quick try* (256 x 352, 20 steps: minutes on a CPU) or pick *paper* (512 x 704,
   100 steps, as the paper's demo: use a GPU).
2. Put `{OFFICIAL_CKPT}` in `models/checkpoints/` (the *Download* button of the missing-models list fetches
   it; see **Models** below), then press **Run**."""


def concept_to_draft() -> dict:
    text = f"""# Fashion design: concepts to a dress draft

Draws a design draft the way HieraFashDiff was trained: the **concept alone** (category, style, occasion,
effect, feeling) guides the first, roughest steps; then each **attribute** joins in turn: clothing length,
sleeve length, sleeve type, collar, hem. The pose ControlNet holds the figure in the chosen pose.

{FIRST_STEPS}

**Change the design** in the *Concept* node and the five attribute nodes (one per attribute). After a run,
the *Prompt schedule* node lists which steps drew with which prompt.

{MODELS_TEXT}

Without the browser: `hierafash run "workflows/{DRAFT}.json" --out out/`"""
    nodes = [note("Start here", text), *model_nodes(), *design_nodes("a", DRAFT_ATTRIBUTES, col=1)]
    part, links = draft_part(col=2)
    groups = [("Models and settings", ["settings", "model", "negative"]),
              ("Design", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Schedule and pose", ["sched", "pose"]), ("Draw", ["apply", "latent", "sampler"]),
              ("Draft", ["decode", "save"])]
    return {"nodes": nodes + part, "links": model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + links,
            "groups": groups}


EDIT_ATTRIBUTES = [(1, "clothing length", "Knee-length"), (2, "sleeve length", "Long Sleeve"),
                   (3, "sleeve type", "Puffed Sleeve"), (4, "collar", "Square Collar"), (5, "hem", "Curved Hem")]


def attribute_edit() -> dict:
    text = f"""# Fashion edit: new sleeves and collar on a dress

Changes chosen attributes of an existing design **in one pass**: each edited attribute repaints only its body
part, and every other pixel stays exactly as it was.

{FIRST_STEPS}

* **Example figure** is the design being edited: a dress the pack draws itself, with its exact pose. To edit
  your own design, replace it with *Load Image* and connect a pose estimator (for example *HieraFash Pose From
  Image*) to *Pose and garment regions*.
* The attribute nodes describe the garment **as it should be**; *Edit only* names the attributes to change
  (here sleeve length and collar). *Garment regions* shows, in colour with a legend, what may be repainted.
* *Edit plan* says from which step each attribute changes.

{MODELS_TEXT}

Without the browser: `hierafash run "workflows/{EDIT}.json" --out out/`"""
    nodes = [note("Start here", text), *model_nodes(),
             {"key": "example", "type": "HieraFashExampleFigure", "title": "Example figure (or your Load Image)",
              "col": 0, "widgets": {"figure": 0}, "width": 330},
             *design_nodes("a", EDIT_ATTRIBUTES, col=1)]
    part, links = edit_part(2, "a5", ("example", "image"), "sleeve length, collar")
    links += [("example", "pose_keypoint", "xpose", "pose_keypoint"),
              ("settings", "width", "example", "width"), ("settings", "height", "example", "height")]
    groups = [("Models and settings", ["settings", "model", "negative", "example"]),
              ("The design as it should be", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Schedule and regions", ["xsched", "xpose", "xregions"]),
              ("One-pass edit", ["xedit", "xapply", "xplan"]),
              ("Draw", ["xsampler", "xdecode"]), ("Keep the rest, save", ["xkeep", "xsave"])]
    return {"nodes": nodes + part, "links": model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + links,
            "groups": groups}


def generate_then_edit() -> dict:
    text = f"""# Fashion design, then edit: a dress draft, then a new collar and hem

The whole loop: **concepts, then attributes** draw a draft (top row); then a **one-pass edit** gives that draft
a new collar and hem (bottom row) while every other pixel stays the draft's.

{FIRST_STEPS}

* The design forks after the sleeve type: the draft has a *V-Neck* and a *Draped Hem*, the edit a
  *Square Collar* and a *Ruffle Hem*; *Edit only* changes just *collar, hem*.
* One *Pose and garment regions* node serves both rows: it poses the draft and masks the edit;
  *Garment regions* shows those masks with a legend before anything is drawn.

{MODELS_TEXT}

Without the browser: `hierafash run "workflows/{BOTH}.json" --out out/`"""
    edit_design = [(4, "collar", "Square Collar"), (5, "hem", "Ruffle Hem")]
    nodes = [note("Start here", text), *model_nodes(),
             *design_nodes("a", DRAFT_ATTRIBUTES, col=1),
             *design_nodes("e", edit_design, col=1, band=1, concept=False)]
    draft, draft_links = draft_part(col=2)
    edit, edit_links = edit_part(2, "e5", ("decode", "IMAGE"), "collar, hem", band=1, pose="pose")
    edit.append(regions_preview("xregions", 2, band=1))
    edit_links += [("pose", "body_masks", "xregions", "body_masks"), ("decode", "IMAGE", "xregions", "image")]
    groups = [("Models and settings", ["settings", "model", "negative"]),
              ("Draft design", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Edit design", ["e4", "e5"]),
              ("Draft", ["sched", "pose", "apply", "latent", "sampler", "decode", "save"]),
              ("Edit the draft", ["xsched", "xregions", "xedit", "xapply", "xplan", "xsampler", "xdecode", "xkeep",
                                  "xsave"])]
    links = (model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + chain(["a3", "e4", "e5"])
             + draft_links + edit_links)
    return {"nodes": nodes + draft + edit, "links": links, "groups": groups}


# How the synthetic benchmark trains and samples its small model (bench/quality.py --full, QUALITY.md).
SMALL_SAMPLING = {"sampler_name": "euler", "scheduler": "normal", "cfg": 3.0}
SMALL_STEPS = 20
SMALL_DRAFT = [(1, "clothing length", "Knee-length"), (2, "sleeve type", "Regular Sleeve"),
               (3, "collar", "Round Collar"), (4, "hem", "Flat Hem"), (5, "sleeve length", "Short Sleeve")]


def small_model_loop() -> dict:
    """The generate-then-edit loop on the synthetic benchmark's small model, made by `make quality FULL=1`."""
    width, height = DEFAULT_SIZE
    text = f"""# Fashion design, then edit, on a small model trained here (no download)

The whole loop of *design then edit*, on the **synthetic benchmark's small model**: a model this pack trains on
its own drawn figures (QUALITY.md), so nothing is downloaded. A purple knee-length dress with short sleeves is
drafted from **concepts, then attributes** (top row); a **one-pass edit** then gives it long sleeves (bottom
row) while every other pixel stays the draft's.

**First steps**

1. Make the model once: `make quality FULL=1` (about an hour on a CPU; add `ARGS="--minutes 10"` on a GPU). It
   trains `{QUALITY_CHECKPOINT}` and `{QUALITY_CONTROLNET}` and installs them into the models folders
   of `make run`'s ComfyUI.
2. Press **Run** ({width} x {height}, {SMALL_STEPS} steps: seconds on a CPU).

**What to expect.** This is a measuring instrument, not a fashion model: it knows only the drawn figures
(flat colours for the style, stripes or dots for the feeling) and draws blurred ones. Its prompts are the
vocabulary's words without the official quality suffix, and the negative prompt is empty, as in its training.
QUALITY.md says how well it follows its prompt. The edit's exactness (every pixel outside *Garment regions*
kept) does not depend on the model.

Without the browser: `hierafash run "workflows/{SMALL}.json" --out out/`"""
    nodes = [note("Start here", text),
             {"key": "settings", "type": "HieraFashSizeAndSteps", "title": "Size and steps (the model's size)",
              "col": 0, "widgets": {"preset": "custom (the values below)", "width": width, "height": height,
                                    "steps": SMALL_STEPS}, "width": 330},
             {"key": "model", "type": "CheckpointLoaderSimple", "title": "Small model (make quality FULL=1)",
              "col": 0, "widgets": {"ckpt_name": QUALITY_CHECKPOINT}, "width": 330},
             {"key": "pose_cn", "type": "ControlNetLoader", "title": "Its pose ControlNet", "col": 0,
              "widgets": {"control_net_name": QUALITY_CONTROLNET}, "width": 330},
             {"key": "negative", "type": "CLIPTextEncode", "title": "Empty negative prompt (as trained)",
              "col": 0, "widgets": {"text": ""}, "width": 330},
             *design_nodes("a", SMALL_DRAFT, col=1),
             *design_nodes("e", [(5, "sleeve length", "Long Sleeve")], col=1, band=1, concept=False)]
    draft, draft_links = draft_part(col=2)
    edit, edit_links = edit_part(2, "e5", ("decode", "IMAGE"), "sleeve length", band=1, pose="pose")
    edit.append(regions_preview("xregions", 2, band=1))
    edit_links += [("pose", "body_masks", "xregions", "body_masks"), ("decode", "IMAGE", "xregions", "image")]
    for node in nodes + draft + edit:
        widgets = node.setdefault("widgets", {})
        if node["key"] == "concept":
            widgets.update(effect="Slimming", feeling="Crisp Feeling")  # the feeling draws the solid colour
        elif node["type"] == "KSampler":
            widgets.update(SMALL_SAMPLING)
        elif node["type"] == "HieraFashHierarchicalPromptScheduler":
            widgets.update(scheduler=SMALL_SAMPLING["scheduler"], suffix="")
        elif node["type"] == "HieraFashPoseMaskBuilder":
            widgets.update(render_style=CONTROLNET_AUX_STYLE)  # the training pose maps' style
    groups = [("Model and settings", ["settings", "model", "pose_cn", "negative"]),
              ("Draft design", ["concept", "a1", "a2", "a3", "a4", "a5"]), ("Edit design", ["e5"]),
              ("Draft", ["sched", "pose", "apply", "latent", "sampler", "decode", "save"]),
              ("Edit the draft", ["xsched", "xregions", "xedit", "xapply", "xplan", "xsampler", "xdecode", "xkeep",
                                  "xsave"])]
    links = (chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + chain(["a4", "e5"]) + draft_links + edit_links)
    links = [("pose_cn", *link[1:]) if link[:2] == ("model", "CONTROL_NET") else link for link in links]
    return {"nodes": nodes + draft + edit, "links": [("model", "CLIP", "negative", "clip"), *links],
            "groups": groups}


# The frontend lists a pack's templates by file name alone (title, description and search text), so the names
# are the titles an artist reads and searches.
DRAFT = "Fashion garment design - dress draft from concepts"
EDIT = "Fashion garment edit - new sleeves and collar on a dress"
BOTH = "Fashion garment design then edit - dress draft, then a new collar and hem"
SMALL = "Fashion garment design then edit - small model trained here, no download"
SPECS = {DRAFT: concept_to_draft, EDIT: attribute_edit, BOTH: generate_then_edit, SMALL: small_model_loop}

BUILD_JS = """async (spec) => {
  const LG = window.LiteGraph, graph = window.app.graph;
  await window.app.loadGraphData({last_node_id: 0, last_link_id: 0, nodes: [], links: [], groups: [], config: {},
                                  extra: {}, version: 0.4}, true, false);
  const byKey = {};
  for (const s of spec.nodes) {
    const node = LG.createNode(s.type);
    if (!node) throw new Error(`node type ${s.type} is not registered`);
    graph.add(node);
    if (s.title) node.title = s.title;
    for (const [name, value] of Object.entries(s.widgets || {})) {
      const w = (node.widgets || []).find((w) => w.name === name);
      if (!w) throw new Error(`${s.type} has no widget ${name}: ${(node.widgets || []).map((w) => w.name)}`);
      w.value = value;
    }
    Object.assign(node.properties, s.properties || {});
    Object.assign(node, s.extra || {});
    const size = node.computeSize();
    node.setSize(s.size || [Math.max(size[0], s.width || 0), size[1]]);
    byKey[s.key] = node;
  }
  for (const [src, out, dst, inp] of spec.links) {
    const a = byKey[src], b = byKey[dst];
    if (!a || !b) throw new Error(`bad link ${src} -> ${dst}`);
    const o = a.findOutputSlot(out), i = b.findInputSlot(inp);
    if (o < 0 || i < 0) throw new Error(`no slot ${src}.${out} (${o}) or ${dst}.${inp} (${i})`);
    if (!a.connect(o, b, i)) throw new Error(`cannot connect ${src}.${out} -> ${dst}.${inp}`);
  }
  // Layout: columns of stacked nodes; band 1 starts below everything in band 0.
  const TITLE = LG.NODE_TITLE_HEIGHT, GAP_X = 70, GAP_Y = 50, BAND_GAP = 110;
  const cols = {};
  for (const s of spec.nodes) cols[s.col] = Math.max(cols[s.col] || 0, byKey[s.key].size[0]);
  const xs = {}; let x = 0;
  for (const c of Object.keys(cols).map(Number).sort((a, b) => a - b)) { xs[c] = x; x += cols[c] + GAP_X; }
  let bandTop = TITLE + 40;
  for (const band of [0, 1]) {
    const ys = {}; let bottom = bandTop;
    for (const s of spec.nodes.filter((s) => (s.band || 0) === band)) {
      const node = byKey[s.key], y = ys[s.col] ?? bandTop;
      node.pos = [xs[s.col], y];
      ys[s.col] = y + node.size[1] + TITLE + GAP_Y;
      bottom = Math.max(bottom, y + node.size[1]);
    }
    bandTop = bottom + BAND_GAP + TITLE;
  }
  for (const [title, keys] of spec.groups) {
    const nodes = keys.map((k) => byKey[k]);
    const x0 = Math.min(...nodes.map((n) => n.pos[0])) - 20, y0 = Math.min(...nodes.map((n) => n.pos[1])) - TITLE - 50;
    const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])) + 20;
    const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1])) + 20;
    const group = new LG.LGraphGroup(title);
    group.pos = [x0, y0]; group.size = [x1 - x0, y1 - y0];
    graph.add(group);
  }
  graph.setDirtyCanvas(true, true);
  const {workflow} = await window.app.graphToPrompt();
  // Open at a zoom where text is legible, the "Start here" note and the first columns in view (saved views are
  // restored on load).
  const x0 = Math.min(...graph._nodes.map((n) => n.pos[0])), y0 = Math.min(...graph._nodes.map((n) => n.pos[1]));
  workflow.extra.ds = {scale: spec.zoom, offset: [100 / spec.zoom - x0, 110 / spec.zoom - y0]};
  return JSON.parse(JSON.stringify(workflow));  // as saved: undefined fields dropped, not null
}"""

# What each template's thumbnail shows, left to right: the pack's own drawing of its example figure, the pose
# map the ControlNet sees, and the garment regions an edit may repaint (with their legend).
THUMB_PANELS = {DRAFT: ("pose", "figure"), EDIT: ("figure", "regions"), BOTH: ("pose", "figure", "regions"),
                SMALL: ("pose", "figure", "regions")}


def build(page, name: str) -> dict:
    spec = {**SPECS[name](), "zoom": OPENING_ZOOM}
    return page.evaluate(BUILD_JS, spec)


def thumbnail(name: str, path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from hierafash_core.body_masks import build_body_masks
    from hierafash_core.legend import region_preview
    from hierafash_core.pose import read_pose_keypoint
    from hierafash_core.synthetic import draw_figure, example_spec

    figure = draw_figure(example_spec(), 512, 704)
    image = torch.from_numpy(figure.image)[None]
    masks = build_body_masks(read_pose_keypoint(figure.pose_keypoint), (512, 704)).body_masks
    panels = {"figure": figure.image, "pose": figure.pose_image,
              "regions": region_preview(image, masks.by_kind)[0].numpy()}
    chosen = [panels[k] for k in THUMB_PANELS[name]]
    height, gap = max(p.shape[0] for p in chosen), 24
    row = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=0.1) for p in chosen]
    row = [part for p in row for part in (p, np.full((height, gap, 3), 0.1, np.float32))][:-1]
    picture = Image.fromarray(np.uint8(np.clip(np.concatenate(row, axis=1), 0, 1) * 255))
    for quality in (85, 75, 65, 55):
        buf = io.BytesIO()
        picture.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= THUMB_MAX_BYTES:
            break
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({buf.tell() // 1024} KiB)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SPECS), action="append")
    parser.add_argument("--no-thumbnails", action="store_true")
    parser.add_argument("--thumbnails-only", action="store_true", help="redraw the thumbnails only")
    args = parser.parse_args(argv)
    names = args.only or list(SPECS)
    if not args.thumbnails_only:
        from playwright.sync_api import sync_playwright

        with tempfile.TemporaryDirectory(prefix="hierafash_build_") as tmp, live_server() as server, \
                sync_playwright() as pw:
            apply_settings(server, {"Comfy.Workflow.ShowMissingModelsWarning": False})
            context = launch(pw, Path(tmp) / "profile")
            try:
                page = context.pages[0] if context.pages else context.new_page()
                open_app(page, server.url)
                for name in names:
                    path = WORKFLOWS / f"{name}.json"
                    workflow = build(page, name)
                    path.write_text(json.dumps(workflow, indent=2, ensure_ascii=False) + "\n")
                    print(f"wrote {path} ({len(workflow['nodes'])} nodes, {len(workflow['links'])} links)")
            finally:
                context.close()
    if not args.no_thumbnails:
        for name in names:
            thumbnail(name, WORKFLOWS / f"{name}.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
