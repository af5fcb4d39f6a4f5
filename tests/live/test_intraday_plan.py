"""Issue 19.1 point 2: paper and live on intraday data slice over the data's own coming bars,
aligned to its bar size, with the backtest's forecast (the trailing sessions' volume in each
bar of the session), not over ``mode.bins`` invented bins with a U-shape."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from pipeline.core import calendars
from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from pipeline.live import planning
from pipeline.live.planning import Planner, bar_grid
from plugins.broker.sim import SimBroker

NY = "America/New_York"
BOTH = np.array([0, 1])


def minutes(calendar: str, start: str, end: str, tz: str) -> MarketData:
    """Seeded 1-minute bars over the sessions of ``calendar``, stamped at their close."""
    table = calendars.schedule(calendar, start, end)
    index = pd.DatetimeIndex(np.concatenate([
        pd.date_range(o, c, freq="1min", inclusive="right").as_unit("ns").asi8
        for o, c in zip(table["open"], table["close"])]), tz="UTC").tz_convert(tz)
    rng = np.random.default_rng(11)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 5e-4, (len(index), 2)), axis=0))
    volume = rng.integers(100, 1_000, (len(index), 2)).astype(float)
    return MarketData(index=index, symbols=("AAA", "BBB"), close=close, volume=volume,
                      name="minutes", calendar=calendar)


@pytest.fixture(scope="module")
def week():
    return minutes("XNYS", "2024-11-18", "2024-11-29", NY)  # 9 sessions, 11-29 a half day


def plan_bins(monkeypatch, data: MarketData, now: pd.Timestamp, seconds: float, rule: str = "daily"):
    """The planner's bins for both symbols at ``now``, with a horizon of ``seconds``."""
    monkeypatch.setattr(planning.time, "time", lambda: now.timestamp() - 0.05)
    p = Planner.__new__(Planner)
    p.mode = types.SimpleNamespace(bins=1, bin_seconds=seconds)
    p.cfg = types.SimpleNamespace(schedule=types.SimpleNamespace(rebalance=rule))
    p._bar_grid = None
    bins = p._bins(data, BOTH, data.close[-1])
    return bins, p._bar_grid


def by_hand(data: MarketData, before: str, times: list[str]) -> np.ndarray:
    """The average volume each earlier session traded in the bar stamped at each time."""
    frame = pd.DataFrame(data.volume, index=data.index)
    past = frame[frame.index.tz_localize(None) < pd.Timestamp(before)]
    mean = past.groupby(past.index.strftime("%H:%M")).mean()
    return mean.loc[times].to_numpy()


def test_19_1_live_bins_are_the_coming_bars_with_the_backtests_forecast(monkeypatch, week):
    t = int(week.index.get_loc(pd.Timestamp("2024-11-27 10:00", tz=NY)))
    data = week.view(t + 1)  # what live has at 10:00:30: nothing later
    bins, (start, closes) = plan_bins(monkeypatch, data, pd.Timestamp("2024-11-27 10:00:30", tz=NY), 1800.0)
    stamps = pd.date_range("2024-11-27 10:01", "2024-11-27 10:30", freq="1min", tz=NY)
    assert start == pd.Timestamp("2024-11-27 10:00:30", tz=NY).timestamp()
    np.testing.assert_array_equal(closes, stamps.as_unit("ns").asi8 / 1e9)  # 30 bars, on the minute
    np.testing.assert_allclose(bins.forecast, by_hand(data, "2024-11-27", list(stamps.strftime("%H:%M"))))
    assert bins.days == pytest.approx(30 / 390)
    # the backtest slicing the same bars of the whole data forecasts them alike
    broker = SimBroker(seed=1)
    broker.prepare(week)
    span = broker.session_bins(t + 1, BOTH, last=t + 30)
    np.testing.assert_array_equal(bins.forecast, span.forecast)
    np.testing.assert_allclose(bins.elapsed, span.elapsed)
    assert bins.days == pytest.approx(span.days)
    # the next decision ends the horizon, as the backtest's does (10:10 for every 10min)
    bins, (_, closes) = plan_bins(monkeypatch, data, pd.Timestamp("2024-11-27 10:00:30", tz=NY), 1800.0,
                                  "every 10min")
    np.testing.assert_array_equal(closes, stamps[:10].as_unit("ns").asi8 / 1e9)
    at = decision_bars(week.index, "every 10min", sessions=week.sessions)
    last = int(at[np.searchsorted(at, t, "right")])
    assert last == t + 10
    np.testing.assert_array_equal(bins.forecast, broker.session_bins(t + 1, BOTH, last=last).forecast)


