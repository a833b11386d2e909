import math

import pytest
import torch

from hierafash_core.pose import (
    KEYPOINT,
    KEYPOINT_NAMES,
    OPENPOSE_COLORS,
    OPENPOSE_LIMBS,
    PoseError,
    PoseFrame,
    load_pose_preset,
    pose_presets,
    read_pose_keypoint,
    render_pose,
    rescale_frame,
    single_threaded,
    to_pose_keypoint,
)

W, H = 512, 704


def preset_points(name="front_standing") -> torch.Tensor:
    """[18, 3] pixel x, y, confidence of a shipped preset."""
    return torch.tensor(load_pose_preset(name)[0]["people"][0]["pose_keypoints_2d"]).view(18, 3)


def entry(*people: torch.Tensor, width=W, height=H) -> dict:
    return {
        "people": [{"pose_keypoints_2d": p.flatten().tolist()} for p in people],
        "canvas_width": width,
        "canvas_height": height,
    }


def normalized(points: torch.Tensor, width=W, height=H) -> torch.Tensor:
    out = points.clone()
    out[:, 0] /= width
    out[:, 1] /= height
    return out


def scaled(points: torch.Tensor, factor: float, shift=(0.0, 0.0)) -> torch.Tensor:
    out = points.clone()
    out[:, :2] = out[:, :2] * factor + torch.tensor(shift)
    return out


# --- reading ------------------------------------------------------------------------------------------


def test_normalized_pixels_and_real_confidence_read_the_same():
    pixels = preset_points()
    real_confidence = pixels.clone()
    real_confidence[:, 2] = torch.linspace(0.35, 0.98, 18)
    frames = read_pose_keypoint([entry(normalized(pixels)), entry(pixels), entry(real_confidence)])
    assert [f.coordinates for f in frames] == ["normalized", "pixels", "pixels"]
    for frame in frames:
        assert (frame.width, frame.height) == (W, H)
        torch.testing.assert_close(frame.keypoints, pixels[:, :2], atol=1e-3, rtol=0)


def test_auto_coordinates_are_decided_per_frame_in_a_mixed_batch():
    pixels = preset_points()
    batch = [entry(pixels), entry(normalized(pixels)), entry(pixels), entry(normalized(pixels))]
    frames = read_pose_keypoint(batch)
    assert [f.coordinates for f in frames] == ["pixels", "normalized", "pixels", "normalized"]
    for frame in frames:
        torch.testing.assert_close(frame.keypoints, pixels[:, :2], atol=1e-3, rtol=0)


def test_auto_admits_normalized_limbs_slightly_outside_the_image():
    points = normalized(preset_points())
    points[KEYPOINT["right ankle"], :2] = torch.tensor([0.4, 1.2])  # ankle below the image
    (frame,) = read_pose_keypoint([entry(points)])
    assert frame.coordinates == "normalized"
    assert frame.keypoints[KEYPOINT["right ankle"], 1] == pytest.approx(1.2 * H)


def test_explicit_coordinates_override_auto():
    points = normalized(preset_points())
    (as_pixels,) = read_pose_keypoint([entry(points)], coordinates="pixels")
    assert as_pixels.coordinates == "pixels"
    torch.testing.assert_close(as_pixels.keypoints, points[:, :2])
    with pytest.raises(PoseError, match="coordinates must be"):
        read_pose_keypoint([entry(points)], coordinates="percent")


def test_missing_keypoints_are_nan_not_the_corner():
    points = preset_points()
    points[KEYPOINT["left wrist"]] = torch.tensor([0.0, 0.0, 0.0])  # not detected
    points[KEYPOINT["right knee"], 2] = 0.0  # confidence 0 at a real position
    points[KEYPOINT["left ear"]] = torch.tensor([0.0, 0.0, 1.0])  # (0, 0) with confidence 1
    points[KEYPOINT["nose"], 2] = 0.2  # below the threshold given
    (frame,) = read_pose_keypoint([entry(points)], min_confidence=0.25)
    missing = {KEYPOINT[n] for n in ("left wrist", "right knee", "left ear", "nose")}
    for index in range(18):
        assert bool(frame.visible[index]) == (index not in missing), KEYPOINT_NAMES[index]
    assert frame.keypoints[sorted(missing)].isnan().all()


