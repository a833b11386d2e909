"""From a folder of photos to a HieraFashion dataset (the official layout `dataset.read_split` reads).

`prepare_dataset(src, dst, labels, detector)`: every photo is fitted to the training size (scaled to fit,
LANCZOS up and area down, centred on padding), its pose is detected on the fitted image and drawn there
(so pose maps are never resampled), and its caption is built from its labels by the design code the
nodes and training use. Output, under `dst`:

    images/<name>.png     the target image ("gt")
    poses/<name>.png      the OpenPose map, same size ("pose")
    keypoints/<name>.json the POSE_KEYPOINT of that map, in pixels of the image
    train.json, test.json [{"pose", "gt", "caption"}, ...], paths relative to dst
    prepare_log.jsonl     one line per photo handled: what was done, so a re-run skips it

The folders do not depend on the split, so a re-run with more photos or another seed moves nothing; the
split (by seed and ratio) lives only in the JSON files. Photos without labels, with bad labels, that
cannot be read or where nobody is found are listed with the reason and left out, never given a default.
Nothing under `src` is ever written.

It is one module (a little over 400 lines) because every step writes or reads back the same output layout
and re-run log; the dataset summaries and the column export that `hierafash dataset` offers sit at its end.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dataset import SIZE_MULTIPLE, Sample
from .design import Design, DesignError, make_attribute, split_items
from .errors import HieraFashError
from .pose_detect import PoseDetector, entry_frames, person_summary, render_entry
from .vocab import CONCEPT_FIELDS, attribute_kinds, concept_values

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
IMAGE_COLUMN = "image"
DEFAULT_SIZE = (512, 704)  # the paper's portrait training size, width x height
WHITE = (255, 255, 255)  # the HieraFashion photos' background
LOG_NAME = "prepare_log.jsonl"
FOLDERS = {"gt": "images", "pose": "poses", "keypoints": "keypoints"}


class PrepareError(HieraFashError):
    """The preparation cannot start; the message names the option and the fix."""


# --- labels -> caption -------------------------------------------------------------------------------


def label_columns() -> dict[str, str]:
    """Accepted label column names -> the field they fill: the concept fields, and each attribute by id
    ("A1"), machine name ("clothing_length") or label ("clothing length")."""
    columns = {name: name for name in CONCEPT_FIELDS}
    for kind in attribute_kinds():
        columns.update({kind.id: kind.kind, kind.kind: kind.kind, kind.label: kind.kind})
    return columns


def caption_from_labels(labels: dict[str, str]) -> str:
    """The caption for one photo's labels: the five concept items, then A1..A5 in the paper's order.

    Every concept field is required and must be a vocabulary value; attributes are optional (an empty cell
    leaves the attribute out) and must be values of their attribute. Clothing length is completed with the
    category ("Long" -> "Long Dress"), as the nodes do.
    """
    columns = label_columns()
    values: dict[str, str] = {}
    for column, value in labels.items():
        if column == IMAGE_COLUMN:
            continue
        if column not in columns:
            raise HieraFashError(f"unknown label column {column!r}; use {', '.join(CONCEPT_FIELDS)} and "
                                 f"A1..A5 (or the attribute names)", column)
        if str(value or "").strip():
            values[columns[column]] = str(value).strip()
    concept = []
    for name in CONCEPT_FIELDS:
        value = values.get(name)
        known = concept_values(name)
        if value is None:
            raise HieraFashError(f"no {name}: every photo needs all of {', '.join(CONCEPT_FIELDS)}", name)
        if value not in known:
            raise HieraFashError(f"{name} {value!r} is not in the vocabulary; use one of: {', '.join(known)}", name)
        concept.append(value)
    design = Design(tuple(concept), concept[0])
    for kind in attribute_kinds():
        if kind.kind in values:
            try:
                design = design.with_attribute(make_attribute(kind.kind, values[kind.kind], "", design.category))
            except DesignError as exc:
                raise HieraFashError(exc.problem, kind.id) from None
    return design.cumulative_prompts()[-1]


def read_labels(path: Path | str) -> dict[str, dict[str, str]]:
    """Per-photo labels from a CSV (header row) or a JSON list of objects; each row names its photo in
    the `image` column, relative to the photo folder. Keys are photo paths with '/' separators."""
    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"labels file {path} does not exist: give a CSV or JSON with one row per photo", "labels")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        else:
            rows = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise PrepareError(f"cannot read {path} ({exc}): write it as UTF-8 CSV or JSON", "labels") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise PrepareError(f"{path} must be a CSV with a header row, or a JSON list of objects", "labels")
    labels: dict[str, dict[str, str]] = {}
    for n, row in enumerate(rows):
        name = str(row.get(IMAGE_COLUMN) or "").strip().replace("\\", "/")
        if not name:
            raise PrepareError(f"{path}: row {n + 1} has no '{IMAGE_COLUMN}' value: every row names its photo",
                               "labels")
        if name in labels:
            raise PrepareError(f"{path}: {name} is labelled twice (row {n + 1}); keep one row per photo", "labels")
        labels[name] = {str(k).strip(): v for k, v in row.items() if k is not None}
    return labels


# --- fitting a photo to the training size -----------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """'512x704' -> (512, 704); both sides positive multiples of 64."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise PrepareError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 512x704", "size") from None
    check_size((width, height))
    return width, height


