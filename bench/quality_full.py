"""`bench/quality.py --full`: the synthetic benchmark's real run, through the pack's nodes in ComfyUI.

1. Draws the dataset (hierafash_core.synthetic), builds the small model (bench/quality_model.py), trains UNet
   and ControlNet together with `hierafash train --mode base` for a time budget, and writes them as one
   checkpoint plus the ControlNet for ComfyUI's stock loaders.
2. In one ComfyUI process (bench/comfy_inprocess.py), for held-out test figures (their caption and pose):
   - drafts: Concept Ideation -> Attribute Iteration x5 -> Hierarchical Prompt Scheduler -> Apply Pose
     ControlNet -> KSampler, and the same seeds with one flat prompt (stock CLIPTextEncode of the caption);
     optionally without pose (ControlNet strength 0);
     and the attributes joining by area of their body part instead of in the paper's order (the order ablation);
   - edits of the ground-truth figure, one attribute each (changed to another drawn value): Attribute Edit
     with the figure's pose masks, then Preserve Source; and the same seeds with every region widened to the
     whole image (Pose Mask Builder's external mask, union), i.e. without masks;
   - every visible attribute edited at once: the pack's one sampling pass against the official way, one run
     per attribute on the previous run's picture;
   - the VAE's round trip of each test figure: what any model drawing through this VAE could show at best.
3. Reads every image back with the oracles (hierafash_core.oracles), scores FID, Coverage and CLIP-S in the
   features of a tiny CLIP trained on the synthetic figures (bench/quality_clip.py), and writes
   bench/quality.json, a picture grid under bench/quality/ and the tables QUALITY.md quotes.

Scoring is in plain functions (oracles.score_reads; locality and pick_edit below) so the unit tier tests it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path[:0] = [str(REPO), str(BENCH), str(REPO / "tests")]

from hierafash_cli.workflow import QUALITY_CHECKPOINT, QUALITY_CONTROLNET  # noqa: E402
from hierafash_core import oracles, synthetic  # noqa: E402
from hierafash_core.pose import read_pose_keypoint  # noqa: E402
from hierafash_core.vocab import CONCEPT_FIELDS  # noqa: E402

ATTRIBUTE_FIELDS = ("clothing_length", "sleeve_length", "sleeve_type", "collar", "hem")
PROBE_PACKS = {"hierafash_bench_probe": BENCH / "comfy_nodes" / "hierafash_bench_probe",
               "hierafash_quality_probe": BENCH / "quality" / "comfy_nodes" / "hierafash_quality_probe"}
BAND_ALL = "all steps (official code)"
GENERATED = ("round_trip", "hierarchical", "flat", "by_area", "no_pose")  # the variants whose images the metrics score
MODEL_FOLDERS = ((QUALITY_CHECKPOINT, "checkpoints"), (QUALITY_CONTROLNET, "controlnet"))  # file, models/ folder
START_WARMUP = 50  # lr warm-up steps when training on from an earlier run: a fresh AdamW step would upset it


# --- scoring (pure) ------------------------------------------------------------------------------------


def safe_read(image: np.ndarray, pose_keypoint) -> dict[str, str | None]:
    """The oracles' reading; every field None (an abstention) when no garment covers the torso, or when the
    image defeats the geometry."""
    keypoints = read_pose_keypoint(pose_keypoint)[0].keypoints.numpy()
    try:
        if oracles.garment_present(image, keypoints):
            return oracles.read_attributes(image, keypoints)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):
        pass
    return dict.fromkeys(oracles.FIELDS)


def locality(edited: np.ndarray, source: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How much an edit changed the image outside its mask ([H, W], > 0.5 = inside): mean and max absolute
    change over those pixels, 0..1 per channel, and the share of them that changed at all."""
    outside = np.asarray(mask) <= 0.5
    if not outside.any():
        return {"mean_abs": 0.0, "max_abs": 0.0, "changed_share": 0.0}
    diff = np.abs(np.asarray(edited, np.float64) - np.asarray(source, np.float64)).max(axis=-1)[outside]
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()), "changed_share": float((diff > 0).mean())}


