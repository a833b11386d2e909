"""The hierarchical training objective: at noise level t the model sees the caption truncated to t's band, C(t).

As the official `get_t_conditioning`: t ~ U{0..999} per sample, the caption is cut to its first 5 items
(the concept P_C) at the noisiest band and gains one attribute item per band below, down to the full
caption in the detail band; the loss is the plain epsilon-MSE (v-MSE for v-prediction models). The bands
are the schedule's `PAPER_BOUNDARIES` and the items are split and joined as the design's prompts are,
so training and sampling share one band table and one concatenation rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .design import join_items, split_items
from .errors import HieraFashError
from .noise import NUM_TIMESTEPS
from .schedule import PAPER_BOUNDARIES
from .vocab import CONCEPT_FIELDS

PREDICTION_TYPES = ("epsilon", "v_prediction")


def items_at(t: int, boundaries: Sequence[float] = PAPER_BOUNDARIES) -> int | None:
    """How many leading caption items C(t) keeps; None for the whole caption (the detail band)."""
    if not 0 <= t < NUM_TIMESTEPS:
        raise HieraFashError(f"timestep {t} is outside 0..{NUM_TIMESTEPS - 1}", "t")
    bands_passed = sum(1 for b in boundaries if t < b)
    if bands_passed == len(boundaries):
        return None
    return len(CONCEPT_FIELDS) + bands_passed


def caption_at(caption: str, t: int, boundaries: Sequence[float] = PAPER_BOUNDARIES) -> str:
    """C(t): the caption's leading items for timestep t (the whole caption below the last boundary)."""
    keep = items_at(t, boundaries)
    items = split_items(caption)
    return join_items(items if keep is None else items[:keep])


def distinct_captions(caption: str, boundaries: Sequence[float] = PAPER_BOUNDARIES) -> list[str]:
    """Every C(t) a caption can take, noisiest first (at most len(boundaries) + 1 of them)."""
    bands = [NUM_TIMESTEPS - 1, *(int(b) - 1 for b in boundaries)]
    out: list[str] = []
    for t in bands:
        text = caption_at(caption, t, boundaries)
        if text not in out:
            out.append(text)
    return out


def draw_timesteps(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One DDPM timestep per sample, uniform over 0..999 (as the official `torch.randint(0, 1000)`), on the CPU."""
    return torch.randint(0, NUM_TIMESTEPS, (batch,), generator=generator)


def drop_captions(captions: Sequence[str], proportion: float,
                  generator: torch.Generator | None = None) -> list[str]:
    """Each caption replaced by "" with probability `proportion` (diffusers' `proportion_empty_prompts`), so the
    model also learns the unconditional prediction that classifier-free guidance (cfg > 1) steers from."""
    if not 0.0 <= proportion < 1.0:
        raise HieraFashError(f"proportion {proportion} must be in [0, 1)", "empty_prompts")
    if proportion == 0.0:
        return list(captions)  # no draw, so runs without dropout keep their random stream
    dropped = torch.rand(len(captions), generator=generator) < proportion
    return ["" if drop else caption for caption, drop in zip(captions, dropped.tolist())]


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def add_noise(latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor):
    """q(x_t | x_0): sqrt(a_t) x_0 + sqrt(1 - a_t) eps."""
    a = _per_sample(alphas_cumprod[t.cpu()], latents)
    return a.sqrt() * latents + (1 - a).sqrt() * noise


def prediction_target(latents, noise, t, alphas_cumprod, prediction_type: str) -> torch.Tensor:
    """What the model should predict: eps, or v = sqrt(a_t) eps - sqrt(1 - a_t) x_0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        a = _per_sample(alphas_cumprod[t.cpu()], latents)
        return a.sqrt() * noise - (1 - a).sqrt() * latents
    raise HieraFashError(f"prediction type {prediction_type!r} must be one of {', '.join(PREDICTION_TYPES)}",
                         "prediction_type")


def hierarchical_loss(
    predict: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    encode: Callable[[list[str]], torch.Tensor],
    latents: torch.Tensor,
    captions: Sequence[str],
    alphas_cumprod: torch.Tensor,
    prediction_type: str = "epsilon",
    generator: torch.Generator | None = None,
    boundaries: Sequence[float] = PAPER_BOUNDARIES,
    empty_prompts: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's loss: draw t per sample, truncate each caption to C(t), encode, noise, MSE to the target.
    With `empty_prompts` > 0, that share of the truncated captions is emptied (`drop_captions`).

    `predict(noisy_latents, t, text_embeddings)` is the model (UNet plus ControlNet, with the pose bound in);
    `encode(captions)` is the frozen text encoder, run without gradients. Returns (loss, t).
    """
    batch = latents.shape[0]
    if len(captions) != batch:
        raise HieraFashError(f"{len(captions)} captions for a batch of {batch} latents", "captions")
    t = draw_timesteps(batch, generator)
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    truncated = [caption_at(c, int(ti), boundaries) for c, ti in zip(captions, t.tolist())]
    truncated = drop_captions(truncated, empty_prompts, generator)
    with torch.no_grad():
        context = encode(truncated)
    t = t.to(latents.device)
    prediction = predict(add_noise(latents, noise, t, alphas_cumprod), t, context)
    target = prediction_target(latents, noise, t, alphas_cumprod, prediction_type)
    return torch.nn.functional.mse_loss(prediction.float(), target.float()), t
