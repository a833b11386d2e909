"""The HieraFashion dataset layout and its validator.

Official layout: `<root>/train.json` and `<root>/test.json`, each a JSON list of
`{"pose": ..., "gt": ..., "caption": ...}` with image paths relative to the root. Images are already
at the training size (512 x 704 in the paper), pose maps at the same size, and captions list the
concept items then the attributes A1..A5, comma-separated (method.md §1.2, §5).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .design import split_items
from .errors import HieraFashError
from .vocab import CONCEPT_FIELDS, attribute_kinds, concept_values

SPLITS = ("train", "test")
SIZE_MULTIPLE = 64  # the VAE's 8x and the UNet's three 2x downsamplings
CLIP_MAX_TOKENS = 77  # including the start and end tokens
ENTRY_KEYS = ("pose", "gt", "caption")


class DatasetError(HieraFashError):
    """A dataset that cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class Sample:
    gt: Path  # the target image
    pose: Path  # its pose map, same size
    caption: str


@dataclass(frozen=True)
class Problem:
    path: Path  # the file at fault (an image, or the split's JSON)
    message: str  # what is wrong and how to fix it
    severity: str  # "error" (training would fail or be wrong) or "warning"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class DatasetReport:
    root: Path
    samples: dict[str, int] = field(default_factory=dict)  # split -> number of samples
    sizes: Counter = field(default_factory=Counter)  # (width, height) of the target images -> count
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing would stop or corrupt training (warnings allowed)."""
        return not self.errors


def split_file(root: Path | str, split: str) -> Path:
    return Path(root) / f"{split}.json"


def read_split(root: Path | str, split: str = "train") -> list[Sample]:
    """The samples of one split, paths resolved against the root; DatasetError when the file is unusable."""
    root = Path(root)
    path = split_file(root, split)
    if not path.is_file():
        found = sorted(p.name for p in root.glob("*.json")) if root.is_dir() else []
        where = f"it has: {', '.join(found)}" if found else "it has no .json files"
        raise DatasetError(
            f"{path} does not exist ({where}): a dataset root holds {split}.json, a list of "
            f'{{"pose": ..., "gt": ..., "caption": ...}} with paths relative to the root', "dataset")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON ({exc}): fix the file or write it again", "dataset") from None
    if not isinstance(entries, list):
        raise DatasetError(f"{path} holds a {type(entries).__name__}, not a list of samples: wrap the entries "
                           f"in [...]", "dataset")
    samples = []
    for i, entry in enumerate(entries):
        missing = [k for k in ENTRY_KEYS if not isinstance(entry, dict) or not isinstance(entry.get(k), str)]
        if missing:
            raise DatasetError(f"{path}: entry {i} lacks the text field(s) {', '.join(missing)}: every entry "
                               f"needs pose, gt and caption", "dataset")
        samples.append(Sample(gt=root / entry["gt"], pose=root / entry["pose"], caption=entry["caption"]))
    return samples


def _image_size(path: Path) -> tuple[int, int] | str:
    """(width, height), or why the file cannot be used."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return "file is missing: add it, or fix its path in the split's JSON"
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        return f"cannot be read as an image ({exc}): replace the file"


def caption_vocabulary_problems(caption: str) -> list[str]:
    """Caption items that are not in their position's vocabulary (free text is allowed, so these only warn)."""
    items = split_items(caption)
    out = []
    for field_name, item in zip(CONCEPT_FIELDS, items):
        if item not in concept_values(field_name):
            out.append(f"item {item!r} is not a known {field_name}")
    category = items[0] if items else None
    for kind, item in zip(attribute_kinds(), items[len(CONCEPT_FIELDS):]):
        known = {f"{v} {category}" for v in kind.values} if kind.garment_noun else set(kind.values)
        if item not in known:
            out.append(f"item {item!r} is not a known {kind.label}")
    return out


def _token_count(tokenizer, caption: str) -> int:
    return len(tokenizer(caption)["input_ids"])


def check_sample(sample: Sample, tokenizer=None) -> tuple[tuple[int, int] | None, list[Problem]]:
    """The target image's size (None if unreadable) and the sample's problems."""
    problems = []
    sizes = {}
    for name, path in (("gt", sample.gt), ("pose", sample.pose)):
        size = _image_size(path)
        if isinstance(size, str):
            problems.append(Problem(path, f"{name} image {size}", "error"))
        else:
            sizes[name] = size
    gt_size, pose_size = sizes.get("gt"), sizes.get("pose")
    if gt_size and pose_size and gt_size != pose_size:
        problems.append(Problem(sample.pose, f"pose map is {pose_size[0]}x{pose_size[1]} but its image "
                                f"{sample.gt.name} is {gt_size[0]}x{gt_size[1]}: draw or resize the pose map "
                                f"at the image's size (nearest-neighbour)", "error"))
    if gt_size and any(s % SIZE_MULTIPLE for s in gt_size):
        w, h = gt_size
        fit = tuple(max(SIZE_MULTIPLE, round(s / SIZE_MULTIPLE) * SIZE_MULTIPLE) for s in gt_size)
        problems.append(Problem(sample.gt, f"size {w}x{h} is not a multiple of {SIZE_MULTIPLE} on both sides: "
                                f"resize it (and its pose map), e.g. to {fit[0]}x{fit[1]}", "error"))
    for issue in caption_vocabulary_problems(sample.caption):
        problems.append(Problem(sample.gt, f"caption {issue}; free text is allowed, but check the spelling if it "
                                f"is meant to be a vocabulary value", "warning"))
    if tokenizer is not None:
        count = _token_count(tokenizer, sample.caption)
        if count > CLIP_MAX_TOKENS:
            problems.append(Problem(sample.gt, f"caption is {count} CLIP tokens, over the {CLIP_MAX_TOKENS} the "
                                    f"text encoder reads, so its last items would be cut off: shorten it",
                                    "error"))
    return gt_size, problems


def check_dataset(root: Path | str, splits=SPLITS, tokenizer=None) -> DatasetReport:
    """Every problem in the given splits (missing files, sizes, vocabulary, caption length), by file."""
    root = Path(root)
    report = DatasetReport(root)
    for split in splits:
        try:
            samples = read_split(root, split)
        except DatasetError as exc:
            report.problems.append(Problem(split_file(root, split), exc.problem, "error"))
            continue
        report.samples[split] = len(samples)
        if not samples:
            report.problems.append(Problem(split_file(root, split), "the split has no samples: add entries",
                                           "error"))
        for sample in samples:
            size, problems = check_sample(sample, tokenizer)
            if size:
                report.sizes[size] += 1
            report.problems.extend(problems)
    if len(report.sizes) > 1:
        listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in report.sizes.most_common())
        report.problems.append(Problem(root, f"images come in {len(report.sizes)} sizes ({listed}); a batch "
                                       f"needs one size: resize them to one, or train with batch size 1",
                                       "warning"))
    return report
