"""Risk parity (ERC) and the risk-budgeting solver: exact risk contributions, skfolio parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import estimators
from plugins.allocation._solvers import risk_budget_weights, risk_contributions
from plugins.allocation.risk_parity import RiskParity

# (first row, rows) of windows across the sample: calm, 2000s, 2008, recent, a short one
WINDOWS = [(0, 252), (2500, 252), (4700, 504), (7800, 500), (6000, 126)]


def skfolio_erc(X, covariance_estimator=None):
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    prior = EmpiricalPrior(covariance_estimator=covariance_estimator) if covariance_estimator else None
    return RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior).fit(X).weights_


@pytest.mark.parametrize("start, rows", WINDOWS)
def test_erc_contributions_equal_and_match_skfolio(sp500_frame, start, rows):
    X = sp500_frame.to_numpy()[start: start + rows]
    m = X.shape[1]
    w = RiskParity(lookback=rows, min_history=20, covariance="sample").weigh_one(X, np.ones(m))
    rc = risk_contributions(estimators.sample_covariance(X), w)
    np.testing.assert_allclose(rc, 1.0 / m, rtol=1e-8, atol=0)
    np.testing.assert_allclose(w, skfolio_erc(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("start, rows", WINDOWS[:3])
def test_erc_with_ledoit_wolf_matches_skfolio(sp500_frame, start, rows):
    from skfolio.moments import LedoitWolf

    X = sp500_frame.to_numpy()[start: start + rows]
    w = RiskParity(lookback=rows, min_history=20, covariance="ledoit_wolf").weigh_one(X, np.ones(20))
    rc = risk_contributions(estimators.ledoit_wolf_covariance(X), w)
    np.testing.assert_allclose(rc, 1 / 20, rtol=1e-8, atol=0)
    np.testing.assert_allclose(w, skfolio_erc(X, LedoitWolf()), rtol=0, atol=1e-5)


def test_short_sides_weigh_the_position_returns(sp500_frame):
    """A short position's return is -r: ERC on the sign-flipped covariance, signs restored."""
    X = sp500_frame.to_numpy()[1000:1252, :6]
    side = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])
    w = RiskParity(covariance="sample").weigh_one(X, side)
    assert np.array_equal(np.sign(w), side)
    rc = risk_contributions(estimators.sample_covariance(X * side), np.abs(w))
    np.testing.assert_allclose(rc, 1 / 6, rtol=1e-8)


def test_warm_started_weigh_is_exact_at_every_decision(sp500_returns):
    """Monthly decisions, each warm-started from the last: every one still exact."""
    at = np.arange(300, sp500_returns.shape[0] - 1, 21)
    alloc = RiskParity(lookback=252, covariance="ledoit_wolf")
    W = alloc.weigh(sp500_returns, np.ones((at.size, 20)), at)
    for i in range(0, at.size, 7):
        X = sp500_returns[at[i] - 251: at[i] + 1]
        rc = risk_contributions(estimators.ledoit_wolf_covariance(X), W[i])
        np.testing.assert_allclose(rc, 1 / 20, rtol=1e-8, atol=0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 60), skew=st.floats(0.0, 6.0))
def test_budgets_met_on_random_covariances(random_covariance, seed, m, skew):
    rng = np.random.default_rng(seed)
    cov = random_covariance(rng, m)
    b = np.exp(rng.uniform(-skew, 0.0, m))
    w = risk_budget_weights(cov, b)
    assert np.isfinite(w).all() and np.all(w > 0)
    assert abs(w.sum() - 1) < 1e-12
    np.testing.assert_allclose(risk_contributions(cov, w), b / b.sum(), rtol=1e-8, atol=0)
    # a warm start from a perturbed solution lands on the same point
    w2 = risk_budget_weights(cov, b, x0=w * rng.uniform(0.5, 2.0, m))
    np.testing.assert_allclose(w2, w, rtol=1e-9, atol=1e-12)


def test_two_hundred_assets(random_covariance):
    rng = np.random.default_rng(1)
    cov = random_covariance(rng, 200)
    w = risk_budget_weights(cov, np.ones(200))
    np.testing.assert_allclose(risk_contributions(cov, w), 1 / 200, rtol=1e-8, atol=0)


def test_singular_covariance_splits_duplicates_evenly(sp500_frame):
    X = sp500_frame.to_numpy()[2000:2252, :5]
    X = np.column_stack([X, X[:, 1]])  # column 5 duplicates column 1
    w = RiskParity(covariance="sample").weigh_one(X, np.ones(6))
    assert np.isfinite(w).all()
    assert w[1] == pytest.approx(w[5], rel=1e-6)
