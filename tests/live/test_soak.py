"""Soak (issue 14): a paper session against a gateway with random faults of every kind the fake
has (stalls, outages with resting fills, dropped orderRefs, late reports after a reconnect,
late acks, socket drops, nightly resets, IB connectivity codes) and random SIGKILLs, seeded.
It ends with the journal holding every execution the gateway made, no orderRef or order id
filled twice, and the positions at the targets."""

from __future__ import annotations

import collections
import random
import signal
import time

import pytest

from tests.live.conftest import journal, paper_args, start_py, targets

pytestmark = pytest.mark.slow


def fault(gw, rng: random.Random) -> str:
    """One random fault, started now (each heals itself within a few seconds)."""
    kind = rng.choice(["stall", "outage", "drop_ref", "report_late", "ack_delay", "drop", "reset",
                       "ib_outage"])
    if kind == "stall":
        gw.faults.stall(rng.uniform(0.5, 2.0))
    elif kind == "outage":
        gw.call(gw.faults.start_outage, rng.uniform(0.3, 1.5), True, rng.choice([None, 400.0]))
    elif kind == "drop_ref":
        gw.faults.drop_ref = not gw.faults.drop_ref
    elif kind == "report_late":
        gw.faults.report_late(0.0 if gw.faults.late else rng.uniform(0.2, 0.6))
    elif kind == "ack_delay":
        gw.ack_delay = 0.0 if gw.ack_delay else rng.uniform(0.2, 1.5)
    elif kind == "drop":
        gw.call(gw.drop)
    elif kind == "reset":
        gw.call(gw.start_reset, rng.uniform(0.2, 1.0))
    else:
        gw.call(gw.start_outage, rng.uniform(0.2, 1.0), rng.random() < 0.5)
    return kind


def test_14_soak_random_faults_and_sigkills_end_with_journal_equal_to_gateway(market, tmp_path):
    from plugins.broker.ib.fake_gateway import FakeGateway

    gw = FakeGateway(market=market, fill_delay=0.04, partial=3).start_in_thread()
    rng = random.Random(14)
    args = paper_args(gw, tmp_path, "mode.bins=30", "mode.bin_seconds=1.0", "mode.ack_timeout=1",
                      "broker.timeout=1", "broker.connect_attempts=20", "broker.unfilled=sweep", "mode.pretrade.use_quotes=false",
                      "execution.limit_bps=10", "mode.killswitch.max_rejects=null")
    faults: collections.Counter = collections.Counter()
    kills = lives = 0
    started = time.time()
    try:
        while True:
            lives += 1
            assert lives <= 30, "the runner never finished"
            proc = start_py(*args)
            life = time.time()
            doomed = kills < 8 and rng.random() < 0.8
            kill_at = life + rng.uniform(2.5, 8.0)
            next_fault = life + rng.uniform(1.0, 3.0)
            while proc.poll() is None:
                now = time.time()
                if now >= next_fault and lives < 25:
                    faults[fault(gw, rng)] += 1
                    next_fault = now + rng.uniform(1.0, 3.0)
                if doomed and now >= kill_at:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
                assert now - life < 120, "one life took over two minutes"
                time.sleep(0.02)
            out, err = proc.communicate(timeout=60)
            if proc.returncode == -signal.SIGKILL:
                continue
            assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
            if "done" in out:
                break
        # heal every fault, then compare the books
        gw.faults.drop_ref = False
        gw.faults.report_late(0.0)
        gw.ack_delay = 0.0
        time.sleep(2.5)
        snap = gw.snapshot()
        db = journal(tmp_path)
        want = targets(db)
        journaled = {r["exec_id"] for r in db.execute("SELECT exec_id FROM fills")}
        at_gateway = {e["exec_id"] for e in snap["executions"]}
        filled = [o for o in snap["orders"] if o["filled"]]
        by_ref = collections.Counter(o["ref"] for o in filled)
        by_id = collections.Counter(o["order_id"] for o in filled)
        sends = collections.Counter(r["ref"] for r in snap["received"])
        print(f"\nsoak: {lives} lives, {kills} SIGKILLs, faults {dict(sorted(faults.items()))}, "
              f"{time.time() - started:.0f}s; orders received {len(snap['received'])} for "
              f"{len(sends)} orderRefs (re-sent {sum(n - 1 for n in sends.values())}); executions at the "
              f"gateway {len(at_gateway)}, journaled {len(journaled)}, missing {len(at_gateway - journaled)}; "
              f"orderRefs filled twice {sum(n > 1 for n in by_ref.values())}, order ids filled twice "
              f"{sum(n > 1 for n in by_id.values())}; positions {snap['positions']} targets {want}")
        assert kills >= 5 and sum(faults.values()) >= 8 and len(faults) >= 6
        assert at_gateway == journaled
        assert max(by_ref.values()) == 1 and max(by_id.values()) == 1
        assert snap["positions"] == want
    finally:
        gw.stop_thread()
