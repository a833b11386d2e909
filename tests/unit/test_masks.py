import re

import pytest
import torch

from hierafash_core.body_masks import MaskSettings, build_body_masks, combine_masks
from hierafash_core.errors import HieraFashError
from hierafash_core.masks import (
    BODY_PARTS,
    LOWER_SLEEVE_RADIUS,
    MaskError,
    attribute_mask,
    attribute_masks,
    body_part_mask,
    garment_family,
)
from hierafash_core.pose import (
    KEYPOINT,
    PoseError,
    PoseFrame,
    load_pose_preset,
    read_pose_keypoint,
    rescale_frame,
)
from hierafash_core.raster import convex_hull, paint_polygon

W, H = 512, 704
LENGTHS = ("Ultra-short", "Short", "Knee-length", "Mid-length", "Long")


def preset(name="front_standing"):
    (frame,) = read_pose_keypoint(load_pose_preset(name))
    return frame


def pose_entry(points: torch.Tensor, width=W, height=H) -> dict:
    return {
        "people": [{"pose_keypoints_2d": points.flatten().tolist()}],
        "canvas_width": width,
        "canvas_height": height,
    }


def preset_points(name="front_standing") -> torch.Tensor:
    return torch.tensor(load_pose_preset(name)[0]["people"][0]["pose_keypoints_2d"]).view(18, 3)


def without(name: str, *keypoints: str):
    points = preset_points(name)
    for keypoint in keypoints:
        points[KEYPOINT[keypoint]] = 0.0
    (frame,) = read_pose_keypoint([pose_entry(points)])
    return frame


def at(mask: torch.Tensor, frame, keypoint: str, offset=(0.0, 0.0)) -> float:
    x, y = (frame.keypoints[KEYPOINT[keypoint]] + torch.tensor(offset)).round().long().tolist()
    return float(mask[..., y, x])


def at_each(mask: torch.Tensor, frame, *keypoints: str) -> list[float]:
    """The mask's value at each keypoint, in order."""
    return [at(mask, frame, keypoint) for keypoint in keypoints]


def is_superset(big: torch.Tensor, small: torch.Tensor) -> bool:
    return bool((big >= small).all())


# --- input forms --------------------------------------------------------------------------------------


def test_normalized_pixel_and_real_confidence_poses_give_identical_masks():
    pixels = preset_points()
    norm = pixels.clone()
    norm[:, 0] /= W
    norm[:, 1] /= H
    scored = pixels.clone()
    scored[:, 2] = torch.linspace(0.3, 0.99, 18)
    frames = read_pose_keypoint([pose_entry(norm), pose_entry(pixels), pose_entry(scored)])
    for part in ("length", "sleeves", "collar"):
        mask = body_part_mask(frames, part, category="Dress", feather=0.05).mask
        assert mask.shape == (3, H, W)
        torch.testing.assert_close(mask[0], mask[1], atol=1e-3, rtol=0)
        torch.testing.assert_close(mask[2], mask[1])


def test_single_frame_gives_hw_and_a_list_gives_bhw():
    frame = preset()
    assert body_part_mask(frame, "collar").mask.shape == (H, W)
    assert body_part_mask([frame], "collar").mask.shape == (1, H, W)


def test_batch_gives_per_frame_masks():
    frames = [preset("front_standing"), preset("front_hands_on_hips"), preset("three_quarter_left")]
    batch = body_part_mask(frames, "sleeves").mask
    assert batch.shape == (3, H, W)
    for n, frame in enumerate(frames):
        torch.testing.assert_close(batch[n], body_part_mask(frame, "sleeves").mask)
    assert not torch.equal(batch[0], batch[1])
    # hands on hips: the elbows stick out, so the sleeves reach further sideways
    outside_the_elbow = (-30.0, 0.0)
    assert at(batch[1], frames[1], "right elbow", outside_the_elbow) == 1
    assert at(batch[0], frames[1], "right elbow", outside_the_elbow) == 0


