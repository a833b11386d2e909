"""`make quality`: the synthetic benchmark. Quick mode (default) checks that the quality pipeline runs end to end;
`--full` (`make quality FULL=1`) is the real run, bench/quality_full.py.

    python bench/quality.py [--train 8] [--test 48] [--steps 50] [--out bench/quality/quick.json]
    python bench/quality.py --full [--minutes 35] [--count 8] [--work DIR]   (writes bench/quality.json)

1. Draws a small synthetic dataset in the official layout (hierafash_core.synthetic) and times it.
2. Reads every attribute of the test split back from the written files with the oracles
   (hierafash_core.oracles) and fails below 98 % on any attribute.
3. Trains tiny seeded models (tests/train/tiny_models.py: a random-weight SD2-style UNet, VAE and CLIP built
   here, no download) with `hierafash train` for a few steps on the training split and fails unless the
   loss falls (mean of the last 10 steps below 0.8 x the first 10, as tests/train asserts on its own data).

Quick mode says nothing about generation or editing quality; the full mode does (QUALITY.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hierafash_cli.server import DEFAULT_HOME  # noqa: E402
from hierafash_core import oracles, synthetic  # noqa: E402

ORACLE_TARGET = 0.98
LOSS_DROP = 0.8  # last-10 mean must be below this fraction of the first-10 mean


def read_split_back(root: Path, split: str) -> dict[str, list[int]]:
    """Per attribute, [correct, measured] of the oracles on the split's written images and poses."""
    truth = json.loads((root / f"{split}_attributes.json").read_text())

    def pairs():
        for entry in json.loads((root / f"{split}.json").read_text()):
            image = np.asarray(Image.open(root / entry["gt"]).convert("RGB"), np.float32) / 255
            pose_keypoint = json.loads((root / f"{split}_pose/json/{Path(entry['gt']).stem}.json").read_text())
            yield (oracles.read_figure(image, pose_keypoint),
                   oracles.truth(synthetic.FigureSpec.from_json(truth[entry["gt"]])))

    return {field: [s["correct"], s["measured"]] for field, s in oracles.score_reads(pairs()).items()}


def train_tiny(dataset: Path, work: Path, steps: int) -> list[float]:
    """Losses of `hierafash train` (ControlNet mode) on tiny random models, one per step."""
    from train.tiny_models import build_base

    base = build_base(work / "base")
    command = [sys.executable, "-m", "hierafash_cli", "train", "--dataset", str(dataset), "--base", str(base),
               "--output", str(work / "trained"), "--steps", str(steps), "--batch-size", "4", "--lr", "1e-3",
               "--no-progress"]
    subprocess.run(command, check=True, cwd=REPO)
    return [json.loads(line)["loss"] for line in (work / "trained" / "loss.jsonl").read_text().splitlines()]


