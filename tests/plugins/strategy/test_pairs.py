import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from plugins.strategy._common import band_positions
from plugins.strategy.pairs import Pairs, adf_tstat, eg_statistic, kalman_zscores, reject

Y, X = 4, 9  # the planted pair's columns


def universe(planted: bool, n: int = 12, T: int = 1500, seed: int = 3) -> MarketData:
    """``n`` independent random walks (log prices, 1.5 % daily steps); with ``planted``,
    column Y is 0.3 + 0.8 * column X plus a stationary AR(1) spread (phi 0.7, 1 % shocks)."""
    rng = np.random.default_rng(seed)
    logp = np.log(50.0) + np.cumsum(0.015 * rng.standard_normal((T, n)), axis=0)
    if planted:
        eps = 0.01 * rng.standard_normal(T)
        u = np.zeros(T)
        for t in range(1, T):
            u[t] = 0.7 * u[t - 1] + eps[t]
        logp[:, Y] = 0.3 + 0.8 * logp[:, X] + u
    index = pd.bdate_range("2010-01-04", periods=T).tz_localize("America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{j:02d}" for j in range(n)), close=np.exp(logp))


@pytest.fixture(scope="module")
def with_pair():
    return universe(planted=True)


@pytest.fixture(scope="module")
def without_pair():
    return universe(planted=False, seed=4)


def test_defaults_are_the_documented_bands():
    p = Pairs()
    assert (p.entry, p.exit, p.stop) == (2.0, 0.5, 3.5)
    assert (p.alpha, p.correction) == (0.05, "bh")


def test_finds_the_planted_pair_at_every_formation(with_pair):
    strategy = Pairs()
    bars = strategy.formation_bars(with_pair)
    assert bars.size >= 15
    planted = frozenset((Y, X))
    false_pairs = 0
    for r in bars:
        table = strategy.select(with_pair, int(r))
        assert len(table) == 66                      # every pair of 12 symbols was tested
        top = table.iloc[0]                          # sorted by p-value
        assert frozenset((int(top.y), int(top.x))) == planted and top.selected, f"bar {r}"
        assert top.b == pytest.approx(0.8 if top.y == Y else 1 / 0.8, rel=0.15)
        chosen = table[table.selected]
        false_pairs += sum(frozenset((int(a), int(b))) != planted for a, b in zip(chosen.y, chosen.x))
    # Benjamini-Hochberg controls the expected share of false discoveries (5 %), so a chance
    # pair may ride along at a formation; here 1 in 21 formations
    assert false_pairs <= 2


def test_finds_no_pair_among_random_walks_at_the_configured_significance(without_pair):
    bh, raw = Pairs(), Pairs(correction="none")
    spurious = 0
    for r in bh.formation_bars(without_pair):
        assert not bh.select(without_pair, int(r)).selected.any(), f"false pair at bar {r}"
        spurious += int(raw.select(without_pair, int(r)).significant.sum())
    # without the correction, 66 tests at 5 % do produce chance "cointegrated" pairs
    assert spurious > 0
    sig = bh.signal(without_pair, decision_bars(without_pair.index, "weekly", first=bh.warmup()))
    assert not sig.any()


def test_false_selection_rate_under_the_null_is_within_alpha():
    """60 independent universes of 12 random walks, one formation each: under the global null
    Benjamini-Hochberg selects a pair in at most ~alpha of them (the two-direction test is
    conservative, so fewer)."""
    strategy = Pairs()
    hits = sum(strategy.select(universe(False, T=253, seed=100 + k), 252).selected.any()
               for k in range(60))
    assert hits <= 3


def test_signal_trades_only_the_pair_and_is_dollar_neutral(with_pair):
    strategy = Pairs(max_pairs=1)                    # the planted pair ranks first everywhere
    at = decision_bars(with_pair.index, "daily", first=strategy.warmup())[:-1]
    sig = strategy.signal(with_pair, at)
    others = np.delete(sig, [Y, X], axis=1)
    assert not others.any()
    assert (sig[:, Y] == -sig[:, X]).all()           # +1 / -1: equal dollars per leg
    np.testing.assert_array_equal(sig.sum(axis=1), 0.0)
    active = sig[:, Y] != 0
    assert 0.1 < active.mean() < 0.9                 # it trades, and it is flat at times
    # the y leg follows the band rule on the formation spread's z, from each formation bar on:
    # short the rich leg (z >= entry), long the cheap one, flat at |z| <= exit, stop at 3.5
    logp = np.log(with_pair.close)
    bars = strategy.formation_bars(with_pair)
    checked = 0
    for f, r in enumerate(bars):
        row = strategy.select(with_pair, int(r))
        row = row[row.selected].iloc[0]
        y, x = int(row.y), int(row.x)
        upto = bars[f + 1] if f + 1 < bars.size else with_pair.n_bars
        period = (at >= r) & (at < upto)
        z = (logp[at, y] - row.a - row.b * logp[at, x]) / row.resid_sd
        expected = band_positions(z[period, None], 2.0, 0.5, 3.5)[:, 0]
        np.testing.assert_array_equal(sig[period, y], expected)
        opened = period & (np.abs(z) >= 2.0) & (np.abs(z) < 3.5) & (sig[:, y] != 0)
        assert (sig[opened, y] == -np.sign(z[opened])).all()
        checked += opened.sum()
    assert checked > 20


