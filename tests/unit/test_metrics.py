"""The evaluation maths on closed forms, and against clean-fid and prdc where those install."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from hierafash_core.errors import HieraFashError
from hierafash_core.metrics import (
    clip_score,
    feature_statistics,
    frechet_distance,
    frechet_distance_between,
    pairwise_distances,
    prdc,
    trace_sqrt_product,
)

pytest.importorskip("scipy", reason="scipy (the eval extra) gives the matrix square root")


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(values)) @ vectors.T


def random_covariance(rng, width: int) -> np.ndarray:
    factor = rng.normal(size=(width, width))
    return factor @ factor.T / width + 0.1 * np.eye(width)


def test_identical_sets_are_at_distance_zero():
    features = np.random.default_rng(0).normal(size=(40, 8))
    assert abs(frechet_distance_between(features, features).value) < 1e-8


def test_diagonal_gaussians_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1.0 + 4.0 + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()  # |dmu|² + sum (s1 - s2)²
    result = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert result.value == pytest.approx(expected, rel=1e-10)
    assert result.covariance_offset == 0.0


def test_non_commuting_gaussians_match_the_closed_form():
    rng = np.random.default_rng(1)
    sigma1, sigma2 = random_covariance(rng, 5), random_covariance(rng, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    root1 = symmetric_sqrt(sigma1)
    cross = symmetric_sqrt(root1 @ sigma2 @ root1)  # Tr sqrt(S1 S2) = Tr sqrt(S1^½ S2 S1^½)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * cross)
    assert frechet_distance(mu1, sigma1, mu2, sigma2).value == pytest.approx(expected, rel=1e-9)


def test_samples_of_two_gaussians_approach_the_analytic_distance():
    rng = np.random.default_rng(2)
    first = rng.normal(loc=0.0, scale=1.0, size=(50_000, 2))
    second = rng.normal(loc=[3.0, 0.0], scale=[2.0, 1.0], size=(50_000, 2))
    assert frechet_distance_between(first, second).value == pytest.approx(9.0 + 1.0, rel=0.02)


def test_a_product_without_a_finite_root_is_regularised_and_says_so():
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])  # sqrtm gives inf: the eps·I retry must run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = frechet_distance(np.zeros(2), nilpotent, np.zeros(2), np.eye(2))
    assert result.covariance_offset == 1e-6
    assert np.isfinite(result.value)


def test_a_large_imaginary_root_is_an_error():
    not_a_covariance = np.diag([-1.0, 1.0])  # sqrt(-1) = i on the diagonal
    with pytest.raises(HieraFashError, match="imaginary part"):
        frechet_distance(np.zeros(2), not_a_covariance, np.zeros(2), np.eye(2))


def test_different_widths_are_an_error():
    with pytest.raises(HieraFashError, match="widths differ"):
        frechet_distance_between(np.ones((4, 3)) * np.arange(3), np.random.default_rng(0).normal(size=(4, 5)))


def test_pairwise_distances_are_euclidean():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    brute = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    np.testing.assert_allclose(pairwise_distances(a, b), brute, rtol=1e-10)


def test_prdc_on_a_hand_worked_line():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k = 1: each real radius is 1, each fake radius 9.5. Fake 0.5 lies in real balls 0 and 1, fake 10 in none;
    # every real point lies in fake 0.5's ball; reals 0 and 1 have a fake closer than their radius.
    result = prdc(real, fake, nearest_k=1)
    assert (result.precision, result.recall, result.density, result.coverage) == (0.5, 1.0, 1.0, 0.5)


def test_a_set_covers_itself():
    features = np.random.default_rng(4).normal(size=(60, 8))
    result = prdc(features, features, nearest_k=25)
    assert result.coverage == 1.0
    assert result.precision == 1.0 and result.recall == 1.0


def test_prdc_needs_k_plus_one_images():
    rng = np.random.default_rng(5)
    prdc(rng.normal(size=(26, 4)), rng.normal(size=(26, 4)), nearest_k=25)  # exactly enough
    with pytest.raises(HieraFashError, match="at least 26 images, got 25") as error:
        prdc(rng.normal(size=(26, 4)), rng.normal(size=(25, 4)), nearest_k=25)
    assert error.value.input_name == "fake"


def test_clip_score_is_the_unclamped_scaled_cosine():
    images = np.array([[1.0, 0.0], [0.0, 2.0]])
    texts = np.array([[1.0, 1.0], [0.0, -3.0]])  # cosines 1/sqrt(2) and -1
    assert clip_score(images, texts, logit_scale=100.0) == pytest.approx(100.0 * (2 ** -0.5 - 1.0) / 2)


def test_clip_score_needs_one_caption_per_image():
    with pytest.raises(HieraFashError, match="one caption per image"):
        clip_score(np.ones((3, 4)), np.ones((2, 4)), logit_scale=1.0)


def cross_check_features(width: int, seed: int):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(300, width)).astype(np.float32)
    fake = (rng.normal(size=(280, width)) * 1.2 + 0.3).astype(np.float32)
    return real, fake


def require(module: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: it is a test-only cross-check in the `test` extra "
                    f"(pip install -e .[test])")
    return importlib.import_module(module)


@pytest.mark.parametrize("width", [16, 64])
def test_frechet_distance_agrees_with_clean_fid(width):
    cleanfid_fid = require("cleanfid.fid")
    real, fake = cross_check_features(width, seed=width)
    mu1, sigma1 = np.mean(real, axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = np.mean(fake, axis=0), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # clean-fid passes sqrtm's deprecated `disp`
        reference = cleanfid_fid.frechet_distance(mu1, sigma1, mu2, sigma2)
    assert frechet_distance_between(real, fake).value == pytest.approx(reference, rel=1e-4)


@pytest.mark.parametrize("nearest_k", [5, 25])
def test_prdc_agrees_with_the_prdc_package(nearest_k):
    prdc_package = require("prdc")
    real, fake = cross_check_features(32, seed=nearest_k)
    reference = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=nearest_k)
    ours = prdc(real, fake, nearest_k=nearest_k)
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == pytest.approx(reference[name], rel=1e-4), name


def test_the_exact_trace_equals_sqrtm_where_sqrtm_is_well_posed():
    rng = np.random.default_rng(5)
    first, second = rng.normal(size=(30, 6)), rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(first), feature_statistics(second)
    expected = frechet_distance(mu1, sigma1, mu2, sigma2).value
    diff = mu1 - mu2
    exact = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(first, second)
    assert exact == pytest.approx(expected, rel=1e-9)


def test_fewer_images_than_the_width_give_exact_distances():
    """4 images in 2048 dims (Inception on a small folder): sqrtm fails there, the closed forms still hold."""
    rng = np.random.default_rng(6)
    features, shift = rng.normal(size=(4, 2048)) * 50.0, rng.normal(size=2048)
    assert abs(frechet_distance_between(features, features).value) < 1e-9 * np.trace(np.cov(features, rowvar=False))
    shifted = frechet_distance_between(features, features + shift)
    assert shifted.value == pytest.approx(shift @ shift, rel=1e-9) and shifted.covariance_offset == 0.0


def test_fewer_images_than_the_width_agree_with_the_symmetric_square_root():
    """Tr sqrt(S1 S2) = Tr sqrt(S1^½ S2 S1^½), a PSD root that eigh takes safely even when singular."""
    rng = np.random.default_rng(7)
    first, second = rng.normal(size=(5, 64)), rng.normal(size=(7, 64)) + 1.0
    (mu1, sigma1), (mu2, sigma2) = feature_statistics(first), feature_statistics(second)
    values, vectors = np.linalg.eigh(sigma1)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # rank 4 of 64: clip rounding below 0
    inner = np.linalg.eigvalsh(root @ sigma2 @ root)
    diff = mu1 - mu2
    expected = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(np.clip(inner, 0.0, None)).sum()
    assert frechet_distance_between(first, second).value == pytest.approx(expected, rel=1e-6)