def editable_fields(garment: synthetic.Garment) -> list[str]:
    """The attributes an edit can change visibly on this garment (no sleeve type when sleeveless, no hem shape
    on a jumpsuit: the oracles do not read those)."""
    return [f for f in ATTRIBUTE_FIELDS if not (f == "sleeve_type" and garment.sleeve_length == "Sleeveless")
            and not (f == "hem" and garment.category == "Jumpsuit")]


def pick_edit(garment: synthetic.Garment, index: int) -> tuple[str, str]:
    """The (field, new value) of the index-th edit: fields in turn, the next drawn value after the current one
    (sleeve length never to Sleeveless, which would leave no sleeve type to keep)."""
    fields = editable_fields(garment)
    field = fields[index % len(fields)]
    values = [v for v in synthetic.DRAWN_VALUES[field] if not (field == "sleeve_length" and v == "Sleeveless")]
    current = getattr(garment, field)
    position = values.index(current) if current in values else -1
    return field, values[(position + 1) % len(values)]


def score_multi_edit(read: dict, truth: dict, targets: dict, outside: dict) -> dict:
    """A several-attribute edit: which targets the oracles read, whether the concept (not edited) survived, and
    the change outside the edit's regions."""
    concept = [f for f in ("category", "style", "feeling") if truth.get(f) is not None]
    return {"read": read, "success": {f: read.get(f) == v for f, v in targets.items()},
            "concept_kept": sum(read.get(f) == truth[f] for f in concept), "concept_measured": len(concept),
            "locality": outside}


def label(field: str) -> str:
    return field.replace("_", " ")


# --- graphs (API prompts; no ComfyUI import) ------------------------------------------------------------


def add_design(g, garment: synthetic.Garment) -> list:
    """The garment's design: its concept, then its attributes in the paper's order."""
    from support.graphs import hierarchical_design

    return hierarchical_design(g, [(label(f), getattr(garment, f)) for f in ATTRIBUTE_FIELDS],
                               {f: getattr(garment, f) for f in CONCEPT_FIELDS})


def add_pose_masks(g, garment, design, pose_json: str, width: int, height: int, **inputs):
    """Pose Mask Builder on the figure's own keypoints (POSE_KEYPOINT JSON), for the design's regions."""
    return g.add("HieraFashPoseMaskBuilder", preset="front_standing", width=width, height=height,
                 category=garment.category, person=-1, grow=0.05, feather=0.0, coordinates="pixels",
                 missing_keypoints="estimate", design=design,
                 pose_keypoint=g.add("HieraFashQualityPoseKeypoint", pose_json=pose_json).out(0), **inputs)


def draft_graph(garment, pose_image: str, *, tag, seed, steps, width, height, flat=False, pose_strength=1.0,
                pose_json: str | None = None, sampler="euler", scheduler="normal", cfg=1.0) -> dict:
    """A draft for this caption and pose: the hierarchical schedule, or (flat) the whole caption as one prompt.
    With `pose_json` (the figure's POSE_KEYPOINT), the attributes join by area of their body part (the paper's
    order ablation) instead of in the paper's order."""
    from support.graphs import Graph, add_scheduler

    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=QUALITY_CHECKPOINT)
    model, clip, vae = ckpt.out(0), ckpt.out(1), ckpt.out(2)
    if flat:
        positive = g.add("CLIPTextEncode", text=garment.caption(), clip=clip).out(0)
    elif pose_json is not None:
        design = add_design(g, garment)
        masks = add_pose_masks(g, garment, design, pose_json, width, height)
        positive = add_scheduler(g, design, clip, model, steps, scheduler, attribute_order="by area",
                                 body_masks=masks.out(0)).out(0)
    else:
        positive = add_scheduler(g, add_design(g, garment), clip, model, steps, scheduler).out(0)
    negative = g.add("CLIPTextEncode", text="", clip=clip).out(0)
    posed = g.add("HieraFashApplyPoseControlNet", positive=positive, negative=negative,
                  control_net=g.add("ControlNetLoader", control_net_name=QUALITY_CONTROLNET).out(0),
                  pose_image=g.add("LoadImage", image=pose_image).out(0), strength=pose_strength, band=BAND_ALL,
                  start_percent=0.0, end_percent=1.0)
    latent = g.add("EmptyLatentImage", width=width, height=height, batch_size=1).out(0)
    sampled = g.add("KSampler", model=model, positive=posed.out(0), negative=posed.out(1), latent_image=latent,
                    seed=seed, steps=steps, cfg=cfg, sampler_name=sampler, scheduler=scheduler, denoise=1.0).out(0)
    g.add("HieraFashBenchCapture", tag=tag, image=g.add("VAEDecode", samples=sampled, vae=vae).out(0))
    return g.prompt()