def test_a_lone_visible_point_at_the_origin_does_not_decide_the_space():
    points = preset_points()
    points[KEYPOINT["left ear"]] = torch.tensor([0.0, 0.0, 1.0])
    (frame,) = read_pose_keypoint([entry(points)])
    assert frame.coordinates == "pixels"


# The 'auto' rule's edge cases, each one pose a producer really writes.


@pytest.fixture
def normalized_pose_missing_one_keypoint() -> dict:
    """controlnet_aux OpenPose's usual output: 0-1 coordinates, an undetected keypoint written as 0, 0, 0."""
    points = normalized(preset_points())
    points[KEYPOINT["left ear"]] = torch.tensor([0.0, 0.0, 0.0])
    return entry(points)


@pytest.fixture
def pixel_pose_with_a_point_at_one_one() -> dict:
    """Pixels, with one real keypoint in the top-left pixel (a hand raised into the corner)."""
    points = preset_points()
    points[KEYPOINT["right wrist"]] = torch.tensor([1.0, 1.0, 0.9])
    return entry(points)


@pytest.fixture
def empty_person_then_a_pixel_person() -> dict:
    """Person 0 detected with no usable keypoint (all zeros), person 1 in pixels."""
    return entry(torch.zeros(18, 3), preset_points())


def test_auto_reads_a_normalized_pose_with_a_missing_keypoint_as_normalized(normalized_pose_missing_one_keypoint):
    (frame,) = read_pose_keypoint([normalized_pose_missing_one_keypoint])
    assert frame.coordinates == "normalized"
    expected = preset_points()[:, :2]
    visible = torch.arange(18) != KEYPOINT["left ear"]
    torch.testing.assert_close(frame.keypoints[visible], expected[visible], atol=1e-3, rtol=0)


def test_auto_needs_every_point_in_range_to_read_normalized(pixel_pose_with_a_point_at_one_one):
    (frame,) = read_pose_keypoint([pixel_pose_with_a_point_at_one_one])
    assert frame.coordinates == "pixels"
    assert frame.keypoints[KEYPOINT["right wrist"]].tolist() == [1.0, 1.0]


def test_auto_decides_from_every_person_not_the_first(empty_person_then_a_pixel_person):
    (frame,) = read_pose_keypoint([empty_person_then_a_pixel_person])
    assert frame.coordinates == "pixels"
    torch.testing.assert_close(frame.keypoints, preset_points()[:, :2])


def test_no_person_names_the_frame():
    with pytest.raises(PoseError, match="no person in frame 1"):
        read_pose_keypoint([entry(preset_points()), entry()])


def test_person_with_no_visible_keypoint_is_an_error():
    empty = torch.zeros(18, 3)
    with pytest.raises(PoseError, match=r"1 person in frame 0, but every keypoint is missing \(18 at 0, 0"):
        read_pose_keypoint([entry(empty)])
    with pytest.raises(PoseError, match="person 1 in frame 0 has no visible keypoint"):
        read_pose_keypoint([entry(preset_points(), empty)], person=1)


def test_person_selection_by_index_and_largest():
    big = preset_points()
    small = scaled(big, 0.5, shift=(300.0, 300.0))
    frames = read_pose_keypoint([entry(small, big)])
    torch.testing.assert_close(frames[0].keypoints, big[:, :2])  # default: largest
    (first,) = read_pose_keypoint([entry(small, big)], person=0)
    torch.testing.assert_close(first.keypoints, small[:, :2])
    (second,) = read_pose_keypoint([entry(small, big)], person=1)
    torch.testing.assert_close(second.keypoints, big[:, :2])


def test_person_index_out_of_range_says_how_many_there_are():
    with pytest.raises(PoseError, match=r"person index 2 is out of range in frame 0, which has 2 people"):
        read_pose_keypoint([entry(preset_points(), preset_points())], person=2)
    with pytest.raises(PoseError, match="index or 'largest'"):
        read_pose_keypoint([entry(preset_points())], person="tallest")


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "non-empty list"),
        ("pose", "non-empty list"),
        ([{"people": []}], "canvas_width"),
        (
            [{"people": [{"pose_keypoints_2d": [1.0] * 75}], "canvas_width": 8, "canvas_height": 8}],
            "OpenPose-18",
        ),
        ([["not", "a", "dict"]], "not a dict"),
    ],
)
def test_malformed_input_is_explained(bad, message):
    with pytest.raises(PoseError, match=message):
        read_pose_keypoint(bad)


