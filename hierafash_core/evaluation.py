"""What the evaluation needs besides the metrics: pairing files by name, CLIP-S captions, and edit locality.

Files pair by name as in the official scripts (sorted, same stem); captions come from the dataset's
`test.json` cut to the first k items as the official `extra_txt.py` (k = 5 + attributes edited), split
and joined by the same item code as training's C(t) (`design.split_items` / `join_items`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import read_split
from .design import join_items, split_items
from .errors import HieraFashError
from .vocab import CONCEPT_FIELDS, attribute_kind

GENERATION_CAPTION_ITEMS = len(CONCEPT_FIELDS) + 5  # the whole caption: P_C + A1..A5
MASK_THRESHOLD = 127  # mask pixels above this (0..255) are inside the edited region
SAMPLE_SUFFIX = re.compile(r"_\d+$")  # extra_txt.py names outputs "<gt>_0"


def caption_items(attributes_edited: int) -> int:
    """k of extra_txt.py: the concept's 5 items plus one per attribute edited."""
    return len(CONCEPT_FIELDS) + attributes_edited


def first_items(caption: str, k: int) -> str:
    """The caption cut to its first k comma-separated items."""
    return join_items(split_items(caption)[:k])


def attribute_ids(spec: str) -> tuple[str, ...]:
    """'A2+A4' (ids, kinds or labels joined by '+') -> ('A2', 'A4'), in A1..A5 order."""
    try:
        kinds = {attribute_kind(name.strip()) for name in spec.split("+") if name.strip()}
    except HieraFashError as exc:
        raise HieraFashError(f"{exc.problem}; write the attributes edited as A1..A5, joined by '+' (e.g. A2+A4)",
                             "attribute") from exc
    if not kinds:
        raise HieraFashError("no attribute given: write A1..A5, joined by '+' (e.g. A2+A4)", "attribute")
    return tuple(sorted(kind.id for kind in kinds))


def check_same_names(reference: Sequence[Path], other: Sequence[Path], reference_name: str, other_name: str):
    """Both lists pair one-to-one by file stem, or a HieraFashError blaming `other_name`."""
    ours, theirs = [p.stem for p in reference], [p.stem for p in other]
    if ours == theirs:
        return
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    raise HieraFashError(
        f"{len(other)} files do not pair by name with the {len(reference)} of {reference_name}: missing "
        f"{missing[:3] or 'none'}, unmatched {extra[:3] or 'none'}; give both folders the same file names "
        f"(extensions may differ)", other_name)


def read_captions(images: Sequence[Path], captions: Path, k: int) -> list[str]:
    """One caption per image, cut to k items: from `<stem>.txt` files in a folder, or from a dataset split file."""
    captions = Path(captions)
    if captions.is_dir():
        texts = {p.stem: p for p in captions.glob("*.txt")}
        missing = [p.stem for p in images if p.stem not in texts]
        if missing:
            raise HieraFashError(f"{len(missing)} images have no caption file in {captions}, e.g. "
                                 f"{missing[0]}.txt: name each caption file after its image", "captions")
        by_image = [texts[p.stem].read_text(encoding="utf-8").strip() for p in images]
    elif captions.is_file() and captions.suffix == ".json":
        by_gt = {sample.gt.stem: sample.caption for sample in read_split(captions.parent, captions.stem)}
        by_image, missing = [], []
        for image in images:
            caption = by_gt.get(image.stem, by_gt.get(SAMPLE_SUFFIX.sub("", image.stem)))
            if caption is None:
                missing.append(image.stem)
            by_image.append(caption)
        if missing:
            raise HieraFashError(f"{len(missing)} images match no `gt` of {captions}, e.g. {missing[0]}: name "
                                 "images after their test image (<gt> or <gt>_0)", "captions")
    else:
        raise HieraFashError(f"{captions} is neither a folder of .txt captions nor a split .json file", "captions")
    return [first_items(text, k) for text in by_image]


def read_mask(path: Path) -> np.ndarray:
    """Boolean (H, W): True inside the edited region."""
    with Image.open(path) as mask:
        return np.asarray(mask.convert("L")) > MASK_THRESHOLD


def read_rgb(path: Path) -> np.ndarray:
    """float32 (H, W, 3) in 0..1."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class EditChange:
    outside: float  # mean |edited - source| over pixels outside the mask, 0..1 (an exact edit: 0)
    inside: float  # mean |edited - source| inside the mask, 0..1
    mask_fraction: float  # share of pixels inside the mask


def edit_change(sources: Sequence[Path], edited: Sequence[Path], masks: Sequence[Path]) -> EditChange:
    """Mean absolute change outside and inside the masks, pooled over every pixel of every pair."""
    totals = np.zeros(2)
    counts = np.zeros(2)
    for source_path, edited_path, mask_path in zip(sources, edited, masks):
        source, result, mask = read_rgb(source_path), read_rgb(edited_path), read_mask(mask_path)
        if result.shape != source.shape:
            raise HieraFashError(f"{edited_path.name} is {result.shape[1]}×{result.shape[0]} but its source is "
                                 f"{source.shape[1]}×{source.shape[0]}: edit at the source's size", "edited")
        if mask.shape != source.shape[:2]:
            raise HieraFashError(f"{mask_path.name} is {mask.shape[1]}×{mask.shape[0]} but its source is "
                                 f"{source.shape[1]}×{source.shape[0]}: give the mask the edit used", "masks")
        change = np.abs(result - source).mean(axis=2)
        totals += (change[~mask].sum(), change[mask].sum())
        counts += ((~mask).sum(), mask.sum())
    outside, inside = (totals / np.maximum(counts, 1)).tolist()
    return EditChange(outside, inside, float(counts[1] / counts.sum()))