def _edit_setup(g, garment, source: str, pose_image: str, pose_json: str, *, steps, width, height, masked,
                scheduler):
    """What every edit graph shares: the models, the source image, the edited design, its pose masks (unmasked:
    every region widened to the whole image), the schedule and the pose-conditioned prompts."""
    from support.graphs import add_scheduler

    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=QUALITY_CHECKPOINT)
    model, clip, vae = ckpt.out(0), ckpt.out(1), ckpt.out(2)
    image = g.add("LoadImage", image=source).out(0)
    design = add_design(g, garment)
    extra = {} if masked else {"external_mask": g.add("SolidMask", value=1.0, width=width, height=height).out(0),
                               "external_mode": "union"}
    masks = add_pose_masks(g, garment, design, pose_json, width, height, image=image, **extra)
    sched = add_scheduler(g, design, clip, model, steps, scheduler)
    negative = g.add("CLIPTextEncode", text="", clip=clip).out(0)
    posed = g.add("HieraFashApplyPoseControlNet", positive=sched.out(0), negative=negative,
                  control_net=g.add("ControlNetLoader", control_net_name=QUALITY_CONTROLNET).out(0),
                  pose_image=g.add("LoadImage", image=pose_image).out(0), strength=1.0, band=BAND_ALL,
                  start_percent=0.0, end_percent=1.0)
    return model, vae, image, sched, masks, posed


def _edit_run(g, model, vae, image, sched, masks, posed, fields, *, seed, steps, cfg, sampler, scheduler):
    """One Attribute Edit sampling pass over `fields`: (decoded image, edit mask)."""
    edit = g.add("HieraFashAttributeEdit", model=model, vae=vae, image=image, schedule=sched.out(1),
                 body_masks=masks.out(0), edit_attributes=", ".join(label(f) for f in fields))
    sampled = g.add("KSampler", model=edit.out(0), positive=posed.out(0), negative=posed.out(1),
                    latent_image=edit.out(1), seed=seed, steps=steps, cfg=cfg, sampler_name=sampler,
                    scheduler=scheduler, denoise=1.0).out(0)
    return g.add("VAEDecode", samples=sampled, vae=vae).out(0), edit.out(2)


def edit_graph(garment, fields, source: str, pose_image: str, pose_json: str, *, tag, seed, steps, width,
               height, masked=True, sampler="euler", scheduler="normal", cfg=1.0) -> dict:
    """Attribute Edit of `fields` on the source figure towards `garment` (the edited design), in one sampling
    pass, then Preserve Source. Unmasked: every region widened to the whole image, the rest the same."""
    from support.graphs import Graph

    g = Graph()
    model, vae, image, sched, masks, posed = _edit_setup(g, garment, source, pose_image, pose_json, steps=steps,
                                                         width=width, height=height, masked=masked,
                                                         scheduler=scheduler)
    raw, mask = _edit_run(g, model, vae, image, sched, masks, posed, fields, seed=seed, steps=steps, cfg=cfg,
                          sampler=sampler, scheduler=scheduler)
    kept = g.add("HieraFashPreserveSource", image=raw, source=image, mask=mask).out(0)
    g.add("HieraFashBenchCapture", tag=tag, image=kept, raw_image=raw, source_image=image, mask=mask)
    return g.prompt()


