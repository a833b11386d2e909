"""`hierafash dataset`: photos to a HieraFashion dataset (prepare), check one (check), export it for other trainers."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from hierafash_core.dataset import SPLITS, check_dataset, read_split
from hierafash_core.dataset_prep import (
    DEFAULT_SIZE,
    WHITE,
    caption_counts,
    export_columns,
    parse_size,
    prepare_dataset,
    read_labels,
)
from hierafash_core.errors import HieraFashError
from hierafash_core.pose_detect import BODY_WEIGHTS, DETECT_RESOLUTION, HAND_WEIGHTS, find_weights, load_openpose

from .server import DEFAULT_HOME

# The core names inputs by their Python names; the user typed these.
OPTIONS = {"src": "SRC", "dst": "DST", "labels": "--labels", "size": "--size", "test_ratio": "--test-ratio",
           "body_model": "--weights", "hand_model": "--weights", "out": "OUT", "dataset": "ROOT", "pad": "--pad",
           "tokenizer": "--tokenizer"}


def fail(command: str, exc: HieraFashError, default: str) -> int:
    option = OPTIONS.get(exc.input_name or "", exc.input_name or default)
    print(f"hierafash dataset {command}: {option}: {exc.problem}", file=sys.stderr)
    return 2


def parse_pad(text: str) -> tuple[int, int, int]:
    try:
        pad = tuple(int(v) for v in text.split(","))
    except ValueError:
        pad = ()
    if len(pad) != 3 or not all(0 <= v <= 255 for v in pad):
        raise HieraFashError(f"pad colour {text!r} must be R,G,B with values 0-255, e.g. 255,255,255", "pad")
    return pad


def cmd_prepare(args) -> int:
    try:
        size, pad = parse_size(args.size), parse_pad(args.pad)
        labels = read_labels(args.labels)
        body = find_weights(BODY_WEIGHTS, [args.weights], "body_model")
        hand = None if args.no_hands else find_weights(HAND_WEIGHTS, [args.weights], "hand_model")
        detector = load_openpose(body, hand, args.device, args.detect_resolution)
        name = f"openpose {body.name} + {hand.name if hand else 'no hands'} at {args.detect_resolution}"
        report = prepare_dataset(args.src, args.dst, labels, detector, size, args.test_ratio, args.seed, pad,
                                 detector_name=name)
    except HieraFashError as exc:
        return fail("prepare", exc, "SRC")
    print("\n".join(report.lines()))
    if not report.splits.get("train"):
        print("hierafash dataset prepare: SRC: no photo made it into the dataset; see the skipped list above",
              file=sys.stderr)
        return 1
    print(f"next: hierafash dataset check {args.dst}")
    return 0


def summary_lines(root: Path, splits, tokenizer=None) -> tuple[list[str], bool]:
    """Counts per split, size and caption value, then every problem grouped by file; and whether it is ok."""
    report = check_dataset(root, splits, tokenizer)
    lines = [f"{root}: " + ", ".join(f"{split} {n}" for split, n in report.samples.items()) + " samples"]
    lines.append("sizes: " + (", ".join(f"{w}x{h} ({n})" for (w, h), n in report.sizes.most_common()) or "none read"))
    samples = [s for split in report.samples for s in read_split(root, split)]
    for name, counter in caption_counts(samples).items():
        lines.append(f"{name}: " + ", ".join(f"{value} ({n})" for value, n in counter.most_common()))
    by_file = defaultdict(list)
    for problem in report.problems:
        by_file[problem.path].append(problem)
    lines.append(f"problems: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    for path, problems in sorted(by_file.items()):
        shown = path.relative_to(root) if path.is_relative_to(root) and path != root else path
        lines.append(f"  {shown}")
        lines += [f"    {p.severity}: {p.message}" for p in problems]
    lines.append("ok: ready to train" if report.ok else "not ready: fix the errors above")
    return lines, report.ok


def cmd_check(args) -> int:
    tokenizer = None
    if args.tokenizer is not None:
        try:
            from hierafash_train.models import load_tokenizer
        except ImportError as exc:
            print(f"hierafash dataset check: --tokenizer: counting CLIP tokens needs the train extra ({exc}): "
                  f'pip install "hierafashdiff[train]"', file=sys.stderr)
            return 2
        try:
            tokenizer = load_tokenizer(args.tokenizer, pad_with_zero=False)  # padding does not change the count
        except HieraFashError as exc:
            return fail("check", exc, "--tokenizer")
    lines, ok = summary_lines(Path(args.root), args.splits, tokenizer)
    print("\n".join(lines))
    return 0 if ok else 1


def cmd_export(args) -> int:
    root = Path(args.root)
    try:
        samples = {split: read_split(root, split) for split in args.splits}
        written = export_columns(samples, args.out)
    except HieraFashError as exc:
        return fail("export-columns", exc, "ROOT")
    for split, count in written.items():
        print(f"{Path(args.out) / split / 'metadata.jsonl'}: {count} rows (image, conditioning_image, text)")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `dataset` (prepare, check, export-columns) on the `hierafash` command's subparsers."""
    parser = subparsers.add_parser("dataset", help="make, check and export HieraFashion datasets",
                                   description=__doc__ + " See docs/dataset.md.")
    sub = parser.add_subparsers(dest="dataset_command", required=True)

    prepare = sub.add_parser(
        "prepare", help="photos + labels -> images, pose maps, captions, train.json/test.json",
        description="Fit every labelled photo of SRC to the training size, detect its pose with OpenPose "
                    "(controlnet-aux, the 'pose' extra; weights are local files, non-commercial licence), draw the "
                    "pose map, build the caption from the labels, and write the official layout into DST. "
                    "Re-running skips what is done. Nothing in SRC is written.")
    prepare.add_argument("src", type=Path, help="folder of photos (searched at any depth)")
    prepare.add_argument("dst", type=Path, help="dataset folder to write (outside SRC)")
    prepare.add_argument("--labels", type=Path, required=True,
                         help="CSV or JSON list of rows: image (path under SRC), category, style, occasion, effect, "
                              "feeling, A1..A5 (vocabulary values; empty attribute cells are left out)")
    prepare.add_argument("--weights", type=Path, default=DEFAULT_HOME / "models" / "openpose",
                         help=f"folder holding {BODY_WEIGHTS} and {HAND_WEIGHTS} (from "
                              "huggingface.co/lllyasviel/Annotators; default: %(default)s)")
    prepare.add_argument("--no-hands", action="store_true", help="detect bodies only (faster; no hand file needed)")
    prepare.add_argument("--size", default=f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}",
                         help="training size WIDTHxHEIGHT, multiples of 64 (default: %(default)s, the paper's)")
    prepare.add_argument("--pad", default=",".join(map(str, WHITE)),
                         help="R,G,B of the padding around a photo of another aspect ratio (default: white)")
    prepare.add_argument("--test-ratio", type=float, default=0.1, help="share of samples in test.json (default 0.1)")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    prepare.add_argument("--device", default="cpu", help="torch device of the detector, e.g. cuda (default cpu)")
    prepare.add_argument("--detect-resolution", type=int, default=DETECT_RESOLUTION,
                         help="short side the detector sees (default %(default)s, as the official pipeline)")
    prepare.set_defaults(func=cmd_prepare)

    check = sub.add_parser("check", help="validate a dataset and summarise it",
                           description="Read ROOT/train.json and test.json, check every file (missing, unreadable, "
                                       "sizes, pose/image mismatch, vocabulary) and print counts per category and "
                                       "attribute value, the size histogram and the problems by file. Exit status 1 "
                                       "when there is an error.")
    check.add_argument("root", type=Path, help="dataset folder")
    check.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to check")
    check.add_argument("--tokenizer", type=Path, default=None,
                       help="CLIP tokenizer folder (vocab.json, merges.txt; e.g. ComfyUI's comfy/sd1_tokenizer): "
                            "also flag captions over CLIP's 77 tokens (needs the train extra)")
    check.set_defaults(func=cmd_check)

    export = sub.add_parser("export-columns", help="write the image/conditioning_image/text layout other trainers read",
                            description="Write OUT/<split>/metadata.jsonl (columns image, conditioning_image, text; "
                                        "paths relative to it) with the images beside it, as diffusers' "
                                        "train_controlnet.py and Hugging Face datasets read. OUT must be new or empty.")
    export.add_argument("root", type=Path, help="dataset folder (train.json, test.json)")
    export.add_argument("out", type=Path, help="new folder to write")
    export.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS, help="splits to export")
    export.set_defaults(func=cmd_export)
    return parser