def test_frames_on_different_canvases_are_refused():
    frame = preset()
    with pytest.raises(PoseError, match="different canvas sizes"):
        body_part_mask([frame, rescale_frame(frame, 256, 352)], "collar")


# --- geometry -----------------------------------------------------------------------------------------


def test_masks_scale_with_the_body():
    frame = preset()
    double = rescale_frame(frame, 2 * W, 2 * H)
    for part in ("length", "sleeves", "collar"):
        small = body_part_mask(frame, part).mask
        large = body_part_mask(double, part).mask
        pooled = torch.nn.functional.avg_pool2d(large[None, None], 2)[0, 0]
        disagree = ((pooled > 0.5) != (small > 0.5)).float().sum()
        assert disagree / small.sum() < 0.01, part
        assert float(large.sum() / small.sum()) == pytest.approx(4, rel=0.02)


def test_a_smaller_person_gets_a_proportionally_smaller_mask():
    frame = preset()
    half = PoseFrame(frame.keypoints * 0.5 + torch.tensor([W / 4, H / 4]), W, H)  # same canvas
    for part in ("length", "sleeves", "collar"):
        ratio = float(body_part_mask(half, part).mask.sum() / body_part_mask(frame, part).mask.sum())
        assert ratio == pytest.approx(0.25, rel=0.05), part


@pytest.mark.parametrize("size", [(704, 512), (300, 900), (1024, 1024), (517, 703)])
def test_any_aspect_ratio(size):
    frame = rescale_frame(preset(), *size)
    masks = attribute_masks(frame, category="Dress")
    for result in masks.values():
        assert result.mask.shape == (size[1], size[0])
    assert at(masks["collar"].mask, frame, "neck") == 1
    assert at(masks["sleeve_length"].mask, frame, "left wrist") == 1
    assert at(masks["clothing_length"].mask, frame, "right knee") == 1
    assert at(masks["clothing_length"].mask, frame, "nose") == 0


def test_stretched_canvas_still_covers_the_landmarks():
    frame = rescale_frame(preset(), 1024, 704, fit="stretch")  # a body twice as wide
    masks = attribute_masks(frame, category="Dress")
    for keypoint in ("right wrist", "left elbow", "left shoulder"):
        assert at(masks["sleeve_length"].mask, frame, keypoint) == 1, keypoint
    for keypoint in ("right ankle", "left knee", "left hip"):
        assert at(masks["clothing_length"].mask, frame, keypoint) == 1, keypoint


def test_sleeves_cover_both_arms_to_past_the_wrists_and_the_shoulder_cap():
    frame = preset()
    mask = body_part_mask(frame, "sleeves", grow=0.0).mask
    shoulder_width = float(
        (frame.keypoints[KEYPOINT["left shoulder"]] - frame.keypoints[KEYPOINT["right shoulder"]]).norm()
    )
    for side in ("right", "left"):
        for joint in ("shoulder", "elbow", "wrist"):
            assert at(mask, frame, f"{side} {joint}") == 1
        # short -> long sleeves need room past the wrist, further than the sleeve is wide
        elbow, wrist = frame.keypoints[KEYPOINT[f"{side} elbow"]], frame.keypoints[KEYPOINT[f"{side} wrist"]]
        forearm = (wrist - elbow) / (wrist - elbow).norm()
        past = forearm * (LOWER_SLEEVE_RADIUS + 0.1) * shoulder_width
        assert at(mask, frame, f"{side} wrist", past.tolist()) == 1
        assert at(mask, frame, f"{side} shoulder", (0, -25)) == 1, "puffed sleeves rise above the shoulder"
    assert at_each(mask, frame, "neck", "right knee", "nose") == [0, 0, 0]