def check_size(size: tuple[int, int]):
    if any(s <= 0 or s % SIZE_MULTIPLE for s in size):
        raise PrepareError(f"size {size[0]}x{size[1]} must be positive multiples of {SIZE_MULTIPLE} on both sides "
                           f"(the paper trains at 512x704: short side 512)", "size")


def fit_photo(image, size: tuple[int, int], pad=WHITE):
    """The photo (PIL) scaled to fit `size` whole, centred on `pad`: LANCZOS when enlarging, area when
    shrinking. EXIF rotation is applied and transparency is flattened onto the pad colour."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        flat = Image.new("RGB", image.size, pad)
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    image = image.convert("RGB")
    width, height = size
    scale = min(width / image.width, height / image.height)
    fitted = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if fitted != image.size:
        resample = Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BOX  # BOX = area averaging
        image = image.resize(fitted, resample)
    canvas = Image.new("RGB", size, pad)
    canvas.paste(image, ((width - fitted[0]) // 2, (height - fitted[1]) // 2))
    return canvas


# --- the preparation ---------------------------------------------------------------------------------


@dataclass
class PrepareReport:
    dst: Path
    detected: list[str] = field(default_factory=list)  # photos prepared by this run
    reused: list[str] = field(default_factory=list)  # photos prepared by an earlier run, unchanged since
    skipped: dict[str, str] = field(default_factory=dict)  # photo -> why it is left out
    notes: dict[str, str] = field(default_factory=dict)  # photo -> something worth a look, kept in
    splits: dict[str, int] = field(default_factory=dict)  # "train"/"test" -> number of samples

    def lines(self) -> list[str]:
        """A summary, then every skipped photo and note, one per line."""
        out = [f"{self.dst}: {self.splits.get('train', 0)} train, {self.splits.get('test', 0)} test samples "
               f"({len(self.detected)} prepared now, {len(self.reused)} reused, {len(self.skipped)} skipped)"]
        out += [f"skipped {name}: {why}" for name, why in sorted(self.skipped.items())]
        out += [f"note {name}: {what}" for name, what in sorted(self.notes.items())]
        return out


def find_photos(src: Path) -> list[str]:
    """Photo paths under `src` (any depth), relative, '/'-separated, sorted."""
    return sorted(p.relative_to(src).as_posix() for p in src.rglob("*")
                  if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def output_paths(dst: Path, name: str) -> dict[str, Path]:
    stem = Path(name).with_suffix("").as_posix()
    return {key: dst / folder / f"{stem}{'.json' if key == 'keypoints' else '.png'}"
            for key, folder in FOLDERS.items()}


def split_names(names: Sequence[str], test_ratio: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test): the names ordered by a seeded hash, the first round(ratio * n) to test (at least one
    when the ratio is above 0 and there are two or more). Each name's place depends only on it and the seed."""
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    count = round(test_ratio * len(order))
    if test_ratio > 0 and len(order) >= 2:
        count = min(max(count, 1), len(order) - 1)
    test = set(order[:count])
    return [n for n in names if n not in test], [n for n in names if n in test]


