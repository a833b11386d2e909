"""Build the shipped workflows in the real ComfyUI frontend, save them as the editor saves them, and screenshot them.

    .venv/bin/python tools/build_workflows.py [--only NAME] [--no-thumbnails]

Each graph below is a small spec: nodes (type, title, widget values by name, column), links by slot name and
groups. The script starts the pinned ComfyUI with this pack (no models needed), opens the frontend in Debian's
Chromium, creates the nodes through LiteGraph, sets widget values by name, connects slots by name, and writes
`app.graphToPrompt().workflow` (UI format, version 0.4) to workflows/<name>.json. It then reloads every file
through `app.loadGraphData` and saves a JPEG screenshot of the canvas next to it as the template thumbnail.

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
    OFFICIAL_CKPT_PAGE,
    OFFICIAL_CKPT_URL,
)

WORKFLOWS = ROOT / "workflows"
THUMB_WIDTH = 1280
BUILD_VIEWPORT = {"width": 3000, "height": 2300}  # large enough that the fitted graph renders at full detail
THUMB_MAX_BYTES = 180_000  # the template browser asks for small thumbnails; keep a margin under 200 KB

NOTE_COLOR = {"color": "#432", "bgcolor": "#653"}
OFFICIAL_SUFFIX = "best quality, extremely detailed, masterpiece, 8k, canon, film still, white background"
NEGATIVE = ("lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, cropped, worst quality, "
            "low quality, blurry, watermark, text, nsfw, headscarf, hat")
STEPS = 50
SEED = 11  # the official demo's seed

CHECKPOINT_MODEL = {"name": CHECKPOINT_NAME, "url": OFFICIAL_CKPT_URL, "directory": "checkpoints"}
# A different URL for the second entry: the frontend lists missing models unique by URL, and both files
# come from the same released checkpoint.
CONTROLNET_MODEL = {"name": CONTROLNET_NAME, "url": OFFICIAL_CKPT_PAGE, "directory": "controlnet"}

MODELS_TEXT = f"""**Models.** The official HieraFashDiff weights are one file, `hfd_100epochs.ckpt`
([vmip-shu/HieraFashDiff]({OFFICIAL_CKPT_PAGE})): an SD 2.x ε-prediction model plus its pose ControlNet.
Convert it once into the two files the loaders here expect:

    hierafash convert hfd_100epochs.ckpt --models-dir ComfyUI/models

