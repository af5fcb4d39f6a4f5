"""``python run.py mode=paper broker=ib`` end to end against the fake gateway."""

from __future__ import annotations

import json
import socket

import pandas as pd
import pytest

from tests.live.conftest import SAMPLE, SYMBOLS, journal, ok, paper_args, run_py, targets

pytestmark = pytest.mark.slow


def test_paper_run_reaches_the_targets_and_journals_every_step(gateway, tmp_path):
    out = ok(run_py(*paper_args(gateway, tmp_path)))
    assert "positions match targets" in out
    snap = gateway.snapshot()
    db = journal(tmp_path)
    want = targets(db)
    assert set(want) == set(SYMBOLS)
    assert snap["positions"] == want
    # buy and hold, equal weight: a quarter of the account in each, in whole shares
    for sym, shares in want.items():
        assert shares == round(0.25 * 1_000_000 / gateway.prices[sym])
    # every order carries its stable orderRef, sent once; every execution is journaled
    refs = [r["ref"] for r in snap["received"]]
    run_id = db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()[0]
    assert len(refs) == len(set(refs)) == 12
    key = db.execute("SELECT decision, config FROM decisions").fetchone()
    assert key["decision"] == f"2022-12-28T16:00:00-05:00#{key['config']}"  # the bar and its config
    assert all(r.startswith(f"rt:{run_id}:202212281600-{key['config']}:") for r in refs)
    fills = {r["exec_id"]: r for r in db.execute("SELECT * FROM fills")}
    assert set(fills) == {e["exec_id"] for e in snap["executions"]}
    assert all(r["commission"] is not None and r["commission"] > 0 for r in fills.values())
    assert all(r["status"] == "filled" for r in db.execute("SELECT status FROM orders"))
    # the intent is journaled before the broker acknowledges anything
    for ref in refs:
        kinds = [r["kind"] for r in db.execute("SELECT kind FROM events WHERE ref = ? ORDER BY id", (ref,))]
        assert kinds.index("intent") < kinds.index("submitted") < kinds.index("fill")
    snapshots = db.execute("SELECT snapshot, symbol, quantity FROM positions ORDER BY id").fetchall()
    first, last = snapshots[0]["snapshot"], snapshots[-1]["snapshot"]
    assert [r["symbol"] for r in snapshots if r["snapshot"] == first] == [""]  # empty when planned
    assert {r["symbol"]: r["quantity"] for r in snapshots if r["snapshot"] == last} == want
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    summary = json.loads((tmp_path / "out" / "live.json").read_text())
    assert summary["orders_sent"] == 12 and summary["decisions"] == [key["decision"]]
    # a second tick on the same bar is a no-op: nothing more is sent
    again = ok(run_py(*paper_args(gateway, tmp_path)))
    assert "already done" in again and len(gateway.snapshot()["received"]) == 12


def test_data_ib_reads_paced_bars_and_caches_them(gateway, tmp_path):
    gateway.hist_limit = (2, 1.0)  # the gateway answers a third request within a second with 162
    args = paper_args(gateway, tmp_path, "data=ib", f"data.cache_dir={tmp_path / 'cache'}",
                      "data.duration=1 Y", "data.max_requests=2", "data.per_seconds=1.1",
                      "data.identical_gap=0")
    args = [a for a in args if a not in SAMPLE]  # IB's bars are current: the default age limit holds
    ok(run_py(*args))
    snap = gateway.snapshot()
    hist = snap["hist_requests"]
    assert [s for _, s in hist] == SYMBOLS and not any(s.startswith("violation") for _, s in hist)
    assert hist[-1][0] - hist[0][0] >= 1.0  # four requests at two a second
    db = journal(tmp_path)
    decision = db.execute("SELECT bar FROM decisions").fetchone()[0]
    assert pd.Timestamp(decision).date() == gateway.market.dates[-1]  # today's data, not the file's
    assert pd.Timestamp(decision).hour == 16
    assert snap["positions"] == targets(db)
    assert sorted(p.name.split("_")[0] for p in (tmp_path / "cache").glob("*.csv")) == sorted(SYMBOLS)
    # the next tick finds the cache up to date: no request at all
    ok(run_py(*args))
    assert len(gateway.snapshot()["hist_requests"]) == len(hist)


def test_an_unreachable_gateway_is_one_line_naming_host_and_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket closes
    proc = run_py("mode=paper", "broker=ib", f"broker.port={port}", "broker.connect_attempts=2",
                  "broker.reconnect_delay=0.1", "mode.run_once=true", f"mode.state_dir={tmp_path}",
                  f"out_dir={tmp_path / 'out'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("robo-trader: broker error: cannot connect to IB Gateway/TWS at "
                               f"127.0.0.1:{port}")
    assert "connection refused" in lines[0] and "fake_gateway" in lines[0] and "broker.port" in lines[0]