def prepare_dataset(src: Path | str, dst: Path | str, labels: dict[str, dict[str, str]], detector: PoseDetector,
                    size: tuple[int, int] = DEFAULT_SIZE, test_ratio: float = 0.1, seed: int = 0, pad=WHITE,
                    detector_name: str = "detector", progress: bool = True) -> PrepareReport:
    """Fit, detect, draw and caption every labelled photo of `src` into `dst` (see the module docstring).
    Resumable: photos the log says were done with the same file, size, padding and detector are skipped."""
    src, dst = Path(src).resolve(), Path(dst).resolve()
    _check_folders(src, dst)
    check_size(size)
    if not 0 <= test_ratio < 1:
        raise PrepareError(f"test ratio {test_ratio} must be in [0, 1)", "test_ratio")
    report = PrepareReport(dst)
    photos = find_photos(src)
    if not photos:
        raise PrepareError(f"no photos ({', '.join(PHOTO_SUFFIXES)}) under {src}", "src")
    for name in sorted(set(labels) - set(photos)):
        report.notes[name] = "labelled, but there is no such photo: fix the name in the labels file"
    captions = _captions(photos, labels, report)
    settings = {"size": list(size), "pad": list(pad), "detector": detector_name}
    done = _read_log(dst / LOG_NAME)
    todo = [name for name in photos if name in captions]
    with _log_writer(dst / LOG_NAME) as log:
        for name in _progress(todo, progress, "prepare"):
            stamp = _stamp(src / name)
            previous = done.get(name)
            if previous and previous["stamp"] == stamp and previous["settings"] == settings and _outputs_exist(
                    dst, name, previous):
                _record(report, name, previous, reused=True)
                continue
            record = {"photo": name, "stamp": stamp, "settings": settings,
                      **_prepare_one(src / name, output_paths(dst, name), detector, size, pad)}
            log(record)
            _record(report, name, record, reused=False)
    ready = [n for n in todo if n in report.detected or n in report.reused]
    train, test = split_names(ready, test_ratio, seed)
    for split, names in (("train", train), ("test", test)):
        entries = [_entry(dst, name, captions[name]) for name in names]
        _write_atomic(dst / f"{split}.json", json.dumps(entries, indent=1, ensure_ascii=False).encode())
        report.splits[split] = len(entries)
    return report


def _check_folders(src: Path, dst: Path):
    if not src.is_dir():
        raise PrepareError(f"photo folder {src} does not exist", "src")
    if dst == src or src in dst.parents or dst in src.parents:
        raise PrepareError(f"the dataset folder {dst} and the photo folder {src} overlap: give a DST outside "
                           f"SRC (and SRC outside DST), so no photo can ever be overwritten", "dst")


def _captions(photos: list[str], labels: dict, report: PrepareReport) -> dict[str, str]:
    captions = {}
    for name in photos:
        if name not in labels:
            report.skipped[name] = "no labels row: add one to the labels file"
            continue
        try:
            captions[name] = caption_from_labels(labels[name])
        except HieraFashError as exc:
            report.skipped[name] = f"label '{exc.input_name}': {exc.problem}"
    return captions


