"""The live loop's parts on their own: journal, kill switch, pre-trade checks, rate windows,
the decision schedule, and IB bars (pacing, cache) against the fake gateway."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.live.journal import Child, Journal, Parent
from pipeline.live.killswitch import KillSwitch
from pipeline.core.errors import ConfigError
from pipeline.live.schedule import decision_due
from pipeline.core.rate import Window
from pipeline.live.pretrade import Limits, check


# ------------------------------------------------------------ journal

def child(ref: str, qty: float = 10.0, **kw) -> Child:
    return Child(ref=ref, decision="d", symbol="AAPL", child=0, quantity=qty, limit_price=None,
                 release_at=1.0, expire_at=2.0, **kw)


def test_journal_is_wal_and_a_plan_is_all_or_nothing(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    parent = Parent("d", "AAPL", 20.0, 0.0, 20.0, 100.0, 0.5)
    with pytest.raises(sqlite3.IntegrityError):  # two children with one ref: nothing is kept
        j.save_plan("d", "run", 1e6, 0.0, 2.0, [parent], [child("a"), child("a")])
    assert j.decision("d") is None and j.children() == [] and j.parents("d") == []
    j.save_plan("d", "run", 1e6, 0.0, 2.0, [parent], [child("a"), child("b")])
    assert [c.status for c in j.children("d")] == ["planned", "planned"]
    j.mark("a", "intent", sent=5.0)
    j.mark("a", "submitted", order_id=7, perm_id=99)
    got = j.child("a")
    assert (got.status, got.order_id, got.perm_id) == ("submitted", 7, 99)
    assert [r["kind"] for r in j.events() if r["ref"] == "a"] == ["intent", "submitted"]


def test_journal_fills_are_recorded_once_by_execution_id(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    j.save_plan("d", "run", 1e6, 0.0, 2.0, [], [child("a", 10.0)])
    assert j.add_fill("e1", "a", "AAPL", 4.0, 100.0, 50.0)
    assert not j.add_fill("e1", "a", "AAPL", 4.0, 100.0, 50.0, commission=1.0)  # seen again
    assert j.add_fill("e2", "a", "AAPL", 6.0, 101.0, 60.0, commission=0.5)
    got = j.child("a")
    assert got.filled == 10.0 and got.avg_price == pytest.approx(100.6)
    assert [r["commission"] for r in j.fills()] == [1.0, 0.5]
    j.close()
    assert Journal(tmp_path / "j.sqlite").exec_ids() == {"e1", "e2"}  # it is all on disk


# ------------------------------------------------------------ kill switch

def test_kill_switch_file_command_and_persistence(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    ks = KillSwitch(j, tmp_path / "KILL")
    assert ks.reason() is None
    (tmp_path / "KILL").write_text("maintenance\n")
    assert "maintenance" in ks.reason()
    ks.engage("by hand")
    (tmp_path / "KILL").unlink()
    assert ks.reason() == "by hand"  # the journal remembers
    ks.release()
    assert ks.reason() is None and not (tmp_path / "KILL").exists()


def test_kill_switch_on_daily_loss_drawdown_and_rejects(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    ks = KillSwitch(j, tmp_path / "KILL", max_daily_loss=0.05, max_drawdown=0.10, max_rejects=2)
    day = pd.Timestamp("2025-03-03 10:00", tz="America/New_York").timestamp()
    assert ks.observe_equity(100.0, day) is None
    assert ks.observe_equity(96.0, day + 60) is None
    assert "daily loss" in ks.observe_equity(94.0, day + 120)
    ks.release()
    # the next day starts from its own first equity; the drawdown counts from the peak
    assert ks.observe_equity(94.0, day + 86400) is None
    assert "drawdown" in ks.observe_equity(89.5, day + 86400 + 60)  # 4.8 % today, 10.5 % from 100
    ks.release()
    assert ks.observe_reject("r1", 201, "no", day + 2 * 86400) is None
    assert "2 orders rejected today" in ks.observe_reject("r2", 201, "no", day + 2 * 86400)
    assert (tmp_path / "KILL").exists()


# ------------------------------------------------------------ pre-trade checks and rate windows

def test_pretrade_checks():
    limits = Limits(max_order_notional=10_000, max_position_notional=50_000, price_collar=0.05)
    assert check(limits, "X", 50, None, 100.0, 101.0, 50) is None
    assert check(limits, "X", 200, None, 100.0, None, 200).startswith("max_order_notional")
    assert check(limits, "X", 50, None, 100.0, None, 600).startswith("max_position_notional")
    assert check(limits, "X", -50, None, 100.0, None, -600).startswith("max_position_notional")
    assert check(limits, "X", 50, None, 100.0, 106.0, 50).startswith("price_collar")
    assert check(limits, "X", 50, 94.0, 100.0, None, 50).startswith("price_collar")
    assert check(limits, "X", 50, None, float("nan"), None, 50).startswith("no valid reference")
    assert check(Limits(), "X", 1e9, 1.0, 100.0, 500.0, 1e9) is None


@pytest.mark.parametrize("limits", [Limits(), Limits(max_order_notional=10_000, max_position_notional=50_000,
                                                     price_collar=0.05)], ids=["no limits", "limits"])
def test_14_9_pretrade_refuses_nan_inf_and_zero_quantity_bad_limit_and_nan_exposure(limits):
    nan, inf = float("nan"), float("inf")
    for qty in (nan, inf, -inf, 0.0, -0.0):
        assert check(limits, "X", qty, None, 100.0, 101.0, 50).startswith("invalid quantity: X"), qty
    for limit in (nan, inf, 0.0, -1.0):
        assert check(limits, "X", 50, limit, 100.0, 101.0, 50).startswith("invalid limit price: X"), limit
    for exposure in (nan, inf):
        assert check(limits, "X", 50, None, 100.0, 101.0, exposure).startswith("invalid exposure: X"), exposure
    # a sell is a negative quantity, and a limit order a finite positive limit: both pass
    assert check(limits, "X", -50, 100.5, 100.0, 101.0, -50) is None


def test_window_limits_by_count_key_and_identical_request():
    now = [0.0]
    w = Window(3, 10.0, per_key=2, per_key_seconds=2.0, same_gap=15.0, clock=lambda: now[0])
    for _ in range(2):
        assert w.delay(key="A") == 0
        w.record(key="A")
    assert w.delay(key="A") == pytest.approx(2.0)   # two for one contract in two seconds
    assert w.delay(key="B") == 0
    w.record(key="B", same="q")
    assert w.delay(key="C") == pytest.approx(10.0)  # three in ten seconds
    now[0] = 10.0
    assert w.delay(key="C") == 0
    assert w.delay(key="C", same="q") == pytest.approx(5.0)  # identical within 15 s


def test_window_acquire_waits_without_blocking_the_loop():
    async def main():
        w = Window(2, 0.3)
        ticks = []

        async def heartbeat():
            for _ in range(10):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.03)

        beat = asyncio.ensure_future(heartbeat())
        started = time.monotonic()
        for _ in range(5):
            await w.acquire()
        elapsed = time.monotonic() - started
        await beat
        return elapsed, ticks

    elapsed, ticks = asyncio.run(main())
    assert 0.55 <= elapsed < 1.5  # five at two per 0.3 s
    assert max(np.diff(ticks)) < 0.2  # the loop kept running meanwhile


# ------------------------------------------------------------ the decision schedule

def test_decision_due_by_schedule():
    index = pd.DatetimeIndex(pd.bdate_range("2025-01-20", "2025-02-28") + pd.Timedelta(hours=16),
                             tz="America/New_York")
    upto = lambda day: index[index.normalize() <= pd.Timestamp(day, tz="America/New_York")]  # noqa: E731
    at = lambda day: pd.Timestamp(day + " 16:00", tz="America/New_York")  # noqa: E731
    assert decision_due(upto("2025-02-10"), "monthly", None)[0]  # first deployment
    assert not decision_due(upto("2025-02-10"), "monthly", at("2025-01-31"))[0]
    assert decision_due(upto("2025-02-28"), "monthly", at("2025-01-31"))[0]  # month ends today
    assert not decision_due(upto("2025-02-27"), "monthly", at("2025-01-31"))[0]
    assert decision_due(upto("2025-02-04"), "monthly", at("2025-01-30"))[0]  # missed: catch up
    assert decision_due(upto("2025-02-07"), "weekly", at("2025-01-31"))[0]
    assert not decision_due(upto("2025-02-06"), "weekly", at("2025-01-31"))[0]
    assert decision_due(upto("2025-02-05"), "3", at("2025-01-31"))[0]
    assert not decision_due(upto("2025-02-04"), "3", at("2025-01-31"))[0]
    assert not decision_due(upto("2025-02-04"), "once", at("2025-01-31"))[0]
    assert not decision_due(upto("2025-02-04"), "daily", at("2025-02-04"))[0]  # same bar again


# ------------------------------------------------------------ IB bars: pacing, cache

def test_ib_bars_pacing_retry_and_cache(gateway, tmp_path):
    from plugins.data.ib import IBData

    gateway.hist_limit = (2, 1.0)
    source = IBData(symbols=["AAPL", "KO", "MSFT"], port=gateway.port, duration="6 M", max_requests=100,
                    per_seconds=1.0, identical_gap=0.0, retry_wait=0.6, cache_dir=str(tmp_path))
    data = source.load()  # no client-side pacing: the gateway says 162, the source retries
    hist = gateway.snapshot()["hist_requests"]
    assert any(s.startswith("violation") for _, s in hist)
    assert data.symbols == ("AAPL", "KO", "MSFT") and data.index.tz is not None
    assert data.index[-1].date() == gateway.market.dates[-1] and data.index[-1].hour == 16
    assert data.close[-1, 0] == pytest.approx(gateway.prices["AAPL"])
    assert data.open is not None and data.volume is not None and 120 <= data.n_bars <= 135
    assert len(list(tmp_path.glob("*.csv"))) == 3
    n = len(gateway.snapshot()["hist_requests"])
    again = source.load()  # up to date: read from the cache, no request
    assert len(gateway.snapshot()["hist_requests"]) == n
    np.testing.assert_array_equal(again.close, data.close)


def test_ib_bars_refetch_when_adjusted_history_changed(gateway, tmp_path):
    from plugins.data.ib import IBData, _read_cache, _write_cache

    source = IBData(symbols=["KO"], port=gateway.port, duration="3 M", identical_gap=0.0,
                    cache_dir=str(tmp_path))
    source.load()
    path = next(tmp_path.glob("*.csv"))
    stale = _read_cache(path).iloc[:-3]
    stale["close"] *= 0.9  # as if a dividend had adjusted the history since
    _write_cache(path, stale)
    data = source.load()
    requests = [s for _, s in gateway.snapshot()["hist_requests"]]
    assert requests == ["KO", "KO", "KO"]  # the tail, then the whole history again
    assert data.close[-1, 0] == pytest.approx(gateway.prices["KO"])
    assert _read_cache(path)["close"].iloc[0] == pytest.approx(data.close[0, 0])


def test_ib_bars_unknown_symbol_is_an_error_naming_it(gateway, tmp_path):
    from pipeline.core.errors import DataError
    from plugins.data.ib import IBData

    with pytest.raises(DataError, match="ZZZZ \\(unknown\\)"):
        IBData(symbols=["AAPL", "ZZZZ"], port=gateway.port, cache_dir=None).load()


def test_ib_limit_prices_round_away_from_the_market():
    from plugins.broker.ib import IBBroker

    broker = IBBroker()
    assert broker.round_price("X", 100.0349, +1) == 100.03
    assert broker.round_price("X", 100.0311, -1) == 100.04
    assert broker.round_price("X", 100.03, +1) == 100.03


def test_kill_switch_command(tmp_path, capsys):
    from pipeline.live.killswitch import main

    state = ["--state-dir", str(tmp_path)]
    assert main(["on", "--reason", "market halt", *state]) == 0
    assert "ENGAGED: market halt" in capsys.readouterr().out
    assert (tmp_path / "KILL").read_text().strip() == "market halt"
    main(["status", *state])
    assert "ENGAGED" in capsys.readouterr().out
    main(["off", *state])
    assert "released" in capsys.readouterr().out and not (tmp_path / "KILL").exists()


# ------------------------------------------------------------ exchange calendars (issue 18.7)

def _schedule(calendar, at="15:50"):
    from types import SimpleNamespace

    from pipeline.live.schedule import Schedule

    s = Schedule.__new__(Schedule)
    s.mode = SimpleNamespace(every_seconds=None, tz="America/New_York", at=at)
    s.stages = SimpleNamespace(data=SimpleNamespace(calendar=calendar))
    return s


def _local(epoch: float) -> str:
    return pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert("America/New_York").strftime("%a %m-%d %H:%M")


def test_18_7_paper_ticks_skip_holidays_and_know_half_days():
    thanksgiving = pd.Timestamp("2024-11-28 20:00", tz="America/New_York").timestamp()
    last, nxt = _schedule("XNYS")._scheduled(thanksgiving)
    # before: a tick on Thanksgiving at 15:50 and one at 15:50 on the half day, after its 13:00 close
    assert (_local(last), _local(nxt)) == ("Wed 11-27 15:50", "Fri 11-29 12:50")
    last, nxt = _schedule(None)._scheduled(thanksgiving)  # no calendar: weekdays, as before
    assert (_local(last), _local(nxt)) == ("Thu 11-28 15:50", "Fri 11-29 15:50")
    _, nxt = _schedule("XNYS", at="09:35")._scheduled(thanksgiving)
    assert _local(nxt) == "Fri 11-29 09:35"  # before the early close: unchanged


def test_18_7_calendar_rules_look_to_the_next_session():
    index = pd.DatetimeIndex(pd.bdate_range("2025-04-07", "2025-04-17") + pd.Timedelta(hours=16),
                             tz="America/New_York")
    week_before = pd.Timestamp("2025-04-11 16:00", tz="America/New_York")
    # Good Friday 2025-04-18 is no NYSE session: Thursday's close ends the week
    assert decision_due(index, "weekly", week_before, "XNYS")[0]
    assert not decision_due(index, "weekly", week_before)[0]


def test_18_7_live_bins_end_at_the_real_close_on_a_half_day():
    from pipeline.core.calendars import bins_to_close

    half_day = pd.Timestamp("2024-11-29 12:00", tz="America/New_York").timestamp()
    assert bins_to_close("XNYS", half_day, 1800.0, 13) == pytest.approx(3600.0 / 13)
    regular = pd.Timestamp("2024-11-27 09:35", tz="America/New_York").timestamp()
    assert bins_to_close("XNYS", regular, 1800.0, 13) == pytest.approx((6 * 3600 + 25 * 60) / 13)
    assert bins_to_close("XNYS", regular, 60.0, 13) == 60.0  # ends well before the close
    assert bins_to_close(None, half_day, 1800.0, 13) == 1800.0
    holiday = pd.Timestamp("2024-11-28 12:00", tz="America/New_York").timestamp()
    assert bins_to_close("XNYS", holiday, 1800.0, 13) == 1800.0


def test_19_1_daily_on_intraday_bars_in_live_is_refused_with_the_rule_to_use():
    """A live tick cannot know that a bar is its session's last: daily (or on close) on intraday
    bars would decide at every new bar, so it is refused with one line; clock rules work."""
    index = pd.date_range("2025-03-03 09:31", periods=30, freq="1min", tz="America/New_York")
    sessions = np.zeros(index.size, dtype=np.int64)
    for rule in ("daily", "on close"):
        with pytest.raises(ConfigError, match=r"schedule.rebalance=.* on intraday bars .*'at 15:50'"):
            decision_due(index, rule, None, sessions=sessions)
    assert decision_due(index, "every 10min", index[-11], sessions=sessions)[0]
    assert not decision_due(index, "every 10min", index[-1], sessions=sessions)[0]
    assert decision_due(index[:5], "daily", None)[0]  # daily bars: as before