def sequential_edit_graph(garment, fields, source: str, pose_image: str, pose_json: str, *, tag, seed, steps,
                          width, height, sampler="euler", scheduler="normal", cfg=1.0) -> dict:
    """The official way to edit several attributes: one run per attribute, in turn, each on the previous run's
    decoded picture, each opening only its own region at its own start, with no Preserve Source (the official
    demo's "send to attribute editing" loop). The prompts are the pack's schedule, not the demo's one prompt
    per run."""
    from support.graphs import Graph

    g = Graph()
    model, vae, source_image, sched, masks, posed = _edit_setup(g, garment, source, pose_image, pose_json,
                                                                steps=steps, width=width, height=height,
                                                                masked=True, scheduler=scheduler)
    image = source_image
    for i, field in enumerate(fields):
        image, _ = _edit_run(g, model, vae, image, sched, masks, posed, [field], seed=seed + i, steps=steps,
                             cfg=cfg, sampler=sampler, scheduler=scheduler)
    g.add("HieraFashBenchCapture", tag=tag, image=image, source_image=source_image)
    return g.prompt()


def round_trip_graph(source: str, *, tag) -> dict:
    """The VAE alone: encode and decode a figure (the ceiling of what a model drawing through it can show)."""
    from support.graphs import Graph

    g = Graph()
    ckpt = g.add("CheckpointLoaderSimple", ckpt_name=QUALITY_CHECKPOINT)
    encoded = g.add("VAEEncode", pixels=g.add("LoadImage", image=source).out(0), vae=ckpt.out(2)).out(0)
    g.add("HieraFashBenchCapture", tag=tag, image=g.add("VAEDecode", samples=encoded, vae=ckpt.out(2)).out(0))
    return g.prompt()


# --- the run -------------------------------------------------------------------------------------------


def build_and_train(work: Path, args) -> dict:
    """Dataset, base, `hierafash train --mode base` (niced, time-boxed) and the ComfyUI files; reuses what exists."""
    from hierafash_cli.runtime import comfyui_dir

    info: dict = {}
    dataset = work / "dataset"
    if not (dataset / "test.json").is_file():
        started = time.perf_counter()
        synthetic.write_dataset(dataset, args.train, args.test, args.seed)
        info["dataset_s"] = round(time.perf_counter() - started, 1)
    if not args.start and not (work / "base" / "unet").is_dir():
        subprocess.run([sys.executable, str(BENCH / "quality_model.py"), "build", str(work / "base")], check=True)
    trained = work / "trained"
    start = ["--base", str(args.start / "base"), "--controlnet", str(args.start / "controlnet.safetensors"),
             "--lr-warmup-steps", str(START_WARMUP)] if args.start else ["--base", str(work / "base")]
    if not (trained / "base" / "unet").is_dir():
        command = ["nice", "-n", "5", sys.executable, "-m", "hierafash_cli", "train", "--mode", "base",
                   "--dataset", str(dataset), *start, "--output", str(trained),
                   "--steps", str(args.max_steps), "--max-minutes", str(args.minutes), "--batch-size",
                   str(args.batch_size), "--lr", str(args.lr), "--seed", str(args.seed),
                   "--empty-prompts", str(args.empty_prompts), "--no-progress"]
        subprocess.run(command, check=True, cwd=REPO)
    losses = [json.loads(line) for line in (trained / "loss.jsonl").read_text().splitlines()]
    info["train"] = {"steps": len(losses), "seconds": losses[-1]["seconds"] if losses else 0.0,
                     "first10_mean": float(np.mean([r["loss"] for r in losses[:10]])),
                     "last10_mean": float(np.mean([r["loss"] for r in losses[-10:]])),
                     "batch_size": args.batch_size, "lr": args.lr, "train_figures": args.train,
                     "empty_prompts": args.empty_prompts}
    if args.start:
        earlier = (args.start / "loss.jsonl").read_text().splitlines()
        info["train"]["started_from"] = {"folder": str(args.start), "steps": len(earlier),
                                         "seconds": json.loads(earlier[-1])["seconds"] if earlier else 0.0}
    checkpoint = work / "models" / QUALITY_CHECKPOINT
    if not checkpoint.is_file():
        subprocess.run([sys.executable, str(BENCH / "quality_model.py"), "to-comfy", str(trained / "base"),
                        str(checkpoint)], check=True, cwd=comfyui_dir())
    shutil.copy(trained / "controlnet.safetensors", work / "models" / QUALITY_CONTROLNET)
    parity = work / "models" / "parity.json"
    subprocess.run([sys.executable, str(BENCH / "quality_model.py"), "compare", str(trained / "base"),
                    str(checkpoint), str(parity)], check=True, cwd=comfyui_dir())
    info["comfy_parity"] = json.loads(parity.read_text())
    return info