def test_collar_is_at_the_neck_and_disjoint_from_the_hem():
    frame = preset()
    collar = body_part_mask(frame, "collar").mask
    assert at_each(collar, frame, "neck", "nose", "right elbow") == [1, 0, 0]
    assert at(collar, frame, "neck", (0, 50)) == 1, "V-necks reach down the chest"
    ys = collar.nonzero()[:, 0].float()
    neck_y, hip_y = frame.keypoints[KEYPOINT["neck"], 1], frame.keypoints[KEYPOINT["right hip"], 1]
    assert ys.min() > frame.keypoints[KEYPOINT["nose"], 1] and ys.max() < (neck_y + hip_y) / 2
    for category in ("Dress", "Pant", "Blouse"):
        hem = body_part_mask(frame, "hem", category=category).mask
        assert float((collar * hem).sum()) == 0, category


def test_dress_length_covers_hips_to_floor_and_a_blouse_only_a_hip_band():
    frame = preset()
    dress = body_part_mask(frame, "length", category="Dress").mask
    for keypoint in ("right hip", "left knee", "right ankle"):
        assert at(dress, frame, keypoint) == 1
    assert at(dress, frame, "left ankle", (0, 25)) == 1, "a long dress reaches the floor"
    assert at(dress, frame, "neck") == 0
    blouse = body_part_mask(frame, "length", category="Blouse").mask
    assert at_each(blouse, frame, "right hip", "right ankle", "neck") == [1, 0, 0]
    assert blouse.sum() < dress.sum()


def length_mask(frame, category, target, current=None) -> torch.Tensor:
    return body_part_mask(frame, "length", category=category, target=target, current=current).mask


def test_longer_target_length_never_gives_a_smaller_mask():
    frame = preset()
    for category in ("Dress", "Pant", "Blouse"):
        by_level = sorted(LENGTHS, key=garment_family(category).hemlines.__getitem__)
        for current in (None, "Ultra-short"):
            masks = [length_mask(frame, category, target, current) for target in by_level]
            for shorter, longer, target in zip(masks, masks[1:], by_level[1:], strict=False):
                assert is_superset(longer, shorter), (category, current, target)


def test_target_length_is_reached_when_the_current_length_is_known():
    frame = preset()
    knee = body_part_mask(frame, "length", category="Skirt", current="Ultra-short", target="Knee-length").mask
    long = body_part_mask(frame, "length", category="Skirt", current="Ultra-short", target="Long").mask
    assert at(knee, frame, "right knee", (0, 10)) == 1 and at(knee, frame, "right ankle") == 0
    assert at(long, frame, "right ankle", (0, 15)) == 1
    assert long.sum() > knee.sum()


def test_long_to_short_covers_the_current_garment_when_its_length_is_unknown():
    frame = preset()
    mask = body_part_mask(frame, "length", category="Dress", target="Ultra-short").mask
    assert at(mask, frame, "right ankle") == 1, "the long dress being shortened must be covered"


def test_hem_with_a_known_length_is_a_band_inside_the_length_region():
    frame = preset()
    hem = body_part_mask(frame, "hem", category="Dress", current="Knee-length").mask
    length = body_part_mask(frame, "length", category="Dress", current="Knee-length").mask
    assert is_superset(length, hem) and hem.sum() < length.sum()
    assert at_each(hem, frame, "right knee", "right hip", "right ankle") == [1, 0, 0]


def test_skirt_flares_wider_than_trousers():
    frame = preset()
    skirt = body_part_mask(frame, "skirt_length").mask
    pant = body_part_mask(frame, "pant_length").mask
    assert is_superset(skirt, pant) and skirt.sum() > pant.sum()
    torch.testing.assert_close(pant, body_part_mask(frame, "length", category="Pant").mask)


def test_turned_body_keeps_sensible_widths():
    front, turned = preset("front_standing"), preset("three_quarter_left")
    ratio = float(body_part_mask(turned, "sleeves").mask.sum() / body_part_mask(front, "sleeves").mask.sum())
    assert 0.75 < ratio < 1.05, "narrow-looking shoulders must not shrink the sleeves much"


# --- grow, feather, external masks --------------------------------------------------------------------


