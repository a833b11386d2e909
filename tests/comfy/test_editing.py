"""One-pass attribute editing in the real ComfyUI: M(t), preservation, samplers, composition, errors."""

import json

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from PIL import Image
from support.graphs import TINY_CONTROLNET, Graph, add_scheduler, base_models, hierarchical_design

from hierafash_core.noise import discrete_percent_to_sigma, sd_sigmas, timestep_to_percent
from hierafash_core.pose import load_pose_preset

WIDTH, HEIGHT = 64, 88  # the official 512 x 704 aspect, at test size
P2S = discrete_percent_to_sigma(sd_sigmas())
CLOTHING_LENGTH_START = 911  # official A1 edit start, method.md 4.3


@pytest.fixture(scope="module")
def source_image(comfy_base):
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(comfy_base / "input" / "src.png")
    return "src.png"


def edit_graph(probe_path, source, *, steps=12, sampler="euler", scheduler="normal", edit="all",
               differential=False, differential_after=False, feather=0.0, attributes=None, denoise=1.0,
               pose=None):
    g = Graph()
    model, clip, vae = base_models(g)
    image = g.add("LoadImage", image=source).out(0)
    pose_inputs = {}
    if pose is not None:  # one frame per image
        image = g.add("RepeatImageBatch", image=image, amount=len(pose)).out(0)
        pose_inputs["pose_keypoint"] = g.add("HieraFashTestPoseKeypoint", pose_json=json.dumps(pose)).out(0)
    design = hierarchical_design(g, *([] if attributes is None else [attributes]))
    sched = add_scheduler(g, design, clip, model, steps=steps, scheduler=scheduler)
    masks = g.add("HieraFashPoseMaskBuilder", preset="front_standing", width=512, height=704, category="Dress",
                  person=-1, grow=0.05, feather=feather, coordinates="auto", missing_keypoints="estimate",
                  external_mode="union", image=image, design=design, **pose_inputs)
    if differential:
        model = g.add("DifferentialDiffusion", model=model, strength=1.0).out(0)
    edit = g.add("HieraFashAttributeEdit", model=model, vae=vae, image=image, schedule=sched.out(1),
                 body_masks=masks.out(0), edit_attributes=edit)
    edited_model = edit.out(0)
    if differential_after:  # replaces the single mask-function slot instead of chaining it
        edited_model = g.add("DifferentialDiffusion", model=edited_model, strength=1.0).out(0)
    probed = g.add("HieraFashTestProbe", model=edited_model, log_path=probe_path).out(0)
    pose = g.add("HieraFashApplyPoseControlNet", positive=sched.out(0),
                 negative=g.add("CLIPTextEncode", text="", clip=clip).out(0),
                 control_net=g.add("ControlNetLoader", control_net_name=TINY_CONTROLNET).out(0),
                 pose_image=masks.out(1), strength=1.0, band="all steps (official code)",
                 start_percent=0.0, end_percent=1.0)
    sampled = g.add("KSampler", model=probed, positive=pose.out(0), negative=pose.out(1), latent_image=edit.out(1),
                    seed=5, steps=steps, cfg=5.0, sampler_name=sampler, scheduler=scheduler, denoise=denoise)
    ids = {
        "out": g.add("SaveLatent", samples=sampled.out(0), filename_prefix="latents/edit_out"),
        "src": g.add("SaveLatent", samples=edit.out(1), filename_prefix="latents/edit_src"),
        "mask": g.add("SaveImage", images=g.add("MaskToImage", mask=edit.out(2)).out(0), filename_prefix="edit_mask"),
        "image": g.add("SaveImage", filename_prefix="edit_img", images=g.add(
            "HieraFashPreserveSource", image=g.add("VAEDecode", samples=sampled.out(0), vae=vae).out(0),
            source=image, mask=edit.out(2)).out(0)),
        "plan": g.add("PreviewAny", source=edit.out(3)),
    }
    return g.prompt(), ids


def load_output(comfy_base, entry, node_id, kind):
    item = entry["outputs"][node_id][kind][0]
    path = comfy_base / "output" / item["subfolder"] / item["filename"]
    if kind == "latents":
        return safetensors.torch.load_file(str(path))["latent_tensor"].float()
    return np.asarray(Image.open(path).convert("RGB"))