def _prepare_one(photo: Path, out: dict[str, Path], detector: PoseDetector, size, pad) -> dict:
    """Write one photo's image, pose map and keypoints; the log record's outcome fields."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(photo) as opened:
            fitted = fit_photo(opened, size, pad)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return {"status": "unreadable", "why": f"cannot be read as an image ({exc}): replace or remove the file"}
    entry = detector(np.asarray(fitted))
    if not entry["people"]:
        return {"status": "nobody", "why": "nobody found by the pose detector: use a photo with a clearly visible "
                                           "full-body person, or remove it"}
    note = None
    if len(entry["people"]) > 1:
        note = f"{person_summary(entry)}: the largest is kept; crop the photo if that is the wrong one"
        entry = {**entry, "people": [entry["people"][_largest(entry)]]}
    pose_map = (render_entry(entry).numpy() * 255).round().astype(np.uint8)
    for key, data in (("gt", _png(fitted)), ("pose", _png(Image.fromarray(pose_map))),
                      ("keypoints", json.dumps([entry]).encode())):
        _write_atomic(out[key], data)
    return {"status": "ok", "note": note}


def _largest(entry: dict) -> int:
    """Index of the person whose visible keypoints span the biggest box."""
    def area(frame) -> float:
        points = frame.keypoints[frame.visible]
        if len(points) == 0:
            return -1.0
        width, height = (points.amax(dim=0) - points.amin(dim=0)).tolist()
        return width * height

    areas = [area(frame) for frame in entry_frames(entry)]
    return max(range(len(areas)), key=areas.__getitem__)


def _record(report: PrepareReport, name: str, record: dict, reused: bool):
    if record["status"] != "ok":
        report.skipped[name] = record["why"]
        return
    (report.reused if reused else report.detected).append(name)
    if record.get("note"):
        report.notes[name] = record["note"]


def _entry(dst: Path, name: str, caption: str) -> dict:
    paths = output_paths(dst, name)
    return {"pose": paths["pose"].relative_to(dst).as_posix(), "gt": paths["gt"].relative_to(dst).as_posix(),
            "caption": caption}


def _outputs_exist(dst: Path, name: str, record: dict) -> bool:
    return record["status"] != "ok" or all(p.is_file() for p in output_paths(dst, name).values())


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes):
    """Write via a temporary file and a rename, so an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read_log(path: Path) -> dict[str, dict]:
    """The last record per photo; a line cut short by an interruption is ignored."""
    records = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["photo"]] = record
    return records


@contextlib.contextmanager
def _log_writer(path: Path):
    """Appends one JSON line per photo, flushed at once, so progress survives an interruption."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:

        def write(record: dict):
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
            file.flush()

        yield write


def _progress(items: Iterable, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="image", disable=not enabled, dynamic_ncols=True)


# --- summaries and export ----------------------------------------------------------------------------


def caption_counts(samples: Iterable[Sample]) -> dict[str, Counter]:
    """How often each value appears, per concept field (by position) and per attribute (by vocabulary);
    caption items past the concept that belong to no attribute count under 'free text'."""
    counts: dict[str, Counter] = {name: Counter() for name in CONCEPT_FIELDS}
    kinds = attribute_kinds()
    counts.update({kind.label: Counter() for kind in kinds})
    counts["free text"] = Counter()
    for sample in samples:
        items = split_items(sample.caption)
        for name, item in zip(CONCEPT_FIELDS, items):
            counts[name][item] += 1
        category = items[0] if items else None
        for item in items[len(CONCEPT_FIELDS):]:
            kind = next((k for k in kinds if item in _attribute_items(k, category)), None)
            counts[kind.label if kind else "free text"][item] += 1
    return {name: counter for name, counter in counts.items() if counter}


def _attribute_items(kind, category) -> set[str]:
    return {f"{v} {category}" for v in kind.values} if kind.garment_noun else set(kind.values)


def export_columns(samples_by_split: dict[str, list[Sample]], out: Path | str, progress: bool = True) -> dict[str, int]:
    """The dataset in the column layout of diffusers' and Hugging Face's ControlNet training scripts:
    `out/<split>/metadata.jsonl` with `image`, `conditioning_image` and `text`, paths relative to that
    folder, beside `images/` and `conditioning_images/` (hard links where possible, else copies).
    `out` must be new or empty. Returns the number of rows per split."""
    import shutil

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PrepareError(f"{out} exists and is not empty: export into a new folder", "out")
    written = {}
    for split, samples in samples_by_split.items():
        folder = out / split
        rows = []
        for n, sample in enumerate(_progress(samples, progress, f"export {split}")):
            row = {}
            for column, source in (("image", sample.gt), ("conditioning_image", sample.pose)):
                target = folder / f"{column}s" / f"{n:06d}{source.suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
                row[column] = target.relative_to(folder).as_posix()
            rows.append({**row, "text": sample.caption})
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        _write_atomic(folder / "metadata.jsonl", lines.encode())
        written[split] = len(rows)
    return written
