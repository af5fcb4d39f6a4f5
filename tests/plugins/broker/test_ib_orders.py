"""Issue 16, point 4: exits as IB's own order types (``plugins.broker.ib.translate.ib_order``),
the live exit orders built from the backtest's ``ExitRule`` objects, and nothing unsendable
ever leaving (checked before the journal and again in the IB translation)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest

pytest.importorskip("ib_async")

from pipeline.core.live_broker import LiveOrder
from pipeline.core.orders import OrderError, OrderTerms, OrderType, TimeInForce
from pipeline.live.exits import ExitDesk, exit_action, exit_orders, good_after, terms_json, terms_of
from pipeline.live.journal import Child, Journal
from plugins.broker.ib.translate import ib_order
from plugins.exits.stop_loss import StopLoss
from plugins.exits.take_profit import TakeProfit
from plugins.exits.time_stop import TimeStop
from plugins.exits.trailing_stop import TrailingStop

NY = ZoneInfo("America/New_York")


def order(terms: OrderTerms, quantity: float = -100, **kw) -> LiveOrder:
    return LiveOrder(ref="rt:x:1:AAPL:stop_loss", symbol="AAPL", quantity=quantity, order_id=7,
                     terms=terms, **kw)


def test_16_4_each_exit_type_is_sent_as_ibs_own_order():
    gtc = dict(tif=TimeInForce.GTC, oca="grp")
    stp = ib_order(order(OrderTerms(OrderType.STOP, stop=95.0, **gtc)), "DU1")
    assert (stp.orderType, stp.auxPrice, stp.tif, stp.ocaGroup, stp.ocaType, stp.action) == \
        ("STP", 95.0, "GTC", "grp", 1, "SELL")
    stl = ib_order(order(OrderTerms(OrderType.STOP_LIMIT, stop=95.0, limit=94.5, **gtc)), "DU1")
    assert (stl.orderType, stl.auxPrice, stl.lmtPrice) == ("STP LMT", 95.0, 94.5)
    amount = ib_order(order(OrderTerms(OrderType.TRAILING_STOP, trail_amount=2.5, stop=97.5, **gtc)), "DU1")
    assert (amount.orderType, amount.auxPrice, amount.trailStopPrice) == ("TRAIL", 2.5, 97.5)
    pct = ib_order(order(OrderTerms(OrderType.TRAILING_STOP, trail_percent=0.03, **gtc)), "DU1")
    assert pct.orderType == "TRAIL" and pct.trailingPercent == pytest.approx(3.0)  # IB's unit: percent
    assert ib_order(order(OrderTerms(OrderType.MARKET_ON_CLOSE)), "DU1").orderType == "MOC"
    loc = ib_order(order(OrderTerms(OrderType.LIMIT_ON_CLOSE, limit=101.0)), "DU1")
    assert (loc.orderType, loc.lmtPrice) == ("LOC", 101.0)
    moo = ib_order(order(OrderTerms(OrderType.MARKET_ON_OPEN)), "DU1")
    assert (moo.orderType, moo.tif) == ("MKT", "OPG")
    when = dt.datetime(2026, 3, 4, 9, 30, tzinfo=NY).timestamp()
    child = ib_order(order(OrderTerms(OrderType.MARKET_ON_CLOSE, tif=TimeInForce.GTC), parent_id=5,
                           transmit=False, good_after=when), "DU1")
    assert (child.parentId, child.transmit, child.goodAfterTime) == (5, False, "20260304 14:30:00 UTC")
    # a child without terms is what it always was: a market or limit DAY order
    plain = ib_order(LiveOrder(ref="r", symbol="AAPL", quantity=10, limit=99.0), "DU1")
    assert (plain.orderType, plain.lmtPrice, plain.tif, plain.transmit) == ("LMT", 99.0, "DAY", True)


@pytest.mark.parametrize("terms, quantity", [
    (OrderTerms(OrderType.STOP, stop=float("nan")), -10),
    (OrderTerms(OrderType.STOP, stop=float("inf")), -10),
    (OrderTerms(OrderType.STOP, stop=0.0), -10),
    (OrderTerms(OrderType.STOP_LIMIT, stop=95.0, limit=-1.0), -10),
    (OrderTerms(OrderType.TRAILING_STOP, trail_amount=0.0), -10),
    (OrderTerms(OrderType.TRAILING_STOP, trail_percent=float("nan")), -10),
    (OrderTerms(OrderType.STOP, stop=95.0), 0),
    (OrderTerms(OrderType.STOP, stop=95.0), float("nan")),
    (OrderTerms(OrderType.LIMIT, limit=95.0), float("-inf")),
])
def test_16_4_no_order_with_a_nan_inf_zero_or_negative_trigger_or_quantity_reaches_ib(terms, quantity):
    with pytest.raises(OrderError):
        ib_order(order(terms, quantity), "DU1")


def test_16_4_an_unsendable_exit_in_the_journal_is_blocked_before_its_intent(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    # as a journal written by a buggy or older runner could hold it: the check runs again
    bad = OrderTerms(OrderType.STOP, stop=95.0, tif=TimeInForce.GTC, oca="g", reason="stop_loss")
    text = terms_json(bad, 0.0).replace('"stop": 95.0', '"stop": NaN')
    journal.add_children([Child(ref="rt:x:e:AAPL:stop_loss", decision="d", symbol="AAPL", child=-1,
                                quantity=-10, limit_price=None, release_at=0, expire_at=math.inf,
                                kind="exit", terms=text)])
    placed = []
    desk = ExitDesk()
    desk.journal, desk.killed, desk.rate = journal, None, None
    desk.killswitch = SimpleNamespace(reason=lambda: None)
    desk.broker = SimpleNamespace(place=placed.append, next_order_id=lambda: 1, held=lambda: {"AAPL": 10.0})

    asyncio.run(desk._send_exits())
    row = journal.child("rt:x:e:AAPL:stop_loss")
    assert row.status == "blocked" and "stop nan must be a finite positive number" in row.reason
    assert placed == [] and journal.sends(row.ref) == 0


def test_16_4_exits_resize_with_a_rebalance_and_cancel_when_it_goes_flat_or_flips():
    # exit orders are signed against the position: a long of 100 has exits for -100
    assert exit_action(100, 150, -100) == ("keep", -100)      # grows: resized after, not before
    assert exit_action(100, 40, -100) == ("resize", -40)      # shrinks: resized before the sell
    assert exit_action(-80, -20, 80) == ("resize", 20)        # a short, mirrored
    assert exit_action(100, 0, -100) == ("cancel", 0.0)       # flat: cancelled, confirmed first
    assert exit_action(100, -50, -100) == ("cancel", 0.0)     # flipped: replaced after the fill


def test_16_4_live_exit_orders_are_the_backtest_levels_of_the_same_rules():
    """The live terms come from the rules' own ``levels`` (the backtest's call): type and price
    equal to ``ExitLevels`` for the same entry, long and short."""
    rules = {"stop_loss": StopLoss(pct=0.08), "take_profit": TakeProfit(pct=0.1),
             "trailing_stop": TrailingStop(amount=3.0), "time_stop": TimeStop(bars=5)}
    for side, entry in ((1.0, 100.0), (-1.0, 50.0)):
        got = dict(exit_orders(rules, side, entry, bar=10, column=0, oca="g"))
        for name, rule in rules.items():
            levels = rule.levels(np.array([side]), np.array([entry]), np.array([10]), np.array([0]))
            terms = got[name]
            assert terms.type is levels.type and terms.tif is TimeInForce.GTC and terms.oca == "g"
            if levels.stop is not None:
                assert terms.stop == levels.stop[0]
            if levels.limit is not None:
                assert terms.limit == levels.limit[0]
            if levels.trail_amount is not None:
                assert terms.trail_amount == levels.trail_amount[0]
                # where it starts: the backtest's trigger for a position whose best price is the entry
                assert terms.stop == levels.trigger(np.array([side]), np.array([entry]))[0]
            if levels.after is not None:
                assert terms.after == levels.after[0]
        assert got["stop_loss"].stop == pytest.approx(entry * (1 - side * 0.08))  # by hand
        assert got["trailing_stop"].stop == pytest.approx(entry - side * 3.0)
    # the journal keeps them as they go out
    back, _ = terms_of(terms_json(got["take_profit"], 0.0))
    assert back == got["take_profit"]


def test_16_4_a_time_stop_is_a_market_on_close_good_after_its_session():
    monday = dt.datetime(2026, 3, 2, 10, 0, tzinfo=NY).timestamp()
    # held 3 bars, the entry's session the first: the close of Wednesday
    assert good_after(3, monday) == dt.datetime(2026, 3, 4, 9, 30, tzinfo=NY).timestamp()
    friday_evening = dt.datetime(2026, 3, 6, 17, 0, tzinfo=NY).timestamp()
    assert good_after(1, friday_evening) == dt.datetime(2026, 3, 9, 9, 30, tzinfo=NY).timestamp()
    terms = dict(exit_orders({"time_stop": TimeStop(bars=3)}, 1.0, 100.0, 0, 0, "g"))["time_stop"]
    ib = ib_order(order(terms, good_after=good_after(terms.after, monday)), "DU1")
    assert (ib.orderType, ib.tif, ib.goodAfterTime) == ("MOC", "GTC", "20260304 14:30:00 UTC")


def test_16_4_exits_planned_again_for_a_position_get_refs_and_an_oca_group_of_their_own(tmp_path):
    """A bracket cancelled with its entry leaves its exits in the journal: the position's next
    exits are new orders (a journaled ref is never reused), re-pricing keeps the first ones."""
    desk = ExitDesk()
    desk.journal, desk.run_id = Journal(tmp_path / "journal.sqlite"), "run"
    desk.exit_rules = {"stop_loss": StopLoss(pct=0.05), "take_profit": TakeProfit(pct=0.05)}
    desk.broker = SimpleNamespace(round_price=lambda sym, price, side: round(price, 2))
    data = SimpleNamespace(symbols=["AAPL"], n_bars=3)
    first = desk._plan_exits("bar#cfg", data, "AAPL", 100.0, 50.0)
    desk.journal.add_children(first)
    for kid in first:
        desk.journal.mark(kid.ref, "cancelled")
    again = desk._plan_exits("bar#cfg", data, "AAPL", 100.0, 50.0)
    assert [k.ref for k in first] == ["rt:run:cfgx2:AAPL:stop_loss", "rt:run:cfgx2:AAPL:take_profit"]
    assert [k.ref for k in again] == [k.ref + ".1" for k in first]
    assert {terms_of(k.terms)[0].oca for k in again} == {"rt:run:cfgx2:AAPL:oca.1"}
    assert [k.ref for k in desk._plan_exits("bar#cfg", data, "AAPL", 100.0, 50.0, new=False)] == \
        [k.ref for k in first]
    assert terms_of(again[0].terms)[0].stop == 47.5 and again[0].quantity == -100.0
