"""`hierafash eval`: the paper's FID (in CLIP space), PRDC/Coverage and CLIP-S, for generation and per edited attribute.

`eval generation` compares one or more folders of generated images (one setting each) with a real folder;
`eval edit` compares edited folders (one per attribute or attribute set) with their sources and masks, and
adds locality: the mean absolute change outside the mask (about 0 for an exact edit) and inside it.
`--inception FILE` adds the classic Inception FID from pytorch-fid's weights file (never downloaded).
Writes a JSON with every figure, the CLIP's sha256 and the settings; prints a table; `--plot` draws a PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hierafash_core import clip_features as cf
from hierafash_core import evaluation as ev
from hierafash_core import inception_features as inc
from hierafash_core.errors import HieraFashError
from hierafash_core.metrics import DEFAULT_NEAREST_K, frechet_distance_between, prdc
from hierafash_core.metrics import clip_score as clip_s

EXIT_BAD_INPUT = 2
DEFAULT_CACHE = Path.home() / ".cache" / "hierafash" / "features"
TABLE_COLUMNS = (("FID", "fid"), ("FID (Inc)", "fid_inception"), ("precision", "precision"), ("recall", "recall"),
                 ("density", "density"), ("coverage", "coverage"), ("CLIP-S", "clip_s"),
                 ("outside", "change_outside_mask"), ("inside", "change_inside_mask"))


class Blame:
    """Re-labels a core error with the option it came from."""

    def __init__(self, option: str, **by_input: str):
        self.option, self.by_input = option, by_input

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, HieraFashError):
            exc.input_name = self.by_input.get(exc.input_name, self.option)
        return False


def progress_bar(total: int, label: str):
    """A tqdm bar on stderr (silent when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="img", disable=None, file=sys.stderr)


class Evaluator:
    """One CLIP, one cache: features of folders, and the metrics of a folder against a reference."""

    def __init__(self, args):
        with Blame("--clip", tokenizer="--tokenizer"):
            self.clip = cf.load_clip(args.clip, tokenizer=args.tokenizer, device=args.device)
        self.inception = None
        if args.inception:
            with Blame("--inception"):
                self.inception = inc.load_inception(args.inception, device=args.device)
        self.cache_dir = None if args.no_cache else Path(args.cache_dir)
        self.batch_size, self.nearest_k = args.batch_size, args.k

    def features(self, images: list[Path], option: str, model: cf.FeatureModel | None = None) -> cf.FolderFeatures:
        model = model or self.clip
        label = f"{images[0].parent.name} ({model.kind})"
        with Blame(option, batch_size="--batch-size"), progress_bar(len(images), label) as bar:
            return cf.folder_features(model, images, self.cache_dir, option, self.batch_size, bar.update)

    def reference(self, path: Path, option: str) -> tuple[cf.FolderFeatures, list[Path] | None]:
        """A reference set and its images: a folder, or a features file (.npz) an earlier run cached (no images)."""
        if path.suffix == ".npz" and path.is_file():
            with Blame(option):
                return cf.read_features_file(path, self.clip, option), None
        images = images_of(path, option)
        return self.features(images, option), images

    def inception_features(self, images: list[Path] | None, option: str) -> cf.FolderFeatures | None:
        """Inception features of a folder when --inception is given, else None."""
        if self.inception is None:
            return None
        if images is None:
            raise HieraFashError("a cached features .npz holds CLIP features only: give the image folder when "
                                 "--inception is used", option)
        return self.features(images, option, self.inception)

    def inception_fid(self, real: cf.FolderFeatures | None, images: list[Path], real_option: str,
                      fake_option: str) -> dict:
        """fid_inception (and its covariance offset) of a folder against the reference, or {} without --inception."""
        if real is None:
            return {}
        fake = self.inception_features(images, fake_option)
        with Blame(fake_option, real=real_option, fake=fake_option):
            fid = frechet_distance_between(real.features, fake.features)
        return {"fid_inception": fid.value, "fid_inception_covariance_offset": fid.covariance_offset,
                "inception_cache_file": str(fake.cache_file) if fake.cache_file else None}

    def compare(self, real: cf.FolderFeatures, fake: cf.FolderFeatures, real_option: str, fake_option: str) -> dict:
        with Blame(fake_option, real=real_option, fake=fake_option, nearest_k="--k"):
            fid = frechet_distance_between(real.features, fake.features)
            scores = prdc(real.features, fake.features, nearest_k=self.nearest_k)
        return {"fid": fid.value, "fid_covariance_offset": fid.covariance_offset, "precision": scores.precision,
                "recall": scores.recall, "density": scores.density, "coverage": scores.coverage}

    def clip_score(self, images: list[Path], features: cf.FolderFeatures, captions: Path, k: int) -> float:
        with Blame("--captions", tokenizer="--tokenizer"):
            texts = ev.read_captions(images, captions, k)
            text_features = np.concatenate([self.clip.encode_texts(texts[i:i + self.batch_size])
                                            for i in range(0, len(texts), self.batch_size)])
        return clip_s(features.features, text_features, self.clip.logit_scale)

    def report(self, mode: str, args, reference: dict, results: list[dict]) -> dict:
        return {
            "mode": mode,
            "clip": {"source": self.clip.source, "sha256": self.clip.digest, "projection_dim": self.clip.projection_dim,
                     "logit_scale": self.clip.logit_scale, "device": str(self.clip.device)},
            "inception": None if self.inception is None else {
                "source": self.inception.source, "sha256": self.inception.digest, "preprocessing": inc.PREPROCESSING},
            "settings": {"nearest_k": self.nearest_k, "preprocessing": cf.PREPROCESSING, "batch_size": self.batch_size,
                         "captions": str(args.captions) if args.captions else None,
                         "cache_dir": str(self.cache_dir) if self.cache_dir else None},
            "reference": reference,
            "results": results,
        }


