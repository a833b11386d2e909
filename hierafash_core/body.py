"""Body geometry from one person's OpenPose-18 keypoints: the keypoint chains, the body's axes and
width unit, and the skeleton completed from average proportions where keypoints are missing."""

from __future__ import annotations

from dataclasses import dataclass

from .pose import KEYPOINT, KEYPOINT_NAMES, PoseError
from .raster import dot

NECK = KEYPOINT["neck"]
R_SHOULDER, R_ELBOW, R_WRIST = KEYPOINT["right shoulder"], KEYPOINT["right elbow"], KEYPOINT["right wrist"]
L_SHOULDER, L_ELBOW, L_WRIST = KEYPOINT["left shoulder"], KEYPOINT["left elbow"], KEYPOINT["left wrist"]
R_HIP, R_KNEE, R_ANKLE = KEYPOINT["right hip"], KEYPOINT["right knee"], KEYPOINT["right ankle"]
L_HIP, L_KNEE, L_ANKLE = KEYPOINT["left hip"], KEYPOINT["left knee"], KEYPOINT["left ankle"]
ARMS = ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST))
LEGS = ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE))

# Average standing adult, used only to place estimated keypoints (always reported).
TORSO_PER_SHOULDER_WIDTH = 1.5
HIP_HALF_WIDTH = 0.28  # shoulder widths
UPPER_ARM, FOREARM = 0.55, 0.45  # torso lengths
THIGH, SHIN = 0.62, 0.64  # torso lengths

# The body width unit w: the shoulder width, or this many torso lengths when larger (a turned body).
TORSO_WIDTH_RATIO = 0.6  # w >= this x torso length


def down_axis(p: list[complex | None]) -> complex:
    """Unit vector along the body from the neck toward the hips (image down when unknown)."""
    hips = [p[i] for i in (R_HIP, L_HIP) if p[i] is not None]
    toward_hips = sum(hips) / len(hips) - p[NECK] if hips and p[NECK] is not None else None
    if p[R_SHOULDER] is not None and p[L_SHOULDER] is not None and p[R_SHOULDER] != p[L_SHOULDER]:
        axis = (p[L_SHOULDER] - p[R_SHOULDER]) * 1j  # perpendicular to the shoulder line
        if dot(axis, toward_hips if toward_hips else 1j) < 0:
            axis = -axis
    else:
        axis = toward_hips or 1j
    return axis / abs(axis)


def mirror(point: complex, origin: complex, axis: complex) -> complex:
    """`point` reflected across the line through `origin` along unit vector `axis`."""
    return origin + axis * axis * (point - origin).conjugate()


def complete_skeleton(points: list[complex | None]) -> tuple[list[complex | None], dict[int, str]]:
    """Fill the missing body keypoints that the visible ones determine; return how each was placed."""
    p = list(points)
    reasons: dict[int, str] = {}

    def estimate(index: int, value: complex, reason: str):
        if p[index] is None:
            p[index], reasons[index] = value, reason

    if p[NECK] is None and p[R_SHOULDER] is not None and p[L_SHOULDER] is not None:
        estimate(NECK, (p[R_SHOULDER] + p[L_SHOULDER]) / 2, "midway between the shoulders")
    if p[NECK] is None:
        return p, reasons
    for absent, other in ((R_SHOULDER, L_SHOULDER), (L_SHOULDER, R_SHOULDER)):
        if p[absent] is None and p[other] is not None:
            reason = f"the {KEYPOINT_NAMES[other]} mirrored across the body axis"
            estimate(absent, mirror(p[other], p[NECK], down_axis(p)), reason)
    if p[R_SHOULDER] is None or p[L_SHOULDER] is None:
        return p, reasons

    down = down_axis(p)
    if p[R_HIP] is None and p[L_HIP] is None:
        shoulder_width = abs(p[L_SHOULDER] - p[R_SHOULDER])
        across = (p[L_SHOULDER] - p[R_SHOULDER]) / shoulder_width
        mid_hip = p[NECK] + down * TORSO_PER_SHOULDER_WIDTH * shoulder_width
        reason = "placed below the shoulders with average torso proportions"
        estimate(R_HIP, mid_hip - across * HIP_HALF_WIDTH * shoulder_width, reason)
        estimate(L_HIP, mid_hip + across * HIP_HALF_WIDTH * shoulder_width, reason)
    for absent, other in ((R_HIP, L_HIP), (L_HIP, R_HIP)):
        if p[absent] is None:
            reason = f"the {KEYPOINT_NAMES[other]} mirrored across the body axis"
            estimate(absent, mirror(p[other], p[NECK], down), reason)

    down = down_axis(p)
    torso = abs((p[R_HIP] + p[L_HIP]) / 2 - p[NECK])
    limbs = ((ARMS, UPPER_ARM, FOREARM, "arm"), (LEGS, THIGH, SHIN, "leg"))
    for chains, upper, lower, limb in limbs:
        for root, middle, end in chains:
            if p[middle] is None and p[end] is not None:
                estimate(middle, (p[root] + p[end]) / 2, f"midway along the {limb}")
            elif p[end] is None and p[middle] is not None:
                extension = (p[middle] - p[root]) * (lower / upper)
                estimate(end, p[middle] + extension, f"the {limb}'s upper segment continued")
            elif p[middle] is None:
                reason = f"the {limb} assumed straight along the body with average proportions"
                estimate(middle, p[root] + down * upper * torso, reason)
                estimate(end, p[middle] + down * lower * torso, reason)
    return p, reasons


@dataclass(frozen=True)
class Body:
    points: list[complex | None]
    unit: float  # w, pixels
    down: complex  # unit vector along the body, toward the hips
    across: complex  # unit vector from the right shoulder to the left

    @staticmethod
    def of(p: list[complex | None], n: int) -> Body:
        shoulder_width = abs(p[L_SHOULDER] - p[R_SHOULDER])
        has_hips = p[R_HIP] is not None and p[L_HIP] is not None
        torso = abs((p[R_HIP] + p[L_HIP]) / 2 - p[NECK]) if has_hips else 0.0
        unit = max(shoulder_width, TORSO_WIDTH_RATIO * torso)
        if unit < 1.0:
            raise PoseError(
                f"the pose in frame {n} is degenerate: shoulders and hips lie on one point; "
                "use a pose with a visible body",
                "pose_keypoint",
            )
        down = down_axis(p)
        across = (p[L_SHOULDER] - p[R_SHOULDER]) / shoulder_width if shoulder_width else down * -1j
        return Body(p, unit, down, across)
