"""controlnet-aux pose results into the pack's POSE_KEYPOINT; the detector plumbing with random weights."""

import math
import sys

import pytest
import torch

from hierafash_core.errors import HieraFashError
from hierafash_core.pose import NUM_KEYPOINTS, load_pose_preset, read_pose_keypoint, render_pose
from hierafash_core.pose_detect import (
    BODY_WEIGHTS,
    INSTALL_COMMAND,
    WEIGHTS_SOURCE,
    OpenPoseDetector,
    detect_batch,
    entry_frames,
    in_normalized,
    person_summary,
    pose_results_to_entry,
    render_entry,
)

open_pose = pytest.importorskip("controlnet_aux.open_pose")
from controlnet_aux.open_pose import PoseResult  # noqa: E402
from controlnet_aux.open_pose.body import BodyResult, Keypoint  # noqa: E402
from support.openpose_weights import write_random_openpose  # noqa: E402

W, H = 512, 704
MISSING = (10, 15)  # right knee and left eye: not found


def preset_normalized(name="front_standing") -> list[tuple[float, float]]:
    """A shipped pose's keypoints, normalised as controlnet-aux's detect_poses returns them."""
    flat = load_pose_preset(name)[0]["people"][0]["pose_keypoints_2d"]
    return [(flat[i] / W, flat[i + 1] / H) for i in range(0, len(flat), 3)]


def constructed(points, left_hand=None, right_hand=None, missing=MISSING) -> PoseResult:
    keypoints = [None if i in missing else Keypoint(x, y, 1.0, i) for i, (x, y) in enumerate(points)]
    return PoseResult(BodyResult(keypoints, total_score=20.0, total_parts=len(points) - len(missing)),
                      left_hand, right_hand, None)


def hand(centre_x: float, centre_y: float, lost=(3, 7)) -> list:
    # controlnet-aux marks a hand point it did not find with a negative coordinate (-1 / W)
    return [Keypoint(-1 / W, -1 / H) if i in lost else Keypoint(centre_x + 0.002 * i, centre_y + 0.001 * i)
            for i in range(21)]


def test_body_keypoints_become_pixels_and_the_pack_reads_them_back():
    points = preset_normalized()
    entry = pose_results_to_entry([constructed(points)], W, H, "pixels")
    assert (entry["canvas_width"], entry["canvas_height"]) == (W, H)
    [person] = entry["people"]
    flat = person["pose_keypoints_2d"]
    assert len(flat) == NUM_KEYPOINTS * 3
    for i in MISSING:
        assert flat[3 * i: 3 * i + 3] == [0.0, 0.0, 0.0]
    [frame] = read_pose_keypoint([entry])
    assert frame.coordinates == "pixels"
    for i, (x, y) in enumerate(points):
        got = frame.keypoints[i].tolist()
        if i in MISSING:
            assert all(math.isnan(v) for v in got)
        else:
            assert got == pytest.approx([x * W, y * H], abs=1e-3)


def test_normalized_output_reads_back_to_the_same_pixels():
    points = preset_normalized("three_quarter_left")
    pixels = pose_results_to_entry([constructed(points)], W, H, "pixels")
    normalized = pose_results_to_entry([constructed(points)], W, H, "normalized")
    assert normalized == in_normalized(pixels)
    assert max(normalized["people"][0]["pose_keypoints_2d"][0::3]) <= 1.0
    [from_normalized] = read_pose_keypoint([normalized])
    [from_pixels] = read_pose_keypoint([pixels])
    assert from_normalized.coordinates == "normalized"
    torch.testing.assert_close(from_normalized.keypoints, from_pixels.keypoints, equal_nan=True)


def test_hands_keep_found_points_and_zero_the_lost_ones():
    points = preset_normalized()
    entry = pose_results_to_entry([constructed(points, left_hand=hand(0.7, 0.5))], W, H)
    person = entry["people"][0]
    assert person["hand_right_keypoints_2d"] is None and person["face_keypoints_2d"] is None
    left = person["hand_left_keypoints_2d"]
    assert len(left) == 21 * 3
    assert left[9:12] == [0.0, 0.0, 0.0] and left[21:24] == [0.0, 0.0, 0.0]
    assert left[0:3] == pytest.approx([0.7 * W, 0.5 * H, 1.0])
    assert person_summary(entry) == "1 person (16/18 body keypoints; hands: left 19/21, right none)"


def test_every_person_is_kept_and_drawn():
    left_person = [(x * 0.5, y) for x, y in preset_normalized()]
    right_person = [(0.5 + x * 0.5, y) for x, y in preset_normalized()]
    entry = pose_results_to_entry([constructed(left_person, missing=()), constructed(right_person, missing=())], W, H)
    assert len(entry["people"]) == 2
    assert person_summary(entry).startswith("2 people (18/18 body keypoints")
    image = render_entry(entry)
    assert image.shape == (H, W, 3)
    drawn = image.any(dim=-1)
    assert drawn[:, : W // 2].any() and drawn[:, W // 2:].any()
    left, right = (render_pose([frame])[0] for frame in entry_frames(entry))  # each person alone
    torch.testing.assert_close(image[:, : W // 2], left[:, : W // 2])
    torch.testing.assert_close(image[:, W // 2:], right[:, W // 2:])


def test_nobody_gives_an_empty_entry_and_a_black_image():
    entry = pose_results_to_entry([], W, H)
    assert entry == {"people": [], "canvas_width": W, "canvas_height": H}
    assert person_summary(entry) == "nobody found"
    assert not render_entry(entry).any()


def test_an_unexpected_keypoint_layout_is_refused():
    with pytest.raises(HieraFashError, match="25 keypoints where 18"):
        pose_results_to_entry([constructed([(0.5, 0.5)] * 25, missing=())], W, H)
    with pytest.raises(HieraFashError, match="'pixels' or 'normalized'"):
        pose_results_to_entry([], W, H, "percent")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    return write_random_openpose(tmp_path_factory.mktemp("openpose"))


def test_random_weight_detector_runs_a_batch_and_reports_each_empty_frame(random_weights):
    body, hand_weights = random_weights
    detector = OpenPoseDetector(body, hand_weights, detect_resolution=128)
    images = torch.rand(2, 88, 64, 3, generator=torch.Generator().manual_seed(0))
    seen = []
    entries, renders, report = detect_batch(detector, images, "normalized", progress=seen.append)
    assert entries == [{"people": [], "canvas_width": 64, "canvas_height": 88}] * 2
    assert renders.shape == (2, 88, 64, 3) and not renders.any()
    assert report.splitlines() == ["frame 0: nobody found", "frame 1: nobody found",
                                   "nobody found in frame(s) 0, 1: their POSE_KEYPOINT entries are empty"]
    assert seen == [1, 2]


def test_a_missing_weights_file_names_the_file_the_folder_and_the_source(tmp_path):
    with pytest.raises(HieraFashError) as caught:
        OpenPoseDetector(tmp_path / BODY_WEIGHTS)
    message = str(caught.value)
    assert BODY_WEIGHTS in message and str(tmp_path) in message and WEIGHTS_SOURCE in message
    assert "non-commercial" in message


def test_without_controlnet_aux_the_error_says_how_to_install(random_weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "controlnet_aux.open_pose", None)  # makes the import fail
    with pytest.raises(HieraFashError) as caught:
        OpenPoseDetector(random_weights[0])
    assert INSTALL_COMMAND in str(caught.value)