def run_edit(comfy, comfy_base, probe_log, source, **kwargs):
    prompt, ids = edit_graph(probe_log.path, source, **kwargs)
    entry = comfy.run(prompt)
    out = load_output(comfy_base, entry, ids["out"], "latents")
    src = load_output(comfy_base, entry, ids["src"], "latents")
    item = entry["outputs"][ids["mask"]]["images"]
    mask = torch.stack([torch.from_numpy(np.asarray(Image.open(comfy_base / "output" / i["subfolder"] / i["filename"])
                                                    .convert("RGB"))[..., 0].astype(np.float32) / 255) for i in item])
    return entry, ids, out, src, mask[0] if len(mask) == 1 else mask


def latent_mask(mask, latent):
    """The pixel mask as the sampler sees it: bilinear to the latent size (comfy.utils.reshape_mask)."""
    return F.interpolate(mask[None, None], size=latent.shape[-2:], mode="bilinear")[0, 0]


def test_outside_the_mask_the_latent_and_pixels_are_the_source_exactly(comfy, comfy_base, probe_log, source_image):
    entry, ids, out, src, mask = run_edit(comfy, comfy_base, probe_log, source_image)
    outside = latent_mask(mask, out) == 0
    assert outside.any() and (~outside).any()
    assert torch.equal(out[..., outside], src[..., outside])
    assert not torch.equal(out[..., ~outside], src[..., ~outside])  # the edit did change the inside

    pixels = load_output(comfy_base, entry, ids["image"], "images")
    source = np.asarray(Image.open(comfy_base / "input" / source_image).convert("RGB"))
    keep = mask.numpy() == 0
    assert np.array_equal(pixels[keep], source[keep])
    assert not np.array_equal(pixels[~keep], source[~keep])


def test_per_step_mask_follows_the_schedule_and_early_steps_skip_the_unet(comfy, comfy_base, probe_log,
                                                                           source_image):
    steps = 40
    _, ids, out, _, mask = run_edit(comfy, comfy_base, probe_log, source_image, steps=steps, scheduler="normal")
    masks = probe_log("mask")
    unet = probe_log("unet")
    assert len(masks) == steps
    start_sigma = P2S(timestep_to_percent(CLOTHING_LENGTH_START + 0.5))
    skipped = [m for m in masks if m["sigma"] > start_sigma]
    edited = [m for m in masks if m["sigma"] <= start_sigma]
    assert skipped and edited
    assert all(not np.any(m["mask"]) for m in skipped)  # pinned to the noised source
    assert len(unet) == len(edited)  # the UNet runs only from the first edited stage on
    assert all(u["sigma"] <= start_sigma for u in unet)
    # The region only grows (union of the attributes opened so far) and ends as the full edit mask.
    areas = [float(np.sum(m["mask"])) for m in edited]
    assert areas == sorted(areas) and areas[0] < areas[-1]
    final = latent_mask(mask, out)
    assert np.allclose(edited[-1]["mask"], final.numpy(), atol=1e-6)


def test_five_attributes_in_one_pass_match_the_official_unet_budget(comfy, comfy_base, probe_log, source_image):
    # 100 uniform DDIM steps: the official code runs 92 + 84 + 76 + 68 + 60 = 380 UNet steps for A1..A5.
    run_edit(comfy, comfy_base, probe_log, source_image, steps=100, scheduler="ddim_uniform")
    assert len(probe_log("unet")) == 92


def test_editing_only_later_attributes_starts_later(comfy, comfy_base, probe_log, source_image):
    entry, ids, *_ = run_edit(comfy, comfy_base, probe_log, source_image, steps=100, scheduler="ddim_uniform",
                              edit="collar, hem")
    assert len(probe_log("unet")) == 68  # starts at the collar's t = 671
    plan = entry["outputs"][ids["plan"]]["text"][0].splitlines()
    assert plan[0].startswith("editing collar (V-Neck), hem (Draped Hem); starts at t = 671")
    assert plan[1] == "collar (V-Neck): from step 33 of 100 (68 steps); region opens at t = 671"
    assert plan[2] == "hem (Draped Hem): from step 41 of 100 (60 steps); region opens at t = 591"


