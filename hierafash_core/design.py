"""A design: the high-level concept P_C and the ordered attribute edits A1, A2, ...

Prompts grow by concatenation, as the official training code builds them from a caption:
P_C, P_C+A1, P_C+A1+A2, ... (comma-separated items).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import HieraFashError
from .vocab import CUSTOM, AttributeKind, attribute_kind, order_attributes


class DesignError(HieraFashError):
    """Invalid design input; the message says what to change."""


def split_items(text: str) -> tuple[str, ...]:
    """'Dress, Elegant,, Party ' -> ('Dress', 'Elegant', 'Party')."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def join_items(items) -> str:
    """('Dress', 'Elegant') -> 'Dress, Elegant'."""
    return ", ".join(items)


@dataclass(frozen=True)
class Attribute:
    kind: str  # an AttributeKind.kind, or CUSTOM for free text with no body part
    text: str  # the prompt item(s), e.g. "Long Dress"
    value: str | None = None  # the vocabulary value it was made from, e.g. "Long"; None for free text


@dataclass(frozen=True)
class Design:
    concept: tuple[str, ...]  # category, style, occasion, effect, feeling (any subset, in order)
    category: str | None = None  # garment category, completes clothing-length values
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self):
        if not self.concept:
            raise DesignError("the concept is empty: pick at least one concept item or type one", "custom_concept")

    def with_attribute(self, attribute: Attribute) -> Design:
        """The design with `attribute` appended."""
        return replace(self, attributes=self.attributes + (attribute,))

    def in_order(self, order: str = "paper", areas: dict[str, float] | None = None) -> Design:
        """The design with its attributes in edit order (`vocab.order_attributes`)."""
        return replace(self, attributes=tuple(order_attributes(self.attributes, order, areas, lambda a: a.kind)))

    def value_of(self, kind: str) -> str | None:
        """The vocabulary value of the design's first attribute of `kind` ('Long' of 'Long Dress'), if any."""
        return next((a.value for a in self.attributes if a.kind == kind and a.value is not None), None)

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
    if label == CUSTOM:
        if not custom_text:
            raise DesignError("attribute is 'custom' but custom_text is empty: type the attribute text", "custom_text")
        return Attribute(CUSTOM, custom_text)
    try:
        kind = attribute_kind(label)
    except HieraFashError as exc:
        raise exc.for_input("attribute") from None
    if custom_text:
        return Attribute(kind.kind, custom_text)
    if value not in kind.values:
        raise DesignError(
            f"value {value!r} is not a {kind.label} value; pick one of: {', '.join(kind.values)} "
            f"(or change attribute, or type custom_text)", "value"
        )
    return Attribute(kind.kind, attribute_text(kind, value, category), value)

