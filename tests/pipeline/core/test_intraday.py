"""The intraday market: simulated sessions consistent with their daily bar, seeded and
independent of what else trades, volume forecasts from the past only, and real bars as given."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.core.intraday import (IntradayMarket, load_bars, normals, pinned_bridge, symbol_keys,
                               trailing_volatility, trailing_volume, volume_profile)
from plugins.data.synthetic import Synthetic


def market(data, seed=7, bars=None, **kw):
    sigma = trailing_volatility(data.close, 20)
    adv = None if data.volume is None else trailing_volume(data.volume, 20)
    params = dict(n_bins=13, profile="u_shape", u_ratio=2.0, volume_noise=0.2, half_spread=2e-4,
                  adv_usd=5e8, seed=seed, bars=bars, profile_days=20)
    params.update(kw)
    return IntradayMarket(data, sigma, adv, **params)


@pytest.fixture(scope="module")
def ohlcv():
    return Synthetic(n_symbols=5, n_bars=300, seed=5).load()


@pytest.fixture(scope="module")
def closes(sp500):
    return sp500.select(start="2010-01-01", end="2012-12-31")


def test_the_pinned_bridge_goes_open_to_close_through_high_and_low():
    rng = np.random.default_rng(0)
    for _ in range(50):
        o, c = rng.uniform(95, 105, 4), rng.uniform(95, 105, 4)
        h = np.maximum(o, c) + rng.uniform(0, 3, 4)
        l = np.minimum(o, c) - rng.uniform(0, 3, 4)
        z = rng.standard_normal((4, 104))
        walk = np.concatenate([np.zeros((4, 1)), np.cumsum(z, axis=1) / np.sqrt(104)], axis=1)
        bridge = walk - np.linspace(0, 1, 105) * walk[:, -1:]
        path = pinned_bridge(bridge, o, h, l, c)
        np.testing.assert_allclose(path[:, 0], o)
        np.testing.assert_allclose(path[:, -1], c)
        np.testing.assert_allclose(path.max(axis=1), h)
        np.testing.assert_allclose(path.min(axis=1), l)


def test_simulated_bins_are_consistent_with_the_days_bar(ohlcv):
    mkt = market(ohlcv)
    sym = np.arange(5)
    for bar in range(30, 300, 17):
        bins = mkt.bins(bar, sym)
        o, h, l, c = (getattr(ohlcv, f)[bar] for f in ("open", "high", "low", "close"))
        np.testing.assert_allclose(bins.high.max(axis=0), h, rtol=1e-12)   # the high is touched
        np.testing.assert_allclose(bins.low.min(axis=0), l, rtol=1e-12)    # and the low
        assert (bins.low <= bins.price).all() and (bins.price <= bins.high).all()
        assert (bins.low[0] <= o * (1 + 1e-12)).all() and (o <= bins.high[0] * (1 + 1e-12)).all()
        assert (bins.low[-1] <= c * (1 + 1e-12)).all() and (c <= bins.high[-1] * (1 + 1e-12)).all()
        np.testing.assert_allclose(bins.volume.sum(axis=0), ohlcv.volume[bar], rtol=1e-12)
        np.testing.assert_allclose(bins.elapsed, np.arange(1, 14) / 13)


def test_with_closes_only_the_bridge_runs_from_the_previous_close_to_the_close(closes):
    mkt = market(closes)
    sym = np.arange(closes.n_symbols)
    bins = mkt.bins(100, sym)
    prev, close = closes.close[99], closes.close[100]
    assert (bins.low[0] <= prev * (1 + 1e-12)).all() and (prev <= bins.high[0] * (1 + 1e-12)).all()
    assert (bins.low[-1] <= close * (1 + 1e-12)).all() and (close <= bins.high[-1] * (1 + 1e-12)).all()
    # no volume in the data: the assumed dollar volume at the arrival price, for both
    np.testing.assert_allclose(bins.forecast.sum(axis=0), 5e8 / prev)
    np.testing.assert_allclose(bins.volume.sum(axis=0), 5e8 / prev)
    # the path's dispersion is the trailing volatility's: log bin-to-bin moves over many days
    moves = np.concatenate([(np.diff(np.log(mkt.bins(b, sym).price), axis=0)
                             / mkt.sigma[b - 1]).ravel() for b in range(50, 700)])
    assert 0.15 < moves.std() < 0.4  # about sqrt(2/3 / 13) = 0.23 for averaged bins


def test_sessions_are_seeded_and_independent_of_the_other_symbols(ohlcv):
    a, b = market(ohlcv, seed=7), market(ohlcv, seed=7)
    alone = a.bins(120, np.array([3]))
    crowd = b.bins(120, np.array([0, 4, 3, 1]))
    for field in ("price", "low", "high", "volume", "forecast"):
        np.testing.assert_array_equal(getattr(alone, field)[:, 0], getattr(crowd, field)[:, 2])
    other = market(ohlcv, seed=8).bins(120, np.array([3]))
    assert not np.array_equal(other.price, alone.price)
    # built in any order, the same session
    b.bins(200, np.array([3]))
    np.testing.assert_array_equal(b.bins(120, np.array([3])).price, alone.price)
    # the same symbol and day in a smaller universe starting later: the same session
    part = ohlcv.select(symbols=["S003", "S000"], start=ohlcv.index[40])
    np.testing.assert_array_equal(market(part).bins(80, np.array([0])).price, alone.price)


def test_the_volume_forecast_uses_only_the_past(ohlcv):
    bar = 150
    base = market(ohlcv).bins(bar, np.arange(5))
    future = ohlcv.volume.copy()
    future[bar:] *= 10.0  # the session itself and everything after it
    changed = market(dataclasses.replace(ohlcv, volume=future)).bins(bar, np.arange(5))
    np.testing.assert_array_equal(changed.forecast, base.forecast)
    np.testing.assert_allclose(changed.volume, base.volume * 10.0)
    adv = ohlcv.volume[bar - 20: bar].mean(axis=0)
    np.testing.assert_allclose(base.forecast, np.outer(volume_profile(13), adv), rtol=1e-12)


def test_the_profile_is_u_shaped_by_default_and_configurable():
    u = volume_profile(13, "u_shape", 3.0)
    assert u.sum() == pytest.approx(1.0)
    assert u[0] == pytest.approx(u[-1]) and u[0] > u[3] > u[6]
    assert u[0] / u[6] == pytest.approx(1 + 2.0 * (12 / 13) ** 2)  # about u_ratio at the edges
    np.testing.assert_allclose(volume_profile(13, "flat"), 1 / 13)


def test_normals_are_standard_and_keyed_by_symbol():
    keys = symbol_keys([f"X{i}" for i in range(200)])
    z = normals(7, 1234, keys, 1000)
    assert z.shape == (200, 1000)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 0.1
    np.testing.assert_array_equal(normals(7, 1234, keys[5:6], 1000)[0], z[5])
    assert not np.array_equal(normals(7, 1235, keys[5:6], 1000)[0], z[5])


def test_a_halted_symbol_trades_nothing_and_stays_finite(ohlcv):
    close = ohlcv.close.copy()
    close[100, 2] = np.nan
    halted = dataclasses.replace(ohlcv, close=close, open=np.where(np.isnan(close), np.nan, ohlcv.open))
    bins = market(halted).bins(100, np.arange(5))
    assert (bins.volume[:, 2] == 0).all()
    for field in ("price", "low", "high", "volume", "forecast"):
        assert np.isfinite(getattr(bins, field)).all()
    np.testing.assert_allclose(bins.price[:, 2], ohlcv.close[99, 2])


# ---------------------------------------------------------------- real intraday bars

def write_bars(tmp_path, data, days, times, drop=()):
    rows = []
    rng = np.random.default_rng(1)
    for day in days:
        for k, t in enumerate(times):
            for s in data.symbols:
                if (day, s) in drop:
                    continue
                price = 100 + k + rng.uniform(-0.5, 0.5)
                rows.append({"time": f"{day} {t}", "symbol": s, "close": price, "high": price + 0.2,
                             "low": price - 0.3, "volume": 1000.0 * (k + 1)})
    path = tmp_path / "bars.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_real_bars_are_used_as_they_are(tmp_path, ohlcv):
    days = [d.strftime("%Y-%m-%d") for d in ohlcv.index[100:126]]
    times = ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]  # hourly bars
    path = write_bars(tmp_path, ohlcv, days, times, drop={(days[-1], "S001")})
    bars = load_bars(path, ohlcv)
    mkt = market(ohlcv, bars=bars, profile_days=5)
    bins = mkt.bins(125, np.array([0, 1]))
    raw = pd.read_csv(path)
    day = raw[raw["time"].str.startswith(days[-1]) & (raw["symbol"] == "S000")]
    np.testing.assert_allclose(bins.price[:, 0], (day["high"] + day["low"] + day["close"]) / 3)
    np.testing.assert_allclose(bins.volume[:, 0], day["volume"])
    np.testing.assert_allclose(bins.elapsed, np.arange(1, 8) / 7)
    assert (bins.volume[:, 1] == 0).all() and np.isfinite(bins.price[:, 1]).all()  # no bars: halted
    # the forecast averages the previous 5 sessions bin by bin (the same 1000 k shares each)
    np.testing.assert_allclose(bins.forecast[:, 0], 1000.0 * np.arange(1, 8))
    # a session the file does not cover is simulated from the daily bar
    np.testing.assert_allclose(mkt.bins(200, np.array([0])).elapsed, np.arange(1, 14) / 13)


def test_real_bars_forecast_by_time_of_day_across_bar_sizes(tmp_path, ohlcv):
    """Earlier sessions in 30-minute bars forecast an hourly session by the span of the day."""
    early = [d.strftime("%Y-%m-%d") for d in ohlcv.index[100:103]]
    late = [ohlcv.index[103].strftime("%Y-%m-%d")]
    half_hours = [f"{h:02d}:{m:02d}" for h in range(10, 16) for m in (0, 30)] + ["16:00"]
    p1 = write_bars(tmp_path, ohlcv, early, half_hours)
    frame = pd.read_csv(p1)
    p2 = write_bars(tmp_path, ohlcv, late, ["11:00", "13:00", "16:00"])
    pd.concat([frame, pd.read_csv(p2)]).to_csv(tmp_path / "all.csv", index=False)
    mkt = market(ohlcv, bars=load_bars(str(tmp_path / "all.csv"), ohlcv))
    bins = mkt.bins(103, np.array([0]))
    vol = 1000.0 * (np.arange(len(half_hours)) + 1)
    stamps = np.array([int(t[:2]) * 60 + int(t[3:]) for t in half_hours])
    expected = [vol[stamps <= 660].sum(), vol[(stamps > 660) & (stamps <= 780)].sum(),
                vol[stamps > 780].sum()]
    np.testing.assert_allclose(bins.forecast[:, 0], expected)
