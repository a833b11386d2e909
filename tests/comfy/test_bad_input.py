"""Bad input gives a clear error that names the node, the input and the fix (or a visible fallback)."""

import json

import numpy as np
import pytest
from PIL import Image
from support.graphs import Graph, add_scheduler, base_models, hierarchical_design

from hierafash_core.pose import load_pose_preset

WIDTH, HEIGHT = 64, 88


@pytest.fixture(scope="module")
def source_image(comfy_base):
    rng = np.random.default_rng(11)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(comfy_base / "input" / "bad.png")
    return "bad.png"


def builder_graph(source, pose=None, external=None, batch=1, **overrides):
    g = Graph()
    model, clip, vae = base_models(g)
    image = g.add("LoadImage", image=source).out(0)
    if batch > 1:
        image = g.add("RepeatImageBatch", image=image, amount=batch).out(0)
    inputs = dict(preset="front_standing", width=512, height=704, category="Dress", person=-1, grow=0.05,
                  feather=0.0, coordinates="auto", missing_keypoints="estimate", external_mode="union", image=image)
    if pose is not None:
        inputs["pose_keypoint"] = g.add("HieraFashTestPoseKeypoint", pose_json=json.dumps(pose)).out(0)
    if external is not None:
        inputs["external_mask"] = g.add("SolidMask", value=1.0, width=external[0], height=external[1]).out(0)
    inputs.update(overrides)
    masks = g.add("HieraFashPoseMaskBuilder", **inputs)
    g.add("PreviewAny", source=masks.out(7))
    return g, masks


def preset_with(people=None, drop=()):
    pose = load_pose_preset("front_standing")
    person = pose[0]["people"][0]
    for k in drop:
        person["pose_keypoints_2d"][3 * k: 3 * k + 3] = [0, 0, 0]
    if people is not None:
        pose[0]["people"] = people
    return pose


def test_no_person(comfy, source_image):
    g, _ = builder_graph(source_image, pose=preset_with(people=[]))
    with pytest.raises(Exception, match=r"HieraFash Pose Mask Builder: input 'pose_keypoint': no person in frame 0"):
        comfy.run(g.prompt())


def test_all_keypoints_missing(comfy, source_image):
    g, _ = builder_graph(source_image, pose=preset_with(drop=range(18)))
    with pytest.raises(Exception, match=r"HieraFash Pose Mask Builder: input '\w+':"):
        comfy.run(g.prompt())


def test_missing_keypoints_are_an_error_when_asked(comfy, source_image):
    g, _ = builder_graph(source_image, pose=preset_with(drop=[7]), missing_keypoints="error")
    with pytest.raises(Exception, match=r"HieraFash Pose Mask Builder: input 'missing_keypoints': .*left wrist"):
        comfy.run(g.prompt())


def test_estimated_keypoints_are_reported_in_the_output(comfy, source_image):
    g, masks = builder_graph(source_image, pose=preset_with(drop=[7]))
    entry = comfy.run(g.prompt())
    report = next(o["text"][0] for o in entry["outputs"].values() if "text" in o)
    assert "left wrist" in report and "frame 0: pixels coordinates" in report


def test_external_mask_of_another_size(comfy, source_image):
    g, _ = builder_graph(source_image, external=(32, 32))
    with pytest.raises(Exception, match=r"HieraFash Pose Mask Builder: input 'external_mask': .*32x32.*resize"):
        comfy.run(g.prompt())


def test_batch_mismatch(comfy, source_image):
    pose = preset_with() * 3
    g, _ = builder_graph(source_image, pose=pose, batch=2)
    with pytest.raises(Exception, match=r"HieraFash Pose Mask Builder: input 'image': 2 images but 3 pose frames"):
        comfy.run(g.prompt())


def test_empty_attribute_value(comfy):
    g = Graph()
    design = hierarchical_design(g, attributes=(("custom", "Long"),))
    g.nodes[str(len(g.nodes))]["inputs"]["custom_text"] = "   "
    g.add("PreviewAny", source=design)
    with pytest.raises(Exception, match=r"HieraFash Attribute Iteration: input 'custom_text': .*type the attribute"):
        comfy.run(g.prompt())


def test_masks_for_another_image_size(comfy, source_image):
    g, masks = builder_graph(source_image)
    model, clip, vae = base_models(g)
    other = g.add("EmptyImage", width=128, height=128, batch_size=1, color=0).out(0)
    design = hierarchical_design(g)
    sched = add_scheduler(g, design, clip, model, steps=4, scheduler="normal")
    edit = g.add("HieraFashAttributeEdit", model=model, vae=vae, image=other, schedule=sched.out(1),
                 body_masks=masks.out(0), edit_attributes="all")
    g.add("PreviewAny", source=edit.out(3))
    with pytest.raises(Exception, match=r"HieraFash Attribute Edit: input 'body_masks': .*64x88.*128x128"):
        comfy.run(g.prompt())