def folder_record(folder: Path, features: cf.FolderFeatures) -> dict:
    return {"folder": str(folder), "images": len(features.names),
            "cache_file": str(features.cache_file) if features.cache_file else None, "from_cache": features.from_cache}


def images_of(folder: Path, option: str) -> list[Path]:
    with Blame(option):
        return cf.list_images(folder, option)


def run_generation(args) -> dict:
    evaluator = Evaluator(args)
    real, real_images = evaluator.reference(args.real, "--real")
    real_inception = evaluator.inception_features(real_images, "--real")
    results = []
    for folder in args.fake:
        images = images_of(folder, "--fake")
        fake = evaluator.features(images, "--fake")
        row = {"setting": folder.name, **folder_record(folder, fake),
               **evaluator.compare(real, fake, "--real", "--fake"),
               **evaluator.inception_fid(real_inception, images, "--real", "--fake"),
               "caption_items": None, "clip_s": None}
        if args.captions:
            row["caption_items"] = args.caption_items
            row["clip_s"] = evaluator.clip_score(images, fake, args.captions, args.caption_items)
        results.append(row)
    return evaluator.report("generation", args, folder_record(args.real, real), results)


def run_edit(args) -> dict:
    if len(args.attribute) != len(args.edited):
        raise HieraFashError(f"{len(args.edited)} --edited folders but {len(args.attribute)} --attribute values: "
                             "give one attribute set per edited folder, in the same order", "--attribute")
    if len(args.masks) not in (1, len(args.edited)):
        raise HieraFashError(f"{len(args.masks)} --masks folders for {len(args.edited)} --edited folders: give one "
                             "mask folder per edited folder, or one for all", "--masks")
    with Blame("--attribute"):
        attribute_sets = [ev.attribute_ids(spec) for spec in args.attribute]
    evaluator = Evaluator(args)
    sources = images_of(args.source, "--source")
    reference_folder, reference_option = (args.real, "--real") if args.real else (args.source, "--source")
    reference, reference_images = evaluator.reference(reference_folder, reference_option)
    reference_inception = evaluator.inception_features(reference_images, reference_option)
    results = []
    for folder, mask_folder, attributes in zip(args.edited, args.masks * len(args.edited), attribute_sets):
        edited, masks = images_of(folder, "--edited"), images_of(mask_folder, "--masks")
        with Blame("--edited"):
            ev.check_same_names(sources, edited, "--source", "--edited")
        with Blame("--masks"):
            ev.check_same_names(sources, masks, "--source", "--masks")
        with Blame("--edited", masks="--masks"):
            change = ev.edit_change(sources, edited, masks)
        fake = evaluator.features(edited, "--edited")
        k = ev.caption_items(len(attributes))
        row = {"setting": "+".join(attributes), "attributes": list(attributes), **folder_record(folder, fake),
               "masks": str(mask_folder), **evaluator.compare(reference, fake, reference_option, "--edited"),
               **evaluator.inception_fid(reference_inception, edited, reference_option, "--edited"),
               "change_outside_mask": change.outside, "change_inside_mask": change.inside,
               "mask_fraction": change.mask_fraction, "caption_items": k, "clip_s": None}
        if args.captions:
            row["clip_s"] = evaluator.clip_score(edited, fake, args.captions, k)
        results.append(row)
    record = folder_record(reference_folder, reference) | {"role": reference_option, "source": str(args.source)}
    return evaluator.report("edit", args, record, results)


