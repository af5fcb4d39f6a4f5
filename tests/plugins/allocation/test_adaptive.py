"""Adaptive: the documented formula, step by step."""

import numpy as np
import pytest

from pipeline.core import estimators
from plugins.allocation._solvers import risk_contributions
from plugins.allocation.adaptive import Adaptive
from plugins.allocation.risk_parity import RiskParity


def test_target_has_the_documented_risk_budgets(sp500_frame):
    X = sp500_frame.to_numpy()[4000:4252]
    k = 0.8
    w = Adaptive(performance_weight=k, smoothing=0.0, covariance="sample").weigh_one(X, np.ones(20))
    cov = estimators.sample_covariance(X)
    t = np.clip(X.mean(axis=0) / np.sqrt(np.diag(cov) / X.shape[0]), -4, 4)
    b = np.exp(k * t) / np.exp(k * t).sum()
    np.testing.assert_allclose(risk_contributions(cov, w), b, rtol=1e-8)


def test_no_performance_weight_is_risk_parity(sp500_frame):
    X = sp500_frame.to_numpy()[6000:6252]
    a = Adaptive(performance_weight=0.0).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(a, RiskParity().weigh_one(X, np.ones(20)), rtol=1e-9)


def test_correlation_lowers_the_weight_of_a_redundant_column():
    """Same volatility and performance; column 2 is nearly a copy of column 0."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((500, 3)) * 0.01
    Z[:, 2] = 0.95 * Z[:, 0] + np.sqrt(1 - 0.95**2) * Z[:, 2]
    w = Adaptive(performance_weight=0.0, lookback=500).weigh_one(Z, np.ones(3))
    assert w[1] > w[0] and w[1] > w[2]


def test_weigh_blends_with_the_previous_weights(sp500_returns):
    s = 0.3
    alloc = Adaptive(smoothing=s, lookback=252)
    at = np.array([3000, 3021, 3042])
    signals = np.ones((3, 20))
    signals[2, 4] = -1.0  # column 4 flips side at the third decision: it held nothing before
    W = alloc.weigh(sp500_returns, signals, at)
    target = [alloc.weigh_one(sp500_returns[t - 251: t + 1], np.sign(signals[i])) for i, t in enumerate(at)]
    np.testing.assert_allclose(W[0], target[0], rtol=1e-9)
    for i in (1, 2):
        prev = np.maximum(W[i - 1] * np.sign(signals[i]), 0.0)
        blend = (1 - s) * np.abs(target[i]) + s * prev
        np.testing.assert_allclose(W[i], np.sign(signals[i]) * blend / blend.sum(), rtol=1e-8, atol=1e-14)
    assert np.abs(W).sum(axis=1) == pytest.approx(np.ones(3))
