"""Issue 16, point 4: exits as native orders the gateway holds. A paper run leaves each position
a stop-loss and a take-profit in one OCA group at the fake gateway; its price path then
triggers them while the runner is down (a touch, a gap, partial fills, a take-profit whose fill
cancels the stop); a restart adopts what happened and the stops still working, sending none
twice; a rebalance resizes them; the kill switch cancels them. Every scenario ends with the
journal equal to the gateway and no order filled twice."""

from __future__ import annotations

import asyncio
import collections
import json
import time

import numpy as np
import pytest

from omegaconf import OmegaConf

from pipeline.app.runner import build_exits
from pipeline.core.exits import first_exit
from pipeline.core.live_broker import Listener, LiveOrder
from pipeline.core.orders import OrderTerms, OrderType, TimeInForce
from plugins.broker.ib import IBBroker
from plugins.broker.ib.fake_gateway import FakeGateway
from tests.live.conftest import journal, ok, paper_args, run_py, start_py
from tests.live.test_reconnect import after_orders

pytestmark = pytest.mark.slow

EXITS = ("exits=[stop_loss,take_profit]", "exits.stop_loss.pct=0.05", "exits.take_profit.pct=0.05",
         "mode.pretrade.max_order_notional=400000", "dashboard.enabled=false")
# one market child per entry: its exits ride on it as a bracket (a bin long enough for a
# loaded machine to fill it: the run ends when its orders are done, not at the horizon)
ONE_BIN = (*EXITS, "mode.bins=1", "mode.bin_seconds=2")
STATUS = {"Filled": "filled", "Cancelled": "cancelled", "Submitted": "submitted", "PreSubmitted": "submitted"}


def same_as_gateway(snap: dict, rows: list[dict], fills: list[dict]) -> None:
    """The journal holds what the gateway holds: every order sent, in its state, with the
    same fills; no order was placed under two ids, none filled beyond its size."""
    gw = {o["ref"]: o for o in snap["orders"]}
    sent = {r["ref"]: r for r in rows if r["status"] not in ("planned", "skipped", "blocked")}
    assert set(sent) == set(gw)
    for ref, row in sent.items():
        assert STATUS[gw[ref]["status"]] == row["status"], (ref, gw[ref]["status"], row["status"])
        assert gw[ref]["filled"] == pytest.approx(row["filled"]), ref
        assert abs(gw[ref]["filled"]) <= abs(gw[ref]["quantity"]) + 1e-9
    assert {e["exec_id"] for e in snap["executions"]} == {f["exec_id"] for f in fills}
    ids = collections.defaultdict(set)
    for r in snap["received"]:  # a modification re-sends its ref with the same order id
        ids[r["ref"]].add(r["order_id"])
    assert all(len(v) == 1 for v in ids.values()), "an order was sent twice"


def capture(gw, tmp) -> tuple[dict, list[dict], list[dict]]:
    db = journal(tmp)
    try:
        return (gw.snapshot(), [dict(r) for r in db.execute("SELECT * FROM orders")],
                [dict(r) for r in db.execute("SELECT * FROM fills")])
    finally:
        db.close()