def test_19_1_live_bins_of_a_new_session_and_to_a_half_days_close(monkeypatch, week):
    # the data end at the 11-26 close; the morning of 11-27 is a new session
    t = int(week.index.get_loc(pd.Timestamp("2024-11-26 16:00", tz=NY)))
    bins, (_, closes) = plan_bins(monkeypatch, week.view(t + 1), pd.Timestamp("2024-11-27 09:30:10", tz=NY), 300.0)
    times = ["09:31", "09:32", "09:33", "09:34", "09:35"]
    assert list(pd.to_datetime(closes, unit="s", utc=True).tz_convert(NY).strftime("%H:%M")) == times
    np.testing.assert_allclose(bins.forecast, by_hand(week, "2024-11-27", times))  # 11-26 counts now
    # on the half day the bins stop at its 13:00 close, not 30 minutes on
    t = int(week.index.get_loc(pd.Timestamp("2024-11-29 12:50", tz=NY)))
    bins, (_, closes) = plan_bins(monkeypatch, week.view(t + 1), pd.Timestamp("2024-11-29 12:50:30", tz=NY), 1800.0)
    assert closes.size == 10 and closes[-1] == pd.Timestamp("2024-11-29 13:00", tz=NY).timestamp()
    assert bins.elapsed[-1] == 1.0 and bins.days == pytest.approx(10 / 390)


def test_19_1_live_bins_across_midnight_in_an_overnight_session():
    chicago = "America/Chicago"
    cme = minutes("CMES", "2024-03-04", "2024-03-06", chicago)
    t = int(cme.index.get_loc(pd.Timestamp("2024-03-05 23:58", tz=chicago)))
    now = pd.Timestamp("2024-03-05 23:58:30", tz=chicago).timestamp()
    closes, session, clock = bar_grid(cme.view(t + 1), now, 240.0)
    assert session == cme.sessions[t] == 2  # the session of 03-06 opened at 17:00 on 03-05
    assert list(pd.to_datetime(closes, unit="s", utc=True).tz_convert(chicago).strftime("%H:%M")) == \
        ["23:59", "00:00", "00:01", "00:02"]
    # its clock runs on past midnight, as the backtest's does for the same bars
    whole = planning.session_clock(cme.index, cme.sessions)
    np.testing.assert_array_equal(clock, whole[t + 1:t + 5])


@pytest.mark.slow
def test_19_1_paper_twap_over_one_second_bars_releases_children_at_bar_boundaries(gateway, tmp_path):
    """``python run.py mode=paper`` on a CSV of 1-second bars (the last one just closed): TWAP's
    children go out at the starts of the data's coming bars, one a second, not at
    ``mode.bin_seconds`` steps from whenever the plan was made."""
    from tests.live.conftest import SAMPLE, SYMBOLS, journal, ok, paper_args, run_py

    now = pd.Timestamp.now(tz="UTC").floor("s")
    # a zone in which now is far from midnight: the sessions (local dates) hold the hour around it
    tz = min(("UTC", "Etc/GMT-12"), key=lambda z: abs(now.tz_convert(z).hour + now.minute / 60 - 12))
    stamps = pd.DatetimeIndex(np.concatenate([
        pd.date_range(now - pd.Timedelta(days=d, minutes=20), now - pd.Timedelta(days=d) + pd.Timedelta(
            minutes=20 if d else -2 / 60), freq="1s").as_unit("ns").asi8 for d in (3, 2, 1, 0)]), tz="UTC")
    rng = np.random.default_rng(2)
    prices = {s: gateway.prices[s] * np.exp(np.cumsum(rng.normal(0, 1e-5, len(stamps)))) for s in SYMBOLS}
    rows = [pd.DataFrame({"date": stamps.tz_convert(tz).tz_localize(None), "symbol": s, "close": p,
                          "volume": rng.integers(100, 1_000, len(stamps))}) for s, p in prices.items()]
    path = tmp_path / "seconds.csv"
    pd.concat(rows).sort_values(["date", "symbol"], kind="stable").to_csv(path, index=False)
    # a clock rule: daily on intraday bars is refused live (a session's last bar is known late)
    args = ["schedule.rebalance=every 30min" if a == "schedule.rebalance=daily" else a
            for a in paper_args(gateway, tmp_path, "mode.bins=3", "mode.bin_seconds=1.0") if a not in SAMPLE]
    out = ok(run_py(*args, "data=csv", f"data.path={path}", f"data.tz={tz}", "data.calendar=null",
                    "mode.pretrade.price_collar=null"))
    assert "positions match targets" in out
    kids = journal(tmp_path).execute("SELECT symbol, release_at, expire_at FROM orders").fetchall()
    releases = sorted({r["release_at"] for r in kids})
    # the first bar starts now (mid-second); each next child goes out as a bar opens, a second on
    assert len(releases) == 3 and all(r["symbol"] in SYMBOLS for r in kids)
    assert releases[1] == int(releases[1]) and np.allclose(np.diff(releases[1:]), 1.0)
    assert 0 < releases[1] - releases[0] <= 1.0
    assert {r["expire_at"] for r in kids} == {releases[-1] + 1.0}  # the horizon: the last bar's close
    assert len(kids) == 3 * len(SYMBOLS)  # TWAP: one child per symbol and bar