which writes `models/checkpoints/{CHECKPOINT_NAME}` and `models/controlnet/{CONTROLNET_NAME}`{{convert_node}}.
*ModelSamplingDiscrete (eps)* follows the loader on purpose: the model predicts noise (ε), and ComfyUI would
otherwise have to guess ε or v for an SD 2.x checkpoint."""

CONVERT_NODE_TEXT = " (or run the *HieraFash Convert Official Checkpoint* node inside ComfyUI, then press R)"


def models_text(object_info: dict) -> str:
    return MODELS_TEXT.replace("{convert_node}", CONVERT_NODE_TEXT if "HieraFashConvertCheckpoint" in object_info
                               else "")


def note(title: str, text: str, col: int = 0, band: int = 0, size=(440, 640)) -> dict:
    return {"key": "note", "type": "MarkdownNote", "title": title, "col": col, "band": band, "size": list(size),
            "widgets": {"text": text}, "extra": NOTE_COLOR}


def model_nodes(col=0) -> list[dict]:
    return [
        {"key": "ckpt", "type": "CheckpointLoaderSimple", "title": "Load HieraFashDiff checkpoint", "col": col,
         "widgets": {"ckpt_name": CHECKPOINT_NAME}, "properties": {"models": [CHECKPOINT_MODEL]}, "width": 330},
        {"key": "eps", "type": "ModelSamplingDiscrete", "title": "ModelSamplingDiscrete (eps)", "col": col,
         "widgets": {"sampling": "eps", "zsnr": False}, "width": 330},
        {"key": "cn", "type": "ControlNetLoader", "title": "Load HieraFashDiff pose ControlNet", "col": col,
         "widgets": {"control_net_name": CONTROLNET_NAME}, "properties": {"models": [CONTROLNET_MODEL]}, "width": 330},
        {"key": "steps", "type": "PrimitiveInt", "title": "Steps", "col": col,
         "widgets": {"value": STEPS, "control_after_generate": "fixed"}},
        {"key": "negative", "type": "CLIPTextEncode", "title": "Negative prompt", "col": col,
         "widgets": {"text": NEGATIVE}, "width": 320},
    ]


def model_links() -> list[tuple]:
    return [("ckpt", "MODEL", "eps", "model"), ("ckpt", "CLIP", "negative", "clip")]


def design_nodes(prefix: str, values: list[tuple[str, str]], col: int, band: int = 0, concept=True) -> list[dict]:
    nodes = []
    if concept:
        nodes.append({"key": "concept", "type": "HieraFashConceptIdeation", "title": "Concept Ideation (P_C)",
                      "col": col, "band": band,
                      "widgets": {"category": "Dress", "style": "Elegant", "occasion": "Party",
                                  "effect": "Elongate Neck", "feeling": "Sense of Agility and Elegance",
                                  "custom_concept": ""}})
    for n, attribute, value in values:
        nodes.append({"key": f"{prefix}{n}", "type": "HieraFashAttributeIteration",
                      "title": f"{'Edit ' if prefix == 'e' else ''}A{n} {attribute}", "col": col, "band": band,
                      "widgets": {"attribute": attribute, "value": value, "custom_text": ""}})
    return nodes


def chain(keys: list[str]) -> list[tuple]:
    return [(a, "design", b, "design") for a, b in zip(keys, keys[1:])]


def scheduler(key: str, col: int, band: int = 0, title="Hierarchical Prompt Scheduler (C(t))") -> dict:
    return {"key": key, "type": "HieraFashHierarchicalPromptScheduler", "title": title, "col": col, "band": band,
            "widgets": {"steps": STEPS, "scheduler": "ddim_uniform", "detail": "", "suffix": OFFICIAL_SUFFIX},
            "width": 380}


def sampler(key: str, col: int, band: int = 0, title="KSampler") -> dict:
    return {"key": key, "type": "KSampler", "title": title, "col": col, "band": band,
            "widgets": {"seed": SEED, "control_after_generate": "fixed", "steps": STEPS, "cfg": 9.0,
                        "sampler_name": "ddim", "scheduler": "ddim_uniform", "denoise": 1.0}}


DRAFT_ATTRIBUTES = [(1, "clothing length", "Long"), (2, "sleeve length", "Short Sleeve"),
                    (3, "sleeve type", "Regular Sleeve"), (4, "collar", "V-Neck"), (5, "hem", "Draped Hem")]


def draft_part(col: int, design_key="a5", band=0) -> tuple[list[dict], list[tuple]]:
    """Scheduler, pose preset, pose ControlNet, sampler and save for a draft from the design at design_key."""
    nodes = [
        scheduler("sched", col, band),
        {"key": "pose", "type": "HieraFashPoseMaskBuilder", "title": "Pose Mask Builder (preset pose)", "col": col,
         "band": band, "widgets": {"preset": "front_standing", "width": 512, "height": 704, "category": "Dress"}},
        {"key": "apply", "type": "HieraFashApplyPoseControlNet", "title": "Apply Pose ControlNet", "col": col + 1,
         "band": band, "widgets": {"strength": 1.0, "band": "all steps (official code)"}},
        {"key": "latent", "type": "EmptyLatentImage", "title": "Draft size (512 x 704)", "col": col + 1, "band": band,
         "widgets": {"width": 512, "height": 704, "batch_size": 1}},
        sampler("sampler", col + 1, band, "KSampler (draft)"),
        {"key": "decode", "type": "VAEDecode", "title": "VAE Decode (draft)", "col": col + 2, "band": band},
        {"key": "save", "type": "SaveImage", "title": "Save draft", "col": col + 2, "band": band,
         "widgets": {"filename_prefix": "hierafashdiff/draft"}, "size": [360, 460]},
    ]
    links = [
        (design_key, "design", "sched", "design"), ("ckpt", "CLIP", "sched", "clip"),
        ("eps", "MODEL", "sched", "model"), ("steps", "INT", "sched", "steps"),
        (design_key, "design", "pose", "design"),
        ("sched", "positive", "apply", "positive"), ("negative", "CONDITIONING", "apply", "negative"),
        ("cn", "CONTROL_NET", "apply", "control_net"), ("pose", "pose_image", "apply", "pose_image"),
        ("sched", "schedule", "apply", "schedule"),
        ("eps", "MODEL", "sampler", "model"), ("apply", "positive", "sampler", "positive"),
        ("apply", "negative", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        ("steps", "INT", "sampler", "steps"),
        ("sampler", "LATENT", "decode", "samples"), ("ckpt", "VAE", "decode", "vae"),
        ("decode", "IMAGE", "save", "images"),
    ]
    return nodes, links


def edit_part(col: int, design_key: str, image: tuple[str, str], edit_attributes: str, band=0, p="x"):
    """Scheduler, pose masks from the image, one-pass Attribute Edit, sampler, exact preservation and save."""
    nodes = [
        scheduler(f"{p}sched", col, band, "Hierarchical Prompt Scheduler (edit design)"),
        {"key": f"{p}pose", "type": "HieraFashPoseMaskBuilder", "title": "Pose Mask Builder (masks of the image)",
         "col": col, "band": band, "widgets": {"preset": "front_standing", "width": 512, "height": 704,
                                                "category": "Dress"}},
        {"key": f"{p}edit", "type": "HieraFashAttributeEdit", "title": "Attribute Edit (one pass, M(t))",
         "col": col + 1, "band": band, "widgets": {"edit_attributes": edit_attributes}, "width": 320},
        {"key": f"{p}apply", "type": "HieraFashApplyPoseControlNet", "title": "Apply Pose ControlNet (edit)",
         "col": col + 1, "band": band, "widgets": {"strength": 1.0, "band": "all steps (official code)"}},
        {"key": f"{p}plan", "type": "PreviewAny", "title": "Edit plan", "col": col + 1, "band": band, "width": 320},
        sampler(f"{p}sampler", col + 2, band, "KSampler (edit, denoise 1.0)"),
        {"key": f"{p}decode", "type": "VAEDecode", "title": "VAE Decode (edit)", "col": col + 2, "band": band},
        {"key": f"{p}keep", "type": "HieraFashPreserveSource", "title": "Preserve Source (exact outside the mask)",
         "col": col + 3, "band": band},
        {"key": f"{p}save", "type": "SaveImage", "title": "Save edit", "col": col + 3, "band": band,
         "widgets": {"filename_prefix": "hierafashdiff/edit"}, "size": [360, 460]},
    ]
    links = [
        (design_key, "design", f"{p}sched", "design"), ("ckpt", "CLIP", f"{p}sched", "clip"),
        ("eps", "MODEL", f"{p}sched", "model"), ("steps", "INT", f"{p}sched", "steps"),
        (*image, f"{p}pose", "image"), (design_key, "design", f"{p}pose", "design"),
        ("eps", "MODEL", f"{p}edit", "model"), ("ckpt", "VAE", f"{p}edit", "vae"), (*image, f"{p}edit", "image"),
        (f"{p}sched", "schedule", f"{p}edit", "schedule"), (f"{p}pose", "body_masks", f"{p}edit", "body_masks"),
        (f"{p}sched", "positive", f"{p}apply", "positive"), ("negative", "CONDITIONING", f"{p}apply", "negative"),
        ("cn", "CONTROL_NET", f"{p}apply", "control_net"), (f"{p}pose", "pose_image", f"{p}apply", "pose_image"),
        (f"{p}sched", "schedule", f"{p}apply", "schedule"), (f"{p}edit", "plan", f"{p}plan", "source"),
        (f"{p}edit", "model", f"{p}sampler", "model"), (f"{p}apply", "positive", f"{p}sampler", "positive"),
        (f"{p}apply", "negative", f"{p}sampler", "negative"), (f"{p}edit", "latent", f"{p}sampler", "latent_image"),
        ("steps", "INT", f"{p}sampler", "steps"),
        (f"{p}sampler", "LATENT", f"{p}decode", "samples"), ("ckpt", "VAE", f"{p}decode", "vae"),
        (f"{p}decode", "IMAGE", f"{p}keep", "image"), (*image, f"{p}keep", "source"),
        (f"{p}edit", "edit_mask", f"{p}keep", "mask"), (f"{p}keep", "image", f"{p}save", "images"),
    ]
    return nodes, links


def concept_to_draft(object_info: dict) -> dict:
    text = f"""# HieraFashDiff: concept → draft