def wait_for(check, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("the gateway never got there")


def exits_of(rows: list[dict], symbol: str) -> dict[str, dict]:
    return {r["ref"].rsplit(":", 1)[-1]: r for r in rows if r["kind"] == "exit" and r["symbol"] == symbol}


@pytest.fixture(scope="module")
def held(market, tmp_path_factory):
    """A paper run on four symbols with a 5 % stop-loss and take-profit on each position. AAPL
    moves 1 % up between its bracket's send and its fill: its exits, priced on the quote, are
    re-priced to the fill."""
    tmp = tmp_path_factory.mktemp("exits")
    gw = FakeGateway(market=market, fill_delay=0.03, partial=2, ack_delay=0.3).start_in_thread()
    quoted = gw.prices["AAPL"]
    watcher = after_orders(gw, 3, lambda: gw.call(gw.set_price, "AAPL", round(quoted * 1.01, 2)))
    out = ok(run_py(*paper_args(gw, tmp, *ONE_BIN)))
    watcher.join()
    gw.ack_delay = 0.0
    start = {s: gw.prices[s] for s in ("AAPL", "JPM", "KO", "MSFT")}
    yield gw, tmp, out, capture(gw, tmp), start
    gw.stop_thread()


@pytest.fixture(scope="module")
def fired(held):
    """While the runner is down the price path fires them: AAPL steps down through its stop,
    JPM gaps 15 % below, KO rises through its take-profit, MSFT stays; then a restart."""
    gw, tmp, _, (_, rows, _), start = held
    stops = {s: json.loads(exits_of(rows, s)["stop_loss"]["terms"])["stop"] for s in start}
    path = {"AAPL": [0.99, 0.97, 0.955, 0.949], "JPM": [0.85], "KO": [1.02, 1.06]}
    for sym, steps in path.items():
        for step in steps:
            gw.call(gw.set_price, sym, round(start[sym] * step, 2))
            time.sleep(0.15)
    wait_for(lambda: sum(o["status"] == "Filled" for o in gw.snapshot()["orders"]
                         if o["type"] != "MKT") == 3)
    before = capture(gw, tmp)
    out = ok(run_py(*paper_args(gw, tmp, *ONE_BIN)))
    return gw, tmp, out, before, capture(gw, tmp), path, start, stops


def test_16_4_exits_go_as_native_stop_and_limit_orders_in_one_oca_group_per_position(held):
    gw, tmp, out, (snap, rows, fills), start = held
    working = [o for o in snap["orders"] if o["type"] != "MKT"]
    assert len(working) == 8 and all(o["status"] == "Submitted" and o["tif"] == "GTC" for o in working)
    for sym in start:
        mine = {o["ref"].rsplit(":", 1)[-1]: o for o in working if o["symbol"] == sym}
        assert (mine["stop_loss"]["type"], mine["take_profit"]["type"]) == ("STP", "LMT")
        assert mine["stop_loss"]["oca"] == mine["take_profit"]["oca"] != ""
        held_qty = sum(f["quantity"] for f in fills if f["symbol"] == sym)
        assert mine["stop_loss"]["quantity"] == mine["take_profit"]["quantity"] == -held_qty
        # a bracket: both exits hang on the entry, which went with transmit off; the last exit transmits
        entry = next(o for o in snap["orders"] if o["symbol"] == sym and o["type"] == "MKT")
        assert mine["stop_loss"]["parent_id"] == mine["take_profit"]["parent_id"] == entry["order_id"]
        sent = [r for r in snap["received"] if r["symbol"] == sym]
        assert [r["transmit"] for r in sent[:3]] == [False, False, True], sent
    # journaled before they were sent: every exit's intent precedes its arrival at the gateway
    db = journal(tmp)
    intents = {r["ref"]: r["ts"] for r in db.execute("SELECT ref, ts FROM events WHERE kind = 'intent'")}
    assert all(intents[r["ref"]] <= r["time"] for r in snap["received"])
    same_as_gateway(snap, rows, fills)


def test_16_4_exit_orders_equal_the_backtest_levels_for_the_same_entry_fill(held, market):
    """The live orders are the backtest's ExitLevels of the same ExitRule objects (built the
    way the app builds them) for the entry's fill, rounded to the tick the cautious way."""
    gw, tmp, out, (snap, rows, fills), start = held
    rules = build_exits(OmegaConf.create({
        "stop_loss": {"_target_": "plugins.exits.stop_loss.StopLoss", "pct": 0.05},
        "take_profit": {"_target_": "plugins.exits.take_profit.TakeProfit", "pct": 0.05}}), ["momentum"], 7)
    for sym in start:
        mine = [f for f in fills if f["symbol"] == sym]
        entry = sum(f["quantity"] * f["price"] for f in mine) / sum(f["quantity"] for f in mine)
        got = {o["ref"].rsplit(":", 1)[-1]: o for o in snap["orders"] if o["symbol"] == sym and o["type"] != "MKT"}
        stop = rules["stop_loss"].levels(np.array([1.0]), np.array([entry]), np.array([0]), np.array([0])).stop[0]
        take = rules["take_profit"].levels(np.array([1.0]), np.array([entry]), np.array([0]), np.array([0])).limit[0]
        # a sell's prices round up to the cent: never more than a tick from the backtest's level
        assert 0 <= got["stop_loss"]["aux"] - stop < 0.01 + 1e-9, (sym, got["stop_loss"]["aux"], stop)
        assert 0 <= got["take_profit"]["limit"] - take < 0.01 + 1e-9, (sym, got["take_profit"]["limit"], take)
        assert f"{sym}: 2 exit order(s) for +{sum(f['quantity'] for f in mine):g} entered at {entry:.4f}" in out
    aapl = stop_entry(fills, "AAPL")  # bought at the moved price, not the quote it was sized on
    assert aapl == pytest.approx(round(start["AAPL"], 2)) and f"AAPL: 2 exit order(s) for +1989 entered at" in out
    resized = [r for r in snap["received"] if r["symbol"] == "AAPL" and r["type"] != "MKT"]
    assert len(resized) == 4 and len({r["order_id"] for r in resized}) == 2  # sent, then modified


def test_16_4_a_stop_triggers_from_the_gateway_price_path(fired):
    gw, tmp, out, (snap, rows, fills), after, path, start, stops = fired
    stop = next(o for o in snap["orders"] if o["ref"].endswith("AAPL:stop_loss"))
    assert stop["status"] == "Filled" and snap["positions"].get("AAPL", 0) == 0
    prices = {e["price"] for e in snap["executions"] if e["ref"] == stop["ref"]}
    crossed = round(start["AAPL"] * 0.949, 2)  # the first price of the path at or below the stop
    assert prices == {crossed} and crossed <= stops["AAPL"] < round(start["AAPL"] * 0.955, 2)
    # the backtest's convention on the same path (close-only bars): this rule, this bar, this price
    closes = np.array([[round(start["AAPL"] * s, 2)] for s in path["AAPL"]])
    levels = [build_exits(OmegaConf.create({"stop_loss": {"_target_": "plugins.exits.stop_loss.StopLoss", "pct": 0.05}}),
                          ["momentum"], 7)["stop_loss"]
              .levels(np.array([1.0]), np.array([stop_entry(fills, "AAPL")]), np.array([0]), np.array([0]))]
    hit = first_exit(closes, closes, closes, closes, np.array([1.0]), levels)
    assert (hit.bar[0], hit.price[0]) == (3, crossed)
    same_as_gateway(*after)  # once the runner is back


def stop_entry(fills: list[dict], sym: str) -> float:
    mine = [f for f in fills if f["symbol"] == sym and f["quantity"] > 0]
    return sum(f["quantity"] * f["price"] for f in mine) / sum(f["quantity"] for f in mine)


def test_16_4_a_gap_through_the_stop_fills_at_the_gap_price(fired):
    gw, tmp, out, (snap, rows, fills), after, path, start, stops = fired
    ref = next(o["ref"] for o in snap["orders"] if o["ref"].endswith("JPM:stop_loss"))
    prices = {e["price"] for e in snap["executions"] if e["ref"] == ref}
    assert prices == {round(start["JPM"] * 0.85, 2)} and max(prices) < stops["JPM"] * 0.9
    same_as_gateway(*after)


def test_16_4_partial_fills_of_a_stop_are_journaled_once_each(fired):
    gw, tmp, out, before, (snap, rows, fills), path, start, stops = fired
    ref = next(o["ref"] for o in snap["orders"] if o["ref"].endswith("AAPL:stop_loss"))
    parts = [f for f in fills if f["ref"] == ref]
    row = next(r for r in rows if r["ref"] == ref)
    assert len(parts) == 2 and len({f["exec_id"] for f in parts}) == 2  # two executions, each once
    assert sum(f["quantity"] for f in parts) == row["quantity"] == row["filled"]
    assert row["status"] == "filled"
    same_as_gateway(snap, rows, fills)


def test_16_4_a_fill_of_one_side_of_the_oco_cancels_the_other(fired):
    gw, tmp, out, before, (snap, rows, fills), path, start, stops = fired
    ko = exits_of(rows, "KO")
    assert (ko["take_profit"]["status"], ko["stop_loss"]["status"]) == ("filled", "cancelled")
    for sym in ("AAPL", "JPM"):
        assert (exits_of(rows, sym)["stop_loss"]["status"], exits_of(rows, sym)["take_profit"]["status"]) == \
            ("filled", "cancelled")
    assert not snap["positions"].get("KO")
    same_as_gateway(snap, rows, fills)


def test_16_4_a_restart_adopts_working_stops_and_sends_none_twice(fired):
    gw, tmp, out, (snap0, rows0, _), (snap, rows, fills), path, start, stops = fired
    assert "already done: nothing to do" in out
    fired_fills = [e for e in snap0["executions"] if not e["ref"].rsplit(":", 1)[-1].isdigit()]
    assert len(fired_fills) == 6  # three exits filled while the runner was down, in two parts each
    assert f"reconciled with the broker: {len(fired_fills)} new fill(s)" in out
    msft = exits_of(rows, "MSFT")
    assert {r["status"] for r in msft.values()} == {"submitted"}
    assert len(snap["received"]) == len(snap0["received"])  # nothing sent again
    assert snap["positions"] == {"MSFT": -msft["stop_loss"]["quantity"]}
    same_as_gateway(snap, rows, fills)


def test_16_4_a_rebalance_resizes_the_working_exits_of_the_positions_it_changes(fired):
    """Half the gross on the same bar: MSFT, still held with its exits, is sold down to half,
    its exits resized (same order ids, same levels) before the sale; the three symbols the
    exits closed are bought again with exits of their own."""
    gw, tmp, *_ = fired
    before = {o["ref"]: o for o in gw.snapshot()["orders"]}
    out = ok(run_py(*paper_args(gw, tmp, *ONE_BIN, "risk.max_gross_leverage=0.5")))
    snap, rows, fills = capture(gw, tmp)
    msft = {o["ref"].rsplit(":", 1)[-1]: o for o in snap["orders"] if o["symbol"] == "MSFT" and o["type"] != "MKT"}
    assert set(msft) == {"stop_loss", "take_profit"}  # the same two orders, not new ones
    assert all(o["status"] == "Submitted" and o["quantity"] == -snap["positions"]["MSFT"] for o in msft.values())
    assert msft["stop_loss"]["aux"] == before[msft["stop_loss"]["ref"]]["aux"]
    assert abs(snap["positions"]["MSFT"]) < abs(before[msft["stop_loss"]["ref"]]["quantity"]), out
    for sym in ("AAPL", "JPM", "KO"):
        new = [o for o in snap["orders"] if o["symbol"] == sym and o["type"] != "MKT" and o["status"] == "Submitted"]
        assert len(new) == 2 and all(o["quantity"] == -snap["positions"][sym] for o in new), out
    same_as_gateway(snap, rows, fills)


def test_16_4_the_kill_switch_cancels_working_exits(market, tmp_path):
    gw = FakeGateway(market=market, fill_delay=0.03, partial=1).start_in_thread()
    # entries in three slices: their exits go as an OCA group on each position once it is held
    proc = start_py(*paper_args(gw, tmp_path, *EXITS, "mode.bins=3", "mode.run_once=false",
                                "mode.max_ticks=2", "mode.every_seconds=120"))
    try:
        wait_for(lambda: sum(o["status"] == "Submitted" and o["type"] != "MKT"
                             for o in gw.snapshot()["orders"]) == 8, timeout=90)
        (tmp_path / "state" / "KILL").write_text("stop now\n")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, err
        assert "8 open order(s) cancelled" in err, err
        snap, rows, fills = capture(gw, tmp_path)
        assert {o["status"] for o in snap["orders"] if o["type"] != "MKT"} == {"Cancelled"}
        assert {o["parent_id"] for o in snap["orders"] if o["type"] != "MKT"} == {0}  # not brackets
        assert {r["status"] for r in rows if r["kind"] == "exit"} == {"cancelled"}
        same_as_gateway(snap, rows, fills)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        gw.stop_thread()


class Heard(Listener):
    def __init__(self) -> None:
        self.updates = []

    def on_order(self, update) -> None:
        self.updates.append(update)


def test_16_4_a_bracket_is_held_until_its_last_order_and_its_exits_wait_for_the_entry(market):
    """Through IBBroker at the fake gateway: entry, stop and trailing stop with parentId and
    transmit (the last transmits); the stop and the trailing stop are one OCA group; then the
    auctions: MOC and LOC fill in the closing auction, MOO in the opening one."""
    gw = FakeGateway(market=market, fill_delay=0.02, partial=1).start_in_thread()

    async def scenario():
        broker = IBBroker(port=gw.port, client_id=5, account="DU1234567")
        await broker.start(Heard())
        try:
            await broker.qualify(["AAPL", "KO"])
            p = gw.prices["AAPL"]
            gtc = TimeInForce.GTC
            entry = broker.next_order_id()
            broker.place(LiveOrder(ref="entry", symbol="AAPL", quantity=10, limit=round(p * 0.99, 2),
                                   order_id=entry, transmit=False))
            broker.place(LiveOrder(ref="stop", symbol="AAPL", quantity=-10, order_id=broker.next_order_id(),
                                   parent_id=entry, transmit=False,
                                   terms=OrderTerms(OrderType.STOP, stop=round(p * 0.95, 2), tif=gtc)))
            await asyncio.sleep(0.3)
            assert {o["status"] for o in gw.snapshot()["orders"]} == {"PendingSubmit"}  # held, not working
            broker.place(LiveOrder(ref="trail", symbol="AAPL", quantity=-10, order_id=broker.next_order_id(),
                                   parent_id=entry, terms=OrderTerms(OrderType.TRAILING_STOP, trail_percent=0.03,
                                                                     stop=round(p * 0.96, 2), tif=gtc)))
            await asyncio.sleep(0.3)
            state = {o["ref"]: o for o in gw.snapshot()["orders"]}
            assert state["entry"]["status"] == "Submitted" and state["trail"]["trail_percent"] == 3.0
            gw.call(gw.set_price, "AAPL", round(p * 1.05, 2))  # the entry's limit is not reached:
            await asyncio.sleep(0.3)                            # the exits wait, nothing trails yet
            assert {o["ref"]: o["filled"] for o in gw.snapshot()["orders"]} == {"entry": 0, "stop": 0, "trail": 0}
            for step in (0.985, 1.05, 1.01):  # entry fills; the trailing stop ratchets to 1.05 * 0.97
                gw.call(gw.set_price, "AAPL", round(p * step, 2))
                await asyncio.sleep(0.3)
            state = {o["ref"]: o for o in gw.snapshot()["orders"]}
            assert (state["entry"]["status"], state["trail"]["status"], state["stop"]["status"]) == \
                ("Filled", "Filled", "Cancelled")
            assert state["trail"]["trail_stop"] == pytest.approx(round(p * 1.05, 2) * 0.97)
            fills = {e["ref"]: e["price"] for e in gw.snapshot()["executions"]}
            assert fills["trail"] == round(p * 1.01, 2)
            k = gw.prices["KO"]
            for ref, terms in (("moc", OrderTerms(OrderType.MARKET_ON_CLOSE)),
                               ("loc", OrderTerms(OrderType.LIMIT_ON_CLOSE, limit=round(k * 1.01, 2))),
                               ("loc_away", OrderTerms(OrderType.LIMIT_ON_CLOSE, limit=round(k * 0.98, 2))),
                               ("moo", OrderTerms(OrderType.MARKET_ON_OPEN))):
                broker.place(LiveOrder(ref=ref, symbol="KO", quantity=5, order_id=broker.next_order_id(),
                                       terms=terms))
            await asyncio.sleep(0.3)
            assert gw.call(gw.auction, "close") == 2
            assert gw.call(gw.auction, "open") == 1
            await asyncio.sleep(0.3)
            known = {u.ref: u.status for u in await broker.known_orders()}
            assert known == {"entry": "filled", "stop": "cancelled", "trail": "filled", "moc": "filled",
                             "loc": "filled", "loc_away": "working", "moo": "filled"}
        finally:
            await broker.stop()

    try:
        asyncio.run(scenario())
    finally:
        gw.stop_thread()
