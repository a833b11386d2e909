"""Mask geometry against rules a tailor would state, for several poses x garment categories.

The rules are written from the body (keypoints, torso length) and the official boxes of method.md 4.4,
never from the mask code's constants: sleeves stay off the torso's centre line, a hem region reaches
the hem line, a collar stays above the bust line (lapels reach down the chest, not past the waist).
"""

import math

import pytest
import torch

from hierafash_core.masks import attribute_masks, body_part_mask
from hierafash_core.pose import KEYPOINT, PoseFrame, load_pose_preset, read_pose_keypoint, rescale_frame

W, H = 512, 704
TOPS = ("Blouse", "Sweater")
LOWER = ("Dress", "Coat", "Skirt", "Jumpsuit", "Pant")
SKIRT_LIKE = ("Dress", "Coat", "Skirt")
BUST_LINE = 0.35  # torso lengths below the neck: a third of the way to the hips, a little more
WAIST_LINE = 0.6
OFFICIAL_SHOULDER_WIDTH = 152  # px: the body the official offsets were tuned on (512 x 704, front)

# Bodies the shipped presets do not show, drawn by hand on 512 x 704 (x, y per OpenPose-18 keypoint,
# nose to left ear). "turned" faces about 60 degrees away: its shoulders look half as wide.
DRAWN = {
    "turned": [(262, 62), (256, 130), (221, 134), (214, 255), (212, 352), (291, 134), (298, 255), (300, 352),
               (236, 357), (234, 497), (232, 640), (276, 357), (278, 497), (280, 640), (258, 52), (268, 52),
               (250, 58), (272, 58)],
    "arms_raised": [(256, 130), (256, 196), (180, 200), (150, 100), (160, 20), (332, 200), (362, 100), (352, 20),
                    (214, 420), (218, 540), (222, 660), (298, 420), (294, 540), (290, 660), (247, 120),
                    (265, 120), (236, 126), (276, 126)],
    "seated": [(256, 80), (256, 150), (180, 154), (168, 290), (200, 430), (332, 154), (344, 290), (312, 430),
               (214, 380), (206, 450), (200, 620), (298, 380), (306, 450), (312, 620), (247, 70), (265, 70),
               (236, 76), (276, 76)],
}
POSES = ("front_standing", "front_walking", "three_quarter_left", "turned", "arms_raised", "seated")
FRONT = ("front_standing", "front_walking")


def pose(name: str) -> PoseFrame:
    if name in DRAWN:
        return PoseFrame(torch.tensor(DRAWN[name], dtype=torch.float32), W, H)
    (frame,) = read_pose_keypoint(load_pose_preset(name))
    return frame


def point(frame: PoseFrame, name: str) -> complex:
    x, y = frame.keypoints[KEYPOINT[name]].tolist()
    return complex(x, y)


class Torso:
    """The body's frame: neck, unit vector down to the mid-hip, torso length, and pixel coordinates."""

    def __init__(self, frame: PoseFrame):
        self.neck = point(frame, "neck")
        mid_hip = (point(frame, "right hip") + point(frame, "left hip")) / 2
        self.length = abs(mid_hip - self.neck)
        self.down = (mid_hip - self.neck) / self.length
        ys, xs = torch.meshgrid(torch.arange(frame.height, dtype=torch.float32),
                                torch.arange(frame.width, dtype=torch.float32), indexing="ij")
        dx, dy = xs - self.neck.real, ys - self.neck.imag
        self.level = (dx * self.down.real + dy * self.down.imag) / self.length  # torso lengths below the neck

    def along(self, level: float, sideways: float = 0.0) -> tuple[int, int]:
        """(row, column) of the pixel `level` torso lengths down the centre line, `sideways` to the left."""
        z = self.neck + self.down * self.length * (level + 1j * sideways)
        return round(z.imag), round(z.real)