def install(work: Path, home: Path) -> list[str]:
    """Copy the trained model into the `make run` ComfyUI (HOME/models) for the small-model template; a different
    file of the same name there is left alone. Returns one line per file saying what happened."""
    import filecmp

    lines = []
    for name, folder in MODEL_FOLDERS:
        made, target = work / "models" / name, home / "models" / folder / name
        if target.is_file() and not filecmp.cmp(made, target, shallow=False):
            lines.append(f"left alone: {target} exists and is another file; this run's model is {made}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, target)
        lines.append(f"installed for `make run`: {target}")
    return lines


def as_array(image) -> np.ndarray:
    """ComfyUI IMAGE [1, H, W, 3] -> [H, W, 3] float in 0..1."""
    return image[0].float().cpu().numpy()


def evaluate(work: Path, args) -> dict:
    """Drafts, edits and round trips through the pack's nodes, read back by the oracles."""
    from comfy_inprocess import InProcessComfy

    from hierafash_cli.server import choose_device, prepare_base

    dataset = work / "dataset"
    base = prepare_base(work / "comfy", PROBE_PACKS)
    for name, folder in MODEL_FOLDERS:
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "models" / name, base / "models" / folder / name)
    entries = json.loads((dataset / "test.json").read_text())[:args.count]
    truths = json.loads((dataset / "test_attributes.json").read_text())
    comfy = InProcessComfy(base, choose_device(args.device)[0])
    width, height = synthetic.DEFAULT_SIZE
    rows, timings = [], {"draft_s": [], "edit_s": []}
    pictures = []
    for i, entry in enumerate(entries):
        stem = Path(entry["gt"]).stem
        spec = synthetic.FigureSpec.from_json(truths[entry["gt"]])
        pose_json = (dataset / f"test_pose/json/{stem}.json").read_text()
        pose_keypoint = json.loads(pose_json)
        source, pose = f"quality_{stem}.png", f"quality_{stem}_pose.png"
        shutil.copy(dataset / entry["gt"], base / "input" / source)
        shutil.copy(dataset / entry["pose"], base / "input" / pose)
        seed = args.seed + i
        row = {"figure": entry["gt"], "seed": seed, "truth": oracles.truth(spec)}
        common = dict(seed=seed, steps=args.steps, cfg=args.cfg, width=width, height=height)
        images = {}
        for variant, options in (("hierarchical", {}), ("flat", {"flat": True}),
                                 ("by_area", {"pose_json": pose_json}),
                                 *((("no_pose", {"pose_strength": 0.0}),) if args.no_pose else ())):
            timings["draft_s"].append(comfy.run(draft_graph(spec.garment, pose, tag=variant, **common, **options)))
            images[variant] = as_array(comfy.captured[variant]["image"])
            row[variant] = safe_read(images[variant], pose_keypoint)
        comfy.run(round_trip_graph(source, tag="round_trip"))
        images["round_trip"] = as_array(comfy.captured["round_trip"]["image"])
        row["round_trip"] = safe_read(images["round_trip"], pose_keypoint)
        for variant in GENERATED:  # kept for the feature metrics (and a later re-scoring)
            if variant in images:
                save_image(work / "images" / variant / f"{stem}.png", images[variant])
        field, value = pick_edit(spec.garment, i)
        edited = replace(spec.garment, **{field: value})
        row["edit"] = {"field": field, "from": getattr(spec.garment, field), "to": value}
        region = None  # the masked run's edit mask: where the edit may change; both variants are measured outside it
        for variant, masked in (("masked", True), ("unmasked", False)):
            timings["edit_s"].append(comfy.run(edit_graph(edited, [field], source, pose, pose_json,
                                                          tag=variant, masked=masked, **common)))
            captured = comfy.captured[variant]
            out, raw, src = (as_array(captured[k]) for k in ("image", "raw_image", "source_image"))
            region = captured["mask"][0].float().cpu().numpy() if region is None else region
            images[f"edit_{variant}"] = out
            read = safe_read(out, pose_keypoint)
            others = [f for f, v in row["truth"].items() if v is not None and f != field]
            row[f"edit_{variant}"] = {"read": read, "success": read[field] == value,
                                      "others_kept": sum(read[f] == row["truth"][f] for f in others),
                                      "others_measured": len(others),
                                      "locality": locality(out, src, region),
                                      "locality_raw": locality(raw, src, region)}
        targets = dict(pick_edit(spec.garment, k) for k in range(len(editable_fields(spec.garment))))
        all_edited = replace(spec.garment, **targets)
        row["multi_edit"] = {"fields": list(targets), "to": targets}
        graphs = {"one_pass": edit_graph(all_edited, list(targets), source, pose, pose_json,
                                         tag="one_pass", **common),
                  "sequential": sequential_edit_graph(all_edited, list(targets), source, pose,
                                                      pose_json, tag="sequential", **common)}
        for variant, graph in graphs.items():
            timings.setdefault(f"multi_{variant}_s", []).append(comfy.run(graph))
        union = comfy.captured["one_pass"]["mask"][0].float().cpu().numpy()
        for variant in graphs:
            out = as_array(comfy.captured[variant]["image"])
            src = as_array(comfy.captured[variant]["source_image"])
            row[f"multi_{variant}"] = score_multi_edit(safe_read(out, pose_keypoint), row["truth"], targets,
                                                       locality(out, src, union))
        if i < args.grid_rows:
            pose_map = load_image(dataset / entry["pose"])
            pictures.append([src, pose_map, images["hierarchical"], images["flat"], images["edit_masked"],
                             images["edit_unmasked"]])
        rows.append(row)
        print(f"[{i + 1}/{len(entries)}] {entry['gt']}: edit {field} -> {value}", flush=True)
    return {"rows": rows, "timings": {k: round(float(np.mean(v)), 2) for k, v in timings.items() if v},
            "device": comfy.device_name, "pictures": pictures}