Generates a design draft the way HieraFashDiff was trained: the **concept alone** conditions the noisiest steps
(ideation), then each **attribute** joins in its own sub-stage (iteration): clothing length, sleeve length,
sleeve type, collar, hem. The pose ControlNet holds the figure in the chosen pose.

1. **Concept Ideation** sets P_C: category, style, occasion, effect, feeling.
2. Five **Attribute Iteration** nodes add A1…A5. Change the values freely; keep one node per attribute.
3. **Hierarchical Prompt Scheduler** compiles the growing prompts into timestep-ranged conditioning C(t).
   After a run the node shows which sampler steps fell in which stage.
4. **Pose Mask Builder** renders the preset pose for **Apply Pose ControlNet**.
5. A stock **KSampler** samples 512 × 704 with DDIM and CFG 9, as the official demo (which uses 100 steps).

The **Steps** node feeds both the sampler and the scheduler so they always agree; keep the scheduler's
*scheduler* the same as the sampler's.

{models_text(object_info)}

Without the UI: `hierafash run workflows/hierafash_concept_to_draft.json --out out/`"""
    nodes = [note("About this workflow", text), *model_nodes(),
             *design_nodes("a", DRAFT_ATTRIBUTES, col=1)]
    part, links = draft_part(col=2)
    groups = [("Models", ["ckpt", "eps", "cn", "steps", "negative"]),
              ("Design", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Schedule, pose", ["sched", "pose"]), ("Sample", ["apply", "latent", "sampler"]),
              ("Draft", ["decode", "save"])]
    return {"nodes": nodes + part, "links": model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + links,
            "groups": groups}


EDIT_ATTRIBUTES = [(1, "clothing length", "Long"), (2, "sleeve length", "Long Sleeve"),
                   (3, "sleeve type", "Regular Sleeve"), (4, "collar", "Square Collar"), (5, "hem", "Draped Hem")]


def attribute_edit(object_info: dict) -> dict:
    text = f"""# HieraFashDiff: attribute edit

