"""Reconnection: socket drops, a nightly reset, IB codes 1100/1101/1102 and 2103/2104, delayed
acks. Trading pauses while the connection is not usable, resumes, reconciles, and finishes
at the targets with every orderRef sent once and every fill journaled."""

from __future__ import annotations

import threading
import time

import pytest

from tests.live.conftest import journal, ok, paper_args, run_py
from tests.live.test_crash import check_outcome

pytestmark = pytest.mark.slow


def after_orders(gw, n: int, action) -> threading.Thread:
    """Run ``action()`` in the gateway's loop once it has received ``n`` orders."""
    def watch():
        end = time.time() + 60
        while len(gw.snapshot()["received"]) < n and time.time() < end:
            time.sleep(0.005)
        action()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_socket_dropped_mid_execution(gateway, tmp_path):
    gateway.drop_after_orders = 5
    out = ok(run_py(*paper_args(gateway, tmp_path, "mode.bins=4", "mode.bin_seconds=0.4")))
    assert "disconnected" in out and "reconnected" in out
    check_outcome(gateway, tmp_path)
    kinds = [r[0] for r in journal(tmp_path).execute("SELECT detail FROM events WHERE kind = 'connection'")]
    assert any('"disconnected"' in k for k in kinds) and any('"reconnected"' in k for k in kinds)


def test_nightly_reset_refuses_connections_for_a_while(gateway, tmp_path):
    watcher = after_orders(gateway, 4, lambda: gateway.call(gateway.start_reset, 1.5))
    started = time.time()
    out = ok(run_py(*paper_args(gateway, tmp_path, "mode.bins=4", "mode.bin_seconds=0.4")))
    watcher.join()
    assert "reconnected" in out and time.time() - started > 1.5
    check_outcome(gateway, tmp_path)


@pytest.mark.parametrize("data_lost", [False, True])
def test_ib_connectivity_lost_pauses_trading(gateway, tmp_path, data_lost):
    # between bins: the first bin's four orders are out, the next bin is 0.3 s away
    watcher = after_orders(gateway, 4, lambda: gateway.call(gateway.start_outage, 1.0, data_lost))
    out = ok(run_py(*paper_args(gateway, tmp_path, "mode.bins=4", "mode.bin_seconds=0.3")))
    watcher.join()
    assert "ib_lost" in out and ("restored_data_lost" if data_lost else "restored:") in out
    assert gateway.snapshot()["violations"] == []  # nothing was sent while IB was away
    check_outcome(gateway, tmp_path)


def test_market_data_farm_broken_pauses_orders_until_ok(gateway, tmp_path):
    marks = {}

    def flap():
        gateway.call(gateway.farm, False)
        marks["broken"] = time.time()
        time.sleep(0.8)
        marks["ok"] = time.time()
        gateway.call(gateway.farm, True)

    watcher = after_orders(gateway, 4, lambda: threading.Thread(target=flap).start())
    out = ok(run_py(*paper_args(gateway, tmp_path, "mode.bins=4", "mode.bin_seconds=0.3")))
    watcher.join()
    assert "farm_broken" in out and "farm_ok" in out
    sent = [r["time"] for r in gateway.snapshot()["received"]]
    assert not [t for t in sent if marks["broken"] + 0.05 < t < marks["ok"]]
    check_outcome(gateway, tmp_path)


def test_delayed_acks_are_waited_for_not_resent(gateway, tmp_path):
    gateway.ack_delay = 0.6  # longer than mode.ack_timeout: in flight, not lost
    ok(run_py(*paper_args(gateway, tmp_path, "mode.ack_timeout=0.2", "mode.bin_seconds=1.0")))
    check_outcome(gateway, tmp_path)
    events = [r[0] for r in journal(tmp_path).execute("SELECT detail FROM events WHERE kind = 'planned'")]
    assert not [e for e in events if "never received" in e]
