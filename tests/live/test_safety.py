"""Safety end to end through run.py: live-trading gates, the kill switch (file, command,
automatic), pre-trade limits and the order-rate limit."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from plugins.broker.ib.fake_gateway import FakeGateway
from tests.live.conftest import ROOT, SAMPLE, journal, ok, paper_args, run_py, start_py

pytestmark = pytest.mark.slow


def one_line_error(proc, *words):
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def live_args(gw, tmp, *extra):
    args = paper_args(gw, tmp, "mode=live", "data=ib", f"data.cache_dir={tmp / 'cache'}",
                      "data.duration=3 M", *extra)
    return [a for a in args if a not in ("mode=paper", *SAMPLE)]


# ------------------------------------------------------------ live trading gates

def test_live_needs_broker_live_an_account_and_a_confirmation(tmp_path):
    # checked before connecting: no gateway is needed (port 1 is never reached)
    base = ["mode=live", "broker=ib", "broker.port=1", f"mode.state_dir={tmp_path}", f"out_dir={tmp_path / 'o'}"]
    one_line_error(run_py(*base), "safety", "broker.live=true")
    one_line_error(run_py(*base, "broker.live=true"), "broker.account")
    line = one_line_error(run_py(*base, "broker.live=true", "broker.account=U7654321"),
                          "needs a confirmation", "mode.confirm=U7654321")
    assert "U7654321" in line
    one_line_error(run_py(*base, "broker.live=true", "broker.account=U7654321", "mode.confirm=U1111111"),
                   "does not match")


def test_live_account_must_be_managed_by_the_gateway_then_trades(market, tmp_path):
    gw = FakeGateway(market=market, account="U7654321", fill_delay=0.03).start_in_thread()
    try:
        wrong = run_py(*live_args(gw, tmp_path / "a", "broker.live=true", "broker.account=U1111111",
                                  "mode.confirm=U1111111"))
        one_line_error(wrong, "U1111111 is not an account of the gateway", "U7654321")
        assert gw.snapshot()["received"] == []
        out = ok(run_py(*live_args(gw, tmp_path / "b", "broker.live=true", "broker.account=U7654321",
                                   "mode.confirm=U7654321")))
        assert "(live)" in out and "positions match targets" in out
        assert gw.snapshot()["positions"] and all(r["client_id"] == 17 for r in gw.snapshot()["received"])
    finally:
        gw.stop_thread()


def test_paper_mode_refuses_a_live_account(market, tmp_path):
    gw = FakeGateway(market=market, account="U7654321").start_in_thread()
    try:
        one_line_error(run_py(*paper_args(gw, tmp_path)), "live account", "mode=paper")
        assert gw.snapshot()["received"] == []
    finally:
        gw.stop_thread()


# ------------------------------------------------------------ kill switch

def killswitch(tmp, *args):
    return subprocess.run([sys.executable, "-m", "pipeline.live.killswitch", *args, "--state-dir",
                           str(tmp / "state")], capture_output=True, text=True, timeout=60)


def test_kill_file_cancels_open_orders_sends_nothing_and_persists(gateway, tmp_path):
    resting = gateway.call(gateway.open_order, 17, "rt:manual:0:AAPL:0", "AAPL", 10, 1.0)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "KILL").write_text("stop everything\n")
    one_line_error(run_py(*paper_args(gateway, tmp_path)), "kill switch", "stop everything",
                          "1 open order(s) cancelled", "pipeline.live.killswitch off")
    snap = gateway.snapshot()
    assert snap["received"] == [] and snap["positions"] == {}
    assert [o["status"] for o in snap["orders"] if o["order_id"] == resting] == ["Cancelled"]
    # deleting the file does not release it: the journal remembers
    (tmp_path / "state" / "KILL").unlink()
    one_line_error(run_py(*paper_args(gateway, tmp_path)), "kill switch")
    assert "ENGAGED" in killswitch(tmp_path, "status").stdout
    assert "released" in killswitch(tmp_path, "off").stdout
    ok(run_py(*paper_args(gateway, tmp_path)))
    assert gateway.snapshot()["positions"]


def test_repeated_rejects_engage_the_kill_switch(gateway, tmp_path):
    gateway.reject_symbols = {"*"}
    args = paper_args(gateway, tmp_path, "data.symbols=[AAPL]", "mode.bins=6", "mode.bin_seconds=0.2",
                      "mode.killswitch.max_rejects=3")
    one_line_error(run_py(*args), "kill switch", "3 orders rejected today", "error 201")
    assert len(gateway.snapshot()["received"]) == 3
    db = journal(tmp_path)
    assert db.execute("SELECT COUNT(*) FROM orders WHERE status = 'rejected'").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM orders WHERE status = 'skipped'").fetchone()[0] == 3
    gateway.reject_symbols = set()
    one_line_error(run_py(*args), "kill switch")  # still engaged after a restart
    assert len(gateway.snapshot()["received"]) == 3


def test_daily_loss_engages_the_kill_switch(market, tmp_path):
    gw = FakeGateway(market=market, positions={"KO": 6000}, fill_delay=0.02).start_in_thread()
    try:
        args = paper_args(gw, tmp_path, "mode.killswitch.max_daily_loss=0.05")
        ok(run_py(*args))  # trades, and remembers the day's first equity
        ko = gw.prices["KO"]
        gw.call(gw.set_price, "KO", ko * 0.6)  # the book loses about 10 %
        one_line_error(run_py(*args), "kill switch", "daily loss", "max_daily_loss=0.05")
        assert "daily loss" in killswitch(tmp_path, "status").stdout
    finally:
        gw.stop_thread()


# ------------------------------------------------------------ pre-trade checks and rate

def test_max_order_notional_blocks_before_anything_is_sent(gateway, tmp_path):
    out = ok(run_py(*paper_args(gateway, tmp_path, "mode.pretrade.max_order_notional=1000")))
    assert "blocked" in out
    assert gateway.snapshot()["received"] == []
    rows = journal(tmp_path).execute("SELECT status, reason FROM orders").fetchall()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"blocked"}
    assert all(r["reason"].startswith("max_order_notional") and "> 1,000" in r["reason"] for r in rows)


def test_max_position_notional_blocks_the_child_that_would_exceed_it(gateway, tmp_path):
    ok(run_py(*paper_args(gateway, tmp_path, "mode.pretrade.max_position_notional=200000")))
    rows = journal(tmp_path).execute("SELECT ref, status, reason FROM orders ORDER BY ref").fetchall()
    blocked = [r for r in rows if r["status"] == "blocked"]
    assert [r["ref"].rsplit(":", 1)[1] for r in blocked] == ["2"] * 4  # the third child of each
    assert all("max_position_notional" in r["reason"] for r in blocked)
    assert all(abs(q) * gateway.prices[s] <= 200000 for s, q in gateway.snapshot()["positions"].items())


def test_price_collar_blocks_when_the_quote_moved_away(gateway, tmp_path):
    # the decision is priced at the quotes when it is planned: AAPL jumps once its first child left
    proc = start_py(*paper_args(gateway, tmp_path, "mode.pretrade.price_collar=0.05", "mode.bin_seconds=1.0"))
    try:
        started = time.time()
        while not any(r["symbol"] == "AAPL" for r in gateway.snapshot()["received"]):
            assert proc.poll() is None and time.time() - started < 60, "no AAPL order was sent"
            time.sleep(0.005)
        gateway.call(gateway.set_price, "AAPL", gateway.prices["AAPL"] * 1.08)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = journal(tmp_path).execute("SELECT ref, symbol, status, reason FROM orders").fetchall()
    aapl = {r["ref"].rsplit(":", 1)[1]: r for r in rows if r["symbol"] == "AAPL"}
    assert aapl["0"]["status"] == "filled" and {aapl[n]["status"] for n in ("1", "2")} == {"blocked"}
    assert all("price_collar" in aapl[n]["reason"] and "+8.00%" in aapl[n]["reason"] for n in ("1", "2"))
    assert {r["status"] for r in rows if r["symbol"] != "AAPL"} == {"filled"}
    assert [r["symbol"] for r in gateway.snapshot()["received"]].count("AAPL") == 1


def test_order_rate_is_limited(gateway, tmp_path):
    ok(run_py(*paper_args(gateway, tmp_path, "mode.pretrade.max_orders_per_second=3", "mode.bins=2",
                          "mode.bin_seconds=1.5")))
    times = sorted(r["time"] for r in gateway.snapshot()["received"])
    assert len(times) == 8
    assert max(sum(1 for u in times if t <= u < t + 0.98) for t in times) <= 3
    assert {r[0] for r in journal(tmp_path).execute("SELECT DISTINCT status FROM orders")} == {"filled"}


def test_live_confirmation_typed_at_a_terminal(tmp_path):
    import os

    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "mode=live", "broker=ib", "broker.port=1",
                                 "broker.live=true", "broker.account=U7654321", f"mode.state_dir={tmp_path}",
                                 f"out_dir={tmp_path / 'o'}"], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(master, b"U7654320\n")  # a typo: not confirmed
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert "type the account id to confirm" in out
    assert proc.returncode == 2 and "not confirmed" in err and "U7654320" in err