def test_a_single_frame_dict_is_accepted():
    (frame,) = read_pose_keypoint(entry(preset_points()))
    assert (frame.width, frame.height) == (W, H)


# --- writing, rescaling, presets ----------------------------------------------------------------------


def test_to_pose_keypoint_round_trips_and_writes_missing_as_zeros():
    points = preset_points("three_quarter_left")  # its right ear is missing
    (frame,) = read_pose_keypoint([entry(points)])
    written = to_pose_keypoint(frame)
    flat = written[0]["people"][0]["pose_keypoints_2d"]
    assert flat[3 * KEYPOINT["right ear"] : 3 * KEYPOINT["right ear"] + 3] == [0.0, 0.0, 0.0]
    (again,) = read_pose_keypoint(written)
    torch.testing.assert_close(again.keypoints, frame.keypoints, equal_nan=True)


def test_rescale_contain_doubles_a_doubled_canvas():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    big = rescale_frame(frame, 2 * W, 2 * H)
    assert (big.width, big.height) == (2 * W, 2 * H)
    torch.testing.assert_close(big.keypoints, frame.keypoints * 2)


def test_rescale_to_another_aspect_ratio_keeps_proportions_unless_stretched():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    wide = rescale_frame(frame, 1024, 704, fit="contain")  # same height, centred horizontally
    torch.testing.assert_close(wide.keypoints, frame.keypoints + torch.tensor([256.0, 0.0]))
    cover = rescale_frame(frame, 1024, 704, fit="cover")  # scale 2, vertical overflow cropped
    torch.testing.assert_close(cover.keypoints, frame.keypoints * 2 + torch.tensor([0.0, -352.0]))
    stretched = rescale_frame(frame, 1024, 704, fit="stretch")
    torch.testing.assert_close(stretched.keypoints, frame.keypoints * torch.tensor([2.0, 1.0]))
    with pytest.raises(PoseError, match="fit must be"):
        rescale_frame(frame, 100, 100, fit="zoom")


def test_at_least_four_presets_load_as_plausible_full_body_poses():
    names = pose_presets()
    assert len(names) >= 4
    assert {"front_standing", "three_quarter_left", "three_quarter_right"} <= set(names)
    for name in names:
        pose_keypoint = load_pose_preset(name)
        assert pose_keypoint[0]["canvas_width"] == W and pose_keypoint[0]["canvas_height"] == H
        (frame,) = read_pose_keypoint(pose_keypoint)
        assert frame.coordinates == "pixels"
        assert bool(frame.visible[:14].all()), f"{name}: every body keypoint is visible"
        kp = frame.keypoints
        assert 0.05 < kp[KEYPOINT["nose"], 1] / H < 0.12, name
        for ankle in ("right ankle", "left ankle"):
            assert 0.86 < kp[KEYPOINT[ankle], 1] / H < 0.96, name
        assert kp[KEYPOINT["neck"], 1] < kp[KEYPOINT["right hip"], 1] < kp[KEYPOINT["right knee"], 1]
        # the person's right side is on the image's left for these camera-facing poses
        assert kp[KEYPOINT["right shoulder"], 0] < kp[KEYPOINT["left shoulder"], 0], name


def test_three_quarter_presets_are_mirror_images():
    (left,) = read_pose_keypoint(load_pose_preset("three_quarter_left"))
    (right,) = read_pose_keypoint(load_pose_preset("three_quarter_right"))
    swap = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16]
    mirrored = right.keypoints[swap] * torch.tensor([-1.0, 1.0]) + torch.tensor([W, 0.0])
    torch.testing.assert_close(mirrored, left.keypoints, equal_nan=True)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(PoseError, match="front_standing"):
        load_pose_preset("moonwalk")


# --- rendering ----------------------------------------------------------------------------------------