def test_grow_is_monotone_and_can_shrink():
    frame = preset()
    for part in ("length", "sleeves", "collar"):
        masks = [body_part_mask(frame, part, grow=g).mask for g in (-0.05, 0.0, 0.05, 0.2)]
        for small, big in zip(masks, masks[1:]):
            assert is_superset(big, small) and big.sum() > small.sum(), part


def test_grow_is_relative_to_the_body():
    frame = preset()
    shoulder_width = float(
        frame.keypoints[KEYPOINT["left shoulder"], 0] - frame.keypoints[KEYPOINT["right shoulder"], 0]
    )
    mask = body_part_mask(frame, "collar", grow=0.0).mask
    grown = body_part_mask(frame, "collar", grow=0.1).mask
    top, top_grown = mask.nonzero()[:, 0].min(), grown.nonzero()[:, 0].min()
    assert float(top - top_grown) == pytest.approx(0.1 * shoulder_width, abs=1.5)


def test_feather_softens_outward_and_is_monotone():
    frame = preset()
    hard = body_part_mask(frame, "sleeves", feather=0.0).mask
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    previous = hard
    for feather in (0.05, 0.1, 0.3):
        soft = body_part_mask(frame, "sleeves", feather=feather).mask
        assert is_superset(soft, previous)
        assert ((soft > 0) & (soft < 1)).any()
        assert torch.equal(soft == 1, hard == 1), "the grown region stays fully covered"
        previous = soft
    with pytest.raises(MaskError, match="feather must be >= 0"):
        body_part_mask(frame, "sleeves", feather=-0.1)


def test_external_mask_union_and_intersection():
    mask = body_part_mask([preset(), preset("front_walking")], "collar").mask
    external = torch.zeros(1, H, W)
    external[:, :100] = 1.0  # the top of the image
    union = combine_masks(mask, external, "union")
    inter = combine_masks(mask, external, "intersection")
    assert union.shape == inter.shape == (2, H, W)
    torch.testing.assert_close(union, torch.maximum(mask, external))
    torch.testing.assert_close(inter, torch.minimum(mask, external))
    assert is_superset(union, mask) and is_superset(mask, inter)
    assert float(inter[:, 100:].sum()) == 0 and float(inter.sum()) > 0


def test_union_of_overlapping_soft_masks_is_their_maximum_not_their_sum():
    soft = body_part_mask(preset(), "sleeves", feather=0.3).mask
    external = torch.full((H, W), 0.7)
    union = combine_masks(soft, external)
    assert float(union.max()) == 1.0 and float(union.min()) == pytest.approx(0.7)
    inside_the_feather = (soft > 0.2) & (soft < 0.7)
    assert bool(inside_the_feather.any())
    assert torch.allclose(union[0][inside_the_feather], torch.tensor(0.7))


def test_external_mask_of_hw_or_per_frame_batch():
    mask = body_part_mask([preset(), preset()], "collar").mask
    per_frame = torch.zeros(2, H, W)
    per_frame[1] = 1
    union = combine_masks(mask, per_frame)
    assert torch.equal(union[0], mask[0]) and bool((union[1] == 1).all())
    assert combine_masks(mask[0], torch.ones(H, W), "intersection").shape == (1, H, W)


def test_external_mask_size_mismatch_is_explained():
    mask = body_part_mask(preset(), "collar").mask
    with pytest.raises(MaskError, match=r"external mask is 512x512 \(W x H\) but the pose mask is 512x704"):
        combine_masks(mask, torch.zeros(1, 512, 512))
    with pytest.raises(MaskError, match="has 3 frames but the pose has 2"):
        combine_masks(torch.stack([mask, mask]), torch.zeros(3, H, W))
    with pytest.raises(MaskError, match="'union' or 'intersection'"):
        combine_masks(mask, torch.zeros(H, W), "xor")


# --- missing keypoints ----------------------------------------------------------------------------------