def summarize(rows: list[dict], variants) -> dict:
    """Per variant, the oracle scores against the prompt's truth; per edit variant, success and locality."""
    out = {v: oracles.score_reads((r[v], r["truth"]) for r in rows) for v in variants if v in rows[0]}
    for variant in ("edit_masked", "edit_unmasked"):
        if variant not in rows[0]:
            continue
        per_field: dict[str, dict] = {}
        for r in rows:
            cell = per_field.setdefault(r["edit"]["field"], {"edits": 0, "success": 0, "locality_mean_abs": [],
                                                             "locality_raw_mean_abs": []})
            cell["edits"] += 1
            cell["success"] += bool(r[variant]["success"])
            cell["locality_mean_abs"].append(r[variant]["locality"]["mean_abs"])
            cell["locality_raw_mean_abs"].append(r[variant]["locality_raw"]["mean_abs"])
        for cell in per_field.values():
            for key in ("locality_mean_abs", "locality_raw_mean_abs"):
                cell[key] = round(float(np.mean(cell[key])), 5)
        out[variant] = per_field
        out[f"{variant}_others_kept"] = {"kept": sum(r[variant]["others_kept"] for r in rows),
                                         "measured": sum(r[variant]["others_measured"] for r in rows)}
    for variant in ("multi_one_pass", "multi_sequential"):
        if variant in rows[0]:
            success = [ok for r in rows for ok in r[variant]["success"].values()]
            out[variant] = {"targets": len(success), "success": sum(success),
                            "concept_kept": sum(r[variant]["concept_kept"] for r in rows),
                            "concept_measured": sum(r[variant]["concept_measured"] for r in rows),
                            "locality_mean_abs": round(float(np.mean([r[variant]["locality"]["mean_abs"]
                                                                      for r in rows])), 5),
                            "locality_max_abs": round(float(max(r[variant]["locality"]["max_abs"] for r in rows)), 5)}
    return out


