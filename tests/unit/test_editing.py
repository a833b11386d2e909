"""M(t) and the editing helpers, without ComfyUI."""

import pytest
import torch

from hierafash_core.design import Attribute, Design, make_attribute
from hierafash_core.editing import (
    BodyMasks,
    EditError,
    compile_mask_schedule,
    composite_outside,
    edit_start_timestep,
    open_regions,
    parse_edited,
    stack_attribute_masks,
    union_mask,
)
from hierafash_core.errors import HieraFashError
from hierafash_core.noise import discrete_percent_to_sigma, sd_sigmas, timestep_to_percent
from hierafash_core.schedule import CompiledSchedule, build_schedule

P2S = discrete_percent_to_sigma(sd_sigmas())
ATTRS = [("clothing length", "Long"), ("sleeve length", "Short Sleeve"), ("sleeve type", "Regular Sleeve"),
         ("collar", "V-Neck"), ("hem", "Draped Hem")]


def design_with(attrs=ATTRS):
    design = Design(("Dress", "Elegant"), "Dress")
    for label, value in attrs:
        design = design.with_attribute(make_attribute(label, value, "", design.category))
    return design


def compiled(attrs=ATTRS):
    schedule = build_schedule(design_with(attrs))
    return CompiledSchedule(schedule, tuple(schedule.cut_percents()))


def sigma_of(t):
    return P2S(timestep_to_percent(t))


def test_parse_edited_accepts_all_labels_values_and_positions():
    schedule = compiled().schedule
    assert parse_edited("all", schedule) == [0, 1, 2, 3, 4]
    assert parse_edited("collar, 5", schedule) == [3, 4]
    assert parse_edited("Short Sleeve", schedule) == [1]
    with pytest.raises(EditError, match="'pockets' is not an attribute of this design.*1 \\(clothing length"):
        parse_edited("pockets", schedule)
    with pytest.raises(EditError, match="no attribute to edit"):
        parse_edited("all", build_schedule(Design(("Dress",))))


def test_edit_starts_at_the_official_start_of_the_coarsest_edited_attribute():
    schedule = compiled().schedule
    assert edit_start_timestep(schedule, [0, 1, 2, 3, 4]) == 911
    assert edit_start_timestep(schedule, [1]) == 831
    assert edit_start_timestep(schedule, [3, 4]) == 671
    custom = build_schedule(Design(("Dress",)).with_attribute(Attribute("custom", "Bow")))
    assert edit_start_timestep(custom, [0]) == 899  # its own stage [800, 900) starts at t = 899


def test_regions_grow_as_a_union_and_the_first_opens_early():
    schedule = compiled().schedule
    assert open_regions(schedule, [0, 1, 2, 3, 4]) == [(0,), (0,), (0, 1), (0, 1, 2), (0, 1, 2, 3),
                                                        (0, 1, 2, 3, 4), (0, 1, 2, 3, 4)]
    assert open_regions(schedule, [3, 4])[:4] == [(3,)] * 4  # the collar opens at its start, t = 671
    assert open_regions(schedule, [3, 4])[5:] == [(3, 4)] * 2


def test_mask_schedule_in_noise_space():
    plan = compile_mask_schedule(compiled(), [0, 1, 2, 3, 4], P2S)
    assert not plan.is_active(sigma_of(950)) and plan.region_at(sigma_of(950)) == ()
    assert plan.is_active(sigma_of(911)) and plan.region_at(sigma_of(911)) == (0,)  # t_start itself is edited
    assert not plan.is_active(sigma_of(912))
    assert plan.region_at(sigma_of(850)) == (0,)
    assert plan.region_at(sigma_of(750)) == (0, 1)
    assert plan.region_at(sigma_of(100)) == (0, 1, 2, 3, 4)
    # A sigma exactly on a cut belongs to the earlier stage, as the discrete rule t >= b says.
    on_cut = plan.stage_starts[2]
    assert plan.stage_at(on_cut) == 1 and plan.stage_at(on_cut * 0.999) == 2


def test_masks_stack_in_design_order_and_union():
    h, w = 4, 6
    by_kind = {kind: torch.zeros(1, h, w) for kind in
               ("clothing_length", "sleeve_length", "sleeve_type", "collar", "hem")}
    by_kind["collar"][0, 0, 0] = 1
    by_kind["hem"][0, 3, 5] = 1
    stacked = stack_attribute_masks(compiled().schedule, BodyMasks(by_kind))
    assert stacked.shape == (5, 1, h, w)
    assert union_mask(stacked, (3, 4)).sum() == 2 and union_mask(stacked, ()).sum() == 0
    custom = build_schedule(Design(("Dress",)).with_attribute(Attribute("custom", "Bow")))
    with pytest.raises(EditError, match="custom attributes have no body part.*external_mask"):
        stack_attribute_masks(custom, BodyMasks(by_kind))


def test_composite_keeps_the_source_bit_for_bit_outside_the_mask():
    torch.manual_seed(0)
    source, edited = torch.rand(2, 8, 8, 3), torch.rand(2, 8, 8, 3)
    mask = torch.zeros(1, 8, 8)
    mask[0, 2:5, 2:5] = 1.0
    mask[0, 5, 2:5] = 0.25  # feathered edge
    out = composite_outside(edited, source, mask)
    outside = mask[0] == 0
    assert torch.equal(out[:, outside], source[:, outside])
    assert torch.equal(out[:, 3, 3], edited[:, 3, 3])
    assert torch.allclose(out[:, 5, 3], 0.25 * edited[:, 5, 3] + 0.75 * source[:, 5, 3])
    with pytest.raises(EditError, match="differ in size"):
        composite_outside(edited, source[:, :4], mask)
    with pytest.raises(EditError, match="mask batch 3"):
        composite_outside(edited, source, mask.expand(3, -1, -1))


def test_attribute_order():
    design = Design(("Dress",), "Dress")
    for label, value in [("collar", "V-Neck"), ("clothing length", "Long")]:
        design = design.with_attribute(make_attribute(label, value, "", "Dress"))
    design = design.with_attribute(Attribute("custom", "Bow")).with_attribute(
        make_attribute("sleeve length", "Short Sleeve", "", "Dress"))

    def kinds(d):
        return [a.kind for a in d.attributes]

    assert kinds(design.in_order("paper")) == ["clothing_length", "sleeve_length", "collar", "custom"]
    assert design.in_order("as chained") == design
    areas = {"clothing_length": 10.0, "sleeve_length": 30.0, "collar": 30.0}
    assert kinds(design.in_order("by area", areas)) == ["sleeve_length", "collar", "clothing_length", "custom"]
    with pytest.raises(HieraFashError, match="needs the body regions; none for: collar"):
        design.in_order("by area", {"clothing_length": 1.0, "sleeve_length": 1.0})
