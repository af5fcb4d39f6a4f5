"""Inverse volatility: the vectorised ``weigh`` against the formula and against ``weigh_one``."""

import numpy as np
import pandas as pd
import pytest

from plugins.allocation.inverse_vol import InverseVol


def test_sample_is_one_over_the_standard_deviation(sp500_frame):
    X = sp500_frame.to_numpy()[1000:1252]
    inv = 1 / X.std(axis=0, ddof=1)
    w = InverseVol().weigh_one(X, np.ones(20))
    np.testing.assert_allclose(w, inv / inv.sum(), rtol=1e-12)


def test_ewma_matches_pandas(sp500_frame):
    X = sp500_frame.iloc[1000:1252]
    sd = X.ewm(halflife=20).std().iloc[-1].to_numpy()
    w = InverseVol(covariance="ewma", halflife=20.0).weigh_one(X.to_numpy(), np.ones(20))
    np.testing.assert_allclose(w, (1 / sd) / (1 / sd).sum(), rtol=1e-10)


@pytest.mark.parametrize("covariance, halflife", [("sample", 63.0), ("ewma", 10.0), ("ewma", 1.0)])
@pytest.mark.parametrize("every", [1, 5, 21])
def test_vectorised_weigh_equals_the_loop(sp500_returns, covariance, halflife, every):
    R = sp500_returns.copy()
    R[:900, 3] = np.nan          # listed late
    R[2000:2300, 7] = 0.0        # halted
    R[3000:3300, 9] = 0.0004     # constant but not zero
    R[4000:4003, 11] = np.nan    # a gap
    rng = np.random.default_rng(every)
    at = np.arange(80, R.shape[0] - 1, every)
    signals = rng.choice([-1.0, 0.0, 1.0], size=(at.size, 20))
    alloc = InverseVol(covariance=covariance, halflife=halflife, lookback=252, min_history=60)
    loop = np.zeros(signals.shape)
    for i, t in enumerate(at):
        cols = np.flatnonzero(signals[i])
        if cols.size:
            loop[i, cols] = alloc.weigh_one(R[max(0, t - 251): t + 1, cols], np.sign(signals[i, cols]))
    W = alloc.weigh(R, signals, at)
    np.testing.assert_allclose(W, loop, rtol=1e-9, atol=1e-12)
    halted = (at >= 2000 + 251) & (at < 2300) & (signals[:, 7] != 0)
    assert halted.any() and np.all(W[halted, 7] == 0.0)


def test_constant_columns_get_no_weight():
    X = pd.DataFrame(np.random.default_rng(0).standard_normal((100, 3)) * 0.01)
    X[1] = 0.0
    w = InverseVol(min_history=20).weigh_one(X.to_numpy(), np.ones(3))
    assert w[1] == 0 and w.sum() == pytest.approx(1.0)