def machine() -> dict:
    cpu = platform.processor()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def run_full(args) -> int:
    """The full mode: train (time-boxed), then drafts, edits and ablations through the pack's nodes."""
    import quality_full as full

    started = time.perf_counter()
    work = Path(args.work or tempfile.mkdtemp(prefix="hierafash-quality-full-")).resolve()
    args.start = args.start.resolve() if args.start else None
    result = {"mode": "full", "machine_at_start": machine(), "work": str(work), "seed": args.seed}
    result |= full.build_and_train(work, args)
    evaluated = full.evaluate(work, args)
    result["device"], result["timings"] = evaluated["device"], evaluated["timings"]
    variants = ("hierarchical", "flat", "by_area", "no_pose", "round_trip")
    result["scores"] = full.summarize(evaluated["rows"], variants)
    result["generation_metrics"] = full.generation_metrics(work, evaluated["rows"])
    result["chance"] = {f: round(1 / len(synthetic.DRAWN_VALUES[f]), 3) for f in oracles.FIELDS}
    result["rows"] = evaluated["rows"]
    result["settings"] = {"count": args.count, "sampler_steps": args.steps, "sampler": "euler", "scheduler": "normal",
                          "cfg": args.cfg, "size": list(synthetic.DEFAULT_SIZE)}
    result["machine_at_end"] = machine()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["installed"] = full.install(work, args.home)
    grid = full.save_grid(args.grid, evaluated["pictures"]) if evaluated["pictures"] else None
    result["grid"] = str(grid.relative_to(REPO) if grid.is_relative_to(REPO) else grid) if grid else None
    args.full_out.write_text(json.dumps(result, indent=1) + "\n")
    for variant, scores in result["scores"].items():
        if variant.startswith("multi_"):
            print(variant, scores)
        elif variant.endswith("_others_kept"):
            print(variant, f"{scores['kept']}/{scores['measured']}")
        elif variant.startswith("edit_"):
            print(variant, {f: f"{c['success']}/{c['edits']} loc {c['locality_mean_abs']}" for f, c in scores.items()})
        else:
            print(variant, {f: f"{c['correct']}/{c['measured']}" for f, c in scores.items() if c["measured"]})
    for name, figures in result["generation_metrics"].items():
        if isinstance(figures, dict) and "fid" in figures:
            print(name, figures)
    print("\n".join(result["installed"]))
    print(f"quality full mode: {result['wall_s']} s; wrote {args.full_out} and {grid}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=None, help="training figures (quick 8, full 600)")
    parser.add_argument("--test", type=int, default=None, help="held-out figures (quick 48, full 24)")
    parser.add_argument("--steps", type=int, default=None,
                        help="quick: training steps (50); full: sampler steps per draft and edit (10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "quality" / "quick.json")
    full = parser.add_argument_group("full mode")
    full.add_argument("--full", action="store_true", help="the real run (bench/quality_full.py)")
    full.add_argument("--work", default=None, help="work folder (kept; a rerun reuses its dataset, model, training)")
    full.add_argument("--minutes", type=float, default=35.0, help="training time budget")
    full.add_argument("--max-steps", type=int, default=100000, help="training steps at most")
    full.add_argument("--batch-size", type=int, default=2)
    full.add_argument("--lr", type=float, default=5e-4)
    full.add_argument("--start", type=Path, default=None,
                      help="train on from an earlier run's WORK/trained folder instead of the untrained model")
    full.add_argument("--empty-prompts", type=float, default=0.0,
                      help="caption dropout while training (hierafash train --empty-prompts), for --cfg > 1")
    full.add_argument("--cfg", type=float, default=1.0,
                      help="CFG of drafts and edits (1: no unconditional branch, as a model trained without "
                           "--empty-prompts needs)")
    full.add_argument("--count", type=int, default=8, help="test figures drafted and edited")
    full.add_argument("--no-pose", action="store_true", help="also draft without pose (ControlNet strength 0)")
    full.add_argument("--device", default="auto", help="ComfyUI device: auto or cpu")
    full.add_argument("--grid-rows", type=int, default=4, help="test figures in the picture grid")
    full.add_argument("--grid", type=Path, default=REPO / "bench" / "quality" / "full_grid.png")
    full.add_argument("--full-out", type=Path, default=REPO / "bench" / "quality.json")
    full.add_argument("--home", type=Path, default=DEFAULT_HOME,
                      help="ComfyUI base folder the trained model is installed into (that of `make run`)")
    args = parser.parse_args()
    if args.full:
        args.train, args.test, args.steps = args.train or 600, args.test or 24, args.steps or 10
        return run_full(args)
    args.train, args.test, args.steps = args.train or 8, args.test or 48, args.steps or 50

    with tempfile.TemporaryDirectory(prefix="hierafash-quality-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        dataset = synthetic.write_dataset(work / "dataset", args.train, args.test, args.seed)
        drawn = time.perf_counter() - started
        scores = read_split_back(dataset, "test")
        losses = train_tiny(dataset, work, args.steps)

    accuracy = {field: correct / measured for field, (correct, measured) in scores.items()}
    first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
    failures = [f"oracle {field}: {a:.3f} < {ORACLE_TARGET}" for field, a in accuracy.items() if a < ORACLE_TARGET]
    if not last < LOSS_DROP * first:
        failures.append(f"loss did not fall: last-10 mean {last:.4f} vs first-10 mean {first:.4f}")
    result = {
        "mode": "quick",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "dataset": {"train": args.train, "test": args.test, "size": list(synthetic.DEFAULT_SIZE),
                    "seconds": round(drawn, 2), "figures_per_second": round((args.train + args.test) / drawn, 1)},
        "oracles": {field: {"correct": c, "measured": m} for field, (c, m) in scores.items()},
        "train": {"steps": len(losses), "first10_mean": round(first, 5), "last10_mean": round(last, 5)},
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for field, a in accuracy.items():
        print(f"oracle {field:16s} {scores[field][0]:4d}/{scores[field][1]:<4d} {a:.3f}")
    print(f"dataset: {args.train + args.test} figures in {drawn:.1f} s; train: loss {first:.4f} -> {last:.4f} "
          f"over {len(losses)} steps")
    print("\n".join(failures) if failures else f"quality quick mode: OK ({args.out})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
