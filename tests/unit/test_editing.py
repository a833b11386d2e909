"""M(t) and the editing helpers, without ComfyUI."""

import pytest
import torch
from support.designs import PAPER_ATTRIBUTES, design_of

from hierafash_core.design import Attribute, Design, make_attribute
from hierafash_core.editing import (
    BodyMasks,
    EditError,
    compile_mask_schedule,
    composite_outside,
    edit_start_timestep,
    latent_shaped_mask,
    open_timesteps,
    parse_edited,
    plan_edit,
    stack_attribute_masks,
    union_mask,
)
from hierafash_core.errors import HieraFashError
from hierafash_core.noise import discrete_percent_to_sigma, sd_sigmas, timestep_to_percent
from hierafash_core.schedule import CompiledSchedule, build_schedule

P2S = discrete_percent_to_sigma(sd_sigmas())
# method.md 4.3 (independent of the vocabulary file): t_start per attribute at 100 DDIM steps.
OFFICIAL_STARTS = {"clothing_length": 911, "sleeve_length": 831, "sleeve_type": 751, "collar": 671, "hem": 591}
ATTRS = PAPER_ATTRIBUTES


def design_with(attrs=ATTRS):
    return design_of(attrs)


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


@pytest.mark.parametrize("position, kind", list(enumerate(OFFICIAL_STARTS)))
def test_each_region_opens_at_its_own_official_start_half_a_timestep_above(position, kind):
    plan = compile_mask_schedule(compiled().schedule, [0, 1, 2, 3, 4], P2S)
    start = OFFICIAL_STARTS[kind]
    assert position in plan.region_at(sigma_of(start + 0.4))  # t_start itself, and up to t_start + 0.5, edits
    assert position not in plan.region_at(sigma_of(start + 0.6))
    assert position in plan.region_at(sigma_of(start - 0.5))


def test_a_subset_design_opens_each_region_at_its_attributes_start():
    # Issue 11.1: collar and hem only; the hem opens at its own t = 591, not with the collar at 671.
    plan = compile_mask_schedule(compiled(ATTRS[3:]).schedule, [0, 1], P2S)
    assert plan.region_at(sigma_of(700)) == ()
    assert plan.region_at(sigma_of(640)) == (0,)
    assert plan.region_at(sigma_of(595)) == (0,)
    assert plan.region_at(sigma_of(580)) == (0, 1)


def test_chained_order_keeps_each_attributes_own_start():
    # Issue 11.2: a chained [collar, clothing length] opens the length at 911 and the collar at 671.
    design = design_with([ATTRS[3], ATTRS[0]]).in_order("as chained")
    schedule = build_schedule(design, layout="in chain order")
    assert [s.attribute.kind for s in schedule.stages if s.attribute] == ["collar", "clothing_length"]
    assert open_timesteps(schedule, [0, 1]) == {0: 671, 1: 911}
    plan = compile_mask_schedule(schedule, [0, 1], P2S)
    assert plan.region_at(sigma_of(900)) == (1,) and plan.region_at(sigma_of(660)) == (0, 1)


def test_regions_only_grow_and_the_edit_starts_at_the_earliest():
    plan = compile_mask_schedule(compiled().schedule, [0, 1, 2, 3, 4], P2S)
    assert not plan.is_active(sigma_of(950)) and plan.region_at(sigma_of(950)) == ()
    assert plan.is_active(sigma_of(911)) and not plan.is_active(sigma_of(912))
    regions = [plan.region_at(sigma_of(t)) for t in range(999, -1, -1)]
    assert all(set(a) <= set(b) for a, b in zip(regions, regions[1:]))
    assert regions[-1] == (0, 1, 2, 3, 4)


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
    broken = edited.clone()
    broken[:, 0, 0] = float("nan")  # e.g. a half-precision VAE overflow outside the mask never reaches the result
    assert torch.equal(composite_outside(broken, source, mask)[:, outside], source[:, outside])
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


def test_union_of_overlapping_soft_regions_is_their_maximum():
    a = torch.tensor([[[0.2, 0.6], [0.0, 1.0]]])
    b = torch.tensor([[[0.5, 0.3], [0.0, 0.7]]])
    union = union_mask(torch.stack([a, b]), (0, 1))
    assert torch.equal(union, torch.tensor([[[0.5, 0.6], [0.0, 1.0]]]))  # max, never a sum above 1


# --- plans ---------------------------------------------------------------------------------------
def body_masks(batch=1, h=16, w=24):
    regions = {}
    for n, kind in enumerate(OFFICIAL_STARTS):
        mask = torch.zeros(batch, h, w)
        mask[:, n * 3:(n + 1) * 3, :8] = 1.0
        regions[kind] = mask
    return BodyMasks(regions)


def compiled_for(sigmas, attrs=ATTRS):
    schedule = build_schedule(design_with(attrs))
    return CompiledSchedule(schedule, tuple(schedule.cut_percents()), tuple(sigmas))