def test_broker_ib_does_not_backtest_and_paper_needs_a_gateway_broker(tmp_path):
    proc = run_py("broker=ib", f"out_dir={tmp_path}")
    assert proc.returncode == 2 and "mode=paper" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = run_py("mode=paper", "mode.run_once=true", f"out_dir={tmp_path}", f"mode.state_dir={tmp_path}")
    assert proc.returncode == 2 and "broker=ib" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = run_py("mode=paper", "broker=ib", "mode.max_tick=1", f"out_dir={tmp_path}")
    assert proc.returncode == 2 and "mode.max_tick is not a known key" in proc.stderr


def test_connection_from_the_environment_and_reconcile_with_existing_positions(market, tmp_path):
    from plugins.broker.ib.fake_gateway import FakeGateway

    # two accounts behind one login; the positions are DU2's (the first listed)
    gw = FakeGateway(market=market, account="DU2,DU1", positions={"AAPL": 500, "XOM": 100},
                     fill_delay=0.02).start_in_thread()
    try:
        args = [a for a in paper_args(gw, tmp_path) if not a.startswith("broker.port")]
        proc = run_py(*args, env={"IB_PORT": str(gw.port), "IB_CLIENT_ID": "23", "IB_ACCOUNT": "DU2"})
        out = ok(proc)
        assert "as client 23, account DU2" in out and "left alone: XOM" in out
        snap = gw.snapshot("DU2")
        assert gw.snapshot("DU1")["positions"] == {}
        assert {r["client_id"] for r in snap["received"]} == {23}
        db = journal(tmp_path)
        want = targets(db)
        assert snap["positions"] == {**want, "XOM": 100}  # XOM is outside the data: untouched
        parent = db.execute("SELECT * FROM parents WHERE symbol = 'AAPL'").fetchone()
        assert parent["position"] == 500 and parent["quantity"] == want["AAPL"] - 500
        bought = sum(r["quantity"] for r in snap["received"] if r["symbol"] == "AAPL")
        assert bought == want["AAPL"] - 500
        # the journal belongs to client 23: another client id could not see or cancel its orders
        other = run_py(*args, f"broker.port={gw.port}", "broker.account=DU2")
        assert other.returncode == 2 and "written by client id 23" in other.stderr
    finally:
        gw.stop_thread()


def test_scheduled_ticks_every_n_seconds(gateway, tmp_path):
    args = [a for a in paper_args(gateway, tmp_path) if a != "mode.run_once=true"]
    out = ok(run_py(*args, "mode.every_seconds=1", "mode.max_ticks=2"))
    assert out.count("next tick at") == 1
    assert "positions match targets" in out and "already done" in out
    assert len(gateway.snapshot()["received"]) == 12


def test_the_gateway_runs_from_the_command_line_for_a_dry_run(tmp_path):
    import signal
    import subprocess
    import sys

    from tests.live.conftest import ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = subprocess.Popen([sys.executable, "-m", "plugins.broker.ib.fake_gateway", "--port", str(port),
                           "--fill-delay", "0.02", "--reject", "KO", "--history", "300"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = gw.stdout.readline()
        assert f"listening on 127.0.0.1:{port} (server version 176" in line
        # as the README runs it: data=ib, the gateway's current bars (the default age limit holds)
        args = [a for a in paper_args(type("G", (), {"port": port})(), tmp_path, "data=ib",
                                      f"data.cache_dir={tmp_path / 'cache'}", "data.duration=1 Y")
                if a not in SAMPLE]
        out = ok(run_py(*args))
        assert out.count("rejected rt:") == 3 and "error 201" in out
        assert "off target: KO" in out
    finally:
        gw.send_signal(signal.SIGINT)
        assert gw.wait(10) == 0


def test_limit_children_rest_then_are_cancelled_and_swept_at_the_horizon(gateway, tmp_path):
    args = paper_args(gateway, tmp_path, "execution.limit_bps=-300", "broker.unfilled=sweep",
                      "mode.pretrade.max_order_notional=null")  # a sweep is a whole parent
    out = ok(run_py(*args))
    assert "sweeping 4 parent(s)" in out and "positions match targets" in out
    snap = gateway.snapshot()
    limits = [r for r in snap["received"] if r["type"] == "LMT"]
    assert len(limits) == 12 and len(snap["received"]) == 16  # 12 passive limits, 4 market sweeps
    for r in limits:  # 3 % under the decision's price, rounded down to the cent for a buy
        price = gateway.prices[r["symbol"]]
        assert r["limit"] == pytest.approx(int(price * 0.97 * 100 + 1e-9) / 100)
    db = journal(tmp_path)
    rows = db.execute("SELECT ref, status, reason, limit_price FROM orders").fetchall()
    assert {r["status"] for r in rows if r["limit_price"] is not None} == {"cancelled"}
    assert all("202" in r["reason"] for r in rows if r["limit_price"] is not None)
    assert {r["status"] for r in rows if r["limit_price"] is None} == {"filled"}
    assert snap["positions"] == targets(db)