Edits attributes of an existing design **in one sampling pass**: each edited attribute changes only its body
part, in its own sub-stage of the trajectory (M(t)), and everything else stays the source image.

1. **Load Image**: the design to edit (for example a draft from *hierafash_concept_to_draft*), ideally
   512 × 704; width and height must be multiples of 8.
2. The **design** nodes describe the garment as it should be; **Attribute Edit** changes only the attributes
   named in *edit_attributes* (here sleeve length and collar), the others describe the garment.
3. **Pose Mask Builder** turns a pose into body-part masks sized to the image. It uses the preset pose here;
   for a real photo connect a pose estimator's POSE_KEYPOINT (OpenPose, DWPose) to *pose_keypoint*, and check
   the overlay it previews.
4. **Attribute Edit** encodes the image and patches the model with M(t); sample its *model* and *latent* with
   a stock **KSampler at denoise 1.0**, with the scheduler's conditioning through **Apply Pose ControlNet**.
5. **Preserve Source** puts the original pixels back outside the edited regions, bit for bit.
   *Edit plan* shows where the edit starts and which region opens in which stage.

{models_text(object_info)}

Without the UI: `hierafash run workflows/hierafash_attribute_edit.json --set "Load Image.image=my_draft.png"
--out out/` (a path to any image file is uploaded for you)."""
    nodes = [note("About this workflow", text), *model_nodes(),
             {"key": "load", "type": "LoadImage", "title": "Load Image", "col": 0,
              "widgets": {"image": "hierafashdiff_draft.png"}},
             *design_nodes("a", EDIT_ATTRIBUTES, col=1)]
    part, links = edit_part(2, "a5", ("load", "IMAGE"), "sleeve length, collar")
    groups = [("Models and source", ["ckpt", "eps", "cn", "steps", "negative", "load"]),
              ("Target design", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Schedule, masks", ["xsched", "xpose"]), ("One-pass edit", ["xedit", "xapply", "xplan"]),
              ("Sample", ["xsampler", "xdecode"]), ("Preserve, save", ["xkeep", "xsave"])]
    return {"nodes": nodes + part, "links": model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + links,
            "groups": groups}


def generate_then_edit(object_info: dict) -> dict:
    text = f"""# HieraFashDiff: generate, then edit