@pytest.mark.parametrize("hedge", ["ols", "rolling", "kalman"])
def test_causal_for_every_hedge(hedge, with_pair, causal):
    make = lambda: Pairs(reform="monthly", hedge=hedge, hedge_window=120)  # noqa: E731
    at = decision_bars(with_pair.index, "weekly", first=252)[:-1]
    sig = causal(make, with_pair, at, checks=10)
    assert sig.any()


def test_formation_uses_only_its_window(with_pair):
    strategy = Pairs()
    r = int(strategy.formation_bars(with_pair)[3])
    before = strategy.select(with_pair, r)
    close = with_pair.close.copy()
    lo = r - strategy.formation + 1
    close[:lo] *= np.random.default_rng(0).uniform(0.5, 2, close[:lo].shape)
    close[r + 1:] = 1.0
    after = strategy.select(dataclasses.replace(with_pair, close=close), r)
    pd.testing.assert_frame_equal(before, after)


def test_engle_granger_statistic_equals_statsmodels_coint(with_pair, without_pair):
    from statsmodels.tsa.stattools import coint

    for data in (with_pair, without_pair):
        Yw = np.log(data.close[200:452])
        i, j = np.array([Y, 0, 3]), np.array([X, 5, 11])
        for lags in (0, 1, 3):
            stat, _ = eg_statistic(Yw, i, j, lags)
            expected = [coint(Yw[:, a], Yw[:, b], maxlag=lags, autolag=None)[0] for a, b in zip(i, j)]
            np.testing.assert_allclose(stat, expected, rtol=1e-8)
        stat, _ = eg_statistic(Yw, i, j, None)
        np.testing.assert_allclose(stat, [coint(Yw[:, a], Yw[:, b])[0] for a, b in zip(i, j)],
                                   rtol=1e-10)


@pytest.mark.filterwarnings("ignore:adfuller currently returns")
def test_adf_statistic_equals_statsmodels_adfuller():
    from statsmodels.tsa.stattools import adfuller

    e = np.cumsum(np.random.default_rng(1).standard_normal((3, 300)), axis=1)
    for lags in (0, 2):
        expected = [adfuller(row, maxlag=lags, autolag=None, regression="n")[0] for row in e]
        np.testing.assert_allclose(adf_tstat(e, lags), expected, rtol=1e-8)


def test_multiple_testing_procedures():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # Benjamini-Hochberg at 0.05 with m = 10: thresholds 0.005, 0.010, 0.015, ...
    np.testing.assert_array_equal(reject(p, 0.05, "bh"), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(reject(p, 0.05, "bonferroni"), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(reject(p, 0.05, "none"), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    # BH is step-up: a small p-value further down lifts the ones before it
    np.testing.assert_array_equal(reject(np.array([0.02, 0.03, 0.04]), 0.05, "bh"), [1, 1, 1])


def test_kalman_tracks_a_drifting_hedge_ratio():
    rng = np.random.default_rng(5)
    T = 1000
    x = np.log(50) + np.cumsum(0.01 * rng.standard_normal(T))
    beta = np.linspace(0.8, 1.0, T)                  # the true hedge ratio drifts
    y = 0.2 + beta * x + 0.005 * rng.standard_normal(T)
    z_kalman = kalman_zscores(y[:, None], x[:, None], np.array([0.2]), np.array([0.8]),
                              np.array([0.005 ** 2]), 1e-2, x[:100, None])[:, 0]
    z_static = (y - 0.2 - 0.8 * x) / 0.005
    assert np.abs(z_kalman[100:]).mean() < 2.0       # the filter follows the drift
    assert np.abs(z_static[100:]).mean() > 50        # a frozen hedge ratio does not


def test_johansen_confirmation_keeps_the_planted_pair(with_pair):
    strategy = Pairs(johansen=True)
    r = int(strategy.formation_bars(with_pair)[2])
    chosen = strategy.select(with_pair, r)
    chosen = chosen[chosen.selected]
    assert {int(chosen.y.iloc[0]), int(chosen.x.iloc[0])} == {Y, X}


def test_parameters_are_checked_against_each_other():
    with pytest.raises(ValueError, match="exit.*entry"):
        Pairs(entry=1.0, exit=1.5)
    with pytest.raises(ValueError, match="stop.*entry"):
        Pairs(entry=2.0, stop=2.0)
    with pytest.raises(ValueError, match="hedge_window.*formation"):
        Pairs(formation=100, hedge_window=150)
    with pytest.raises(ValueError, match="reform"):
        Pairs(reform="fortnightly")


def test_p_values_are_statsmodels_mackinnon():
    from statsmodels.tsa.adfvalues import mackinnonp

    from plugins.strategy.pairs import mackinnon_p

    stat = np.concatenate([np.linspace(-25, 5, 601), [-np.inf, np.inf]])
    expected = [mackinnonp(s, regression="c", N=2) for s in stat[:-2]] + [0.0, 1.0]
    np.testing.assert_allclose(mackinnon_p(stat), expected, rtol=1e-12, atol=1e-300)
