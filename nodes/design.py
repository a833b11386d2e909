"""Concept Ideation and Attribute Iteration: build a design, the concept first, then one attribute at a time."""

from __future__ import annotations

from comfy_api.latest import io

from ..hierafash_core.design import Design, make_attribute, split_items
from ..hierafash_core.vocab import CONCEPT_FIELDS, CUSTOM, attribute_kinds, concept_values
from .common import CATEGORY, advanced, node_errors, schema
from .common import Design as DesignType

CONCEPT_NODE = "HieraFash Concept Ideation"
ATTRIBUTE_NODE = "HieraFash Attribute Iteration"
NONE = "(none)"
ALL_ATTRIBUTE_VALUES = [v for kind in attribute_kinds() for v in kind.values]

CONCEPT_TOOLTIPS = {
    "category": "Garment category. Also completes clothing-length values ('Long' -> 'Long Dress').",
    "style": "Design style, e.g. Elegant, Street Style, Vintage.",
    "occasion": "Where the garment is worn.",
    "effect": "The effect on the wearer's figure.",
    "feeling": "The overall feeling of the design.",
}


class ConceptIdeation(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="HieraFashConceptIdeation",
            display_name=CONCEPT_NODE,
            category=f"{CATEGORY}/design",
            search_aliases=["fashion concept", "design draft", "garment design", "outfit idea", "dress design",
                            "clothing style", "fashion", "garment", "outfit", "hierafashdiff concept"],
            description=(
                "The garment's concept: category, style, occasion, effect and feeling. It alone guides the first, "
                "roughest steps of the drawing, where the overall look is decided; the attributes join later. "
                "Pick from the lists, type your own words, or both."
            ),
            inputs=[
                io.Combo.Input(field, options=[NONE, *concept_values(field)], default=default,
                               tooltip=CONCEPT_TOOLTIPS[field])
                for field, default in zip(CONCEPT_FIELDS, ("Dress", "Elegant", "Party", NONE, NONE))
            ]
            + [
                io.String.Input("custom_concept", default="", multiline=False,
                                tooltip="Your own concept words, comma separated, added after the picked ones. "
                                        "Leave every list at (none) to type the whole concept freely."),
            ],
            outputs=[DesignType.Output(display_name="design",
                                       tooltip="The design so far; chain Attribute Iteration nodes after it.")],
        )

    @classmethod
    def execute(cls, category, style, occasion, effect, feeling, custom_concept="") -> io.NodeOutput:
        picked = [v for v in (category, style, occasion, effect, feeling) if v != NONE]
        with node_errors(CONCEPT_NODE, "custom_concept"):
            return io.NodeOutput(Design(tuple(picked) + split_items(custom_concept),
                                        None if category == NONE else category))


class AttributeIteration(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        labels = [kind.label for kind in attribute_kinds()]
        return schema(
            node_id="HieraFashAttributeIteration",
            display_name=ATTRIBUTE_NODE,
            category=f"{CATEGORY}/design",
            search_aliases=["fashion attribute", "garment attribute", "sleeve", "sleeve length", "collar", "neckline",
                            "hem", "dress length", "clothing length", "garment", "outfit", "fashion"],
            description=(
                "Adds one garment attribute (clothing length, sleeve length, sleeve type, collar or hem) to the "
                "design. From its own steps of the drawing on, the prompt is the concept plus every attribute so "
                "far, this one included. Chain one node per attribute, in that order."
            ),
            inputs=[
                DesignType.Input("design", tooltip="From Concept Ideation or the previous Attribute Iteration."),
                io.Combo.Input("attribute", options=[*labels, CUSTOM], default=labels[0],
                               tooltip="Which part of the garment this node describes; an edit of it repaints "
                                       "that body part only. 'custom' adds free text with no body part."),
                io.Combo.Input("value", options=ALL_ATTRIBUTE_VALUES, default=ALL_ATTRIBUTE_VALUES[0],
                               tooltip="The look of that part (from the paper's word list); it must belong to the "
                                       "chosen attribute. Clothing lengths get the category added ('Long' -> "
                                       "'Long Dress')."),
                advanced(io.String.Input, "custom_text", default="",
                         tooltip="Free text that replaces the picked value (for example 'Asymmetric Hem'). "
                                 "The attribute still decides the body part."),
            ],
            outputs=[DesignType.Output(display_name="design", tooltip="The design with this attribute appended.")],
        )

    @classmethod
    def execute(cls, design, attribute, value, custom_text="") -> io.NodeOutput:
        with node_errors(ATTRIBUTE_NODE, "value"):
            return io.NodeOutput(design.with_attribute(make_attribute(attribute, value, custom_text, design.category)))


NODES = [ConceptIdeation, AttributeIteration]
