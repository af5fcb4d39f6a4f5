import numpy as np
import pytest

from plugins.strategies.momentum import Momentum


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
