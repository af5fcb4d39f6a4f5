"""Kelly: the closed form Sigma^-1 mu, fractions, the leverage cap, long-only optimality."""

import numpy as np
import pytest

from pipeline.core import estimators
from plugins.allocation.kelly import Kelly

FREE = dict(covariance="sample", expected_returns="historical", long_only=False, max_leverage=1e9)


@pytest.mark.parametrize("start", [0, 2500, 4700, 7800])
def test_unconstrained_full_kelly_is_the_closed_form(sp500_frame, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    expected = np.linalg.inv(np.cov(X, rowvar=False)) @ X.mean(axis=0)
    w = Kelly(fraction=1.0, **FREE).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(w, expected, rtol=1e-9)
    half = Kelly(fraction=0.5, **FREE).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(half, 0.5 * expected, rtol=1e-9)


def test_shrunk_mean_is_james_stein(sp500_frame):
    X = sp500_frame.to_numpy()[4000:4252]
    cov = np.cov(X, rowvar=False)
    mu = estimators.james_stein_mean(X, cov)
    assert np.abs(mu - X.mean(axis=0)).max() > 0  # it does shrink here
    w = Kelly(fraction=1.0, **{**FREE, "expected_returns": "james_stein"}).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(w, np.linalg.solve(cov, mu), rtol=1e-9)


def test_leverage_cap_scales_the_vector(sp500_frame):
    X = sp500_frame.to_numpy()[2500:2752]
    full = Kelly(fraction=1.0, **FREE).weigh_one(X, np.ones(20))
    assert np.abs(full).sum() > 1.5
    capped = Kelly(fraction=1.0, **{**FREE, "max_leverage": 1.5}).weigh_one(X, np.ones(20))
    assert np.abs(capped).sum() == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(capped, full * 1.5 / np.abs(full).sum(), rtol=1e-12)


@pytest.mark.parametrize("start", [0, 2500, 4700, 7800])
def test_long_only_is_the_bounded_growth_optimum(sp500_frame, start):
    """KKT of max mu'f - f'Cf/2 st f >= 0: mu - Cf = 0 where f > 0 and <= 0 where f = 0."""
    X = sp500_frame.to_numpy()[start: start + 252]
    f = Kelly(fraction=1.0, covariance="sample", expected_returns="historical",
              max_leverage=1e9).weigh_one(X, np.ones(20))
    assert np.all(f >= 0)
    g = X.mean(axis=0) - np.cov(X, rowvar=False) @ f
    scale = np.abs(X.mean(axis=0)).max()
    assert np.abs(g[f > 0]).max(initial=0) < 1e-10 * scale
    assert np.all(g[f == 0] <= 1e-10 * scale)


def test_no_edge_means_cash():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((252, 4)) * 0.01 - 0.002  # every mean clearly negative
    w = Kelly().weigh_one(X, np.ones(4))
    np.testing.assert_array_equal(w, 0.0)
    # the same columns, shorted, have an edge
    assert np.all(Kelly().weigh_one(X, -np.ones(4)) <= 0)


def test_fallback_respects_the_cap():
    X = np.full((10, 4), 0.01)
    w = Kelly(max_leverage=0.5).weigh_one(X, np.ones(4))
    np.testing.assert_allclose(w, 0.125)