def format_table(report: dict) -> str:
    """A fixed-width table of the figures, one row per setting."""
    columns = [(title, key) for title, key in TABLE_COLUMNS if any(key in row for row in report["results"])]
    width = max(8, *(len(row["setting"]) for row in report["results"]))
    lines = [f"{'setting':<{width}} {'images':>6} " + " ".join(f"{title:>9}" for title, _ in columns)]
    for row in report["results"]:
        cells = ["—" if row.get(key) is None else f"{row[key]:.4f}" for _, key in columns]
        lines.append(f"{row['setting']:<{width}} {row['images']:>6} " + " ".join(f"{c:>9}" for c in cells))
    reference = report["reference"]
    role = " (--source: no --real given)" if reference.get("role") == "--source" else ""
    lines.append(f"reference: {reference['folder']}{role} ({reference['images']} images); "
                 f"CLIP {report['clip']['sha256'][:12]}, k = {report['settings']['nearest_k']}")
    if report["inception"]:
        lines.append(f"FID (Inc): Inception {report['inception']['sha256'][:12]}, pytorch-fid's preprocessing; "
                     "comparable with pytorch-fid's figures only if this is its pt_inception-2015-12-05-6726825d.pth")
    if any(row["clip_s"] is None for row in report["results"]):
        lines.append("CLIP-S: not computed (no --captions)")
    if any(row["fid_covariance_offset"] or row.get("fid_inception_covariance_offset") for row in report["results"]):
        lines.append("FID: a covariance product was singular; 1e-6·I was added to both covariances (clean-fid's fix)")
    return "\n".join(lines)


