"""Designs: prompts grow by concatenation, and bad picks name the input to change."""

import pytest
from support.designs import PAPER_CONCEPT, design_of

from hierafash_core.design import Design, DesignError, make_attribute
from hierafash_core.errors import HieraFashError


def test_prompts_grow_by_concatenation_as_the_official_captions():
    prompts = design_of().cumulative_prompts()
    assert prompts[0] == ", ".join(PAPER_CONCEPT)
    assert prompts[-1] == prompts[0] + ", Long Dress, Short Sleeve, Regular Sleeve, V-Neck, Draped Hem"


@pytest.mark.parametrize("call, field, message", [
    (lambda: make_attribute("sleeve length", "Boat Neck", "", "Dress"), "value", "not a sleeve length value"),
    (lambda: make_attribute("custom", "", " ", "Dress"), "custom_text", "custom_text is empty"),
    (lambda: make_attribute("pockets", "Flap", "", "Dress"), "attribute", "unknown attribute 'pockets'"),
    (lambda: Design(()), "custom_concept", "concept is empty"),
])
def test_bad_design_input_names_the_input_to_change(call, field, message):
    with pytest.raises(HieraFashError, match=message) as error:
        call()
    assert error.value.input_name == field
    assert isinstance(error.value, DesignError) or field == "attribute"
