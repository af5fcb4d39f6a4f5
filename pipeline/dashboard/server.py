"""The live dashboard: one page and a WebSocket on 127.0.0.1, fed by in-process events.

Paper and live runs show equity, positions, open orders, fills, risk state and the kill switch
on a page that updates as they change; the kill switch can be pressed from the page. A finished
backtest can be replayed through the same page. One small dependency: ``websockets`` (HTTP and
WebSocket on one port, asyncio).

The page is files, shipped as package data: ``static/index.html``, ``dashboard.css`` and
``dashboard.js`` (open ``index.html`` in a browser to work on its layout; ``page()`` inlines the
other two into what is served).

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
import functools
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
from importlib import resources
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
STYLESHEET, SCRIPT = '<link rel="stylesheet" href="dashboard.css">', '<script src="dashboard.js"></script>'


@functools.cache
def page() -> str:
    """The page as served: ``static/index.html`` with its stylesheet and script inlined, so
    that it is one response under the one token (a browser would fetch a linked file without
    the page's ``?token=``) and the Content-Security-Policy allows nothing but inline code."""
    static = resources.files("pipeline.dashboard") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "dashboard.css").read_text(encoding="utf-8")
    js = (static / "dashboard.js").read_text(encoding="utf-8")
    return html.replace(STYLESHEET, f"<style>\n{css}</style>").replace(SCRIPT, f"<script>\n{js}</script>")


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
        response = _with_type(connection.respond(200, page()), "text/html; charset=utf-8")
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