def color_at(image: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    x, y = (int(round(float(v))) for v in point)
    return image[y, x]


def test_render_shape_range_and_black_background():
    frames = read_pose_keypoint([load_pose_preset("front_standing")[0], load_pose_preset("front_walking")[0]])
    image = render_pose(frames)
    assert image.shape == (2, H, W, 3) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert (image[:, :20] == 0).all(), "the top band above the head is empty"
    assert 0.005 < (image.amax(-1) > 0).float().mean() < 0.1
    assert not torch.equal(image[0], image[1])


def test_controlnet_1_1_render_draws_dimmed_limbs_then_joints_on_top():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    image = render_pose(frame, "ControlNet 1.1 (controlnet_aux)")[0]
    kp = frame.keypoints
    colors = torch.tensor(OPENPOSE_COLORS) / 255
    for limb, (a, b) in enumerate(OPENPOSE_LIMBS):
        if limb in (13, 14, 15, 16):
            continue  # face limbs are shorter than a joint is wide
        middle = (kp[a] + kp[b]) / 2
        torch.testing.assert_close(color_at(image, middle), colors[limb] * 0.6, msg=f"limb {a}-{b}")
    for joint in range(18):
        torch.testing.assert_close(color_at(image, kp[joint]), colors[joint], msg=KEYPOINT_NAMES[joint])
    # the right upper arm is orange, on the image's left
    upper_arm = color_at(image, (kp[KEYPOINT["right shoulder"]] + kp[KEYPOINT["right elbow"]]) / 2)
    torch.testing.assert_close(upper_arm, torch.tensor([1.0, 170 / 255, 0.0]) * 0.6)
    assert float(color_at(image, torch.tensor([60.0, 600.0])).sum()) == 0


def test_controlnet_1_0_render_blends_each_limb_at_0_6_over_the_joints():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    image = render_pose(frame, "ControlNet 1.0 (official)")[0]
    kp = frame.keypoints
    colors = torch.tensor(OPENPOSE_COLORS) / 255
    middle = (kp[KEYPOINT["right shoulder"]] + kp[KEYPOINT["right elbow"]]) / 2  # over black
    torch.testing.assert_close(color_at(image, middle), torch.tensor([1.0, 170 / 255, 0.0]) * 0.6)
    # a wrist or an ankle ends one limb: its joint shows through that limb at 0.4
    for joint, limb in (("right wrist", (3, 4)), ("left wrist", (6, 7)), ("right ankle", (9, 10))):
        below = colors[KEYPOINT[joint]]
        over = colors[OPENPOSE_LIMBS.index(limb)]
        torch.testing.assert_close(color_at(image, kp[KEYPOINT[joint]]), 0.4 * below + 0.6 * over, msg=joint)
    assert torch.equal(render_pose(frame)[0], render_pose(frame, "ControlNet 1.1 (controlnet_aux)")[0]), "the default"
    assert not torch.equal(image, render_pose(frame)[0])
    with pytest.raises(PoseError, match="render style must be one of") as error:
        render_pose(frame, "sketch")
    assert error.value.input_name == "render_style"


def with_right_hand(hand: torch.Tensor) -> dict:
    pose = load_pose_preset("front_standing")
    pose[0]["people"][0]["hand_right_keypoints_2d"] = hand.flatten().tolist()
    return pose[0]


def test_hands_are_read_rescaled_written_and_drawn_in_the_official_style():
    wrist = preset_points()[KEYPOINT["right wrist"], :2]
    # a flat hand hanging down: the wrist, then each finger's four joints 12 px apart, fingers 6 px apart
    hand = torch.zeros(21, 3)
    hand[0] = torch.tensor([*wrist.tolist(), 1.0])
    for finger in range(5):
        for joint in range(4):
            hand[1 + 4 * finger + joint] = torch.tensor([wrist[0] - 12 + 6 * finger, wrist[1] + 12 * (joint + 1), 0.8])
    (frame,) = read_pose_keypoint([with_right_hand(hand)])
    assert frame.hands.shape == (2, 21, 2) and bool(frame.hands[1].isnan().all()), "no left hand given"
    torch.testing.assert_close(frame.hands[0], hand[:, :2])
    doubled = rescale_frame(frame, 2 * W, 2 * H)
    torch.testing.assert_close(doubled.hands[0], hand[:, :2] * 2)
    written = to_pose_keypoint(frame)[0]["people"][0]
    assert written["hand_right_keypoints_2d"][:3] == [*wrist.tolist(), 1.0]
    assert written["hand_left_keypoints_2d"] == [0.0] * 63
    # drawn: blue joints, bones in the hues of their order (the thumb's first bone red)
    image = render_pose(frame, "ControlNet 1.0 (official)")[0]
    fingertip = hand[20, :2]
    torch.testing.assert_close(color_at(image, fingertip), torch.tensor([0.0, 0.0, 1.0]))
    thumb_bone = (hand[1, :2] + hand[2, :2]) / 2  # bone 1 of 20: hue 1/20, HSV (0.05, 1, 1)
    torch.testing.assert_close(color_at(image, thumb_bone), torch.tensor([1.0, 0.3, 0.0]))
    body_only = read_pose_keypoint(load_pose_preset("front_standing"))
    aux = "ControlNet 1.1 (controlnet_aux)"
    assert torch.equal(render_pose(frame, aux), render_pose(body_only, aux)), "controlnet_aux draws no hands"


def test_render_skips_limbs_with_a_missing_end():
    points = preset_points()
    points[KEYPOINT["left elbow"]] = 0.0
    (frame,) = read_pose_keypoint([entry(points)])
    image = render_pose(frame)[0]
    kp = preset_points()[:, :2]
    for a, b in (
        (KEYPOINT["left shoulder"], KEYPOINT["left elbow"]),
        (KEYPOINT["left elbow"], KEYPOINT["left wrist"]),
    ):
        assert float(color_at(image, (kp[a] + kp[b]) / 2).sum()) == 0
    assert float(color_at(image, kp[KEYPOINT["left wrist"]]).sum()) > 0


def test_render_strokes_scale_with_the_canvas():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    small = (render_pose(frame)[0].amax(-1) > 0).float().sum()
    large = (render_pose(rescale_frame(frame, 2 * W, 2 * H))[0].amax(-1) > 0).float().sum()
    assert 3.6 < float(large / small) < 4.4  # twice as long and twice as thick


def test_render_needs_one_canvas_size():
    (frame,) = read_pose_keypoint(load_pose_preset("front_standing"))
    with pytest.raises(PoseError, match="different canvas sizes"):
        render_pose([frame, rescale_frame(frame, 256, 256)])


def test_single_threaded_restores_the_thread_count():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), single_threaded():
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_pose_frame_visibility_uses_nan():
    frame = PoseFrame(torch.tensor([[1.0, 2.0]] * 17 + [[math.nan, math.nan]]), 4, 4)
    assert frame.visible.tolist() == [True] * 17 + [False]