def test_a_batch_with_a_different_region_per_image_keeps_each_images_own_edit(comfy, comfy_base, probe_log,
                                                                                source_image):
    # Issue 9.3: the wrapper must read the denoise mask per image, whatever shape ComfyUI passes it in.
    frame = load_pose_preset("front_standing")[0]
    moved = json.loads(json.dumps(frame))
    xy = moved["people"][0]["pose_keypoints_2d"]
    moved["people"][0]["pose_keypoints_2d"] = [v + 96 if k % 3 == 0 else v for k, v in enumerate(xy)]
    _, _, out, src, masks = run_edit(comfy, comfy_base, probe_log, source_image, edit="collar", pose=[frame, moved])
    assert out.shape[0] == 2 and masks.shape[0] == 2
    regions = [latent_mask(masks[k], out) > 0 for k in range(2)]
    assert (regions[0] & ~regions[1]).any() and (regions[1] & ~regions[0]).any()  # the masks differ
    for k in range(2):
        assert torch.equal(out[k][..., ~regions[k]], src[k][..., ~regions[k]])  # its own outside, exactly
        assert not torch.equal(out[k][..., regions[k]], src[k][..., regions[k]])  # its own edit kept


def test_too_few_steps_say_so_in_the_plan(comfy, probe_log, source_image):
    prompt, ids = edit_graph(probe_log.path, source_image, steps=1)
    entry = comfy.run(prompt)
    plan = entry["outputs"][ids["plan"]]["text"][0].splitlines()
    assert plan[0].startswith("WARNING: clothing length (Long Dress) gets no sampler step")
    assert "gets no sampler step at or below its start t = 911" in comfy.log_tail(200)


def test_denoise_below_one_is_reported_at_sampling_time(comfy, probe_log, source_image):
    prompt, _ = edit_graph(probe_log.path, source_image, steps=6, denoise=0.5)
    comfy.run(prompt)
    assert "below the edit start t = 911" in comfy.log_tail(200)


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde"])
def test_stateful_samplers_keep_the_outside_exact(comfy, comfy_base, probe_log, source_image, sampler):
    _, _, out, src, mask = run_edit(comfy, comfy_base, probe_log, source_image, sampler=sampler)
    outside = latent_mask(mask, out) == 0
    assert torch.isfinite(out).all()
    assert torch.equal(out[..., outside], src[..., outside])


def test_differential_diffusion_before_our_patch_still_applies(comfy, comfy_base, probe_log, source_image, tmp_path):
    run_edit(comfy, comfy_base, probe_log, source_image, feather=0.5)
    plain = [m["mask"] for m in probe_log("mask")]
    dd_log = tmp_path / "dd.jsonl"
    prompt, _ = edit_graph(str(dd_log), source_image, feather=0.5, differential=True)
    comfy.run(prompt)
    with open(dd_log) as f:
        dd = [json.loads(line)["mask"] for line in f if '"mask"' in line]
    assert len(dd) == len(plain)
    soft = [np.asarray(m) for m in plain if np.any(m)]
    thresholded = [np.asarray(m) for m in dd if np.any(m)]
    assert any(((m > 0) & (m < 1)).any() for m in soft)  # feathered regions are soft without it
    assert any(t.sum() < s.sum() for t, s in zip(thresholded, soft))  # DD opens soft edges progressively
    support = [int((t > 0).sum()) for t in thresholded]
    assert support == sorted(support)  # its threshold falls over time, so the region only grows


@pytest.mark.parametrize("change, field, message", [
    ({"edit": "pockets"}, "edit_attributes", "is not an attribute of this design"),
    ({"attributes": ()}, "edit_attributes", "has no attribute to edit"),
])
def test_bad_edit_requests_name_the_node_and_the_fix(comfy, probe_log, source_image, change, field, message):
    prompt, _ = edit_graph(probe_log.path, source_image, **change)
    with pytest.raises(Exception, match=rf"HieraFash Attribute Edit: input '{field}': .*{message}"):
        comfy.run(prompt)


def test_a_later_patch_that_replaces_m_t_is_reported(comfy, comfy_base, probe_log, source_image):
    prompt, _ = edit_graph(probe_log.path, source_image, steps=4, differential_after=True)
    comfy.run(prompt)
    assert "M(t) never ran: a later node replaced the denoise mask function" in comfy.log_tail(200)
