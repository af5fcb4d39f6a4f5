"""What the gateway reports, said as it is: data farms by name (pausing only what a lost farm
serves), a read-only API, a client id in use, rejects; and a dashboard refused before connecting."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from pipeline.core.live_broker import Listener
from plugins.broker.ib.fake_gateway import frame
from tests.live.conftest import journal, paper_args, run_py

pytestmark = pytest.mark.slow


def one_line_error(proc):
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


class Recorder(Listener):
    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []

    def on_connection(self, state: str, detail: str = "") -> None:
        self.states.append((state, detail))


def test_14_6_farms_are_tracked_by_name_and_pause_only_what_they_serve(gateway):
    from plugins.broker.ib import IBBroker

    async def main():
        recorder = Recorder()
        broker = IBBroker(port=gateway.port, client_id=31, timeout=5)
        await broker.start(recorder)
        steps = []
        try:
            for name, ok, service, idle in [
                    ("ushmds", False, "historical data", False),  # 2105
                    ("usfarm", False, "market data", False),      # 2103
                    ("ushmds", True, "historical data", False),   # 2106: not the lost market data farm
                    ("eufarm", False, "market data", False),      # 2103 from a second farm
                    ("usfarm", True, "market data", False),       # 2104: eufarm is still lost
                    ("eufarm", True, "market data", True),        # 2108: idle, available on demand
                    ("secdefnj", False, "security definition", False)]:  # 2157
                before = len(recorder.states)
                gateway.call(gateway.farm_status, name, ok, service, idle)
                await broker.ib_.reqCurrentTimeAsync()  # a round trip: the status has been read
                said = recorder.states[before:]
                steps.append((broker.ready.is_set(), said[-1] if said else None))
        finally:
            await broker.stop()
        return steps

    steps = asyncio.run(main())
    ready = [r for r, _ in steps]
    assert ready == [True, False, False, False, False, True, True], steps
    said = [s for _, s in steps]
    assert said[0] == ("farm_broken", "historical data farm ushmds lost (2105): no historical bars (data=ib) "
                                      "until it is back; orders go on")
    assert said[1][0] == "farm_broken" and said[1][1].startswith("market data farm usfarm lost (2103): no quotes")
    assert "orders wait until it is back (broker.pause_on_farm_broken=true)" in said[1][1]
    assert said[2] == ("farm_ok", "historical data farm ushmds is back (2106)")
    assert said[4] == ("farm_ok", "market data farm usfarm is back (2104); orders still wait for market data "
                                  "farm(s) eufarm")
    assert said[5] == ("farm_ok", "market data farm eufarm is back (2108); orders resume")
    assert said[6][1].startswith("security definition farm secdefnj lost (2157)") and "orders go on" in said[6][1]


def test_14_7_a_read_only_api_is_said_so_and_does_not_trip_the_kill_switch(gateway, tmp_path):
    from tests.live.test_safety import killswitch

    gateway.call(gateway.read_only)
    proc = run_py(*paper_args(gateway, tmp_path, "mode.killswitch.max_rejects=2"))
    line = one_line_error(proc)
    assert line.startswith("robo-trader: broker error: the API of IB Gateway/TWS at 127.0.0.1:"), line
    assert "is read-only (error 321: The API interface is currently in Read-Only mode.)" in line
    assert "untick 'Read-Only API'" in line and "kill switch" not in line
    assert "10147" not in proc.stdout + proc.stderr
    assert "released" in killswitch(tmp_path, "status").stdout
    rows = journal(tmp_path).execute("SELECT status, reason FROM orders WHERE status = 'rejected'").fetchall()
    assert rows and all(r["reason"] == "error 321: The API interface is currently in Read-Only mode."
                    for r in rows)
    assert gateway.snapshot()["orders"] == []  # nothing was ever taken


def hold_client_id(port: int, client_id: int) -> socket.socket:
    """A raw API connection holding ``client_id``, as another program would."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"API\0" + frame(["v157..176"]))
    sock.recv(4096)  # the server version and time
    sock.sendall(frame([71, 2, client_id, ""]))
    return sock


def test_14_7_client_id_in_use_says_so_instead_of_start_the_gateway(gateway, tmp_path):
    sock = hold_client_id(gateway.port, 17)
    try:
        deadline = time.time() + 10
        while 17 not in gateway.snapshot()["clients"] and time.time() < deadline:
            time.sleep(0.02)
        line = one_line_error(run_py(*paper_args(gateway, tmp_path, "broker.connect_attempts=1")))
    finally:
        sock.close()
    assert "client id 17 is already in use at IB Gateway/TWS 127.0.0.1:" in line and "(error 326" in line
    assert "broker.client_id=<n> (IB_CLIENT_ID)" in line and "start IB Gateway" not in line, line


def test_14_7_rejects_and_the_kill_they_trip_say_it_once_and_count_what_was_sent(gateway, tmp_path):
    gateway.reject_symbols = {"*"}
    proc = run_py(*paper_args(gateway, tmp_path, "data.symbols=[AAPL]", "mode.bins=6", "mode.bin_seconds=0.2",
                              "mode.killswitch.max_rejects=3"))
    line = one_line_error(proc)
    rejected = [s for s in proc.stdout.splitlines() if s.startswith("live: rejected ")]
    assert len(rejected) == 3, proc.stdout
    for said in rejected:
        assert said.endswith(": error 201: AAPL is not available for trading"), said
        assert said.count("rejected") == 1 and "reqId" not in said
    assert "3 orders rejected today (last rt:" in line and ": error 201: AAPL is not available for trading)" in line
    assert line.count("rejected") == 1 and "reqId" not in line, line
    assert "3 order(s) sent by this run before it, 3 planned order(s) not sent" in line, line
    assert "nothing sent" not in line


def test_14_9_a_paper_run_refuses_a_remote_dashboard_before_connecting(tmp_path):
    # port 1 is never reached: the dashboard is refused first
    base = ["mode=paper", "broker=ib", "broker.port=1", f"mode.state_dir={tmp_path / 'state'}",
            f"out_dir={tmp_path / 'out'}"]
    line = one_line_error(run_py(*base, "dashboard.host=0.0.0.0"))
    assert line.startswith("robo-trader: config error: dashboard.host=0.0.0.0 would serve the dashboard"), line
    assert "dashboard.allow_remote=true" in line and "cannot connect" not in line
    line = one_line_error(run_py(*base, "dashboard.host=0.0.0.0", "dashboard.allow_remote=true"))
    assert "cannot connect to IB Gateway/TWS at 127.0.0.1:1" in line  # allowed: on to the gateway
