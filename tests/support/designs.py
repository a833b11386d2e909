"""The designs the tests and benchmarks share: the paper's example caption (method.md 1.2), one copy."""

from __future__ import annotations

from hierafash_core.design import Design, make_attribute
from hierafash_core.vocab import CONCEPT_FIELDS

PAPER_CONCEPT = ("Dress", "Elegant", "Party", "Elongate Neck", "Sense of Agility and Elegance")
PAPER_CONCEPT_FIELDS = dict(zip(CONCEPT_FIELDS, PAPER_CONCEPT))  # Concept Ideation's widgets
PAPER_ATTRIBUTES = (("clothing length", "Long"), ("sleeve length", "Short Sleeve"),
                    ("sleeve type", "Regular Sleeve"), ("collar", "V-Neck"), ("hem", "Draped Hem"))


def design_of(attributes=PAPER_ATTRIBUTES, concept=PAPER_CONCEPT, category: str | None = "Dress") -> Design:
    """A core Design: the concept, then each (label, value) pick, as Attribute Iteration nodes chain them."""
    design = Design(tuple(concept), category)
    for label, value in attributes:
        design = design.with_attribute(make_attribute(label, value, "", category))
    return design
