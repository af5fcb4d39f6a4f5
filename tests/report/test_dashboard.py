"""The dashboard server: token required on HTTP and WebSocket, events pushed to every page,
the kill switch from the page, and a finished run replayed through the same events."""

import asyncio
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

websockets = pytest.importorskip("websockets", reason="the dashboard needs the websockets package")
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from pipeline.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, Dashboard, replay, replay_events  # noqa: E402


@pytest.fixture
def dash():
    kills = []
    d = Dashboard(port=0, token="s3cret", on_kill=kills.append).serve_in_thread()
    d.kills = kills
    yield d
    d.close()


def http(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def test_defaults_are_loopback_port_8765_and_a_random_token(monkeypatch):
    monkeypatch.delenv("ROBO_TRADER_DASHBOARD_TOKEN", raising=False)
    a, b = Dashboard(), Dashboard()
    assert (a.host, a.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8765)
    assert a.token and a.token != b.token and len(a.token) >= 24
    monkeypatch.setenv("ROBO_TRADER_DASHBOARD_TOKEN", "from-env")
    assert Dashboard().token == "from-env"
    assert Dashboard.from_config({"enabled": False}) is None
    assert Dashboard.from_config({"port": 9999, "token": "t"}).port == 9999


def test_http_and_websocket_refuse_a_missing_or_wrong_token(dash):
    base = f"http://127.0.0.1:{dash.port}"
    for path in ("/", "/state", "/ws"):
        assert http(base + path)[0] == 401
        assert http(base + path + "?token=wrong")[0] == 401
    status, body, headers = http(base + "/")
    assert "token is required" in body and headers.get("WWW-Authenticate", "").startswith("Bearer")
    for url in (f"ws://127.0.0.1:{dash.port}/ws", f"ws://127.0.0.1:{dash.port}/ws?token=wrong"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5)
        assert refused.value.response.status_code == 401
    # with the token: the page, by query string or by header
    status, body, headers = http(dash.url)
    assert status == 200 and "<title>robo-trader dashboard</title>" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert http(base + "/", {"Authorization": "Bearer s3cret"})[0] == 200
    assert http(base + "/nothing?token=s3cret")[0] == 404


def test_a_cross_site_page_cannot_open_the_socket_even_with_the_token(dash):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{dash.port}/ws?token=s3cret", origin="http://evil.example", open_timeout=5)
    assert refused.value.response.status_code == 403


def test_pages_get_a_snapshot_then_every_event(dash):
    dash.publish("equity", {"time": "t0", "equity": np.float64(1e6), "cash": float("nan")})
    with connect(f"ws://127.0.0.1:{dash.port}/ws?token=s3cret", open_timeout=5) as ws:
        snap = json.loads(ws.recv(timeout=5))
        assert snap["type"] == "snapshot" and snap["state"]["equity"] == [["t0", 1e6]]
        assert snap["state"]["account"]["cash"] is None  # NaN travels as null
        # from another thread, as a live loop would
        t = threading.Thread(target=dash.publish, args=("fill", {"order_id": 1, "symbol": "AAPL", "side": "buy",
                                                                 "quantity": 5, "price": 10.0}))
        t.start()
        t.join()
        event = json.loads(ws.recv(timeout=5))
        assert (event["type"], event["kind"], event["seq"]) == ("event", "fill", snap["seq"] + 1)
        assert event["payload"]["symbol"] == "AAPL"
        dash.publish("order", {"order_id": 9, "symbol": "MSFT", "side": "sell", "quantity": 3, "status": "submitted"})
        dash.publish("order", {"order_id": 9, "status": "Filled"})
        dash.publish("nonsense", {"x": 1})  # dropped with a warning, never raised
        kinds = [json.loads(ws.recv(timeout=5))["kind"] for _ in range(2)]
        assert kinds == ["order", "order"]
    state = dash.state()
    assert state["orders"] == [] and len(state["fills"]) == 1


def test_the_kill_switch_command_calls_the_live_loop_and_is_published(dash):
    with connect(f"ws://127.0.0.1:{dash.port}/ws?token=s3cret", open_timeout=5) as ws:
        json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"type": "command", "command": "kill", "reason": "test"}))
        messages = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert dash.kills == ["test"]
    event = next(m for m in messages if m["type"] == "event")
    ack = next(m for m in messages if m["type"] == "ack")
    assert event["kind"] == "kill_switch" and event["payload"]["engaged"] is True
    assert ack["ok"] is True
    assert dash.state()["kill_switch"]["engaged"] is True


