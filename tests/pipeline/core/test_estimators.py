"""pipeline.core.estimators against their references: sklearn, pandas, skfolio, numpy."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core import estimators


@pytest.fixture(scope="module")
def returns():
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset().pct_change().iloc[1:].to_numpy()


@pytest.mark.parametrize("start, rows", [(0, 252), (4700, 60), (7000, 15), (100, 3)])
def test_ledoit_wolf_is_sklearns(returns, start, rows):
    from sklearn.covariance import LedoitWolf

    X = returns[start: start + rows]
    ref = LedoitWolf().fit(X)
    np.testing.assert_allclose(estimators.ledoit_wolf_covariance(X), ref.covariance_, rtol=1e-12,
                               atol=1e-18)
    assert estimators.ledoit_wolf_shrinkage(X) == pytest.approx(ref.shrinkage_, rel=1e-12)
    one = X[:, :1]
    np.testing.assert_allclose(estimators.ledoit_wolf_covariance(one), LedoitWolf().fit(one).covariance_)


def test_sample_and_ewma(returns):
    X = returns[2000:2300]
    np.testing.assert_allclose(estimators.sample_covariance(X), np.cov(X, rowvar=False), rtol=1e-12)
    frame = pd.DataFrame(X)
    ref = frame.ewm(halflife=30).cov().loc[X.shape[0] - 1].to_numpy()
    np.testing.assert_allclose(estimators.ewma_covariance(X, 30.0), ref, rtol=1e-11, atol=1e-20)
    np.testing.assert_allclose(estimators.ewma_mean(X, 30.0), frame.ewm(halflife=30).mean().iloc[-1],
                               rtol=1e-12)
    # a half-life far beyond the window: the sample estimates
    np.testing.assert_allclose(estimators.ewma_covariance(X, 1e12), np.cov(X, rowvar=False), rtol=1e-8)


def test_james_stein_is_skfolios_when_it_shrinks():
    from skfolio.moments import ShrunkMu, ShrunkMuMethods

    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 10)) * 0.01 + rng.normal(0.001, 0.001, 10)
    ref = ShrunkMu(method=ShrunkMuMethods.JAMES_STEIN).fit(X)
    assert 0 < ref.beta_ < 1
    np.testing.assert_allclose(estimators.james_stein_mean(X), ref.mu_, rtol=1e-12)


def test_james_stein_never_expands(returns):
    """With a dominant market factor the raw formula's factor is negative: clipped to 0."""
    X = returns[4700:4952]
    mu = X.mean(axis=0)
    js = estimators.james_stein_mean(X)
    assert np.all(np.abs(js - mu.mean()) <= np.abs(mu - mu.mean()) + 1e-18)


def test_dispatch_and_errors(returns):
    X = returns[:100, :4]
    for method in ("sample", "ledoit_wolf", "ewma"):
        assert estimators.covariance(X, method, 20.0).shape == (4, 4)
    for method in ("historical", "ewma", "james_stein"):
        assert estimators.expected_returns(X, method, 20.0).shape == (4,)
    with pytest.raises(ValueError, match="ledoit_wolf"):
        estimators.covariance(X, "lw")
    with pytest.raises(ValueError, match="james_stein"):
        estimators.expected_returns(X, "shrunk")


@pytest.mark.parametrize("method", ["sample", "ledoit_wolf", "ewma"])
def test_sample_and_covariance_are_the_two_estimates_bit_for_bit(returns, method):
    for X in (returns[3000:3252], returns[10:70, :7], returns[500:600, :1]):
        sample, cov = estimators.sample_and_covariance(X, method, 40.0)
        np.testing.assert_array_equal(sample, estimators.sample_covariance(X))
        np.testing.assert_array_equal(cov, estimators.covariance(X, method, 40.0))


def test_positive_definite_ridges_only_when_needed(returns):
    X = returns[:300, :4]
    cov = estimators.sample_covariance(X)
    assert estimators.positive_definite(cov) is cov
    twin = estimators.sample_covariance(np.column_stack([X, X[:, 0]]))
    fixed = estimators.positive_definite(twin)
    np.linalg.cholesky(fixed)
    assert np.abs(fixed - twin).max() <= 1e-6 * np.diag(twin).mean()
    with pytest.raises(ValueError, match="NaN or infinite"):
        estimators.positive_definite(np.full((2, 2), np.nan))


def test_window_helpers():
    X = np.array([[np.nan, 1.0], [0.1, 1.0], [0.2, 1.0]])
    np.testing.assert_array_equal(estimators.complete_rows(X), X[1:])
    np.testing.assert_allclose(estimators.ewma_weights(3, 1.0), np.array([1, 2, 4]) / 7)
    np.testing.assert_allclose(estimators.correlation(np.array([[4.0, 2.0], [2.0, 9.0]])),
                               [[1.0, 1 / 3], [1 / 3, 1.0]])


@pytest.mark.parametrize("layout", ["C", "F"])
def test_position_window(layout):
    R = np.array([[9.0, 9.0, 9.0, 9.0],
                  [np.nan, 0.1, 1.0, 0.5],
                  [0.3, 0.2, 1.0, np.nan],
                  [0.4, -0.2, 1.0, 0.6],
                  [0.5, 0.1, 1.0, 0.7]], order=layout)
    # rows 1:5 of columns 1, 2, 0: row 2 (index 1 in the window) has a NaN in column 0
    P, live = estimators.position_window(R, 1, 5, np.array([1, 2, 0]), np.array([-1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(P, [[-0.2, 1.0, 0.3], [0.2, 1.0, 0.4], [-0.1, 1.0, 0.5]])
    np.testing.assert_array_equal(live, [True, False, True])
    # column 3 is not asked for, so its NaN drops nothing
    P, live = estimators.position_window(R, 3, 5, np.array([2, 1]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(P, [[1.0, -0.2], [1.0, 0.1]])
    np.testing.assert_array_equal(live, [False, True])
    P, live = estimators.position_window(R, 1, 2, np.array([0, 1]), np.ones(2))
    assert P.shape == (0, 2) and not live.any()


@pytest.mark.parametrize("decay", [1.0, 0.9, 0.5, np.array([1.0, 0.97, 0.25])])
def test_window_sums_equal_direct_sums(decay):
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((700, 3))
    at = np.array([0, 1, 5, 99, 100, 101, 250, 251, 252, 499, 699])
    L = 100
    got = estimators.window_sums(Y, at, L, decay)
    rates = np.broadcast_to(decay, (3,))
    for k, t in enumerate(at):
        s = np.arange(max(0, t - L + 1), t + 1)
        expected = (rates[None, :] ** (t - s)[:, None] * Y[s]).sum(axis=0)
        np.testing.assert_allclose(got[k], expected, rtol=1e-12, atol=1e-12)