def covers(mask: torch.Tensor, frame: PoseFrame, name: str, offset=0j) -> bool:
    z = point(frame, name) + offset
    return bool(mask[round(z.imag), round(z.real)] == 1)


def box_covered(mask: torch.Tensor, x0, y0, x1, y1) -> float:
    """Share of the box's pixels inside the mask."""
    box = mask[math.ceil(y0) : math.floor(y1) + 1, math.ceil(x0) : math.floor(x1) + 1]
    return float((box == 1).float().mean())


# --- sleeves ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSES)
def test_sleeves_cover_both_arms_and_stay_off_the_torso_centre_line(name):
    frame = pose(name)
    sleeves = body_part_mask(frame, "sleeves").mask
    for side in ("right", "left"):
        for joint in ("shoulder", "elbow", "wrist"):
            assert covers(sleeves, frame, f"{side} {joint}"), (name, side, joint)
    torso = Torso(frame)
    centre_line = [torso.along(level / 20) for level in range(2, 21)]  # below the collarbone to the hips
    assert all(sleeves[r, c] == 0 for r, c in centre_line), name


def bodice(frame: PoseFrame) -> torch.Tensor:
    """The quadrilateral shoulders-hips: the front of the bodice as the image shows it."""
    corners = [point(frame, n) for n in ("right shoulder", "left shoulder", "left hip", "right hip")]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    inside = torch.ones(H, W, dtype=torch.bool)
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        inside &= (b.real - a.real) * (ys - a.imag) - (b.imag - a.imag) * (xs - a.real) >= 0
    return inside


def test_a_turned_body_keeps_most_of_its_bodice_out_of_the_sleeves():
    frame = pose("turned")
    share = float(body_part_mask(frame, "sleeves").mask[bodice(frame)].mean())
    assert share < 2 / 3, "sized from the shoulder width, the sleeves of a turned body covered 89 % of it"


# --- hem ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category", TOPS)
def test_a_top_hem_is_a_band_around_the_hips(name, category):
    frame = pose(name)
    hem = body_part_mask(frame, "hem", category=category).mask
    torso = Torso(frame)
    assert covers(hem, frame, "right hip") and covers(hem, frame, "left hip"), name
    assert not covers(hem, frame, "right knee") and not covers(hem, frame, "left knee"), name
    assert float(hem[torso.level < BUST_LINE].sum()) == 0, "a top's hem stays below the bust line"


def official_hem_box(frame: PoseFrame, category: str) -> tuple[float, float, float, float]:
    """The official code's hem box (x0, y0, x1, y1): a top's band around the hips, or a skirt-like garment's
    box from the hips to below the ankles, past the elbows; its px offsets scaled by the shoulder width."""
    s = abs(point(frame, "left shoulder") - point(frame, "right shoulder")) / OFFICIAL_SHOULDER_WIDTH
    if category in TOPS:
        r, left = point(frame, "right hip"), point(frame, "left hip")
        return r.real - 20 * s, r.imag - 60 * s, left.real + 20 * s, left.imag + 20 * s
    return (point(frame, "right elbow").real - 100 * s, point(frame, "right hip").imag,
            point(frame, "left elbow").real + 100 * s, point(frame, "left ankle").imag + 60 * s)


