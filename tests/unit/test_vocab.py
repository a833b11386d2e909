"""The vocabulary owns the attribute kinds: labels, official edit starts, colours, order."""

import pytest

from hierafash_core.design import Attribute, Design, make_attribute
from hierafash_core.errors import HieraFashError
from hierafash_core.vocab import (
    CUSTOM,
    attribute_kind,
    attribute_kinds,
    attribute_label,
    is_vocabulary_kind,
    official_edit_start,
    order_attributes,
    region_color,
)

# method.md 4.3, as independent data: the start of A_i is DDIM index 8 i of the 100-step descending list,
# whose timesteps are t = 1 + 10 k (method.md 1.3); the table there reads 911 / 831 / 751 / 671 / 591.
OFFICIAL_STARTS = {"clothing_length": 911, "sleeve_length": 831, "sleeve_type": 751, "collar": 671, "hem": 591}


def test_every_official_edit_start_matches_method_table():
    assert {k.kind: official_edit_start(k.kind) for k in attribute_kinds()} == OFFICIAL_STARTS
    assert [1 + 10 * (99 - 8 * i) for i in range(1, 6)] == list(OFFICIAL_STARTS.values())
    assert official_edit_start(CUSTOM) is None


def test_labels_ids_and_kinds_name_the_same_attribute():
    for kind in attribute_kinds():
        assert attribute_kind(kind.label) == attribute_kind(kind.id) == attribute_kind(kind.kind) == kind
        assert attribute_label(kind.kind) == kind.label
    assert attribute_label(CUSTOM) == "custom"
    assert [k.id for k in attribute_kinds()] == ["A1", "A2", "A3", "A4", "A5"]
    assert not is_vocabulary_kind(CUSTOM) and is_vocabulary_kind("A4")


def test_unknown_attribute_raises_the_method_error():
    with pytest.raises(HieraFashError, match="unknown attribute 'pockets'; known attributes: clothing length"):
        attribute_kind("pockets")
    with pytest.raises(HieraFashError, match="custom attributes have no body part"):
        attribute_kind(CUSTOM)


def test_region_colours_live_with_the_vocabulary():
    colours = {k.kind: region_color(k.kind) for k in attribute_kinds()}
    assert all(len(c) == 3 and all(0.0 <= x <= 1.0 for x in c) for c in colours.values())
    assert colours["sleeve_length"] == colours["sleeve_type"]  # one body part, one colour
    assert len({colours[k] for k in ("clothing_length", "sleeve_length", "collar", "hem")}) == 4
    assert region_color(CUSTOM) not in colours.values()


def test_order_attributes_works_on_kinds_and_on_attributes():
    assert order_attributes(["custom", "hem", "A2", "collar"]) == ["A2", "collar", "hem", "custom"]
    assert order_attributes(["hem", "A2"], "as chained") == ["hem", "A2"]
    areas = {"hem": 5.0, "A2": 9.0, "collar": 9.0}
    assert order_attributes(["hem", "collar", "A2"], "by area", areas) == ["A2", "collar", "hem"]
    attributes = [Attribute("hem", "Slit Hem"), Attribute("clothing_length", "Long Dress")]
    assert order_attributes(attributes, kind_of=lambda a: a.kind) == attributes[::-1]
    with pytest.raises(HieraFashError, match="attribute order must be one of") as error:
        order_attributes(["hem"], "area")
    assert error.value.input_name == "attribute_order"


def test_attribute_keeps_its_vocabulary_value():
    design = Design(("Dress",), "Dress").with_attribute(make_attribute("clothing length", "Long", "", "Dress"))
    assert design.attributes[0] == Attribute("clothing_length", "Long Dress", "Long")
    assert design.value_of("clothing_length") == "Long"
    typed = Design(("Dress",)).with_attribute(make_attribute("clothing length", "Long", "Floor-length Gown", None))
    assert typed.value_of("clothing_length") is None  # free text: no vocabulary value to read back
    assert design.value_of("hem") is None