def test_missing_keypoint_is_an_error_that_names_it_when_estimates_are_off():
    frame = without("front_standing", "left wrist")
    with pytest.raises(PoseError, match=r"sleeves mask for frame 0 needs the left wrist keypoint") as error:
        body_part_mask(frame, "sleeves", missing="error")
    assert "external mask" in str(error.value) and "estimated" in str(error.value)
    collar = body_part_mask(frame, "collar", missing="error")  # the collar does not need the wrist
    assert collar.notes == ()
    torch.testing.assert_close(collar.mask, body_part_mask(preset(), "collar").mask)


def test_estimated_keypoints_are_reported_only_for_the_parts_they_shape():
    frame = without("front_standing", "left wrist", "right ankle")
    masks = attribute_masks(frame, category="Dress")
    sleeve_notes = " ".join(masks["sleeve_length"].notes)
    assert "left wrist estimated" in sleeve_notes and "ankle" not in sleeve_notes
    assert "right ankle estimated" in " ".join(masks["clothing_length"].notes)
    assert masks["collar"].notes == ()
    # the estimate continues the forearm, close to the true wrist
    assert at(masks["sleeve_length"].mask, preset(), "left wrist") == 1
    assert at(masks["clothing_length"].mask, preset(), "right ankle") == 1


def test_mirrored_shoulder_is_reported_and_lands_near_the_true_one():
    frame = without("front_standing", "left shoulder")
    result = body_part_mask(frame, "sleeves")
    assert any("left shoulder estimated (the right shoulder mirrored" in note for note in result.notes)
    reference = body_part_mask(preset(), "sleeves").mask
    overlap = float((result.mask * reference).sum() / reference.sum())
    assert overlap > 0.97


def test_cropped_legs_are_estimated_and_reported():
    frame = without("front_standing", "right knee", "right ankle", "left knee", "left ankle")
    result = body_part_mask(frame, "length", category="Dress")
    notes = " ".join(result.notes)
    for keypoint in ("right knee", "right ankle", "left knee", "left ankle"):
        assert f"{keypoint} estimated" in notes
    assert at(result.mask, preset(), "left ankle") == 1


def test_unestimable_keypoints_are_an_error_even_with_estimates_on():
    frame = without("front_standing", "neck", "left shoulder")
    with pytest.raises(PoseError, match="cannot be estimated") as error:
        body_part_mask(frame, "collar")
    assert "neck" in str(error.value) and "left shoulder" in str(error.value)


def test_missing_category_is_reported():
    result = body_part_mask(preset(), "length")
    assert any("no garment category given: using the Dress region" in note for note in result.notes)
    assert body_part_mask(preset(), "length", category="Dress").notes == ()
    assert body_part_mask(preset(), "skirt_length").notes == (), "skirt length fixes its own category"
    assert body_part_mask(preset(), "sleeves").notes == ()


# --- attributes and ordering --------------------------------------------------------------------------


def test_attribute_masks_follow_the_vocabulary_body_parts():
    frame = preset()
    masks = attribute_masks(frame, category="Coat")
    assert list(masks) == ["clothing_length", "sleeve_length", "sleeve_type", "collar", "hem"]
    assert masks["sleeve_length"] is masks["sleeve_type"]
    torch.testing.assert_close(masks["collar"].mask, body_part_mask(frame, "collar", category="Coat").mask)
    torch.testing.assert_close(masks["hem"].mask, body_part_mask(frame, "hem", category="Coat").mask)
    by_id = attribute_mask(frame, "A1", "Knee-length", category="Coat", current_length="Short")
    direct = body_part_mask(frame, "length", category="Coat", target="Knee-length", current="Short")
    torch.testing.assert_close(by_id.mask, direct.mask)


