"""The live dashboard: one page and a WebSocket on 127.0.0.1, fed by in-process events.

Paper and live runs show equity, positions, open orders, fills, risk state and the kill switch
on a page that updates as they change; the kill switch can be pressed from the page. A finished
backtest can be replayed through the same page. One small dependency: ``websockets`` (HTTP and
WebSocket on one port, asyncio).

The live loop's API (all of it)::

    from pipeline.dashboard.server import Dashboard

    dash = Dashboard(host="127.0.0.1", port=8765, token=None, on_kill=callback, mode="paper")
    await dash.start()                 # in the live loop's asyncio event loop; prints nothing
    print(dash.url)                    # http://127.0.0.1:8765/?token=... (give this to the user)
    dash.publish("fill", {...})        # any time, from any thread; never blocks, never raises
    await dash.stop()

or, when the caller has no event loop: ``dash.serve_in_thread()`` ... ``dash.close()``.

- ``token``: required on every request, as ``?token=...`` or the header ``Authorization:
  Bearer ...``; a request without it (or with a wrong one) gets HTTP 401 and no WebSocket.
  ``None`` takes ``$ROBO_TRADER_DASHBOARD_TOKEN``, else a random one (see ``dash.url``).
- ``on_kill(reason: str)``: called (in the dashboard's event loop thread; a coroutine function
  is awaited) when the kill-switch button is pressed on the page. When it returns, the page is
  answered ``ok`` with what it returned (a string: what the kill did, e.g. how many orders it
  cancelled) and, unless the switch is shown engaged already, the dashboard publishes
  ``kill_switch`` ``{"engaged": True, ...}``; if it raises, the page is told the press failed.
  ``stop`` waits for a kill in progress to answer its page. ``None``: the page's button is
  disabled (a replay).
- ``port=0`` picks a free port (``dash.port`` says which, after ``start``).
- ``host``: a loopback address unless ``allow_remote=True``: the page and its kill switch
  travel over plain HTTP, token included, so serving them to the network is refused by default
  (``dash.warning`` says so when allowed; an SSH tunnel to 127.0.0.1 is the safe way).

Events (``kind``, ``payload``); every value is plain JSON (numpy scalars and NaN are fine):

==============  ==================================================================  =======
kind            payload                                                             effect
==============  ==================================================================  =======
``equity``      ``{"time", "equity", "cash"?, "gross_exposure"?}``                  appended
``positions``   ``{"positions": [{"symbol", "quantity", "price"?, "value"?,         replaced
                "weight"?}]}``
``orders``      ``{"orders": [{"order_id", "symbol", "side", "quantity",            replaced
                "filled"?, "limit"?, "status"?, "time"?}]}``: the open orders
``order``       one order as above: added or updated by ``order_id``; removed when  upserted
                its ``status`` is filled, cancelled, rejected or inactive
``fill``        ``{"order_id", "time", "symbol", "side", "quantity", "price",       appended
                "commission"?}``
``risk``        ``{name: value, ...}`` e.g. drawdown, gross_exposure, limits        replaced
``kill_switch`` ``{"engaged": bool, "reason"?, "time"?}``                           replaced
``status``      ``{"mode"?, "message"?, "connected"?}``                             merged
==============  ==================================================================  =======

Replay a finished run (its equity, orders, fills and positions, bar by bar)::

    python -m pipeline.dashboard replay outputs/2026-11-25/10-00-00 --token secret [--speed 250]

(it waits up to ``--wait`` seconds for the page to connect, streams ``--speed`` bars a second,
then keeps serving until Ctrl-C, or stops with ``--exit-when-done``).

Wire protocol (the page speaks it; tests and tools may too): the server sends
``{"type": "snapshot", "seq", "state"}`` on connect, then ``{"type": "event", "seq", "kind",
"payload"}`` per published event; the page sends ``{"type": "command", "command": "kill",
"reason"}`` and gets ``{"type": "ack", "command", "ok", "message"}``; a message that is not
JSON (or is nested too deeply to read) gets an ack with ``ok: false`` and the connection stays.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import inspect
import ipaddress
import json
import logging
import math
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from pipeline.core.errors import ConfigError
from pipeline.core.loop_thread import LoopThread

log = logging.getLogger("robo_trader.dashboard")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "ROBO_TRADER_DASHBOARD_TOKEN"
KINDS = ("equity", "positions", "orders", "order", "fill", "risk", "kill_switch", "status")
CLOSED = ("filled", "cancelled", "canceled", "rejected", "inactive", "apicancelled", "expired")
MAX_FILLS = 500
MAX_EQUITY = 5000


def plain(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, TypeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)  # timestamps, enums, paths


def exposure(host: str, allow_remote: bool, host_key: str = "dashboard.host",
             allow_key: str = "dashboard.allow_remote=true") -> str | None:
    """None for a loopback ``host``; a warning for another one that ``allow_remote`` allows; a
    ``ConfigError`` otherwise (the keys name the user's settings in the messages)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    if not allow_remote:
        raise ConfigError(f"{host_key}={host} would serve the dashboard and its kill switch beyond this machine "
                          f"over plain HTTP (the token travels in clear): keep {host_key}={DEFAULT_HOST} and "
                          f"reach it through an SSH tunnel (ssh -L {DEFAULT_PORT}:127.0.0.1:{DEFAULT_PORT} "
                          f"<host>), or set {allow_key} to accept that")
    return (f"the dashboard listens on {host} over plain HTTP ({allow_key}): anyone on the network "
            f"who sees its token can read the account and stop trading")


class Dashboard:
    """Serves the dashboard page and its WebSocket; see the module's docstring for the API."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None,
                 on_kill: Callable[[str], Any] | None = None, mode: str = "paper",
                 title: str = "robo-trader", allow_remote: bool = False) -> None:
        self.warning = exposure(host, allow_remote)
        self.host = host
        self.port = int(port)
        self.token = token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
        self.on_kill = on_kill
        self.title = title
        self._lock = threading.Lock()
        self._seq = 0
        self._state: dict[str, Any] = {
            "equity": [], "positions": [], "orders": [], "fills": [], "risk": {},
            "kill_switch": {"engaged": False}, "status": {"mode": mode},
            "kill_enabled": on_kill is not None, "title": title,
        }
        self._clients: set[Any] = set()
        self._sockets: set[Any] = set()
        self._kills: set[asyncio.Task] = set()
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/?token={self.token}"

    async def start(self) -> "Dashboard":
        from websockets.asyncio.server import ServerConnection, serve

        sockets = self._sockets

        class Tracked(ServerConnection):  # every TCP connection, so stop() can drop idle ones
            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                sockets.add(self)

            def connection_lost(self, exc: Exception | None) -> None:
                sockets.discard(self)
                super().connection_lost(exc)

        self._loop = asyncio.get_running_loop()
        self._server = await serve(self._handler, self.host, self.port, process_request=self._http,
                                   max_size=2 ** 16, ping_interval=20, open_timeout=5,
                                   server_header=None, create_connection=Tracked)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("dashboard: serving on http://%s:%s/", self.host, self.port)
        if self.warning:
            log.warning("dashboard: %s", self.warning)
        return self

    async def stop(self) -> None:
        if self._kills:  # a press being carried out still answers its page
            await asyncio.wait(set(self._kills), timeout=5.0)
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            try:
                await asyncio.wait_for(asyncio.shield(server.wait_closed()), 0.25)
            except asyncio.TimeoutError:
                # a browser's idle preconnection never sends a request: drop it rather than
                # wait for the opening handshake's timeout
                for connection in list(self._sockets):
                    transport = getattr(connection, "transport", None)
                    if transport is not None:
                        transport.abort()
                await server.wait_closed()
        self._clients.clear()

    def serve_in_thread(self) -> "Dashboard":
        """Start in a thread of its own (its own event loop); returns once listening."""
        self._thread = LoopThread(self.start, self.stop, name="dashboard")
        self._thread.open()
        return self

    def close(self) -> None:
        """Stop a dashboard started with ``serve_in_thread``."""
        if self._thread is not None:
            self._thread.close()
            self._thread = None

    def __enter__(self) -> "Dashboard":
        return self.serve_in_thread()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- events --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A copy of what the page shows now."""
        with self._lock:
            return copy.deepcopy(self._state)

    def publish(self, kind: str, payload: dict[str, Any]) -> None:
        """Record an event and push it to every open page. Thread-safe, non-blocking; an
        unknown kind is logged and dropped, never raised (the trading loop must not stop over
        its dashboard)."""
        if kind not in KINDS:
            log.warning("dashboard: unknown event kind %r dropped (known: %s)", kind, ", ".join(KINDS))
            return
        try:
            payload = plain(dict(payload))
        except Exception:  # noqa: BLE001 - never let a display problem reach the caller
            log.exception("dashboard: %s payload is not a mapping; dropped", kind)
            return
        with self._lock:
            self._apply(kind, payload)
            self._seq += 1
            message = json.dumps({"type": "event", "seq": self._seq, "kind": kind, "payload": payload},
                                 separators=(",", ":"))
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is loop:
                    self._broadcast(message)
                else:
                    loop.call_soon_threadsafe(self._broadcast, message)

    def _apply(self, kind: str, p: dict[str, Any]) -> None:
        s = self._state
        if kind == "equity":
            s["equity"].append([p.get("time"), p.get("equity")])
            if len(s["equity"]) > MAX_EQUITY:
                s["equity"] = s["equity"][::2]
            s["account"] = p
        elif kind == "positions":
            s["positions"] = list(p.get("positions", []))
        elif kind == "orders":
            s["orders"] = list(p.get("orders", []))
        elif kind == "order":
            rest = [o for o in s["orders"] if o.get("order_id") != p.get("order_id")]
            if str(p.get("status", "")).lower() not in CLOSED:
                rest.append(p)
            s["orders"] = rest
        elif kind == "fill":
            s["fills"].append(p)
            del s["fills"][:-MAX_FILLS]
        elif kind == "risk":
            s["risk"] = p
        elif kind == "kill_switch":
            s["kill_switch"] = p
        elif kind == "status":
            s["status"] = {**s["status"], **p}

    async def drain(self, limit: int = 1 << 20) -> None:
        """Wait while a page has more than ``limit`` bytes not yet sent (a fast producer, such
        as a replay, must not outrun a slow browser; a page that stops reading is dropped by
        the WebSocket's ping timeout)."""
        while any(_buffered(c) > limit for c in list(self._clients)):
            await asyncio.sleep(0.01)

    def _broadcast(self, message: str) -> None:
        from websockets.asyncio.server import broadcast

        if self._clients:
            broadcast(set(self._clients), message)

    # -- serving -------------------------------------------------------------------------------

    def _authorised(self, request: Any) -> bool:
        query = parse_qs(urlsplit(request.path).query)
        given = (query.get("token") or [""])[0]
        auth = request.headers.get("Authorization", "")
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def _origin_ok(self, request: Any) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser (a script or a test client with the token)
            return True
        host = urlsplit(origin).netloc
        return host in {f"{self.host}:{self.port}", f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def _http(self, connection: Any, request: Any) -> Any:
        path = urlsplit(request.path).path
        if path not in ("/", "/ws", "/state"):
            return connection.respond(404, "not found\n")
        if not self._authorised(request):
            response = connection.respond(401, "robo-trader dashboard: a token is required "
                                               "(?token=... or Authorization: Bearer ...)\n")
            response.headers["WWW-Authenticate"] = 'Bearer realm="robo-trader"'
            return response
        if not self._origin_ok(request):
            return connection.respond(403, "robo-trader dashboard: cross-origin request refused\n")
        if path == "/ws":
            return None  # go on with the WebSocket handshake
        if path == "/state":
            with self._lock:
                body = json.dumps({"seq": self._seq, "state": self._state}, separators=(",", ":"))
            return _with_type(connection.respond(200, body), "application/json")
        response = _with_type(connection.respond(200, PAGE), "text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        return response

    async def _handler(self, websocket: Any) -> None:
        with self._lock:
            snapshot = json.dumps({"type": "snapshot", "seq": self._seq, "state": self._state},
                                  separators=(",", ":"))
            self._clients.add(websocket)
        try:
            await websocket.send(snapshot)
            async for raw in websocket:
                await self._command(websocket, raw)
        except Exception:  # noqa: BLE001 - a dropped page is routine
            pass
        finally:
            self._clients.discard(websocket)

    async def _command(self, websocket: Any, raw: Any) -> None:
        try:
            message = json.loads(raw)
        except RecursionError:  # json's decoder recurses once per level of nesting
            await websocket.send(json.dumps({"type": "ack", "command": None, "ok": False,
                                             "message": "message nested too deeply: a command is a flat "
                                                        "JSON object"}))
            return
        except (TypeError, ValueError) as exc:
            await websocket.send(json.dumps({"type": "ack", "command": None, "ok": False,
                                             "message": f"not JSON ({exc}): a command is a JSON object"}))
            return
        if not isinstance(message, dict) or message.get("type") != "command":
            return
        command = message.get("command")
        if command != "kill":
            await websocket.send(json.dumps({"type": "ack", "command": command, "ok": False,
                                             "message": f"unknown command {command!r}"}))
            return
        reason = str(message.get("reason") or "pressed on the dashboard")[:200]
        if self.on_kill is None:
            await websocket.send(json.dumps({"type": "ack", "command": "kill", "ok": False,
                                             "message": "no kill switch here (a replay, or none registered)"}))
            return
        # a task of its own, so that stop() can let it answer, and a page that goes away
        # meanwhile does not cancel the kill
        task = asyncio.ensure_future(self._kill(websocket, reason))
        self._kills.add(task)
        task.add_done_callback(self._kills.discard)
        await asyncio.shield(task)

    async def _kill(self, websocket: Any, reason: str) -> None:
        try:
            result = self.on_kill(reason)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # noqa: BLE001 - report it to the page, keep serving
            log.exception("dashboard: the kill-switch callback failed")
            await websocket.send(json.dumps({"type": "ack", "command": "kill", "ok": False,
                                             "message": f"kill switch failed: {type(exc).__name__}: {exc}"}))
            return
        import datetime as _dt

        if not self.state()["kill_switch"].get("engaged"):  # the live loop may have said more already
            now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            self.publish("kill_switch", {"engaged": True, "reason": reason, "source": "dashboard", "time": now})
        await websocket.send(json.dumps({"type": "ack", "command": "kill", "ok": True,
                                         "message": result if isinstance(result, str) else "kill switch engaged"}))

    @classmethod
    def from_config(cls, node: Any, on_kill: Callable[[str], Any] | None = None,
                    mode: str = "paper") -> "Dashboard | None":
        """From a ``dashboard:`` config node (``enabled``, ``host``, ``port``, ``token``,
        ``allow_remote``); ``None`` when disabled."""
        get = (lambda k, d=None: node.get(k, d)) if node is not None else (lambda k, d=None: d)
        if node is not None and not get("enabled", True):
            return None
        return cls(host=get("host", DEFAULT_HOST) or DEFAULT_HOST, port=get("port", DEFAULT_PORT),
                   token=get("token"), on_kill=on_kill, mode=mode,
                   allow_remote=bool(get("allow_remote", False)))


def _buffered(connection: Any) -> int:
    transport = getattr(connection, "transport", None)
    try:
        return int(transport.get_write_buffer_size()) if transport is not None else 0
    except Exception:  # noqa: BLE001 - a closing transport: nothing to wait for
        return 0


def _with_type(response: Any, content_type: str) -> Any:
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ---------------------------------------------------------------------------------------------
# replay of a finished run


def replay_events(folder: Path) -> list[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    """A run folder as (bar, events) in time order: the open orders at each decision, fills,
    positions, equity and risk state at each bar."""
    import numpy as np
    import pandas as pd

    folder = Path(folder)
    equity = pd.read_csv(folder / "equity.csv")
    fills = pd.read_csv(folder / "fills.csv") if (folder / "fills.csv").is_file() else pd.DataFrame()
    orders = pd.read_csv(folder / "orders.csv") if (folder / "orders.csv").is_file() else pd.DataFrame()
    weights = pd.read_csv(folder / "weights.csv", index_col=0) if (folder / "weights.csv").is_file() else None
    times = equity["time"].astype(str).tolist()
    where = {t: i for i, t in enumerate(times)}
    by_bar: dict[int, list[tuple[str, dict[str, Any]]]] = {}

    def at(i: int, kind: str, payload: dict[str, Any]) -> None:
        by_bar.setdefault(i, []).append((kind, payload))

    fill_bar = {}
    if len(fills):
        for rec in fills.to_dict("records"):
            i = where.get(str(rec["time"]))
            if i is None:
                continue
            fill_bar.setdefault(int(rec["order_id"]), i)
            at(i, "fill", {k: rec.get(k) for k in ("order_id", "time", "symbol", "side", "quantity", "price",
                                                    "commission")})
    if len(orders):
        for rec in orders.to_dict("records"):
            i = where.get(str(rec["decision_time"]))
            if i is None:
                continue
            oid = int(rec["order_id"])
            at(i, "order", {"order_id": oid, "symbol": rec["symbol"], "side": rec["side"],
                            "quantity": rec["quantity"], "status": "submitted", "time": rec["decision_time"]})
            done = fill_bar.get(oid, i + 1)
            at(min(done, len(times) - 1), "order", {"order_id": oid, "status": str(rec["status"])
                                                    if rec["status"] != "partial" else "cancelled"})
    # positions from the fills so far, weights from the last target
    held: dict[str, float] = {}
    price: dict[str, float] = {}
    target: dict[str, float] = {}
    wtimes = {str(t): j for j, t in enumerate(weights.index)} if weights is not None else {}
    eq = equity["equity"].to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(eq)
    gross = equity["gross_exposure"].to_numpy(dtype=np.float64) if "gross_exposure" in equity else np.zeros_like(eq)
    out = []
    for i, t in enumerate(times):
        events = by_bar.get(i, [])
        if t in wtimes:
            row = weights.iloc[wtimes[t]]
            target = {str(k): float(v) for k, v in row.items() if v}
        changed = False
        for kind, p in events:
            if kind == "fill":
                sign = 1.0 if p["side"] == "buy" else -1.0
                held[p["symbol"]] = held.get(p["symbol"], 0.0) + sign * float(p["quantity"])
                price[p["symbol"]] = float(p["price"])
                changed = True
        if changed or t in wtimes:
            rows = [{"symbol": s, "quantity": q, "price": price.get(s), "value": q * price.get(s, float("nan")),
                     "weight": target.get(s, 0.0)} for s, q in sorted(held.items()) if abs(q) > 1e-9]
            events = events + [("positions", {"positions": rows})]
        events = events + [("equity", {"time": t, "equity": eq[i], "cash": equity["cash"].iloc[i]
                                       if "cash" in equity else None, "gross_exposure": gross[i]}),
                           ("risk", {"drawdown": eq[i] / peak[i] - 1.0, "peak_equity": peak[i],
                                     "gross_exposure": gross[i]})]
        out.append((i, events))
    return out


async def replay(folder: Path, dashboard: Dashboard, bars_per_second: float = 250.0,
                 wait_for_page: float = 0.0) -> None:
    """Publish a finished run's events through ``dashboard``, ``bars_per_second`` bars a
    second (0: as fast as possible). ``wait_for_page``: seconds to wait for a page to connect
    before starting."""
    folder = Path(folder)
    events = replay_events(folder)
    dashboard.publish("status", {"mode": "replay", "message": f"replay of {folder.name}",
                                 "run": str(folder.name)})
    dashboard.publish("kill_switch", {"engaged": False, "reason": "replay: no kill switch"})
    deadline = asyncio.get_running_loop().time() + wait_for_page
    while wait_for_page and not dashboard._clients and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    step = 1.0 / bars_per_second if bars_per_second > 0 else 0.0
    for _, batch in events:
        for kind, payload in batch:
            dashboard.publish(kind, payload)
        await asyncio.sleep(step)
        await dashboard.drain()
    dashboard.publish("status", {"message": f"replay of {folder.name} finished", "finished": True})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.dashboard",
                                     description="Serve the robo-trader dashboard for a finished run (replay).")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("replay", help="stream a finished run folder through the dashboard page")
    rp.add_argument("folder", type=Path, help="a run folder (holding equity.csv, fills.csv, ...)")
    rp.add_argument("--host", default=DEFAULT_HOST)
    rp.add_argument("--allow-remote", action="store_true",
                    help="allow a --host other than loopback (plain HTTP: prefer an SSH tunnel)")
    rp.add_argument("--port", type=int, default=DEFAULT_PORT)
    rp.add_argument("--token", default=None, help=f"access token (default: ${TOKEN_ENV}, else a random one)")
    rp.add_argument("--speed", type=float, default=250.0, help="bars per second (0: as fast as possible)")
    rp.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a page before starting")
    rp.add_argument("--exit-when-done", action="store_true",
                    help="stop serving when the replay ends (by default the page stays up until Ctrl-C)")
    args = parser.parse_args(argv)
    if not (args.folder / "equity.csv").is_file():
        parser.error(f"{args.folder}: not a run folder (no equity.csv)")
    try:
        warning = exposure(args.host, args.allow_remote, "--host", "--allow-remote")
    except ConfigError as exc:
        parser.error(str(exc))

    async def run() -> None:
        dash = Dashboard(args.host, args.port, args.token, mode="replay", allow_remote=args.allow_remote)
        await dash.start()
        if warning:
            print(f"dashboard: warning: {warning}", file=sys.stderr, flush=True)
        print(f"dashboard: {dash.url}", flush=True)
        try:
            await replay(args.folder, dash, args.speed, wait_for_page=args.wait)
            if not args.exit_when_done:
                print("dashboard: replay finished; serving until Ctrl-C", flush=True)
                await asyncio.Event().wait()
        finally:
            await dash.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>robo-trader dashboard</title>
<style>
*{box-sizing:border-box}body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
color:#1d2430;background:#f6f7f9}header{background:#1d2430;color:#fff;padding:12px 22px;display:flex;
align-items:center;gap:16px;flex-wrap:wrap}header h1{font-size:18px;margin:0}.pill{border-radius:10px;
padding:2px 9px;font-size:12px;font-weight:600;background:#39424f}.ok{background:#1e7b46}.bad{background:#b3261e}
.warn{background:#b26a00}main{padding:14px 22px;display:grid;grid-template-columns:repeat(12,1fr);gap:14px}
section{background:#fff;border:1px solid #e1e5eb;border-radius:8px;padding:10px 14px;min-width:0}
h2{font-size:14px;margin:0 0 8px}.w12{grid-column:span 12}.w8{grid-column:span 8}.w4{grid-column:span 4}
.w6{grid-column:span 6}@media(max-width:900px){.w8,.w4,.w6{grid-column:span 12}}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px}.card .k{color:#5b6472;
font-size:12px}.card .v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
td,th{padding:3px 6px;border-bottom:1px solid #eef0f3;text-align:right;white-space:nowrap}th{background:#f2f4f7}
td.l,th.l{text-align:left}.scroll{max-height:300px;overflow:auto}.empty{color:#8a8f98;font-size:12.5px}
tr.new{animation:flash 2s ease-out}@keyframes flash{from{background:#fff3b0}to{background:transparent}}
#kill{font-size:15px;font-weight:700;padding:10px 16px;border-radius:6px;border:0;background:#b3261e;color:#fff;
cursor:pointer}#kill:disabled{background:#c9ccd1;cursor:not-allowed}#kill.armed{background:#7a0f0a}
#kill-state{font-size:16px;font-weight:700;margin:6px 0}.note{color:#5b6472;font-size:12px}
svg{width:100%;height:240px;display:block}svg .grid{stroke:#e6e9ee}svg text{font:11px system-ui,sans-serif;fill:#4a5260}
</style></head><body>
<header><h1 id="title">robo-trader</h1><span class="pill" id="mode">-</span>
<span class="pill warn" id="conn">connecting</span><span id="message" class="note" style="color:#c8cfdb"></span></header>
<main>
<section class="w8"><h2>Account</h2><div class="cards">
<div class="card"><div class="k">Equity</div><div class="v" id="equity">-</div></div>
<div class="card"><div class="k">P&amp;L since start</div><div class="v" id="pnl">-</div></div>
<div class="card"><div class="k">Cash</div><div class="v" id="cash">-</div></div>
<div class="card"><div class="k">Gross exposure</div><div class="v" id="gross">-</div></div>
<div class="card"><div class="k">Last update</div><div class="v" id="asof" style="font-size:14px">-</div></div>
</div><svg id="chart" viewBox="0 0 800 240" preserveAspectRatio="none" role="img" aria-label="equity"></svg></section>
<section class="w4"><h2>Kill switch</h2><div id="kill-state">-</div><div class="note" id="kill-reason"></div>
<p><button id="kill" type="button">Kill switch</button></p><div class="note" id="kill-note">Press twice: the
first press arms, the second (within 5 s) stops all trading and cancels open orders.</div>
<h2 style="margin-top:14px">Risk</h2><table id="risk"><tbody></tbody></table></section>
<section class="w6"><h2>Positions</h2><div class="scroll"><table id="positions"><thead><tr><th class="l">symbol</th>
<th>quantity</th><th>price</th><th>value</th><th>weight</th></tr></thead><tbody></tbody></table></div></section>
<section class="w6"><h2>Open orders</h2><div class="scroll"><table id="orders"><thead><tr><th class="l">order</th>
<th class="l">symbol</th><th class="l">side</th><th>quantity</th><th>filled</th><th>limit</th><th class="l">status</th>
</tr></thead><tbody></tbody></table></div></section>
<section class="w12"><h2>Fills <span class="note" id="nfills"></span></h2><div class="scroll"><table id="fills"><thead><tr>
<th class="l">time</th><th>order</th><th class="l">symbol</th><th class="l">side</th><th>quantity</th><th>price</th>
<th>commission</th></tr></thead><tbody></tbody></table></div></section>
</main>
<script>
"use strict";
(function () {
  var token = new URLSearchParams(location.search).get("token") || "";
  var S = null, seq = -1, pending = [], ws = null, retry = 500, armed = null;
  var $ = function (id) { return document.getElementById(id); };
  function fmt(v, d) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v !== "number") return String(v);
    return v.toLocaleString("en-US", {minimumFractionDigits: d === undefined ? 2 : d, maximumFractionDigits: d === undefined ? 2 : d});
  }
  function pct(v) { return (typeof v === "number") ? (v * 100).toFixed(2) + "%" : ""; }
  function cell(v, left) { var td = document.createElement("td"); if (left) td.className = "l"; td.textContent = v; return td; }
  function rows(id, list, cols, emptyText) {
    var body = $(id).tBodies[0]; body.textContent = "";
    if (!list.length) { var tr = document.createElement("tr"); var td = cell(emptyText, true); td.colSpan = cols.length; td.className = "l empty"; tr.appendChild(td); body.appendChild(tr); return; }
    list.forEach(function (item) {
      var tr = document.createElement("tr");
      cols.forEach(function (c) { tr.appendChild(cell(c[1](item), c[0])); });
      body.appendChild(tr);
    });
  }
  function drawChart() {
    var svg = $("chart"), pts = S.equity.filter(function (p) { return typeof p[1] === "number"; });
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (pts.length < 2) return;
    var lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) { if (p[1] < lo) lo = p[1]; if (p[1] > hi) hi = p[1]; });
    if (hi === lo) { hi += 1; lo -= 1; }
    var n = pts.length, step = Math.max(1, Math.floor(n / 1500)), d = "";
    for (var i = 0; i < n; i += step) {
      var x = 4 + 792 * i / (n - 1), y = 228 - 216 * (pts[i][1] - lo) / (hi - lo);
      d += (d ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    }
    var last = pts[n - 1]; d += "L796," + (228 - 216 * (last[1] - lo) / (hi - lo)).toFixed(1);
    var ns = "http://www.w3.org/2000/svg";
    [lo, hi].forEach(function (v, k) {
      var t = document.createElementNS(ns, "text"); t.setAttribute("x", "6"); t.setAttribute("y", k ? "14" : "236");
      t.textContent = fmt(v, 0); svg.appendChild(t);
    });
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "#1f5fbf");
    path.setAttribute("stroke-width", "1.5"); path.setAttribute("vector-effect", "non-scaling-stroke");
    path.setAttribute("id", "equity-line"); path.setAttribute("data-points", String(pts.length));
    svg.appendChild(path);
  }
  function render(kind) {
    if (!kind || kind === "status") {
      var st = S.status || {};
      $("title").textContent = S.title || "robo-trader";
      $("mode").textContent = st.mode || "-";
      $("message").textContent = st.message || "";
    }
    if (!kind || kind === "equity") {
      var a = S.account || {}, first = S.equity.length ? S.equity[0][1] : null;
      $("equity").textContent = fmt(a.equity, 0); $("cash").textContent = fmt(a.cash, 0);
      $("gross").textContent = pct(a.gross_exposure); $("asof").textContent = a.time || "-";
      $("pnl").textContent = (typeof a.equity === "number" && typeof first === "number") ? fmt(a.equity - first, 0) : "-";
      drawChart();
    }
    if (!kind || kind === "positions") rows("positions", S.positions, [[1, function (p) { return p.symbol; }],
      [0, function (p) { return fmt(p.quantity, 2); }], [0, function (p) { return fmt(p.price); }],
      [0, function (p) { return fmt(p.value, 0); }], [0, function (p) { return p.weight === undefined ? "" : pct(p.weight); }]], "no positions");
    if (!kind || kind === "orders") rows("orders", S.orders, [[1, function (o) { return o.order_id; }],
      [1, function (o) { return o.symbol; }], [1, function (o) { return o.side; }], [0, function (o) { return fmt(o.quantity, 2); }],
      [0, function (o) { return fmt(o.filled, 2); }], [0, function (o) { return fmt(o.limit); }], [1, function (o) { return o.status || "open"; }]], "no open orders");
    if (!kind || kind === "fill") {
      var recent = S.fills.slice(-200).reverse();
      rows("fills", recent, [[1, function (f) { return f.time; }], [0, function (f) { return f.order_id; }],
        [1, function (f) { return f.symbol; }], [1, function (f) { return f.side; }], [0, function (f) { return fmt(f.quantity, 2); }],
        [0, function (f) { return fmt(f.price, 4); }], [0, function (f) { return fmt(f.commission); }]], "no fills yet");
      var body = $("fills").tBodies[0];
      body.querySelectorAll("tr").forEach(function (tr, i) {
        var f = recent[i]; if (!f) return;
        tr.setAttribute("data-order-id", String(f.order_id)); if (kind && i === 0) tr.className = "new";
      });
      $("nfills").textContent = S.fills.length ? "(" + S.fills.length + (S.fills.length >= 500 ? "+, latest 200 shown" : "") + ")" : "";
    }
    if (!kind || kind === "risk") {
      var r = S.risk || {}, body2 = $("risk").tBodies[0]; body2.textContent = "";
      Object.keys(r).forEach(function (k) {
        var tr = document.createElement("tr"), v = r[k];
        tr.appendChild(cell(k, true));
        tr.appendChild(cell(typeof v === "number" ? (Math.abs(v) < 10 ? fmt(v, 4) : fmt(v, 0)) : (typeof v === "object" ? JSON.stringify(v) : String(v)), false));
        body2.appendChild(tr);
      });
    }
    if (!kind || kind === "kill_switch") {
      var k = S.kill_switch || {};
      $("kill-state").textContent = k.engaged ? "ENGAGED: trading stopped" : "not engaged";
      $("kill-state").style.color = k.engaged ? "#b3261e" : "#1e7b46";
      $("kill-state").setAttribute("data-engaged", k.engaged ? "true" : "false");
      $("kill-reason").textContent = k.reason ? (k.reason + (k.time ? " (" + k.time + ")" : "")) : "";
      $("kill").disabled = !S.kill_enabled || !!k.engaged;
    }
  }
  function apply(kind, p) {
    if (kind === "equity") { S.equity.push([p.time, p.equity]); if (S.equity.length > 5000) S.equity = S.equity.filter(function (_, i) { return i % 2 === 0; }); S.account = p; }
    else if (kind === "positions") S.positions = p.positions || [];
    else if (kind === "orders") S.orders = p.orders || [];
    else if (kind === "order") {
      var closed = ["filled", "cancelled", "canceled", "rejected", "inactive", "apicancelled", "expired"];
      S.orders = S.orders.filter(function (o) { return o.order_id !== p.order_id; });
      if (closed.indexOf(String(p.status || "").toLowerCase()) < 0) S.orders.push(p);
    }
    else if (kind === "fill") { S.fills.push(p); if (S.fills.length > 500) S.fills.shift(); }
    else if (kind === "risk") S.risk = p;
    else if (kind === "kill_switch") S.kill_switch = p;
    else if (kind === "status") { for (var key in p) S.status[key] = p[key]; }
    schedule(kind);
  }
  var dirty = {}, frame = false;
  function schedule(kind) {  // many events, one repaint per frame
    dirty[kind === "order" ? "orders" : kind] = true;
    if (frame) return;
    frame = true;
    requestAnimationFrame(function () {
      frame = false; var kinds = Object.keys(dirty); dirty = {};
      if (S === null) return;  // disconnected since: the next snapshot repaints everything
      kinds.forEach(function (k) { render(k); });
    });
  }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws?token=" + encodeURIComponent(token));
    ws.onopen = function () { retry = 500; $("conn").textContent = "live"; $("conn").className = "pill ok"; };
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "snapshot") {
        S = m.state; seq = m.seq; render(null);
        pending.forEach(function (e) { if (e.seq > seq) { seq = e.seq; apply(e.kind, e.payload); } }); pending = [];
      } else if (m.type === "event") {
        if (S === null) { pending.push(m); return; }
        if (m.seq <= seq) return;
        seq = m.seq; apply(m.kind, m.payload);
      } else if (m.type === "ack") {
        $("kill-note").textContent = (m.ok ? "" : "Not done: ") + m.message;
      }
    };
    ws.onclose = function () {
      $("conn").textContent = "disconnected, retrying"; $("conn").className = "pill bad"; S = null; pending = [];
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }
  $("kill").addEventListener("click", function () {
    var btn = $("kill");
    if (!armed) {
      btn.classList.add("armed"); btn.textContent = "Press again to stop trading";
      armed = setTimeout(function () { armed = null; btn.classList.remove("armed"); btn.textContent = "Kill switch"; }, 5000);
      return;
    }
    clearTimeout(armed); armed = null; btn.classList.remove("armed"); btn.textContent = "Kill switch";
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: "command", command: "kill", reason: "pressed on the dashboard"}));
    else $("kill-note").textContent = "Not connected: the kill switch was not sent.";
  });
  connect();
})();
</script></body></html>
"""