# --- no silent no-ops (issue 11 item 4) ----------------------------------------------------------------


def test_forcing_normalized_on_a_pixel_pose_is_refused_naming_both_settings():
    with pytest.raises(PoseError, match=r"read as normalized coordinates, the person in frame 0 lies entirely "
                                        r"outside the 512x704 canvas.*set coordinates to 'auto' or 'pixels'") as error:
        read_pose_keypoint([entry(preset_points())], coordinates="normalized")
    assert error.value.input_name == "coordinates"


def test_a_pose_off_its_own_canvas_is_refused_in_auto():
    with pytest.raises(PoseError, match="lies entirely outside the 512x704 canvas") as error:
        read_pose_keypoint([entry(scaled(preset_points(), 1.0, shift=(2000.0, 0.0)))])
    assert error.value.input_name == "pose_keypoint"


def test_person_index_out_of_range_names_the_person_widget_and_its_largest_value():
    with pytest.raises(PoseError, match=r"valid: 0\.\.1, or -1 for the largest") as error:
        read_pose_keypoint([entry(preset_points(), preset_points())], person=5)
    assert error.value.input_name == "person" and "'largest'" not in str(error.value)
    big, small = preset_points(), scaled(preset_points(), 0.5, shift=(300.0, 300.0))
    (largest,) = read_pose_keypoint([entry(small, big)], person=-1)
    torch.testing.assert_close(largest.keypoints, big[:, :2])


def test_nan_coordinates_are_reported_as_missing_keypoints_not_as_nobody():
    nan_person = torch.full((18, 3), math.nan)
    with pytest.raises(PoseError, match=r"1 person in frame 0, but every keypoint is missing \(18 with NaN") as error:
        read_pose_keypoint([entry(nan_person)])
    assert "nobody" not in str(error.value)
    points = preset_points()
    points[KEYPOINT["left wrist"], :2] = math.nan
    (frame,) = read_pose_keypoint([entry(points)])
    assert not bool(frame.visible[KEYPOINT["left wrist"]]) and int(frame.visible.sum()) == 17
