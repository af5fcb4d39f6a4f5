"""Crash safety: the runner killed with SIGKILL, again and again, then restarted.

After every restart the runner reconciles its journal with the gateway (which kept working
the orders meanwhile). In the end the positions equal the targets, the gateway never received
an orderRef twice, and every execution the gateway made is in the journal with its commission.
"""

from __future__ import annotations

import collections
import random
import signal
import time

import pytest

from tests.live.conftest import journal, ok, paper_args, run_py, start_py, targets

pytestmark = pytest.mark.slow


def check_outcome(gw, tmp) -> None:
    snap = gw.snapshot()
    db = journal(tmp)
    want = targets(db)
    assert want and snap["positions"] == want
    refs = collections.Counter(r["ref"] for r in snap["received"])
    assert not [r for r, n in refs.items() if n > 1], "an orderRef was sent twice"
    journaled = {r["exec_id"]: r for r in db.execute("SELECT * FROM fills")}
    assert {e["exec_id"] for e in snap["executions"]} == set(journaled)
    assert all(r["commission"] is not None for r in journaled.values())
    for sym in want:
        moved = sum(r["quantity"] for r in journaled.values() if r["symbol"] == sym)
        assert moved == want[sym]
    statuses = {r[0] for r in db.execute("SELECT status FROM orders")}
    assert statuses == {"filled"}, statuses
    assert db.execute("SELECT status FROM decisions").fetchone()[0] == "done"


def test_sigkill_at_random_points_then_restart_until_done(market, tmp_path):
    from plugins.broker.ib.fake_gateway import FakeGateway

    gw = FakeGateway(market=market, fill_delay=0.04, partial=3).start_in_thread()
    rng = random.Random(11)
    args = paper_args(gw, tmp_path, "mode.bins=12", "mode.bin_seconds=0.3", "mode.ack_timeout=1")
    kills, lives, started = 0, 0, time.time()
    try:
        while True:
            lives += 1
            assert lives <= 25, "the runner never finished"
            before = len(gw.snapshot()["received"])
            proc = start_py(*args)
            if kills < 10:
                t0 = time.time()
                if rng.random() < 0.8:  # in the thick of it: just after this life's next order
                    while proc.poll() is None and len(gw.snapshot()["received"]) == before \
                            and time.time() - t0 < 20:
                        time.sleep(0.005)
                    time.sleep(rng.uniform(0.0, 0.3))
                else:  # anywhere: starting up, connecting, reconciling, planning
                    time.sleep(rng.uniform(0.2, 2.5))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    kills += 1
                    continue
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
            if "done" in out:
                break
        assert kills >= 8
        check_outcome(gw, tmp_path)
        # its wall time is a figure, not a pass mark (benchmarks/bench_live.py times a tick)
        print(f"\ncrash: {lives} lives, {kills} SIGKILLs, {time.time() - started:.0f}s")
    finally:
        gw.stop_thread()


@pytest.mark.parametrize("where", ["after_intent", "after_place"])
def test_crash_between_intent_and_ack(gateway, tmp_path, where):
    """Killed right after the 5th intent is committed (before the order leaves: it must be sent
    after the restart) or right after it was handed to the socket (the gateway has it: it must
    be adopted, not sent again)."""
    args = paper_args(gateway, tmp_path, "mode.ack_timeout=0.5")
    crashed = run_py(*args, crash=f"{where}:5")
    assert crashed.returncode == -signal.SIGKILL
    received = [r["ref"] for r in gateway.snapshot()["received"]]
    assert len(received) == (4 if where == "after_intent" else 5)
    db = journal(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM orders WHERE status = 'intent'").fetchone()[0] >= 1
    db.close()
    out = ok(run_py(*args))
    assert "positions match targets" in out
    check_outcome(gateway, tmp_path)
    events = [r[0] for r in journal(tmp_path).execute("SELECT detail FROM events WHERE kind = 'planned'")]
    resent = [e for e in events if "never received" in e]
    assert len(resent) == (1 if where == "after_intent" else 0)


def test_a_decision_left_for_too_long_is_abandoned_not_resumed(gateway, tmp_path):
    args = paper_args(gateway, tmp_path, "mode.grace_seconds=600")
    assert run_py(*args, crash="after_place:6").returncode == -signal.SIGKILL
    db = journal(tmp_path)
    with db:
        db.execute("UPDATE decisions SET horizon = horizon - 7200")  # as if it crashed hours ago
    db.close()
    out = ok(run_py(*args))
    assert "abandoned" in out and "already done" in out
    assert len(gateway.snapshot()["received"]) == 6  # nothing more was sent
    rows = journal(tmp_path).execute("SELECT status, reason FROM orders WHERE status = 'skipped'").fetchall()
    assert len(rows) == 6 and all("abandoned" in r["reason"] for r in rows)
