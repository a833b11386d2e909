"""A design: the high-level concept P_C and the ordered attribute edits A1, A2, ...

Prompts grow by concatenation, as the official training code builds them from a caption:
P_C, P_C+A1, P_C+A1+A2, ... (comma-separated items).
"""

from __future__ import annotations

from .errors import HieraFashError

from dataclasses import dataclass, replace

from .vocab import AttributeKind, attribute_kind

CUSTOM_KIND = "custom"


class DesignError(HieraFashError):
    """Invalid design input; the message says what to change."""


def split_items(text: str) -> tuple[str, ...]:
    """'Dress, Elegant,, Party ' -> ('Dress', 'Elegant', 'Party')."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def join_items(items) -> str:
    return ", ".join(items)


@dataclass(frozen=True)
class Attribute:
    kind: str  # an AttributeKind.kind, or "custom" for free text with no body part
    text: str  # the prompt item(s), e.g. "Short Sleeve"


@dataclass(frozen=True)
class Design:
    concept: tuple[str, ...]  # category, style, occasion, effect, feeling (any subset, in order)
    category: str | None = None  # garment category, completes clothing-length values
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self):
        if not self.concept:
            raise DesignError("the concept is empty: pick at least one concept item or type one")

    def with_attribute(self, attribute: Attribute) -> Design:
        return replace(self, attributes=self.attributes + (attribute,))

    @property
    def concept_prompt(self) -> str:
        return join_items(self.concept)

    def cumulative_prompts(self) -> list[str]:
        """[P_C, P_C+A1, ..., P_C+A1..An]."""
        items = list(self.concept)
        prompts = [join_items(items)]
        for attribute in self.attributes:
            items.extend(split_items(attribute.text))
            prompts.append(join_items(items))
        return prompts


def attribute_text(kind: AttributeKind, value: str, category: str | None) -> str:
    """The caption item for a vocabulary value: 'Long' + Dress -> 'Long Dress'."""
    if kind.garment_noun:
        return f"{value} {category or 'Length'}"
    return value


def make_attribute(label: str, value: str, custom_text: str, category: str | None) -> Attribute:
    """An attribute from a vocabulary pick, or from free text when `custom_text` is set."""
    custom_text = custom_text.strip()
    if label == CUSTOM_KIND:
        if not custom_text:
            raise DesignError("attribute is 'custom' but custom_text is empty: type the attribute text")
        return Attribute(CUSTOM_KIND, custom_text)
    kind = attribute_kind(label)
    if custom_text:
        return Attribute(kind.kind, custom_text)
    if value not in kind.values:
        raise DesignError(
            f"value {value!r} is not a {kind.label} value; pick one of: {', '.join(kind.values)} "
            f"(or change attribute, or type custom_text)"
        )
    return Attribute(kind.kind, attribute_text(kind, value, category))


ATTRIBUTE_ORDERS = ("paper", "as chained", "by area")


def order_attributes(design: Design, order: str = "paper", areas: dict[str, float] | None = None) -> Design:
    """The design with its attributes in edit order.

    "paper": A1 -> A5, the caption order the official model was trained on; "as chained": unchanged;
    "by area": larger affected body area first (coarse to fine, the paper's rule), ties in paper order.
    Custom attributes keep their relative order, after the vocabulary ones.
    """
    if order == "as chained":
        return design
    known = [a for a in design.attributes if a.kind != CUSTOM_KIND]
    custom = [a for a in design.attributes if a.kind == CUSTOM_KIND]
    if order not in ATTRIBUTE_ORDERS:
        raise DesignError(f"attribute order must be one of {', '.join(ATTRIBUTE_ORDERS)}, not {order!r}")
    if order == "by area":
        missing = sorted({a.kind for a in known if not areas or a.kind not in areas})
        if missing:
            raise DesignError(f"ordering by area needs the body regions; none for: {', '.join(missing)}")

    def key(a: Attribute):
        paper = attribute_kind(a.kind).id
        return (-areas[a.kind], paper) if order == "by area" else paper

    return replace(design, attributes=tuple(sorted(known, key=key)) + tuple(custom))
