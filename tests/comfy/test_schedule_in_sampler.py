"""C(t) in ComfyUI's own samplers: per step, exactly the stage the preview predicts reaches the UNet,
and the UNet batch is the same as for a single prompt (cond + uncond)."""

import pytest
from support.graphs import Graph, add_scheduler, base_models, hierarchical_design, parse_preview

SCHEDULERS = ["normal", "karras", "simple", "ddim_uniform"]
STEPS = [10, 25]
SAMPLERS = ["euler", "euler_ancestral"]


def scheduled_graph(probe_path, steps, scheduler, sampler, sampler_node="KSampler"):
    g = Graph()
    model, clip, vae = base_models(g)
    design = hierarchical_design(g)
    sched = add_scheduler(g, design, clip, model, steps=steps, scheduler=scheduler)
    negative = g.add("CLIPTextEncode", text="", clip=clip).out(0)
    latent = g.add("EmptyLatentImage", width=64, height=64, batch_size=1).out(0)
    probed = g.add("HieraFashTestProbe", model=model, log_path=probe_path).out(0)
    common = dict(model=probed, positive=sched.out(0), negative=negative, latent_image=latent)
    if sampler_node == "KSampler":
        sampled = g.add("KSampler", seed=3, steps=steps, cfg=5.0, sampler_name=sampler, scheduler=scheduler,
                        denoise=1.0, **common)
    elif sampler_node == "KSamplerAdvanced":
        sampled = g.add("KSamplerAdvanced", add_noise="enable", noise_seed=3, steps=steps, cfg=5.0,
                        sampler_name=sampler, scheduler=scheduler, start_at_step=0, end_at_step=10000,
                        return_with_leftover_noise="disable", **common)
    else:
        guider = g.add("CFGGuider", model=probed, positive=sched.out(0), negative=negative, cfg=5.0)
        sigmas = g.add("BasicScheduler", model=probed, scheduler=scheduler, steps=steps, denoise=1.0)
        sampled = g.add("SamplerCustomAdvanced", noise=g.add("RandomNoise", noise_seed=3).out(0),
                        guider=guider.out(0), sampler=g.add("KSamplerSelect", sampler_name=sampler).out(0),
                        sigmas=sigmas.out(0), latent_image=latent)
    g.add("SaveLatent", samples=sampled.out(0), filename_prefix="latents/schedule_probe")
    # Read the preview through an output node: ComfyUI reports cached output nodes' UI, not others'.
    preview = g.add("PreviewAny", source=sched.out(2))
    return g.prompt(), str(preview)


def run_and_compare(comfy, probe_log, steps, scheduler, sampler, sampler_node="KSampler"):
    prompt, preview_id = scheduled_graph(probe_log.path, steps, scheduler, sampler, sampler_node)
    preview = comfy.run(prompt)["outputs"][preview_id]["text"][0]
    spans = parse_preview(preview)
    assert len(spans) == 7, preview
    predicted = {}
    for stage, span in enumerate(spans):
        if span:
            for step in range(span[0], span[1] + 1):
                predicted[step] = stage
    assert sorted(predicted) == list(range(steps)), preview
    assert ("WARNING" in preview) == (None in spans), preview  # a stage with no step is reported

    unet = probe_log("unet")
    assert len(unet) == steps, unet  # one batched UNet call per step: cond and uncond together
    for step, call in enumerate(unet):
        assert call["batch"] == 2 and sorted(call["cond_or_uncond"]) == [0, 1], call
        assert call["stages"] == [predicted[step]], (step, call, preview)
    return [c["stages"][0] for c in unet]


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_each_step_sees_exactly_the_predicted_stage(comfy, probe_log, scheduler, steps, sampler):
    stages = run_and_compare(comfy, probe_log, steps, scheduler, sampler)
    assert stages == sorted(stages)  # stages advance monotonically with falling noise
    assert stages[0] == 0 and stages[-1] == 6


@pytest.mark.parametrize("sampler_node", ["KSamplerAdvanced", "SamplerCustomAdvanced"])
def test_other_sampler_nodes_honour_the_schedule(comfy, probe_log, sampler_node):
    stages = run_and_compare(comfy, probe_log, 30, "normal", "dpmpp_2m", sampler_node)
    assert len(set(stages)) == 7


def test_a_stage_without_steps_is_reported(comfy, probe_log):
    # karras at 20 steps jumps over the narrow +hem band (t 500-559): the preview must say so.
    prompt, preview_id = scheduled_graph(probe_log.path, 20, "karras", "euler")
    preview = comfy.run(prompt)["outputs"][preview_id]["text"][0]
    assert "WARNING: stage '+hem' gets no sampler step" in preview
    assert 5 not in [c["stages"][0] for c in probe_log("unet")]


def test_paper_step_split_at_100_ddim_steps(comfy, probe_log):
    # method.md §1.3: 100 uniform DDIM steps give 10/10/9/8/7/6/50 steps per stage.
    stages = run_and_compare(comfy, probe_log, 100, "ddim_uniform", "euler")
    assert [stages.count(k) for k in range(7)] == [10, 10, 9, 8, 7, 6, 50]


def test_unet_batch_matches_single_prompt_run(comfy, probe_log, tmp_path):
    run_and_compare(comfy, probe_log, 10, "normal", "euler")
    scheduled = [(c["batch"], c["sigma"]) for c in probe_log("unet")]

    g = Graph()
    model, clip, _ = base_models(g)
    single_log = str(tmp_path / "single.jsonl")
    sampled = g.add("KSampler", model=g.add("HieraFashTestProbe", model=model, log_path=single_log).out(0),
                    positive=g.add("CLIPTextEncode", text="Dress, Elegant", clip=clip).out(0),
                    negative=g.add("CLIPTextEncode", text="", clip=clip).out(0),
                    latent_image=g.add("EmptyLatentImage", width=64, height=64, batch_size=1).out(0),
                    seed=3, steps=10, cfg=5.0, sampler_name="euler", scheduler="normal", denoise=1.0)
    g.add("SaveLatent", samples=sampled.out(0), filename_prefix="latents/single_probe")
    comfy.run(g.prompt())
    import json
    with open(single_log) as f:
        single = [(e["batch"], e["sigma"]) for e in map(json.loads, f) if e["ev"] == "unet"]
    assert scheduled == single
