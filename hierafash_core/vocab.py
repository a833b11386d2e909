"""The paper's vocabularies, read from `data/vocabulary.json` (edit the file, not the code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
CONCEPT_FIELDS = ("category", "style", "occasion", "effect", "feeling")


@dataclass(frozen=True)
class AttributeKind:
    id: str  # "A1".."A5": the paper's order, coarse to fine
    kind: str  # machine name, e.g. "sleeve_length"
    label: str  # human name, e.g. "sleeve length"
    body_part: str  # which body-part mask edits it
    values: tuple[str, ...]
    garment_noun: bool = False  # value is completed with the garment category ("Long" -> "Long Dress")


@cache
def _raw() -> dict:
    return json.loads((DATA_DIR / "vocabulary.json").read_text(encoding="utf-8"))


def concept_values(field: str) -> tuple[str, ...]:
    return tuple(_raw()["concept"][field])


@cache
def attribute_kinds() -> tuple[AttributeKind, ...]:
    return tuple(
        AttributeKind(
            id=a["id"],
            kind=a["kind"],
            label=a["label"],
            body_part=a["body_part"],
            values=tuple(a["values"]),
            garment_noun=a.get("garment_noun", False),
        )
        for a in _raw()["attributes"]
    )


def attribute_kind(label_or_kind: str) -> AttributeKind:
    for a in attribute_kinds():
        if label_or_kind in (a.kind, a.label, a.id):
            return a
    known = ", ".join(a.label for a in attribute_kinds())
    raise KeyError(f"unknown attribute {label_or_kind!r}; known attributes: {known}")


def official_added_prompt() -> str:
    return _raw()["official_added_prompt"]