def test_an_async_kill_callback_is_awaited_and_a_failing_one_reported():
    calls = []

    async def on_kill(reason):
        await asyncio.sleep(0)
        calls.append(reason)

    def broken(reason):
        raise RuntimeError("broker unreachable")

    for callback, ok in ((on_kill, True), (broken, False), (None, False)):
        with Dashboard(port=0, token="t", on_kill=callback) as d:
            with connect(f"ws://127.0.0.1:{d.port}/ws?token=t", open_timeout=5) as ws:
                json.loads(ws.recv(timeout=5))
                ws.send(json.dumps({"type": "command", "command": "kill"}))
                acks = [m for m in (json.loads(ws.recv(timeout=5)) for _ in range(1 + ok)) if m["type"] == "ack"]
            assert acks[0]["ok"] is ok
            assert d.state()["kill_switch"]["engaged"] is ok
    assert calls == ["pressed on the dashboard"]
    assert "broker unreachable" in acks[0]["message"] or callback is None


def test_14_5_the_kill_ack_answers_what_the_kill_did_and_a_second_press_the_same():
    answers = []

    async def on_kill(reason):
        await asyncio.sleep(0)
        answers.append(reason)
        return f"kill switch engaged ({reason}): 3 open order(s) cancelled" if len(answers) == 1 else \
            "kill switch already engaged: 3 open order(s) cancelled"

    with Dashboard(port=0, token="t", on_kill=on_kill) as d:
        with connect(f"ws://127.0.0.1:{d.port}/ws?token=t", open_timeout=5) as ws:
            json.loads(ws.recv(timeout=5))
            acks = []
            for _ in range(2):
                ws.send(json.dumps({"type": "command", "command": "kill", "reason": "test"}))
                while len(acks) < _ + 1:
                    m = json.loads(ws.recv(timeout=5))
                    if m["type"] == "ack":
                        acks.append(m)
    assert [a["ok"] for a in acks] == [True, True]
    assert acks[0]["message"] == "kill switch engaged (test): 3 open order(s) cancelled"
    assert acks[1]["message"] == "kill switch already engaged: 3 open order(s) cancelled"


def test_14_9_a_deeply_nested_message_gets_a_clean_error_and_the_connection_stays(dash):
    with connect(f"ws://127.0.0.1:{dash.port}/ws?token=s3cret", open_timeout=5) as ws:
        json.loads(ws.recv(timeout=5))
        ws.send("[" * 30000 + "]" * 30000)  # within the 64 KiB message limit, far beyond the recursion limit
        error = json.loads(ws.recv(timeout=5))
        assert (error["type"], error["ok"]) == ("ack", False) and "nested too deeply" in error["message"]
        ws.send("{not json")
        assert "not JSON" in json.loads(ws.recv(timeout=5))["message"]
        ws.send(json.dumps({"type": "command", "command": "kill", "reason": "still here"}))
        acks = [m for m in (json.loads(ws.recv(timeout=5)) for _ in range(2)) if m["type"] == "ack"]
    assert acks[0]["ok"] is True and dash.kills == ["still here"]


def test_14_9_a_remote_host_is_refused_without_allow_remote_and_warned_when_allowed():
    from pipeline.core.errors import ConfigError

    for host in ("0.0.0.0", "192.168.1.20", "::", "trader.example.com"):
        with pytest.raises(ConfigError, match="dashboard.allow_remote=true") as refused:
            Dashboard(host=host, token="t")
        assert f"dashboard.host={host} would serve the dashboard" in str(refused.value)
        with pytest.raises(ConfigError, match="plain HTTP"):
            Dashboard.from_config({"host": host})
    allowed = Dashboard.from_config({"host": "0.0.0.0", "allow_remote": True})
    assert "listens on 0.0.0.0 over plain HTTP" in allowed.warning
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert Dashboard(host=host).warning is None


def test_publish_from_the_event_loop_thread():
    async def main():
        d = Dashboard(port=0, token="t")
        await d.start()
        try:
            d.publish("risk", {"drawdown": -0.1})
            return d.state()["risk"]
        finally:
            await d.stop()

    assert asyncio.run(main()) == {"drawdown": -0.1}


@pytest.mark.slow
def test_replay_streams_a_finished_run(default_run):
    import pandas as pd

    events = replay_events(default_run)
    fills = pd.read_csv(default_run / "fills.csv")
    equity = pd.read_csv(default_run / "equity.csv")
    assert len(events) == len(equity)
    assert sum(kind == "fill" for _, batch in events for kind, _ in batch) == len(fills)

    async def main():
        d = Dashboard(port=0, token="t", mode="replay")
        await d.start()
        try:
            await replay(default_run, d, bars_per_second=0)
            return d.state()
        finally:
            await d.stop()

    state = asyncio.run(main())
    assert state["status"]["mode"] == "replay" and state["status"]["finished"] is True
    assert state["account"]["equity"] == pytest.approx(equity["equity"].iloc[-1])
    assert len(state["fills"]) == min(len(fills), 500) and state["orders"] == []
    assert state["positions"] and not state["kill_enabled"]


@pytest.mark.slow
def test_replay_command_line(default_run):
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-m", "pipeline.dashboard", "replay", str(default_run), "--port", "0",
                           "--token", "t", "--speed", "0", "--wait", "0", "--exit-when-done"],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("dashboard: http://127.0.0.1:") and "?token=t" in proc.stdout
