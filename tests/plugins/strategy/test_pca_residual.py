"""Issue 20.5: Avellaneda-Lee residual statistical arbitrage against principal components."""

import dataclasses

import numpy as np
import pandas as pd
import statsmodels.api as sm

from pipeline.core.market import MarketData
from plugins.strategy.pca_residual import PCAResidual


def factor_market(t=700, n=10, seed=5) -> MarketData:
    """Two common factors plus a mean-reverting (AR(1), b = 0.8) idiosyncratic price part."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 0.01, (t, 2))
    load = rng.uniform(0.5, 1.5, (n, 2))
    u = np.zeros((t, n))
    for i in range(1, t):
        u[i] = 0.8 * u[i - 1] + rng.normal(0, 0.01, n)
    logp = np.cumsum(f @ load.T, axis=0) + u
    index = pd.date_range("2001-01-01", periods=t, freq="B", tz="America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{i}" for i in range(n)), close=100 * np.exp(logp))


def reference_s(close: np.ndarray, r: int, t: int, window: int, k: int, est: int):
    """The paper's s-score at bar t with the eigenportfolios of refit bar r, from SVD,
    least squares and a statsmodels OLS for the AR(1)."""
    ret = close[1:] / close[:-1] - 1
    ret = np.vstack([np.full((1, close.shape[1]), np.nan), ret])
    win = ret[r - window + 1: r + 1]
    sd = win.std(axis=0, ddof=1)
    z = (win - win.mean(axis=0)) / sd
    _, _, vt = np.linalg.svd(z, full_matrices=False)     # right singular vectors = PCA axes
    q = vt[:k].T / sd[:, None]
    y = ret[t - est + 1: t + 1]
    x = np.column_stack([np.ones(est), y @ q])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    X = np.cumsum(y - x @ coef, axis=0)
    out = []
    for j in range(close.shape[1]):
        fit = sm.OLS(X[1:, j], sm.add_constant(X[:-1, j])).fit()
        a, b = fit.params
        var = fit.ssr / (est - 1)
        out.append(((X[-1, j] - a / (1 - b)) / np.sqrt(var / (1 - b * b)), -np.log(b) * 252))
    return np.array(out)


def test_20_5_s_score_and_kappa_equal_the_papers_formulas_by_hand():
    data = factor_market()
    s = PCAResidual(window=250, components=2, estimation=60, refit=100, min_kappa=0.0)
    sc = s.scores(data)
    refits = sc["refits"]
    for t in (refits[0], refits[0] + 37, refits[2] + 5, data.n_bars - 1):
        r = int(refits[refits <= t][-1])
        ref = reference_s(data.close, r, int(t), 250, 2, 60)
        ok = np.isfinite(sc["s"][t])
        assert ok.sum() >= 8
        np.testing.assert_allclose(sc["s"][t, ok], ref[ok, 0], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(sc["kappa"][t, ok], ref[ok, 1], rtol=1e-8)
    # the planted residual reverts at b = 0.8 a bar: kappa near -log(0.8) * 252 = 56
    assert 25 < np.nanmedian(sc["kappa"]) < 90


def test_20_5_hedge_weights_come_from_the_trailing_window_only():
    data = factor_market()
    s = PCAResidual(window=250, components=2, estimation=60, refit=50)
    sc = s.scores(data)
    r = int(sc["refits"][3])
    close = data.close.copy()
    close[r + 1:] *= np.exp(np.random.default_rng(1).normal(0, 0.05, close[r + 1:].shape))
    scrambled = s.scores(dataclasses.replace(data, close=close))
    np.testing.assert_array_equal(scrambled["weights"][:4], sc["weights"][:4])
    np.testing.assert_array_equal(scrambled["beta"][: r + 1], sc["beta"][: r + 1])
    np.testing.assert_array_equal(scrambled["s"][: r + 1], sc["s"][: r + 1])
    at = np.arange(s.warmup(), data.n_bars)
    full = s.signal(data, at)
    for i in (0, 100, 300):
        np.testing.assert_array_equal(s.signal(data.view(int(at[i]) + 1), at[: i + 1])[-1], full[i])
    # a hedged position is the stock less beta times its eigenportfolios
    assert np.abs(full).sum() > 0 and not np.isin(full, (-1.0, 0.0, 1.0)).all()


def test_20_5_the_papers_open_and_close_thresholds():
    s = PCAResidual()
    path = np.array([0.0, -1.3, -1.0, -0.6, -0.4, 0.0, 1.3, 1.0, 0.8, 0.7, np.nan, -1.3, np.nan])
    want = [0, 1, 1, 1, 0, 0, -1, -1, -1, 0, 0, 1, 0]
    np.testing.assert_array_equal(s.positions(path[:, None])[:, 0], want)


def test_20_5_trading_the_planted_residual_earns_before_costs():
    data = factor_market(t=900)
    s = PCAResidual(window=250, components=2, estimation=60, refit=63, hedge=True)
    at = np.arange(s.warmup(), data.n_bars - 1)
    w = s.signal(data, at)
    nxt = data.close[at + 1] / data.close[at] - 1
    pnl = (w * nxt).sum(axis=1)
    assert pnl.mean() / pnl.std() * np.sqrt(252) > 1.0
