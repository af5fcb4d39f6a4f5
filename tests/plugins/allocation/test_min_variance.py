"""Minimum variance: the closed form when unconstrained, KKT-exact and skfolio-checked in bounds."""

import numpy as np
import pytest

from pipeline.core import estimators
from plugins.allocation.min_variance import MinVariance


def kkt_residual(cov, w, lo, hi):
    """Largest violation of the optimality conditions of min w'Cw st sum w = 1, lo <= w <= hi:
    the gradient is equal (nu) on free weights, >= nu at the lower bound, <= nu at the upper."""
    g = cov @ w
    free = (w > lo + 1e-12) & (w < hi - 1e-12)
    nu = g[free].mean()
    scale = np.abs(g).max()
    at_lo, at_hi = w <= lo + 1e-12, w >= hi - 1e-12
    return max(np.abs(g[free] - nu).max(initial=0) / scale,
               np.max(nu - g[at_lo], initial=0) / scale,
               np.max(g[at_hi] - nu, initial=0) / scale)


@pytest.mark.parametrize("start", [0, 2500, 4700, 7800])
def test_unconstrained_is_the_closed_form(sp500_frame, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    inv = np.linalg.inv(np.cov(X, rowvar=False))
    expected = inv.sum(axis=1) / inv.sum()
    w = MinVariance(covariance="sample", min_weight=None, max_weight=None).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(w, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("start", [0, 2500, 4700, 7800])
@pytest.mark.parametrize("max_weight", [1.0, 0.15])
def test_bounded_is_optimal_and_matches_skfolio(sp500_frame, start, max_weight):
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    X = sp500_frame.to_numpy()[start: start + 252]
    cov = estimators.sample_covariance(X)
    w = MinVariance(covariance="sample", max_weight=max_weight).weigh_one(X, np.ones(20))
    assert w.min() >= 0 and w.max() <= max_weight + 1e-15 and w.sum() == pytest.approx(1, abs=1e-12)
    assert kkt_residual(cov, w, 0.0, max_weight) < 1e-9
    sk = MeanRisk(risk_measure=RiskMeasure.VARIANCE, max_weights=max_weight).fit(X).weights_
    assert w @ cov @ w <= sk @ cov @ sk * (1 + 1e-9)  # never worse than the conic solver
    np.testing.assert_allclose(w, sk, atol=5e-4)  # its tolerance, not ours


def test_infeasible_bounds_relax_to_equal_weight():
    """max_weight 0.2 with three columns cannot be fully invested: bounds relax to 1/3."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3)) * [0.01, 0.02, 0.03]
    w = MinVariance(max_weight=0.2).weigh_one(X, np.ones(3))
    np.testing.assert_allclose(w, 1 / 3, atol=1e-12)


def test_unconstrained_may_oppose_sides_and_nets_to_one():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((300, 1))
    X = f * [1.0, 0.9, 1.1] * 0.01 + rng.standard_normal((300, 3)) * [0.002, 0.01, 0.01]
    side = np.array([1.0, -1.0, 1.0])
    w = MinVariance(min_weight=None, max_weight=None, covariance="sample").weigh_one(X, side)
    assert np.isfinite(w).all()
    assert (w * side).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_random_windows_bounds_and_optimality(random_returns, seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 40))
    X = random_returns(rng, int(rng.integers(60, 300)), m)
    lo = float(rng.choice([0.0, 0.01, -0.1]))
    hi = float(rng.choice([1.0, 0.3, 2.0 / m]))
    alloc = MinVariance(min_weight=lo, max_weight=hi, covariance="sample", lookback=X.shape[0])
    w = alloc.weigh_one(X, np.ones(m))
    lo_, hi_ = min(lo, 1 / m), max(hi, 1 / m)
    assert np.all(w >= lo_ - 1e-14) and np.all(w <= hi_ + 1e-14)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert kkt_residual(estimators.positive_definite(estimators.sample_covariance(X)), w, lo_, hi_) < 1e-8


@pytest.mark.parametrize("covariance", ["sample", "ewma", "ledoit_wolf"])
def test_duplicated_columns_split_evenly(covariance):
    """A singular covariance is ridged: the closed form splits a duplicated column's weight
    in two equal halves instead of returning rounding noise."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((200, 5)) * 0.01
    X[:, 3] = X[:, 1]
    w = MinVariance(covariance=covariance, min_weight=None, max_weight=None).weigh_one(X, np.ones(5))
    assert w[1] == pytest.approx(w[3], rel=1e-4)
    reduced = MinVariance(covariance="sample", min_weight=None, max_weight=None).weigh_one(X[:, [0, 1, 2, 4]], np.ones(4))
    if covariance == "sample":
        np.testing.assert_allclose([w[0], w[1] + w[3], w[2], w[4]], reduced, atol=1e-8)