def test_masks_come_in_paper_order_or_by_area():
    kinds = ["collar", "hem", "sleeve_length", "clothing_length"]
    assert list(attribute_masks(preset(), kinds, category="Blouse")) == [
        "clothing_length", "sleeve_length", "collar", "hem"]
    masks = attribute_masks(preset(), kinds, category="Blouse", current_length="Short", order="by area")
    areas = [float(m.mask.sum()) for m in masks.values()]
    assert areas == sorted(areas, reverse=True)
    assert list(masks)[-1] == "collar"
    with pytest.raises(HieraFashError, match="attribute order must be one of"):
        attribute_masks(preset(), kinds, order="area")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: body_part_mask(f, "length", category="Kimono"), "garment category 'Kimono'"),
        (lambda f: body_part_mask(f, "length", target="Floor"), "target clothing length 'Floor'"),
        (lambda f: body_part_mask(f, "shoes"), "unknown body part"),
        (lambda f: attribute_mask(f, "custom"), "Custom attributes have no body part"),
        (lambda f: body_part_mask(f, "collar", missing="guess"), "missing must be"),
    ],
)
def test_bad_mask_requests_are_explained(call, message):
    with pytest.raises(MaskError, match=message):
        call(preset())


def test_every_body_part_renders_inside_the_canvas():
    frame = preset("front_walking")
    for part in BODY_PARTS:
        mask = body_part_mask(frame, part, category="Dress", feather=0.05).mask
        assert mask.min() >= 0 and mask.max() == 1 and mask.shape == (H, W)


