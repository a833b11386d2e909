"""The paper's evaluation metrics on feature sets: Fréchet distance, PRDC (Coverage) and CLIP-S (method.md §6).

Pure numpy (scipy only for the matrix square root, imported where it is used); features are rows,
one per image. Definitions follow clean-fid's `frechet_distance`, Naeem et al. 2020 (the `prdc`
package) and the official `clip_score.py` (mean of logit_scale · cos, no clamp at zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import HieraFashError

DEFAULT_NEAREST_K = 25  # the official compute_score.py's nearest_k
COVARIANCE_OFFSET = 1e-6  # clean-fid's eps, added to both diagonals when sqrtm of the product fails
MAX_IMAGINARY = 1e-3  # clean-fid's tolerance on the imaginary diagonal of sqrtm


@dataclass(frozen=True)
class FrechetDistance:
    value: float
    covariance_offset: float  # eps added to both covariance diagonals (0.0 when none was needed)


@dataclass(frozen=True)
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int


def as_features(features, name: str = "features") -> np.ndarray:
    """A float64 (n, d) array of finite feature rows, or a HieraFashError naming `name`."""
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise HieraFashError(f"expected a non-empty (images, width) feature array, got shape {array.shape}", name)
    if not np.isfinite(array).all():
        raise HieraFashError("features hold NaN or infinity: recompute them", name)
    return array


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as np.cov) of feature rows."""
    array = as_features(features)
    if array.shape[0] < 2:
        raise HieraFashError("a covariance needs at least 2 images, got 1")
    return array.mean(axis=0), np.cov(array, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = COVARIANCE_OFFSET) -> FrechetDistance:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 sqrt(S1 S2)), with clean-fid's safeguards."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise HieraFashError(f"feature widths differ: means {mu1.shape} vs {mu2.shape}, "
                             f"covariances {sigma1.shape} vs {sigma2.shape}; compute both sets with one model")
    offset = 0.0
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # A singular product (fewer images than the feature width): regularise both, as clean-fid does.
        offset = eps
        identity = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + identity) @ (sigma2 + identity))
    if np.iscomplexobj(covmean):
        largest = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if largest > MAX_IMAGINARY:
            raise HieraFashError(f"the covariance square root has an imaginary part of {largest:.3g}: the sets are "
                                 "too small or degenerate for their feature width; use more images")
        covmean = covmean.real
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return FrechetDistance(float(value), offset)


def frechet_distance_between(features1, features2, eps: float = COVARIANCE_OFFSET) -> FrechetDistance:
    """Fréchet distance between the Gaussians fitted to two feature sets (FID when the features are a model's)."""
    first, second = as_features(features1), as_features(features2)
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(first), feature_statistics(second)
    if first.shape[1] == second.shape[1] and min(len(first), len(second)) <= first.shape[1]:
        # Singular covariances (e.g. 1,000 images in Inception's 2048 dims): sqrtm is ill-posed, the exact trace is not.
        diff = mu1 - mu2
        value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(first, second)
        return FrechetDistance(float(value), 0.0)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)


def trace_sqrt_product(features1: np.ndarray, features2: np.ndarray) -> float:
    """Tr sqrt(S1 S2) of two sets' covariances, exactly, as the nuclear norm of A1 A2ᵀ (S_i = A_iᵀA_i).

    A_i are the centred rows / sqrt(n_i - 1); the non-zero eigenvalues of S1 S2 are the squared singular
    values of the (n1 × n2) matrix A1 A2ᵀ, so no (width × width) square root is taken.
    """
    first, second = ((f - f.mean(axis=0)) / np.sqrt(len(f) - 1) for f in (features1, features2))
    return float(np.linalg.svd(first @ second.T, compute_uv=False).sum())


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and b, in float64."""
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def nearest_neighbour_radii(features: np.ndarray, nearest_k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (the row itself is the 0-th)."""
    distances = pairwise_distances(features, features)
    np.fill_diagonal(distances, 0.0)  # exact zero: the dot-product form leaves rounding on the diagonal
    return np.partition(distances, nearest_k, axis=1)[:, nearest_k]


def prdc(real, fake, nearest_k: int = DEFAULT_NEAREST_K) -> PRDC:
    """Precision, recall, density and coverage of `fake` against `real` (Naeem et al. 2020)."""
    real, fake = as_features(real, "real"), as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise HieraFashError(f"feature widths differ: real {real.shape[1]}, fake {fake.shape[1]}; "
                             "compute both sets with one model")
    if nearest_k < 1:
        raise HieraFashError(f"nearest_k must be at least 1, got {nearest_k}", "nearest_k")
    for name, array in (("real", real), ("fake", fake)):
        if array.shape[0] < nearest_k + 1:
            raise HieraFashError(f"PRDC with k = {nearest_k} needs at least {nearest_k + 1} images, got "
                                 f"{array.shape[0]}: add images or lower k", name)
    real_radii = nearest_neighbour_radii(real, nearest_k)
    fake_radii = nearest_neighbour_radii(fake, nearest_k)
    real_to_fake = pairwise_distances(real, fake)
    inside_real_balls = real_to_fake < real_radii[:, None]
    return PRDC(
        precision=float(inside_real_balls.any(axis=0).mean()),
        recall=float((real_to_fake < fake_radii[None, :]).any(axis=1).mean()),
        density=float(inside_real_balls.sum(axis=0).mean() / nearest_k),
        coverage=float((real_to_fake.min(axis=1) < real_radii).mean()),
        nearest_k=nearest_k,
    )


def clip_score(image_features, text_features, logit_scale: float) -> float:
    """Mean over pairs of logit_scale · cos(image, text), unclamped (the official clip_score.py)."""
    images, texts = as_features(image_features, "images"), as_features(text_features, "captions")
    if images.shape != texts.shape:
        raise HieraFashError(f"{images.shape[0]} images of width {images.shape[1]} cannot pair with "
                             f"{texts.shape[0]} captions of width {texts.shape[1]}: give one caption per image")
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    return float(logit_scale * (images * texts).sum(axis=1).mean())