def save_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(synthetic.png_bytes(image))
    return path


def load_image(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


def generation_metrics(work: Path, rows: list[dict], clip_seed: int = 1000) -> dict:
    """FID, Coverage and CLIP-S of each generated variant (hierafash_core.metrics) in the features of a tiny CLIP
    trained on freshly drawn figures (bench/quality_clip.py; cached in WORK/tiny_clip), against the dataset's
    test figures; plus fresh figures of the generator as the scale of a perfect model at this count, and the
    tiny CLIP's own zero-shot accuracy on held-out figures."""
    import quality_clip

    from hierafash_core import metrics

    folder = work / "tiny_clip"
    started = time.perf_counter()
    if not (folder / "tiny_clip.pt").is_file():
        quality_clip.save(quality_clip.train(seed=clip_seed), folder)
    model = quality_clip.load(folder)
    trained_s = round(time.perf_counter() - started, 1)
    dataset = work / "dataset"
    truths = json.loads((dataset / "test_attributes.json").read_text())
    real_paths = sorted(json.loads((dataset / "test.json").read_text()), key=lambda e: e["gt"])
    real = quality_clip.image_features(model, [load_image(dataset / e["gt"]) for e in real_paths])
    count = len(rows)
    nearest_k = min(5, count - 1)
    fresh = synthetic.sample_figures(count, clip_seed + 1)
    candidates = {"fresh_figures": (quality_clip.draw(fresh), [s.garment for s in fresh])}
    prompts = [synthetic.FigureSpec.from_json(truths[r["figure"]]).garment for r in rows]
    for variant in GENERATED:
        paths = [work / "images" / variant / f"{Path(r['figure']).stem}.png" for r in rows]
        if all(p.is_file() for p in paths):
            candidates[variant] = ([load_image(p) for p in paths], prompts)
    out = {"features": "tiny CLIP trained on the synthetic figures (bench/quality_clip.py), 128-d",
           "real": f"the {len(real)} test figures of the dataset", "count": count, "nearest_k": nearest_k,
           "clip_s_scale": 100.0, "tiny_clip_train_s": trained_s}
    for name, (images, garments) in candidates.items():
        fake = quality_clip.image_features(model, images)
        text = quality_clip.text_features(model, garments)
        out[name] = {"fid": round(metrics.frechet_distance_between(real, fake).value, 4),
                     "coverage": metrics.prdc(real, fake, nearest_k).coverage,
                     "clip_s": round(metrics.clip_score(fake, text, 100.0), 3)}
    held_out = synthetic.sample_figures(300, clip_seed + 2)
    out["tiny_clip_zero_shot"] = quality_clip.zero_shot_accuracy(model, held_out, quality_clip.draw(held_out))
    return out


def save_grid(path: Path, pictures: list[list[np.ndarray]]) -> Path:
    """Rows of equally sized [H, W, 3] images (0..1) as one PNG, a 2 px white gap between tiles."""
    from PIL import Image

    gap = 2
    tiles = [np.concatenate(sum(([np.clip(p, 0, 1), np.ones((p.shape[0], gap, 3))] for p in row), [])[:-1], 1)
             for row in pictures]
    grid = np.concatenate(sum(([t, np.ones((gap, t.shape[1], 3))] for t in tiles), [])[:-1], 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(path, optimize=True)
    return path