def ddim_uniform(steps):  # t = 1 + k * 1000/steps, descending (method.md 1.3)
    return [sigma_of(t) for t in range(1 + (1000 // steps) * (steps - 1), 0, -(1000 // steps))] + [0.0]


def test_plan_says_per_attribute_when_its_region_opens():
    plan = plan_edit(compiled_for(ddim_uniform(100)), body_masks(), (1, 16, 24), "collar, hem", P2S)
    lines = plan.describe().splitlines()
    assert lines[0].startswith("editing collar (V-Neck), hem (Draped Hem); starts at t = 671 (step 33 of 100); ")
    assert lines[1] == "collar (V-Neck): from step 33 of 100 (68 steps); region opens at t = 671"
    assert lines[2] == "hem (Draped Hem): from step 41 of 100 (60 steps); region opens at t = 591"
    assert plan.sampling_warnings(ddim_uniform(100)) == []


def test_too_few_steps_are_a_warning_not_a_silent_no_op():
    one_step = [sigma_of(999), 0.0]
    plan = plan_edit(compiled_for(one_step), body_masks(), (1, 16, 24), "all", P2S)
    warnings = plan.sampling_warnings(one_step)
    assert len(warnings) == 5 and warnings[0].startswith("clothing length (Long Dress) gets no sampler step")
    assert plan.describe().splitlines()[0].startswith("WARNING: clothing length (Long Dress) gets no sampler step")


def test_a_run_starting_below_the_edit_start_is_reported():
    plan = plan_edit(compiled_for(ddim_uniform(20)), body_masks(), (1, 16, 24), "all", P2S)
    half = [sigma_of(t) for t in (500, 400, 300, 200, 100)] + [0.0]  # KSampler denoise 0.5
    warnings = plan.sampling_warnings(half)
    assert warnings == [w for w in warnings if "starts at t = 500, below the edit start t = 911" in w]
    half_plan = plan_edit(compiled_for(half), body_masks(), (1, 16, 24), "all", P2S)
    assert half_plan.describe().splitlines()[0] == f"WARNING: {warnings[0]}"  # where a short text box shows it
    assert len(warnings) == 1
    assert plan.sampling_warnings([sigma_of(900), *half]) != []  # 900 is still below 911


@pytest.mark.parametrize("change, field, message", [
    ({"image_shape": (1, 15, 24)}, "image", "not a multiple of 8"),
    ({"image_shape": (1, 16, 32)}, "body_masks", "the regions are 24x16 but the image is 32x16"),
    ({"image_shape": (3, 16, 24), "masks": body_masks(batch=2)}, "body_masks", "2 mask frames for 3 images"),
    ({"edit": "pockets"}, None, "not an attribute of this design"),
])
def test_bad_edit_requests_name_their_input(change, field, message):
    with pytest.raises(EditError, match=message) as error:
        plan_edit(compiled_for(ddim_uniform(10)), change.get("masks", body_masks()), change.get("image_shape",
                  (1, 16, 24)), change.get("edit", "all"), P2S)
    assert error.value.input_name == field


# --- masks in every shape the sampler passes them ----------------------------------------------------
def test_latent_shaped_mask_reads_every_form_of_the_mask():
    image_space = torch.zeros(2, 1, 16, 16)
    image_space[1, :, 8:] = 1.0  # image 0 keeps everything, image 1 edits its lower half
    latent = latent_shaped_mask(image_space, (2, 4, 2, 2))
    assert latent.shape == (2, 4, 2, 2)
    assert latent[0].sum() == 0 and torch.equal(latent[1, :, 1], torch.ones(4, 2)) and latent[1, :, 0].sum() == 0
    # Already latent-shaped (newer ComfyUI): kept per image, never mixed across the batch.
    assert torch.equal(latent_shaped_mask(latent, (2, 4, 2, 2)), latent)
    # One mask, broadcast over the batch, in image space or as [H, W].
    single = latent_shaped_mask(image_space[1:], (3, 4, 2, 2))
    assert single.shape == (3, 4, 2, 2) and all(torch.equal(single[k], latent[1]) for k in range(3))
    assert torch.equal(latent_shaped_mask(image_space[1, 0], (2, 4, 2, 2)), single[:2])
    with pytest.raises(EditError, match="fits neither"):
        latent_shaped_mask(torch.ones(2, 3, 16, 16), (2, 4, 2, 2))


def test_kept_source_is_per_image_for_a_latent_shaped_denoise_mask():
    masks = body_masks(batch=2, h=16, w=16)
    masks.by_kind["collar"][0] = 0.0  # image 0: no collar region
    plan = plan_edit(compiled_for(ddim_uniform(10)), masks, (2, 16, 16), "collar", P2S)
    denoise = latent_shaped_mask(plan.noise_mask(2), (2, 4, 2, 2))
    kept = plan.kept_source(denoise, (2, 4, 2, 2))
    assert kept[0].all() and not kept[1].all()
    assert torch.equal(kept, plan.kept_source(plan.noise_mask(2), (2, 4, 2, 2)))
