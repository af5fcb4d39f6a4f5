"""Mean-variance: closed forms unbounded; bounded max Sharpe and target return exact and at
least as good as skfolio's conic solution."""

import numpy as np
import pytest

from pipeline.core import estimators
from plugins.allocation.mean_variance import MeanVariance

PLAIN = dict(covariance="sample", expected_returns="historical")
STARTS = [0, 2500, 4700, 7500]


def moments(X):
    return X.mean(axis=0), np.cov(X, rowvar=False)


@pytest.mark.parametrize("start", STARTS)
def test_unbounded_max_sharpe_is_the_tangency_portfolio(sp500_frame, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    mu, cov = moments(X)
    rf = 1e-4
    z = np.linalg.solve(cov, mu - rf)
    w = MeanVariance(min_weight=None, max_weight=None, risk_free_rate=rf, **PLAIN).weigh_one(X, np.ones(20))
    if z.sum() > 0:
        np.testing.assert_allclose(w, z / z.sum(), rtol=1e-8, atol=1e-12)
    else:  # documented: no tangency on the efficient branch -> minimum variance
        inv1 = np.linalg.solve(cov, np.ones(20))
        np.testing.assert_allclose(w, inv1 / inv1.sum(), rtol=1e-8)


@pytest.mark.parametrize("start", STARTS)
def test_unbounded_target_return_is_the_two_fund_portfolio(sp500_frame, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    mu, cov = moments(X)
    t = 0.002
    inv = np.linalg.inv(cov)
    A, B, C = inv.sum(), inv.sum(axis=0) @ mu, mu @ inv @ mu
    expected = ((C - t * B) * inv.sum(axis=1) + (t * A - B) * (inv @ mu)) / (A * C - B * B)
    w = MeanVariance(objective="target_return", target_return=t, min_weight=None, max_weight=None,
                     **PLAIN).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(w, expected, rtol=1e-8, atol=1e-12)
    assert mu @ w == pytest.approx(t, rel=1e-9)


def sharpe(w, mu, cov, rf=0.0):
    return (mu @ w - rf) / np.sqrt(w @ cov @ w)


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("max_weight", [1.0, 0.25])
def test_bounded_max_sharpe(sp500_frame, start, max_weight):
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    X = sp500_frame.to_numpy()[start: start + 252]
    mu, cov = moments(X)
    w = MeanVariance(max_weight=max_weight, **PLAIN).weigh_one(X, np.ones(20))
    assert w.min() >= 0 and w.max() <= max_weight + 1e-15 and w.sum() == pytest.approx(1, abs=1e-12)
    sk = MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO, risk_measure=RiskMeasure.VARIANCE,
                  max_weights=max_weight).fit(X).weights_
    assert sharpe(w, mu, cov) >= sharpe(sk, mu, cov) * (1 - 1e-9)
    np.testing.assert_allclose(w, sk, atol=1e-3)  # the conic solver's tolerance on a ratio
    # no feasible nudge of weight from one column to another raises the Sharpe ratio
    best = sharpe(w, mu, cov)
    for i in range(20):
        for j in range(20):
            if i != j:
                step = min(1e-4, w[i], max_weight - w[j])
                if step > 0:
                    v = w.copy()
                    v[i] -= step
                    v[j] += step
                    assert sharpe(v, mu, cov) <= best * (1 + 1e-12)


@pytest.mark.parametrize("start", STARTS)
def test_bounded_target_return(sp500_frame, start):
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk

    X = sp500_frame.to_numpy()[start: start + 252]
    mu, cov = moments(X)
    t = float(np.quantile(mu, 0.8))
    w = MeanVariance(objective="target_return", target_return=t, max_weight=0.3, **PLAIN).weigh_one(X, np.ones(20))
    mv = MeanVariance(objective="target_return", target_return=-1.0, max_weight=0.3, **PLAIN).weigh_one(X, np.ones(20))
    if mu @ mv >= t:
        np.testing.assert_allclose(w, mv)
        return
    assert mu @ w == pytest.approx(t, rel=1e-9)
    sk = MeanRisk(risk_measure=RiskMeasure.VARIANCE, min_return=t, max_weights=0.3).fit(X).weights_
    assert w @ cov @ w <= sk @ cov @ sk * (1 + 1e-9)
    np.testing.assert_allclose(w, sk, atol=5e-4)


def test_unreachable_target_gives_the_highest_return_portfolio():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((252, 5)) * 0.01 + np.array([1, 2, 3, 4, 5]) * 1e-4
    w = MeanVariance(objective="target_return", target_return=0.05, max_weight=0.4,
                     **PLAIN).weigh_one(X, np.ones(5))
    order = np.argsort(-X.mean(axis=0))
    np.testing.assert_allclose(w[order], [0.4, 0.4, 0.2, 0.0, 0.0], atol=1e-15)


def test_no_positive_excess_return_gives_minimum_variance():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((252, 5)) * 0.01 - 0.003
    w = MeanVariance(**PLAIN).weigh_one(X, np.ones(5))
    mv = MeanVariance(objective="target_return", target_return=-1.0, **PLAIN).weigh_one(X, np.ones(5))
    np.testing.assert_allclose(w, mv)


@pytest.mark.parametrize("seed", range(15))
def test_random_windows(random_returns, seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 30))
    X = random_returns(rng, 200, m)
    hi = float(rng.choice([1.0, 0.3, 1.5 / m]))
    for objective in ("max_sharpe", "target_return"):
        w = MeanVariance(objective=objective, target_return=float(np.median(X.mean(0))), max_weight=hi,
                         lookback=200, **PLAIN).weigh_one(X, np.ones(m))
        assert np.isfinite(w).all() and w.min() >= 0 and w.max() <= max(hi, 1 / m) + 1e-14
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
    mu, cov = X.mean(0), estimators.sample_covariance(X)
    w = MeanVariance(max_weight=hi, lookback=200, **PLAIN).weigh_one(X, np.ones(m))
    if (mu > 0).any():
        for _ in range(200):  # random feasible portfolios never beat it
            v = rng.dirichlet(np.ones(m))
            if v.max() <= max(hi, 1 / m):
                assert sharpe(v, mu, cov) <= sharpe(w, mu, cov) + 1e-12
