"""Sampler hooks: every wrapper and denoise mask function the pack puts on a MODEL, in one place.

This module imports only ComfyUI, torch and the standard library, so the test and bench probe packs
load it by file path (`hierafash_cli.probe_support`) and register their own wrappers through `patched_with`
too. The edit hooks get the method from an `EditPlan` (hierafash_core.editing) handed to them.
"""

from __future__ import annotations

import logging

import torch

WRAPPER_KEY = "hierafashdiff"
WRAPPER_TYPES = ("outer_sample", "predict_noise", "calc_cond_batch", "apply_model")  # comfy WrappersMP values


def patched_with(model, key: str, denoise_mask_function=None, **wrappers):
    """A clone of `model` with keyed wrappers (by WrappersMP name, e.g. `apply_model=fn`) and, if given, a
    denoise mask function that runs after the one already set (chained, not replaced)."""
    unknown = sorted(set(wrappers) - set(WRAPPER_TYPES))
    if unknown:
        raise ValueError(f"unknown wrapper types {unknown}; known: {', '.join(WRAPPER_TYPES)}")
    patched = model.clone()
    if denoise_mask_function is not None:
        previous = patched.model_options.get("denoise_mask_function")

        def chained(sigma, denoise_mask, extra_options):
            if previous is not None:
                denoise_mask = previous(sigma, denoise_mask, extra_options)
            return denoise_mask_function(sigma, denoise_mask, extra_options)

        patched.set_model_denoise_mask_function(chained)
    for wrapper_type, wrapper in wrappers.items():
        patched.add_wrapper_with_key(wrapper_type, key, wrapper)
    return patched


def warn_node(node_name: str, node_id: str | None, warnings: list[str]) -> None:
    """Warnings found while sampling: in the log, and as text on the node in the UI when a server runs."""
    for warning in warnings:
        logging.warning("%s: %s", node_name, warning)
    if not warnings or node_id is None:
        return
    try:
        from server import PromptServer  # ComfyUI's; absent when the pack runs without its server
    except ImportError:
        return
    if getattr(PromptServer, "instance", None) is not None:
        PromptServer.instance.send_progress_text("\n".join(f"WARNING: {w}" for w in warnings), node_id)


class EditSampling:
    """One Attribute Edit's hooks and their state during a sampler run.

    While no region is open (before the edit starts) the whole latent is pinned to the noised source,
    so the UNet result is discarded anyway: `predict_noise` skips that call. `outer_sample` checks the
    sampler's sigmas against the plan (warning when an edited attribute gets no step), and afterwards
    returns the source latent exactly where the sampler was never allowed to edit (the last step would
    otherwise leave float rounding there), warning when a later patch replaced M(t).
    """

    def __init__(self, plan, node_name: str, node_id: str | None = None):
        self.plan = plan
        self.node_name = node_name
        self.node_id = node_id
        self.skip_next_prediction = False  # set by the mask function of the evaluation about to run
        self.mask_calls = 0  # M(t) evaluations in the current run
        self.region_masks: dict = {}  # (region, shape, device, dtype) -> latent-shaped union

    def patch(self, model):
        """A clone of `model` carrying these hooks."""
        return patched_with(model, WRAPPER_KEY, self.denoise_mask, predict_noise=self.predict_noise,
                            outer_sample=self.outer_sample)

    def denoise_mask(self, sigma, denoise_mask, extra_options):
        self.mask_calls += 1
        region = self.plan.mask_schedule.region_at(float(sigma[0]))
        if not region:
            self.skip_next_prediction = True
            return torch.zeros_like(denoise_mask)
        key = (region, tuple(denoise_mask.shape), denoise_mask.device, denoise_mask.dtype)
        if key not in self.region_masks:
            self.region_masks[key] = self.plan.region_mask(region, denoise_mask.shape).to(denoise_mask)
        return torch.minimum(denoise_mask, self.region_masks[key])

    def predict_noise(self, executor, x, timestep, model_options, seed):
        if self.skip_next_prediction:
            self.skip_next_prediction = False
            return torch.zeros_like(x)
        return executor(x, timestep, model_options, seed)

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, denoise_mask=None, *args, **kwargs):
        self.mask_calls = 0
        warn_node(self.node_name, self.node_id, self.plan.sampling_warnings(sigmas.detach().cpu()))
        out = executor(noise, latent_image, sampler, sigmas, denoise_mask, *args, **kwargs)
        if denoise_mask is None or latent_image.shape != out.shape or out.ndim != 4:
            return out
        if self.mask_calls == 0:
            warn_node(self.node_name, self.node_id, [
                "M(t) never ran: a later node replaced the denoise mask function (e.g. Differential Diffusion "
                "applied after Attribute Edit). Apply such nodes before Attribute Edit."])
            return out
        kept = self.plan.kept_source(denoise_mask.detach().cpu(), out.shape).to(out.device)
        return torch.where(kept, latent_image.to(out), out)
