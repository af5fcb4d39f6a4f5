import numpy as np
import pytest

from pipeline.core.schedule import decision_bars
from plugins.strategy._common import band_positions
from plugins.strategy.mean_reversion import MeanReversion


def test_band_rule_entry_exit_stop_and_lock():
    z = np.array([0.0, 1.0, 2.1, 1.5, 0.4, -2.2, -3.6, -2.5, -0.3, -2.1, 2.6, np.nan, 1.0])
    pos = band_positions(z[:, None], entry=2.0, exit=0.5, stop=3.5)[:, 0]
    #              0  1  2   3   4  5  6  7  8  9  10  nan 12
    expected = [0, 0, -1, -1, 0, 1, 0, 0, 0, 1, -1, 0, 0]
    np.testing.assert_array_equal(pos, expected)


def test_price_zscore_is_the_rolling_z_of_log_close(sp500):
    m = MeanReversion(lookback=20)
    z = m.zscore(sp500)
    t = 4000
    window = np.log(sp500.close[t - 19: t + 1])
    expected = (window[-1] - window.mean(axis=0)) / window.std(axis=0, ddof=1)
    np.testing.assert_allclose(z[t], expected, rtol=1e-9)
    assert np.isnan(z[18]).all() and np.isfinite(z[19]).sum() >= 18  # a flat window has no z


def test_residual_zscore_is_the_last_ols_residual_on_the_market(sp500):
    w, t = 60, 4000
    z = MeanReversion(lookback=w, series="residual").zscore(sp500)
    logp = np.log(sp500.close)
    market = np.concatenate([[0.0], np.cumsum(np.diff(logp, axis=0).mean(axis=1))])
    m = market[t - w + 1: t + 1]
    for j in (0, 7, 19):
        x = logp[t - w + 1: t + 1, j]
        X = np.column_stack([np.ones(w), m])
        coef, *_ = np.linalg.lstsq(X, x, rcond=None)
        resid = x - X @ coef
        np.testing.assert_allclose(z[t, j], resid[-1] / resid.std(ddof=1), rtol=1e-6)


def test_rich_is_sold_and_cheap_is_bought(sp500):
    m = MeanReversion(lookback=20, entry=2.0, exit=0.5)
    z = m.zscore(sp500)
    at = np.arange(100, sp500.n_bars - 1, 7)
    sig = m.signal(sp500, at)
    zt = z[at]
    assert (sig[zt >= 2.0] == -1).all() and (sig[zt <= -2.0] == 1).all()
    assert (sig[np.abs(zt) <= 0.5] == 0).all()
    assert (sig != 0).any()


@pytest.mark.parametrize("series", ["price", "residual"])
def test_causal_for_both_series(series, sp500_0508, causal):
    at = decision_bars(sp500_0508.index, "weekly", first=60)
    causal(lambda: MeanReversion(lookback=60, series=series, stop=3.0), sp500_0508, at)


def test_bands_are_checked_against_each_other():
    with pytest.raises(ValueError, match="exit.*entry"):
        MeanReversion(entry=1.0, exit=1.0)
    with pytest.raises(ValueError, match="stop.*entry"):
        MeanReversion(entry=2.0, stop=1.5)
