"""HieraFash Pose From Image in the real ComfyUI: weights from models/openpose, every frame reported, clear errors.

The detector files are seeded random weights (the real ones are non-commercial and never downloaded), so
OpenPose finds nobody: that is the case the node must report rather than hide. The conversion of real
detections is covered by tests/unit/test_pose_detect.py on constructed results.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image
from support.graphs import Graph

from hierafash_cli.server import ComfyError
from hierafash_core.pose_detect import BODY_WEIGHTS, HAND_WEIGHTS

pytest.importorskip("controlnet_aux")
from support.openpose_weights import write_random_openpose  # noqa: E402

WIDTH, HEIGHT = 64, 88
NODE = "HieraFashPoseFromImage"


@pytest.fixture(scope="module")
def openpose_folder(comfy_base):
    folder = comfy_base / "models" / "openpose"
    write_random_openpose(folder)
    return folder


@pytest.fixture(scope="module")
def photo(comfy_base):
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(comfy_base / "input" / "pose.png")
    return "pose.png"


def detect_graph(photo, batch=2, **widgets):
    g = Graph()
    image = g.add("RepeatImageBatch", image=g.add("LoadImage", image=photo).out(0), amount=batch).out(0)
    inputs = dict(image=image, coordinates="normalized", hands=True, detect_resolution=128,
                  body_model=BODY_WEIGHTS, hand_model=HAND_WEIGHTS)
    node = g.add(NODE, **{**inputs, **widgets})
    keypoints = g.add("PreviewAny", source=node.out(0))
    pose_image = g.add("PreviewImage", images=node.out(1))
    report = g.add("PreviewAny", source=node.out(2))
    return g, node, keypoints, pose_image, report


def test_a_batch_with_nobody_is_reported_frame_by_frame(comfy, openpose_folder, photo):
    g, _, keypoints, pose_image, report = detect_graph(photo)
    outputs = comfy.run(g.prompt())["outputs"]
    entries = json.loads(outputs[str(keypoints)]["text"][0])
    assert entries == [{"people": [], "canvas_width": WIDTH, "canvas_height": HEIGHT}] * 2
    lines = outputs[str(report)]["text"][0].splitlines()
    assert lines[:3] == ["frame 0: nobody found", "frame 1: nobody found",
                         "nobody found in frame(s) 0, 1: their POSE_KEYPOINT entries are empty"]
    assert "body_pose_model.pth + hand_pose_model.pth" in lines[3]
    images = outputs[str(pose_image)]["images"]
    assert len(images) == 2
    for image in images:
        pixels = np.asarray(Image.open(io.BytesIO(comfy.view(image))))
        assert pixels.shape[:2] == (HEIGHT, WIDTH) and not pixels.any()


def test_nobody_stops_the_mask_builder_downstream_with_its_own_message(comfy, openpose_folder, photo):
    g, detect, *_ = detect_graph(photo, batch=1)
    masks = g.add("HieraFashPoseMaskBuilder", preset="front_standing", width=WIDTH, height=HEIGHT, category="Dress",
                  person=-1, grow=0.05, feather=0.0, coordinates="auto", missing_keypoints="estimate",
                  external_mode="union", pose_keypoint=detect.out(0))
    g.add("PreviewAny", source=masks.out(7))
    with pytest.raises(ComfyError, match=r"HieraFash Pose Mask Builder: input 'pose_keypoint': no person in frame 0"):
        comfy.run(g.prompt())


def test_a_missing_weights_file_names_the_file_the_folder_and_where_it_comes_from(comfy, openpose_folder, photo):
    hand = openpose_folder / HAND_WEIGHTS
    away = hand.rename(openpose_folder.parent / "hand_pose_model.pth.away")
    try:
        g, *_ = detect_graph(photo, batch=1)
        with pytest.raises(ComfyError) as caught:
            comfy.run(g.prompt())
    finally:
        away.rename(hand)
    message = str(caught.value)
    assert f"HieraFash Pose From Image: input 'hand_model': the OpenPose weights file {HAND_WEIGHTS}" in message
    assert str(openpose_folder) in message and "huggingface.co/lllyasviel/Annotators" in message
    assert "non-commercial" in message


def test_hands_off_needs_only_the_body_file(comfy, openpose_folder, photo):
    hand = openpose_folder / HAND_WEIGHTS
    away = hand.rename(openpose_folder.parent / "hand_pose_model.pth.away")
    try:
        g, _, _, _, report = detect_graph(photo, batch=1, hands=False, coordinates="pixels")
        text = comfy.run(g.prompt())["outputs"][str(report)]["text"][0]
    finally:
        away.rename(hand)
    assert "body_pose_model.pth (no hands)" in text
