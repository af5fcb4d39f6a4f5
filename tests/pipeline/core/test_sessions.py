"""Issue 19.1: sessions by the exchange calendar (``MarketData.calendar``), not the local date.

A CME-like overnight series of 1-minute bars (``CMES``: sessions open at 17:00 Chicago time
the evening before the date that names them and close at 17:00 on it), an XNYS half day, a 24/7
calendar whose sessions end at midnight UTC, and bars outside every session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core import calendars
from pipeline.core.errors import DataError
from pipeline.core.intraday import trailing_volume
from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from pipeline.results.metrics import periods_per_year
from plugins.data.csv import CSVData

CHICAGO = "America/Chicago"


def minute_bars(calendar: str, start: str, end: str, tz: str, calendar_field: bool = True,
                extra: tuple[str, ...] = ()) -> MarketData:
    """Seeded 1-minute bars stamped at their close over the sessions of ``calendar``, plus the
    bars stamped at ``extra`` (UTC)."""
    table = calendars.schedule(calendar, start, end)
    stamps = np.concatenate([pd.date_range(o, c, freq="1min", inclusive="right").as_unit("ns").asi8
                             for o, c in zip(table["open"], table["close"])]
                            + [pd.DatetimeIndex(list(extra), tz="UTC").as_unit("ns").asi8])
    index = pd.DatetimeIndex(np.sort(stamps), tz="UTC").tz_convert(tz)
    rng = np.random.default_rng(5)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 5e-4, (len(index), 2)), axis=0))
    volume = rng.integers(10, 100, (len(index), 2)).astype(float)
    return MarketData(index=index, symbols=("ES", "NQ"), close=close, volume=volume, name="futures",
                      calendar=calendar if calendar_field else None)


@pytest.fixture(scope="module")
def cme():
    return minute_bars("CMES", "2024-03-04", "2024-03-15", CHICAGO)  # two weeks, DST on 03-10


def test_19_1_overnight_sessions_cross_midnight(cme):
    table = calendars.schedule("CMES", "2024-03-04", "2024-03-15")
    sessions = cme.sessions
    assert sessions[-1] + 1 == len(table) == 10
    ends = decision_bars(cme.index, "daily", sessions=sessions)
    opens = decision_bars(cme.index, "on open", sessions=sessions)
    # each session runs from 17:01 the evening before to 17:00 on its own date, across midnight
    assert [cme.index[i].strftime("%a %H:%M") for i in opens[:2]] == ["Sun 17:01", "Mon 17:01"]
    assert [cme.index[i].strftime("%a %H:%M") for i in ends[:2]] == ["Mon 17:00", "Tue 17:00"]
    assert list(pd.DatetimeIndex(cme.index[ends].tz_localize(None).normalize())) == list(table.index)
    assert (np.diff(ends) > 0).all() and np.bincount(sessions).tolist() == [24 * 60] * 10
    # the local date would cut every session at midnight: Sunday evening a session of its own
    local = MarketData(index=cme.index, symbols=cme.symbols, close=cme.close, volume=cme.volume)
    assert local.sessions[-1] + 1 == 12  # two Sundays more
    assert cme.index[decision_bars(cme.index, "daily")[0]].strftime("%a %H:%M") == "Sun 23:59"


def test_19_1_intraday_rules_on_overnight_sessions(cme):
    s = cme.sessions

    def times(rule):
        return [cme.index[i].strftime("%a %H:%M") for i in decision_bars(cme.index, rule, sessions=s)]

    assert times("at 15:50")[:2] == ["Mon 15:50", "Tue 15:50"]  # once a session, on its second day
    assert times("at 20:00")[:2] == ["Sun 20:00", "Mon 20:00"]  # the evening it opens
    every = times("every 6h")[:5]
    assert every == ["Sun 18:00", "Mon 00:00", "Mon 06:00", "Mon 12:00", "Mon 17:00"]
    # weeks are those of the sessions' dates: Sunday evening's bars are Monday's week
    weekly = decision_bars(cme.index, "weekly", sessions=s)
    assert [cme.index[i].strftime("%m-%d %a %H:%M") for i in weekly] == ["03-08 Fri 17:00", "03-15 Fri 17:00"]


def test_19_1_windows_and_annualisation_count_calendar_sessions(cme):
    s = cme.sessions
    daily = trailing_volume(cme.volume, 1, s)
    last_bar_of_first = int(np.flatnonzero(s == 0)[-1])
    # the whole first session, Sunday evening and Monday alike, is one day's volume
    assert daily[last_bar_of_first, 0] == cme.volume[s == 0, 0].sum()
    assert periods_per_year(cme.index, s) == 252 * 24 * 60


def test_19_1_xnys_half_day_is_one_short_session():
    data = minute_bars("XNYS", "2024-11-26", "2024-12-02", "America/New_York")
    s = data.sessions
    counts = np.bincount(s)
    days = [data.index[i].strftime("%m-%d %H:%M") for i in decision_bars(data.index, "daily", sessions=s)]
    assert days == ["11-26 16:00", "11-27 16:00", "11-29 13:00", "12-02 16:00"]
    assert counts.tolist() == [390, 390, 210, 390]
    at = [data.index[i].strftime("%m-%d %H:%M") for i in decision_bars(data.index, "at 15:50", sessions=s)]
    assert at == ["11-26 15:50", "11-27 15:50", "11-29 13:00", "12-02 15:50"]
    assert periods_per_year(data.index, s) == 252 * 390


def test_19_1_a_24_7_session_ends_at_midnight_utc():
    data = minute_bars("24/7", "2024-01-01", "2024-01-03", "UTC")
    s = data.sessions
    assert np.bincount(s).tolist() == [1440] * 3
    # the bar stamped 00:00 closes the day before's session; its local date is the next day's
    assert data.index[decision_bars(data.index, "daily", sessions=s)[0]] == pd.Timestamp("2024-01-02", tz="UTC")
    local = MarketData(index=data.index, symbols=data.symbols, close=data.close)
    assert data.index[1439] == pd.Timestamp("2024-01-02", tz="UTC") and s[1439] == 0 and local.sessions[1439] == 1


def test_19_1_a_bar_outside_every_session_is_one_line():
    data = minute_bars("XNYS", "2024-11-26", "2024-11-27", "America/New_York",
                       extra=("2024-11-26 21:05",))  # 16:05 in New York: after hours
    with pytest.raises(DataError) as err:
        data.sessions
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("futures: ES has a bar at 2024-11-26 16:05:00-05:00 outside every XNYS session")
    assert "data.calendar=" in msg and "extended-hours" in msg
    # a bar stamped at the open closes the minute before it: pre-market, outside too
    opening = minute_bars("XNYS", "2024-11-26", "2024-11-26", "America/New_York", extra=("2024-11-26 14:30",))
    with pytest.raises(DataError, match="09:30:00-05:00 outside every XNYS session"):
        opening.sessions
    # without a calendar, sessions are local dates and nothing is outside
    assert minute_bars("XNYS", "2024-11-26", "2024-11-27", "America/New_York", calendar_field=False,
                       extra=("2024-11-26 21:05",)).sessions[-1] == 1


def _csv(tmp_path, data: MarketData, name: str) -> str:
    frame = pd.DataFrame(data.close, index=data.index.tz_localize(None), columns=list(data.symbols))
    path = tmp_path / name
    frame.rename_axis("date").reset_index().to_csv(path, index=False)
    return str(path)


def test_19_1_csv_with_an_overnight_calendar(tmp_path, cme):
    path = _csv(tmp_path, cme, "es.csv")
    # no session is missing and no date is "no session" though Sunday evenings have bars
    data = CSVData(path=path, tz=CHICAGO, calendar="CMES", missing_sessions="error").load()
    assert data.calendar == "CMES" and np.array_equal(data.sessions, cme.sessions)
    late = minute_bars("XNYS", "2024-11-26", "2024-11-27", "America/New_York", extra=("2024-11-26 21:05",))
    bad = _csv(tmp_path, late, "late.csv")
    with pytest.raises(DataError) as err:
        CSVData(path=bad, missing_sessions="ignore").load()
    assert str(err.value).startswith(f"{bad}: ES has a bar at 2024-11-26 16:05:00-05:00 outside every XNYS")
    assert CSVData(path=bad, calendar=None).load().sessions[-1] == 1


def test_19_1_a_decision_works_over_the_whole_next_overnight_session(cme):
    from pipeline.backtest.engine import backtest
    from plugins.allocation.equal_weight import EqualWeight
    from plugins.broker.sim import SimBroker
    from plugins.execution.twap import TWAP
    from plugins.strategy.buy_and_hold import BuyAndHold

    at = decision_bars(cme.index, "daily", sessions=cme.sessions)
    ledger = backtest(cme, BuyAndHold(), EqualWeight(), [], TWAP(), SimBroker(seed=1), at, 1e6)
    f, o = ledger.fills, ledger.orders
    decision = o["decision"][f["order"]]
    # every child fills in the session after its decision: 17:01 that evening to 17:00 the next day
    assert (cme.sessions[f["bar"]] == cme.sessions[decision] + 1).all()
    assert np.bincount(f["order"]).max() == 24 * 60
    crossed = cme.index[f["bar"]].tz_localize(None).normalize() != cme.index[decision].tz_localize(None).normalize()
    assert crossed.any() and (~crossed).any()  # fills before and after midnight alike
    first = np.array([f["bar"][f["order"] == k].min() for k in range(o["id"].size)])
    last = np.array([f["bar"][f["order"] == k].max() for k in range(o["id"].size)])
    assert set(cme.index[first].strftime("%H:%M")) == {"17:01"} and set(cme.index[last].strftime("%H:%M")) == {"17:00"}
