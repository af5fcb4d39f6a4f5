"""vol_target: the ex-ante vol of the scaled weights, recomputed with numpy, is the target."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core.contracts import RiskContext
from pipeline.core.errors import ConfigError
from plugins.risk.vol_target import VolTarget


def market(seed=1, n=400, m=5):
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((n, 1)) * 0.01
    r = common * rng.uniform(0.5, 1.5, m) + rng.standard_normal((n, m)) * rng.uniform(0.005, 0.02, m)
    r[0] = np.nan
    return r


def weights(seed=2, k=20, m=5):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(m), size=k) * rng.choice([-1, 1], size=(k, m), p=[0.2, 0.8])
    w[3, 1:] = 0.0  # one name
    w[5, :2] = 0.0
    return w


def numpy_vol(w, returns, t, lookback):
    """Annualised vol of ``w`` from np.cov of the ``lookback`` returns ending at ``t``."""
    held = w != 0
    X = returns[t - lookback + 1: t + 1][:, held]
    X = X[~np.isnan(X).any(axis=1)]
    return np.sqrt(252 * w[held] @ np.atleast_2d(np.cov(X, rowvar=False)) @ w[held])


def test_scaled_weights_have_the_target_vol():
    r, w = market(), weights()
    at = np.arange(100, 400, 15)
    out, bound = VolTarget(target=0.12, max_leverage=10.0, lookback=63).apply(w, RiskContext(r, at))
    for i, t in enumerate(at):
        assert numpy_vol(out[i], r, t, 63) == pytest.approx(0.12, rel=1e-10)
        ratio = out[i][w[i] != 0] / w[i][w[i] != 0]
        np.testing.assert_allclose(ratio, ratio[0])  # one factor per row, signs kept
    assert bound.all()


def test_leverage_cap_wins_over_the_target():
    r, w = market(), weights()
    at = np.arange(100, 400, 15)
    out, bound = VolTarget(target=0.5, max_leverage=1.5).apply(w, RiskContext(r, at))
    np.testing.assert_allclose(np.abs(out).sum(axis=1), 1.5)
    assert all(numpy_vol(out[i], r, t, 63) < 0.5 for i, t in enumerate(at))
    assert bound.all()


def test_no_look_ahead():
    r, w = market(), weights()
    at = np.arange(100, 400, 15)
    vt = VolTarget(target=0.1, max_leverage=3.0)
    out, _ = vt.apply(w, RiskContext(r, at))
    for i, t in enumerate(at):
        future = r.copy()
        future[t + 1:] *= 5.0
        again, _ = vt.apply(w[i: i + 1], RiskContext(future, at[i: i + 1]))
        np.testing.assert_array_equal(again[0], out[i])


def test_ewma_estimator_matches_pandas():
    r, w = market(), weights()
    at = np.arange(100, 400, 30)
    vt = VolTarget(target=0.1, max_leverage=10.0, lookback=63, covariance="ewma", halflife=10.0)
    out, _ = vt.apply(w, RiskContext(r, at))
    for i, t in enumerate(at):
        frame = pd.DataFrame(r[t - 62: t + 1])
        cov = frame.ewm(halflife=10.0).cov().loc[62].to_numpy()
        assert np.sqrt(252 * out[i] @ cov @ out[i]) == pytest.approx(0.1, rel=1e-9)


def test_empty_rows_and_rows_on_target_do_not_bind():
    r = market()
    w = np.array([[0.0] * 5, [0.2] * 5])
    at = np.array([100, 100])
    vol = VolTarget().ex_ante_vol(w[1], r, 100)
    out, bound = VolTarget(target=vol, max_leverage=2.0).apply(w, RiskContext(r, at))
    np.testing.assert_array_equal(out, w)
    assert bound.tolist() == [False, False]


def test_too_little_history_is_a_config_error():
    r, w = market(), weights()[:1]
    with pytest.raises(ConfigError, match=r"risk\.vol_target: the decision at bar 15 has 15 complete "
                                          r"bars.*min_history=20"):
        VolTarget().apply(w, RiskContext(r, np.array([15])))


def test_19_1_on_intraday_bars_the_vol_is_annualised_by_the_datas_bars_a_year():
    """252 sessions x 390 one-minute bars: the same per-bar variance is 390x the annual
    variance it is on daily bars; periods_per_year, when set, still wins."""
    r, w = market(), weights()
    at = np.arange(100, 400, 30)
    minutes = 252 * 390
    out, _ = VolTarget(target=0.1, max_leverage=1e6).apply(w, RiskContext(r, at, bars_per_year=minutes))
    for i, t in enumerate(at):
        cov = np.atleast_2d(np.cov(r[t - 62: t + 1, np.flatnonzero(w[i])], rowvar=False))
        held = out[i][np.flatnonzero(w[i])]
        assert np.sqrt(minutes * held @ cov @ held) == pytest.approx(0.1, rel=1e-9)
    fixed, _ = VolTarget(target=0.1, max_leverage=1e6, periods_per_year=252.0).apply(
        w, RiskContext(r, at, bars_per_year=minutes))
    daily, _ = VolTarget(target=0.1, max_leverage=1e6).apply(w, RiskContext(r, at))
    np.testing.assert_array_equal(fixed, daily)