@pytest.mark.parametrize("size", [(W, H), (2 * W, 2 * H)])
@pytest.mark.parametrize("name", FRONT)
@pytest.mark.parametrize("category", TOPS + SKIRT_LIKE)
def test_a_hem_covers_the_official_box(name, category, size):
    frame = rescale_frame(pose(name), *size)
    hem = body_part_mask(frame, "hem", category=category).mask
    assert box_covered(hem, *official_hem_box(frame, category)) == 1


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category", LOWER)
def test_a_lower_garment_hem_reaches_the_floor_length_hem_line(name, category):
    frame = pose(name)
    hem = body_part_mask(frame, "hem", category=category).mask
    feet = 0.15 * Torso(frame).length  # a floor-length hem falls past the ankles to the floor
    for side in ("right", "left"):
        assert covers(hem, frame, f"{side} ankle", 1j * feet), (name, side)
        assert covers(hem, frame, f"{side} knee") and covers(hem, frame, f"{side} hip"), (name, side)
    assert float(hem[Torso(frame).level < BUST_LINE].sum()) == 0


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category", LOWER)
def test_a_known_knee_length_hem_is_a_band_at_the_knees(name, category):
    frame = pose(name)
    hem = body_part_mask(frame, "hem", category=category, current="Knee-length").mask
    for side in ("right", "left"):
        assert covers(hem, frame, f"{side} knee"), (name, side)
        assert not covers(hem, frame, f"{side} ankle") and not covers(hem, frame, f"{side} hip"), (name, side)


# --- length -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category", LOWER)
def test_the_length_region_spans_the_current_and_the_requested_hemline(name, category):
    frame = pose(name)

    def length(target, current):
        return body_part_mask(frame, "length", category=category, target=target, current=current).mask

    shorten, lengthen = length("Short", "Knee-length"), length("Long", "Knee-length")
    for side in ("right", "left"):
        thigh_middle = (point(frame, f"{side} hip") + point(frame, f"{side} knee")) / 2
        offset = thigh_middle - point(frame, f"{side} knee")
        # knee -> short: the fabric from mid-thigh to the knee changes, the shins stay
        assert covers(shorten, frame, f"{side} knee") and covers(shorten, frame, f"{side} knee", offset)
        assert not covers(shorten, frame, f"{side} ankle")
        # knee -> long: the shins to the floor, not the hips
        assert covers(lengthen, frame, f"{side} ankle") and not covers(lengthen, frame, f"{side} hip")
    assert not torch.equal(length("Short", "Knee-length"), length("Short", "Mid-length")), "the current moves it"
    assert not torch.equal(length("Short", "Knee-length"), length("Ultra-short", "Knee-length")), "so does the target"


@pytest.mark.parametrize("category", TOPS)
def test_a_top_length_region_follows_the_two_hemlines(category):
    frame = pose("front_standing")
    crop = body_part_mask(frame, "length", category=category, target="Ultra-short", current="Mid-length").mask
    torso = Torso(frame)
    assert covers(crop, frame, "right hip") and not covers(crop, frame, "right knee")
    assert float(crop[torso.level < BUST_LINE].sum()) == 0, "even a crop top's region stays below the bust"


# --- collar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category", ("Dress", "Blouse", "Sweater", "Jumpsuit"))
def test_a_collar_covers_the_neck_and_stays_above_the_bust_line(name, category):
    frame = pose(name)
    masks = attribute_masks(frame, ["collar"], values={"collar": "V-Neck"}, category=category)
    collar = masks["collar"].mask
    torso = Torso(frame)
    assert covers(collar, frame, "neck") and not covers(collar, frame, "nose")
    assert float(collar[torso.level > BUST_LINE].sum()) == 0, name
    assert collar[torso.along(0.15)] == 1, "a V-neck reaches down the chest"


@pytest.mark.parametrize("name", POSES)
@pytest.mark.parametrize("category, collar", [("Coat", None), ("Dress", "Tailor Collar"), ("Blouse", "Lapel Collar")])
def test_lapels_are_covered_below_the_collarbone_and_above_the_waist(name, category, collar):
    frame = pose(name)
    values = {"collar": collar} if collar else None
    mask = attribute_masks(frame, ["collar"], values=values, category=category)["collar"].mask
    torso = Torso(frame)
    for level in (0.1, 0.2, 0.3, BUST_LINE):
        assert mask[torso.along(level)] == 1, (name, level)
    for sideways in (-0.12, 0.12):  # each lapel, beside the opening
        assert mask[torso.along(0.25, sideways)] == 1, (name, sideways)
    assert float(mask[torso.level > WAIST_LINE].sum()) == 0, name