def test_a_body_partly_off_canvas_is_clipped_not_an_error():
    frame = rescale_frame(preset(), W, H // 2, fit="cover")  # legs below the bottom edge
    mask = body_part_mask(frame, "length", category="Dress").mask
    assert mask.shape == (H // 2, W) and bool(mask[-1].any())


def exact_polygon_distance(hull: list[complex], size: int) -> torch.Tensor:
    """Brute force: 0 inside the convex polygon, else the distance to the nearest edge segment."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    distances, inside = [], torch.ones(size, size, dtype=torch.bool)
    for a, b in zip(hull, hull[1:] + hull[:1], strict=True):
        ab = b - a
        t = (((xs - a.real) * ab.real + (ys - a.imag) * ab.imag) / abs(ab) ** 2).clamp(0, 1)
        distances.append(torch.hypot(xs - a.real - t * ab.real, ys - a.imag - t * ab.imag))
        inside &= (xs - a.real) * ab.imag - (ys - a.imag) * ab.real <= 0  # left of each edge (y-up ccw)
    return torch.stack(distances).amin(0).masked_fill(inside, 0.0)


@pytest.mark.parametrize("grow, feather", [(6.3, 0.0), (6.3, 4.0), (0.0, 5.0)])
def test_grown_polygon_is_the_exact_dilation_even_at_sharp_corners(grow, feather):
    hull = convex_hull([complex(10, 20), complex(70, 28), complex(22, 60), complex(40, 33)])
    mask = torch.zeros(80, 80)
    paint_polygon(mask, hull, grow, feather)
    distance = exact_polygon_distance(hull, 80).float()
    expected = ((grow + feather - distance) / feather).clamp(0, 1) if feather else (distance <= grow).float()
    assert (mask - expected).abs().max() < 1e-3 if feather else int((mask != expected).sum()) <= 2


# --- bounded memory and limits (issue 17) ---------------------------------------------------------------

HUGE_POSE_SCRIPT = """
import resource, sys, time, torch
from hierafash_core.masks import body_part_mask
from hierafash_core.pose import PoseFrame, load_pose_preset, read_pose_keypoint
(frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
centre = frame.keypoints[[1, 8, 11]].mean(0)  # neck and hips: the torso stays on the canvas
huge = PoseFrame((frame.keypoints - centre) * {scale} + torch.tensor([256.0, 352.0]), 512, 704)
with open("/proc/self/statm") as statm:
    mapped = int(statm.read().split()[0]) * resource.getpagesize()
budget = {budget_mib} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, mapped + budget))  # allocations past it fail
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mask = body_part_mask(huge, "length", grow=1.0, feather=1.0).mask
assert mask.shape == (704, 512) and float(mask.max()) == 1.0
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)
"""


def test_a_pose_twenty_times_the_canvas_stays_within_a_memory_and_time_budget():
    import os
    import subprocess
    import sys
    from pathlib import Path

    budget_mib, seconds = 1024, 60  # the unbounded version asked for 7.8 GiB and ran 20 s
    env = dict(os.environ, OMP_NUM_THREADS="1")
    script = HUGE_POSE_SCRIPT.format(scale=20, budget_mib=budget_mib)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=seconds,
                         cwd=Path(__file__).resolve().parents[2], env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout.split()[-1]) < 256, "peak resident growth (MiB) while building the mask"


@pytest.mark.parametrize(
    "canvas, frames, settings, blamed, limit",
    [
        ((100000, 704), 1, {}, "width", "64..8192"),
        ((512, 40), 1, {}, "height", "64..8192"),
        ((4096, 4096), 8, {}, "width", "64 Mpx"),
        ((512, 704), 1, {"grow": 50.0}, "grow", "-0.5..1.0"),
        ((512, 704), 1, {"feather": -1.0}, "feather", "0.0..1.0"),
    ],
)
def test_settings_beyond_the_widget_limits_are_refused_naming_the_limit(canvas, frames, settings, blamed, limit):
    with pytest.raises(MaskError, match=re.escape(limit)) as error:
        build_body_masks([preset()] * frames, canvas, settings=MaskSettings(**settings))
    assert error.value.input_name == blamed


def test_keypoints_far_outside_the_canvas_are_refused_naming_the_limit():
    points = preset_points()
    points[KEYPOINT["left ankle"], :2] = torch.tensor([300.0, 704.0 * 40])
    (frame,) = read_pose_keypoint([pose_entry(points)])
    with pytest.raises(MaskError, match=r"left ankle keypoint lies at \(300, 28160\), more than 10 canvas") as error:
        body_part_mask(frame, "collar")
    assert error.value.input_name == "pose_keypoint"


# --- the Pose Mask Builder's steps (build_body_masks) ---------------------------------------------------


def test_build_reports_a_pose_fitted_onto_another_canvas_and_missing_keypoints():
    (big,) = read_pose_keypoint([pose_entry(preset_points() * torch.tensor([2.0, 2.0, 1.0]), 2 * W, 2 * H)])
    built = build_body_masks([big], (W, H))
    assert any("the pose's 1024x1408 canvas was fitted onto 512x704" in line for line in built.report)
    assert built.frames[0].width == W and built.body_masks.size == (H, W)
    torch.testing.assert_close(built.body_masks.by_kind["collar"][0], body_part_mask(preset(), "collar").mask)
    missing = build_body_masks([without("front_standing", "left wrist")], (W, H))
    assert any("keypoints missing" in line and "left wrist" in line for line in missing.report)
    assert not any("fitted" in line for line in missing.report)


def test_build_refuses_an_external_mask_batch_that_fits_no_pose_frame():
    with pytest.raises(MaskError, match="the external mask has 3 frames but the pose has 1") as error:
        build_body_masks([preset()], (W, H), external=torch.ones(3, H, W))
    assert error.value.input_name == "external_mask"
    two = build_body_masks([preset()], (W, H), external=torch.ones(1, H, W), images=2)
    assert two.body_masks.by_kind["custom"].shape == (2, H, W)
    assert bool((two.body_masks.by_kind["collar"] == 1).all()), "union with an all-ones mask"


def test_build_takes_the_category_target_length_and_collar_from_the_design():
    from hierafash_core.design import Attribute, Design

    design = Design(("Coat",), "Coat", (Attribute("clothing_length", "Knee-length Coat", "Knee-length"),
                                        Attribute("collar", "Tailor Collar", "Tailor Collar")))
    settings = MaskSettings(category="Blouse", current_length="Long")
    by_kind = build_body_masks([preset()], (W, H), design, settings=settings).body_masks.by_kind
    expected = body_part_mask(preset(), "length", category="Coat", target="Knee-length", current="Long").mask
    torch.testing.assert_close(by_kind["clothing_length"][0], expected)
    lapels = body_part_mask(preset(), "collar", category="Coat").mask
    torch.testing.assert_close(by_kind["collar"][0], lapels)
