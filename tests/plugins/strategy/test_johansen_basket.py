"""Issue 20.5: Johansen-cointegrated baskets."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from pipeline.core.market import MarketData
from plugins.strategy.johansen_basket import JohansenBasket, johansen


def basket_market(t=600, seed=2) -> MarketData:
    """S0..S2 share one random-walk trend and S0 - 0.6 S1 - 0.4 S2 is a stationary AR(1);
    S3..S5 are independent random walks."""
    rng = np.random.default_rng(seed)
    trend = np.cumsum(rng.normal(0, 0.01, t))
    u = np.zeros(t)
    for i in range(1, t):
        u[i] = 0.9 * u[i - 1] + rng.normal(0, 0.01)
    s1 = trend + np.cumsum(rng.normal(0, 0.01, t))    # a second stochastic trend: rank 1 only
    s2 = trend + rng.normal(0, 0.004, t)
    s0 = 0.6 * s1 + 0.4 * s2 + u
    walks = np.cumsum(rng.normal(0, 0.01, (t, 3)), axis=0)
    logp = np.column_stack([s0, s1, s2, walks]) + 4.0
    index = pd.date_range("2001-01-01", periods=t, freq="B", tz="America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{i}" for i in range(6)), close=np.exp(logp)), u


@pytest.mark.parametrize("det_order, k_ar_diff", [(-1, 1), (0, 1), (0, 3), (1, 2)])
def test_20_5_johansen_statistics_equal_statsmodels_on_the_same_window(sp500, det_order, k_ar_diff):
    s = JohansenBasket(det_order=det_order, k_ar_diff=k_ar_diff)
    for r in (800, 4321):
        window = s.window(sp500, r)
        np.testing.assert_array_equal(window, np.log(sp500.close[r - 251: r + 1]))
        for basket in s.candidates(window)[:4]:
            ours = s.johansen(window, basket)
            ref = coint_johansen(np.log(sp500.close[r - 251: r + 1][:, list(basket)]), det_order, k_ar_diff)
            for name in ("eig", "evec", "lr1", "lr2", "cvt", "cvm"):
                np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-9,
                                           atol=1e-8, err_msg=name)


def test_20_5_a_planted_cointegrated_basket_is_found_hedged_and_traded():
    data, u = basket_market()
    s = JohansenBasket(formation=250, reform=100, size=3, max_baskets=1)
    formed = s.form(data, 350)      # the second formation: bars 101..350
    assert formed and formed[0][0] == (0, 1, 2)
    basket, w, mean, sd, res = formed[0]
    assert res.lr1[0] > res.cvt[0, 1] and np.abs(w).sum() == pytest.approx(1.0)
    spread = np.log(data.close[101:351, [0, 1, 2]]) @ w
    assert abs(np.corrcoef(spread, u[101:351])[0, 1]) > 0.85  # estimated weights, 250 bars
    direct = johansen(np.log(data.close[101:351, [0, 1, 2]]), 0, 1)
    np.testing.assert_array_equal(direct.evec, res.evec)
    at = np.arange(s.warmup(), data.n_bars)
    sig = s.signal(data, at)
    first = (at >= 350) & (at < 450)                # the period traded with this basket
    held = np.abs(sig[first]).sum(axis=1) > 0
    assert held.sum() > 5 and (sig[first][:, 3:] == 0).all()
    # a held row is +-w on the basket: the spread's weights, never a lone leg
    np.testing.assert_allclose(np.abs(sig[first][held][:, :3]), np.abs(w)[None, :].repeat(held.sum(), 0))


def test_20_5_thresholds_are_checked():
    with pytest.raises(ValueError, match="exit"):
        JohansenBasket(entry=1.0, exit=1.5)
    with pytest.raises(ValueError, match="stop"):
        JohansenBasket(entry=2.0, stop=1.5)