The whole HieraFashDiff loop in one graph: **ideation and iteration** make a draft (top row), then a
**one-pass attribute edit** changes the collar and the hem of that draft (bottom row) while every other
pixel stays the draft's.

* The design forks after A3: the draft uses *V-Neck* and *Draped Hem*, the edit design *Square Collar* and
  *Ruffle Hem*; **Attribute Edit** edits only *collar, hem*.
* The draft row is *hierafash_concept_to_draft*; the edit row is *hierafash_attribute_edit* with the
  draft in place of Load Image. Pose masks for the edit come from the draft itself.
* **Steps** feeds both samplers and both schedulers.

{models_text(object_info)}

Without the UI: `hierafash run workflows/hierafash_generate_then_edit.json --out out/`"""
    edit_design = [(4, "collar", "Square Collar"), (5, "hem", "Ruffle Hem")]
    nodes = [note("About this workflow", text), *model_nodes(),
             *design_nodes("a", DRAFT_ATTRIBUTES, col=1),
             *design_nodes("e", edit_design, col=1, band=1, concept=False)]
    draft, draft_links = draft_part(col=2)
    edit, edit_links = edit_part(2, "e5", ("decode", "IMAGE"), "collar, hem", band=1)
    groups = [("Models", ["ckpt", "eps", "cn", "steps", "negative"]),
              ("Draft design", ["concept", "a1", "a2", "a3", "a4", "a5"]),
              ("Edit design", ["e4", "e5"]),
              ("Draft", ["sched", "pose", "apply", "latent", "sampler", "decode", "save"]),
              ("Edit the draft", ["xsched", "xpose", "xedit", "xapply", "xplan", "xsampler", "xdecode", "xkeep",
                                  "xsave"])]
    links = (model_links() + chain(["concept", "a1", "a2", "a3", "a4", "a5"]) + chain(["a3", "e4", "e5"])
             + draft_links + edit_links)
    return {"nodes": nodes + draft + edit, "links": links, "groups": groups}


SPECS = {
    "hierafash_concept_to_draft": concept_to_draft,
    "hierafash_attribute_edit": attribute_edit,
    "hierafash_generate_then_edit": generate_then_edit,
}

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
  delete workflow.extra.ds;  // the view is fitted on load
  return JSON.parse(JSON.stringify(workflow));  // as saved: undefined fields dropped, not null
}"""

LOAD_JS = "async (workflow) => { await window.app.loadGraphData(workflow, true, false); }"

