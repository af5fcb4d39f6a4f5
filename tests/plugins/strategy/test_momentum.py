import numpy as np
import pytest

from plugins.strategy.momentum import Momentum


def test_picks_the_top_k_by_return_over_the_skipped_window(sp500):
    m = Momentum(lookback=252, skip=21, top_k=4)
    t = 5000
    sig = m.signal(sp500, np.array([t]))[0]
    score = sp500.close[t - 21] / sp500.close[t - 252] - 1
    expected = np.zeros_like(score)
    expected[np.argsort(-score)[:4]] = 1.0
    np.testing.assert_array_equal(sig, expected)


def test_no_signal_before_the_lookback(sp500):
    assert not Momentum(lookback=252).signal(sp500, np.array([10, 251])).any()


def test_unlisted_symbols_are_never_picked(sp500):
    close = sp500.close.copy()
    close[:300, 0] = np.nan  # symbol 0 lists at bar 300
    import dataclasses
    data = dataclasses.replace(sp500, close=close)
    sig = Momentum(lookback=252, skip=0, top_k=19).signal(data, np.array([400, 600]))
    assert sig[0, 0] == 0 and sig[0].sum() == 19
    assert sig[1].sum() == 19


def test_skip_must_be_below_lookback():
    with pytest.raises(ValueError, match="skip"):
        Momentum(lookback=20, skip=20)


def test_long_short_shorts_the_bottom_k(sp500):
    t = 5000
    sig = Momentum(lookback=252, skip=21, top_k=4, long_short=True).signal(sp500, np.array([t]))[0]
    score = sp500.close[t - 21] / sp500.close[t - 252] - 1
    order = np.argsort(-score)
    assert set(np.flatnonzero(sig == 1)) == set(order[:4])
    assert set(np.flatnonzero(sig == -1)) == set(order[-4:])


def test_time_series_mode_follows_each_symbols_own_trend(sp500):
    t = np.array([3000, 5000, 7000])
    score = sp500.close[t - 21] / sp500.close[t - 252] - 1
    long_only = Momentum(mode="time_series", top_k=None).signal(sp500, t)
    np.testing.assert_array_equal(long_only, (score > 0).astype(float))
    both = Momentum(mode="time_series", top_k=None, long_short=True).signal(sp500, t)
    np.testing.assert_array_equal(both, np.sign(score))
    capped = Momentum(mode="time_series", top_k=2, long_short=True).signal(sp500, t)
    assert ((capped == 1).sum(axis=1) <= 2).all() and ((capped == -1).sum(axis=1) <= 2).all()
    assert (capped[capped != 0] == np.sign(score)[capped != 0]).all()  # never against the trend


def test_vol_target_scales_conviction_inversely_to_volatility(sp500):
    t = 5000
    m = Momentum(lookback=252, skip=21, top_k=20, vol_target=0.4, vol_window=63)
    sig = m.signal(sp500, np.array([t]))[0]
    logret = np.diff(np.log(sp500.close[t - 63: t + 1]), axis=0)
    expected = 0.4 / (logret.std(axis=0, ddof=1) * np.sqrt(252))
    np.testing.assert_allclose(sig, expected, rtol=1e-12)
    assert m.warmup() == 252


def test_cross_sectional_needs_top_k():
    with pytest.raises(ValueError, match="top_k.*mode"):
        Momentum(top_k=None)
