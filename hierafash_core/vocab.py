"""The paper's vocabularies, read from `data/vocabulary.json` (edit the file, not the code).

The vocabulary owns the attribute kinds: their labels, body parts, official edit starts, region
colours and paper order. `CUSTOM` is the one kind outside it: free text with no body part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from .errors import HieraFashError

DATA_DIR = Path(__file__).parent / "data"
CONCEPT_FIELDS = ("category", "style", "occasion", "effect", "feeling")
CUSTOM = "custom"  # the kind of a free-text attribute: no body part, no official edit start
ATTRIBUTE_ORDERS = ("paper", "as chained", "by area")

Item = TypeVar("Item")


class UnknownAttributeError(HieraFashError):
    """A name that is no attribute of the vocabulary."""


@dataclass(frozen=True)
class AttributeKind:
    id: str  # "A1".."A5": the paper's order, coarse to fine
    kind: str  # machine name, e.g. "sleeve_length"
    label: str  # human name, e.g. "sleeve length"
    body_part: str  # which body-part mask edits it
    values: tuple[str, ...]
    edit_start: int  # official editing start, a DDPM timestep (method.md §4.3)
    color: tuple[float, float, float]  # its region's tint in previews, RGB 0..1
    garment_noun: bool = False  # value is completed with the garment category ("Long" -> "Long Dress")


@cache
def _raw() -> dict:
    return json.loads((DATA_DIR / "vocabulary.json").read_text(encoding="utf-8"))


def concept_values(field: str) -> tuple[str, ...]:
    """The vocabulary of one concept field, e.g. 'category'."""
    return tuple(_raw()["concept"][field])


@cache
def attribute_kinds() -> tuple[AttributeKind, ...]:
    """The five attribute kinds, A1..A5."""
    return tuple(
        AttributeKind(
            id=a["id"],
            kind=a["kind"],
            label=a["label"],
            body_part=a["body_part"],
            values=tuple(a["values"]),
            edit_start=int(a["edit_start"]),
            color=tuple(float(c) for c in a["color"]),
            garment_noun=a.get("garment_noun", False),
        )
        for a in _raw()["attributes"]
    )


def is_vocabulary_kind(name: str) -> bool:
    """Whether `name` is an attribute kind, label or id of the vocabulary (CUSTOM is not)."""
    return any(name in (a.kind, a.label, a.id) for a in attribute_kinds())


def attribute_kind(name: str) -> AttributeKind:
    """The attribute kind named by its kind, label or id ('sleeve_length', 'sleeve length', 'A2')."""
    for a in attribute_kinds():
        if name in (a.kind, a.label, a.id):
            return a
    if name == CUSTOM:
        raise UnknownAttributeError("custom attributes have no body part and no official edit start")
    known = ", ".join(a.label for a in attribute_kinds())
    raise UnknownAttributeError(f"unknown attribute {name!r}; known attributes: {known}")


def attribute_label(kind: str) -> str:
    """The human name of a kind: 'sleeve length', or 'custom'."""
    return _raw()["custom"]["label"] if kind == CUSTOM else attribute_kind(kind).label


def official_edit_start(kind: str) -> int | None:
    """The official editing start of a kind as a DDPM timestep; None for CUSTOM."""
    return None if kind == CUSTOM else attribute_kind(kind).edit_start


def region_color(kind: str) -> tuple[float, float, float]:
    """The preview tint of a kind's region; custom (and external) regions share one colour."""
    if is_vocabulary_kind(kind):
        return attribute_kind(kind).color
    return tuple(float(c) for c in _raw()["custom"]["color"])


def order_attributes(
    items: Sequence[Item],
    order: str = "paper",
    areas: Mapping[str, float] | None = None,
    kind_of: Callable[[Item], str] = str,
) -> list[Item]:
    """`items` in edit order; `kind_of(item)` names each one's kind (kind, label or id).

    "paper": A1 -> A5, the caption order the official model was trained on; "as chained": unchanged;
    "by area": larger affected body area first (coarse to fine, the paper's rule), ties in paper order,
    `areas` keyed by the kind names as given. Custom items keep their relative order, after the others.
    """
    if order not in ATTRIBUTE_ORDERS:
        raise HieraFashError(f"attribute order must be one of {', '.join(ATTRIBUTE_ORDERS)}, not {order!r}",
                             "attribute_order")
    if order == "as chained":
        return list(items)
    known = [item for item in items if is_vocabulary_kind(kind_of(item))]
    custom = [item for item in items if not is_vocabulary_kind(kind_of(item))]
    if order == "by area":
        missing = sorted({kind_of(item) for item in known if not areas or kind_of(item) not in areas})
        if missing:
            raise HieraFashError(f"ordering by area needs the body regions; none for: {', '.join(missing)}")

    def key(item):
        paper = attribute_kind(kind_of(item)).id
        return (-areas[kind_of(item)], paper) if order == "by area" else paper

    return sorted(known, key=key) + custom


def official_added_prompt() -> str:
    """The quality tags the official demo appends to every prompt."""
    return _raw()["official_added_prompt"]