# Fit the graph into the canvas, clear of the menus around it, and return its rectangle on screen (CSS pixels).
FIT_JS = """() => {
  const canvas = window.app.canvas, nodes = window.app.graph.nodes, groups = window.app.graph.groups || [];
  const boxes = nodes.map((n) => [n.pos[0], n.pos[1] - 40, n.pos[0] + n.size[0], n.pos[1] + n.size[1]])
    .concat(groups.map((g) => [g.pos[0], g.pos[1], g.pos[0] + g.size[0], g.pos[1] + g.size[1]]));
  const x0 = Math.min(...boxes.map((b) => b[0])) - 30, y0 = Math.min(...boxes.map((b) => b[1])) - 30;
  const x1 = Math.max(...boxes.map((b) => b[2])) + 30, y1 = Math.max(...boxes.map((b) => b[3])) + 30;
  const rect = canvas.canvas.getBoundingClientRect();
  const M = {top: 130, left: 90, right: 90, bottom: 90};
  const scale = Math.min((rect.width - M.left - M.right) / (x1 - x0), (rect.height - M.top - M.bottom) / (y1 - y0));
  canvas.ds.scale = scale;
  canvas.ds.offset = [M.left / scale - x0, M.top / scale - y0];
  canvas.setDirty(true, true);
  canvas.draw(true, true);
  return {x: rect.left + M.left, y: rect.top + M.top, width: (x1 - x0) * scale, height: (y1 - y0) * scale};
}"""

# Only the canvas in the picture: no menus, side bars, toasts or canvas controls.
HIDE_CHROME_CSS = """.comfyui-body-top, .comfyui-body-left, .comfyui-body-right, .comfyui-body-bottom, .p-toast,
  .p-dialog-mask { visibility: hidden !important; }"""


def build(page, object_info: dict, name: str) -> dict:
    spec = SPECS[name](object_info)
    return page.evaluate(BUILD_JS, spec)


def thumbnail(page, workflow: dict, path: Path) -> None:
    from PIL import Image

    page.evaluate(LOAD_JS, workflow)
    page.wait_for_timeout(1000)  # loading fits the view on the next frame; fit ours after that
    clip = page.evaluate(FIT_JS)
    page.wait_for_timeout(300)
    style = page.add_style_tag(content=HIDE_CHROME_CSS)
    png = page.screenshot(clip=clip)
    style.evaluate("(el) => el.remove()")
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((THUMB_WIDTH, round(image.height * THUMB_WIDTH / image.width)), Image.LANCZOS)
    for quality in (85, 75, 65, 55):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality, optimize=True)
        if buf.tell() <= THUMB_MAX_BYTES:
            break
    path.write_bytes(buf.getvalue())
    print(f"wrote {path} ({buf.tell() // 1024} KiB)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SPECS), action="append")
    parser.add_argument("--no-thumbnails", action="store_true")
    parser.add_argument("--thumbnails-only", action="store_true", help="re-shoot the committed workflows")
    args = parser.parse_args(argv)
    names = args.only or list(SPECS)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hierafash_build_") as tmp, live_server() as server, \
            sync_playwright() as pw:
        apply_settings(server, {"Comfy.Workflow.ShowMissingModelsWarning": False, "Comfy.Graph.CanvasInfo": False})
        object_info = server.get("/object_info")
        context = launch(pw, Path(tmp) / "profile", BUILD_VIEWPORT)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            open_app(page, server.url)
            for name in names:
                path = WORKFLOWS / f"{name}.json"
                if args.thumbnails_only:
                    workflow = json.loads(path.read_text())
                else:
                    workflow = build(page, object_info, name)
                    path.write_text(json.dumps(workflow, indent=2, ensure_ascii=False) + "\n")
                    print(f"wrote {path} ({len(workflow['nodes'])} nodes, {len(workflow['links'])} links)")
                if not args.no_thumbnails:
                    thumbnail(page, workflow, path.with_suffix(".jpg"))
        finally:
            context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
