"""Noise-level axes: DDPM timestep t (0..999), sampler percent p (0 = pure noise), sigma.

The conventions are ComfyUI's (percent p <-> t = (1 - p) * 999). `discrete_percent_to_sigma`
reproduces the Stable Diffusion discrete schedule (scaled-linear betas) for tests and
benchmarks; in ComfyUI the model's own `percent_to_sigma` is passed in instead, which makes
every function here work for eps, v-prediction and flow models alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NUM_TIMESTEPS = 1000
LAST_TIMESTEP = NUM_TIMESTEPS - 1

PercentToSigma = Callable[[float], float]


def timestep_to_percent(t: float) -> float:
    """Percent of a continuous DDPM timestep (t = 999 -> 0, t = 0 -> 1)."""
    return min(1.0, max(0.0, 1.0 - t / LAST_TIMESTEP))


def percent_to_timestep(p: float) -> float:
    return (1.0 - p) * LAST_TIMESTEP


def sd_sigmas(linear_start: float = 0.00085, linear_end: float = 0.012) -> torch.Tensor:
    """The 1000 training sigmas of Stable Diffusion 1.x/2.x (scaled-linear betas)."""
    betas = torch.linspace(linear_start**0.5, linear_end**0.5, NUM_TIMESTEPS, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    return (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).float()


def discrete_percent_to_sigma(sigmas: torch.Tensor) -> PercentToSigma:
    """percent -> sigma for a discrete schedule, log-interpolated in float32 as ComfyUI does."""
    log_sigmas = sigmas.float().log()

    def percent_to_sigma(p: float) -> float:
        if p <= 0.0:
            return 999999999.9
        if p >= 1.0:
            return 0.0
        t = torch.tensor(percent_to_timestep(p)).clamp(0, len(log_sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return float(((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp())

    return percent_to_sigma


def as_float32(values) -> torch.Tensor:
    """Sigmas as the sampler compares them: float32 (a Python float threshold is rounded too)."""
    return torch.as_tensor(values, dtype=torch.float64).to(torch.float32)


def sigma_threshold(percent: float, percent_to_sigma: PercentToSigma) -> float:
    """The sigma a sampler compares against for a percent: its float32 value, as the comparison rounds it."""
    return float(as_float32([percent_to_sigma(percent)])[0])


def sigma_to_percent(sigma: float, percent_to_sigma: PercentToSigma, iterations: int = 60) -> float:
    """Inverse of a (non-increasing) percent_to_sigma, by bisection: the smallest p whose sigma <= sigma."""
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if percent_to_sigma(mid) > sigma:
            lo = mid
        else:
            hi = mid
    return hi
