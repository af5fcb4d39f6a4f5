"""Issue 14: a gateway that misbehaves (fake_gateway's ``Faults``). Fills made during a long
outage reach the journal and nothing is bought twice; a stalled gateway is a disconnect, not a
crash; an order is matched by orderRef, order id and perm id and re-sent at most once."""

from __future__ import annotations

import collections
import time

import pytest

from tests.live.conftest import SYMBOLS, journal, ok, paper_args, run_py, targets
from tests.live.test_crash import check_outcome
from tests.live.test_reconnect import after_orders

pytestmark = pytest.mark.slow


def sends(gw) -> collections.Counter:
    return collections.Counter(r["ref"] for r in gw.snapshot()["received"])


def test_14_1_fills_made_during_a_long_outage_reach_the_journal_and_nothing_is_bought_twice(gateway, tmp_path):
    # limit buys 10 bps over the quote they are sized on; the market moves 1 % higher while the
    # gateway holds them unacknowledged, so they rest
    gateway.ack_delay = 0.3

    def outage():
        for sym in SYMBOLS:
            gateway.call(gateway.set_price, sym, round(gateway.prices[sym] * 1.01, 2))
        time.sleep(0.6)  # acknowledged and resting
        # the gateway away for a second that its clock calls 400 s: three orders fill meanwhile,
        # the fourth as the runner comes back, before it can reconcile
        gateway.call(gateway.faults.start_outage, 1.0, True, 400.0)

    watcher = after_orders(gateway, 4, outage)
    out = ok(run_py(*paper_args(gateway, tmp_path, "execution.limit_bps=10", "mode.bins=1",
                                "mode.bin_seconds=20", "broker.unfilled=sweep",
                                "mode.pretrade.max_order_notional=400000")))
    watcher.join()
    assert "disconnected" in out and "reconnected" in out
    snap = gateway.snapshot()
    db = journal(tmp_path)
    journaled = {r["exec_id"] for r in db.execute("SELECT exec_id FROM fills")}
    print(f"executions at the gateway {len(snap['executions'])}, journaled {len(journaled)}, "
          f"positions {snap['positions']}, targets {targets(db)}")
    times = sorted(e["time"] for e in snap["executions"])
    assert times[-1] - times[0] > 300  # the fault did stage a long outage
    assert {e["exec_id"] for e in snap["executions"]} == journaled
    assert snap["positions"] == targets(db)
    assert len(snap["received"]) == 4  # no sweep: nothing was left to buy
    check_outcome(gateway, tmp_path)


def test_14_2_a_stalled_gateway_is_a_disconnect_and_the_run_resumes(gateway, tmp_path):
    watcher = after_orders(gateway, 4, lambda: gateway.faults.stall(3.0))
    out = ok(run_py(*paper_args(gateway, tmp_path, "broker.timeout=0.5", "mode.pretrade.use_quotes=false",
                                "mode.ack_timeout=0.5", "mode.bins=4", "mode.bin_seconds=1.0")))
    watcher.join()
    assert "did not answer" in out and "reconnected" in out
    check_outcome(gateway, tmp_path)


def test_14_2_a_gateway_stalled_past_max_outage_ends_the_run_in_one_line(gateway, tmp_path):
    watcher = after_orders(gateway, 4, lambda: gateway.faults.stall(60.0))
    proc = run_py(*paper_args(gateway, tmp_path, "broker.timeout=0.5", "mode.pretrade.use_quotes=false",
                              "broker.max_outage=2", "mode.ack_timeout=0.5", "mode.bins=4",
                              "mode.bin_seconds=0.4"))
    watcher.join()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "broker.max_outage=2" in lines[0] and "journal" in lines[0], lines
    # whatever the gateway holds, the journal knows (every order is journaled before it is sent)
    db = journal(tmp_path)
    known = {r["ref"] for r in db.execute("SELECT ref FROM orders WHERE status != 'planned'")}
    assert set(sends(gateway)) <= known


def test_14_3_a_gateway_that_acks_late_across_a_reconnect_gets_each_order_once(gateway, tmp_path):
    gateway.ack_delay = 2.2  # longer than mode.ack_timeout, and than the reconnect takes
    watcher = after_orders(gateway, 4, lambda: gateway.call(gateway.start_reset, 0.9))
    ok(run_py(*paper_args(gateway, tmp_path, "mode.ack_timeout=1.5", "mode.bins=2", "mode.bin_seconds=3")))
    watcher.join()
    print(f"sends per order: {dict(sends(gateway))}")
    assert set(sends(gateway).values()) == {1}
    check_outcome(gateway, tmp_path)


def test_14_3_a_gateway_that_drops_the_order_ref_gets_each_order_once(gateway, tmp_path):
    gateway.faults.drop_ref = True
    out = ok(run_py(*paper_args(gateway, tmp_path)))
    print(f"sends: {sum(sends(gateway).values())} for {len(sends(gateway))} orders")
    assert "positions match targets" in out
    assert len(gateway.snapshot()["received"]) == 12 and set(sends(gateway).values()) == {1}
    assert {o["ref"] for o in gateway.snapshot()["orders"]} == set(sends(gateway))
    check_outcome(gateway, tmp_path)


def test_14_3_a_gateway_that_reports_orders_late_after_a_reconnect_gets_each_order_once(gateway, tmp_path):
    gateway.faults.report_late(0.5)  # shorter than mode.ack_timeout after the reconnect
    watcher = after_orders(gateway, 4, lambda: gateway.call(gateway.start_reset, 1.2))
    ok(run_py(*paper_args(gateway, tmp_path, "mode.ack_timeout=1.0", "mode.bins=2", "mode.bin_seconds=3",
                          "broker.unfilled=sweep")))
    watcher.join()
    print(f"sends per order: {dict(sends(gateway))}")
    assert set(sends(gateway).values()) == {1}
    check_outcome(gateway, tmp_path)