def draw_plot(report: dict, path: Path):
    """One bar chart per metric, one bar per setting (attribute or folder)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise HieraFashError("matplotlib is not installed: pip install -e .[eval]", "--plot") from exc
    columns = [(title, key) for title, key in TABLE_COLUMNS
               if any(row.get(key) is not None for row in report["results"])]
    settings = [row["setting"] for row in report["results"]]
    figure, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns), 3.2), squeeze=False)
    for axis, (title, key) in zip(axes[0], columns):
        axis.bar(settings, [row.get(key) or 0.0 for row in report["results"]], color="#5b7fb8")
        axis.set_title(title)
        axis.tick_params(axis="x", rotation=45)
    figure.suptitle(f"hierafash eval {report['mode']} (CLIP {report['clip']['sha256'][:12]})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def cmd_eval(args) -> int:
    try:
        report = run_generation(args) if args.mode == "generation" else run_edit(args)
        if args.plot:
            draw_plot(report, args.plot)
    except HieraFashError as exc:
        print(f"hierafash eval {args.mode}: {exc.input_name or 'input'}: {exc.problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_table(report))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"figures: {args.output}")
    return 0


def add_common(parser: argparse.ArgumentParser):
    parser.add_argument("--clip", type=Path, required=True,
                        help="a local CLIP: an HF folder (config.json + weights) or an OpenAI / Lightning state dict "
                             "(.ckpt, .pt, .safetensors; a prefix such as 'model.' is stripped)")
    parser.add_argument("--tokenizer", type=Path,
                        help="CLIP tokenizer folder (vocab.json, merges.txt) for CLIP-S when --clip has none; "
                             "ComfyUI's comfy/sd1_tokenizer is the OpenAI CLIP vocabulary")
    parser.add_argument("--captions", type=Path,
                        help="for CLIP-S: the dataset's test.json (captions matched to images by <gt> name) or a "
                             "folder of <image name>.txt files; without it CLIP-S is not computed")
    parser.add_argument("--inception", type=Path,
                        help="also report the classic Inception FID (fid_inception) from a local weights file: "
                             "pytorch-fid's pt_inception-2015-12-05-6726825d.pth; nothing is downloaded")
    parser.add_argument("--k", type=int, default=DEFAULT_NEAREST_K,
                        help="nearest neighbours for precision/recall/density/coverage (default %(default)s, the "
                             "paper's); each folder needs at least k + 1 images")
    parser.add_argument("--batch-size", type=int, default=32, help="images per CLIP forward (default %(default)s)")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help="where folder features are cached, keyed on file names, sizes, mtimes and the CLIP's "
                             "hash (default %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="always recompute features")
    parser.add_argument("--output", type=Path, help="write every figure, the CLIP's sha256 and the settings as JSON")
    parser.add_argument("--plot", type=Path, help="draw a PNG: one bar chart per metric, a bar per setting")
    parser.set_defaults(func=cmd_eval)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `eval generation` and `eval edit` on the `hierafash` command's subparsers."""
    parser = subparsers.add_parser("eval", help="FID (CLIP space), Coverage and CLIP-S, as the paper measures them",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    generation = modes.add_parser("generation", help="generated folders against a real folder")
    generation.add_argument("--real", type=Path, required=True,
                            help="real images, e.g. HieraFashion_5K/test, or the features .npz an earlier run "
                                 "cached for them (its cache_file in the JSON)")
    generation.add_argument("--fake", type=Path, nargs="+", required=True,
                            help="one or more folders of generated images; each is a setting (a table row)")
    generation.add_argument("--caption-items", type=int, default=ev.GENERATION_CAPTION_ITEMS,
                            help="caption items CLIP-S compares with (default %(default)s: the whole caption)")
    add_common(generation)
    edit = modes.add_parser("edit", help="edited folders against their sources, masks and a real folder")
    edit.add_argument("--source", type=Path, required=True, help="the images before editing")
    edit.add_argument("--edited", type=Path, nargs="+", required=True,
                      help="one folder per attribute (set) edited, files named as in --source")
    edit.add_argument("--masks", type=Path, nargs="+", required=True,
                      help="the edit masks (white = edited), one folder per --edited folder or one for all")
    edit.add_argument("--attribute", nargs="+", required=True,
                      help="what each --edited folder changed: A1..A5, joined by '+' for several (e.g. A2 A4 A2+A4); "
                           "CLIP-S then uses the first 5 + (attributes edited) caption items, as extra_txt.py")
    edit.add_argument("--real", type=Path,
                      help="reference set for FID and PRDC: a folder or a cached features .npz (default: --source, "
                           "said so in the output)")
    add_common(edit)
    return parser
