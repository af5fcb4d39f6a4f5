"""A fake IB Gateway: the TWS socket protocol at server version 176, for tests and dry runs.

    python -m plugins.broker.ib.fake_gateway --port 4002          # then, in another shell:
    python run.py mode=paper broker=ib broker.port=4002 mode.run_once=true

The real ``ib_async`` client connects to it unchanged: the handshake (``API\\0`` + version
range, answered with version 176 and the time), ``startApi``, ``nextValidId`` and
``managedAccounts``; positions, account values, portfolio and account summary; contract details;
daily historical bars; market-data snapshots; executions and commission reports; open and
completed orders; current time; and the order lifecycle: ``placeOrder`` is answered with
openOrder/orderStatus PreSubmitted, then Submitted, then one or more partial fills (execDetails,
orderStatus, commissionReport), the last with orderStatus and openOrder Filled. Limit orders
that are not marketable rest until cancelled. ``cancelOrder`` answers error 202 and
orderStatus Cancelled; rejects are error 201; an order id used twice is error 103; a client
id already connected is error 326.

Each message is built in the order ``ib_async.decoder`` reads it at version 176 (openOrder,
completedOrder and contractDetails follow ``Decoder.openOrder``/``completedOrder``/
``contractDetails`` field by field).

The gateway is the broker's side of the world and keeps its state (cash, positions, orders,
executions, next order id) for the life of the process, across client disconnects: orders keep
working and filling while their client is away, as they do at IB, and a client that reconnects
with the same client id gets their updates again.

Market: the bundled ``sp500`` closes (or ``stocks``, ``synthetic``, or a CSV/Parquet file read
by ``plugins/data/csv.py``), the last ``history`` bars, re-stamped onto weekdays so that the
last bar is the last completed session (16:00 New York) before now. Orders fill at the last
close (``set_price`` moves it). Closes-only data gets open = previous close, a 0.2 % range and
a volume of 200 M USD a day.

Faults, settable from tests (methods, thread-safe through ``call``) and from the command line:
``drop`` (close client sockets), ``drop_after_orders`` (drop the socket right after the Nth
order), ``outage`` (code 1100, then 1101 or 1102; no fills and no new orders meanwhile),
``farm`` (2103 / 2104), ``farm_status`` (one farm by name: market data 2103 / 2104 / 2108,
historical 2105 / 2106 / 2107, security definitions 2157 / 2158), ``market_data`` (off: quotes
are refused with error 354, as for an account without a market-data subscription), ``read_only``
(the API's Read-Only mode: every order is refused with error 321), ``ack_delay`` (seconds before
an order is acknowledged),
``reject_next`` / ``reject_symbols`` (error 201), ``hist_limit`` (historical-data pacing: more
than N requests in a window is error 162), ``set_price`` (a price shock). ``gw.faults`` holds
the faults of a misbehaving gateway (``Faults``): a stall with the socket open, an outage during
which resting orders fill, no orderRef echo, orders reported only late after a reconnect.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import logging
import math
import struct
import sys
import time
from typing import Any, Callable, Optional

from pipeline.core.loop_thread import LoopThread

SERVER_VERSION = 176
log = logging.getLogger("fake_gateway")

UTC = dt.timezone.utc
NEW_YORK = "America/New_York"
NASDAQ = {"AAPL", "AMD", "MSFT", "PEP", "GOOG", "FB", "AMZN", "NVDA", "INTC", "CSCO"}
CONNECTIVITY = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
}
# service -> (code lost, code back, code idle but available on demand, IB's name for the farm)
FARM_CODES = {"market data": (2103, 2104, 2108, "Market data farm"),
              "historical data": (2105, 2106, 2107, "HMDS data farm"),
              "security definition": (2157, 2158, None, "Sec-def data farm")}
READ_ONLY = "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
ACCOUNT_TAGS = ("NetLiquidation", "TotalCashValue", "GrossPositionValue", "EquityWithLoanValue",
                "BuyingPower", "AvailableFunds", "ExcessLiquidity", "SettledCash")


def _s(value: Any) -> str:
    """A field as TWS writes it: booleans 1/0, None empty, floats without a trailing .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def frame(fields: list) -> bytes:
    body = "".join(_s(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def ib_time(t: float) -> str:
    """Epoch seconds as ``20250102 15:30:00 UTC`` (what ib_async's parseIBDatetime reads)."""
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y%m%d %H:%M:%S UTC")


def parse_ib_time(text: str) -> Optional[float]:
    """``yyyymmdd hh:mm:ss [TZ]`` or ``yyyymmdd-hh:mm:ss`` (UTC) as epoch seconds; None if empty."""
    text = text.strip()
    if not text:
        return None
    from zoneinfo import ZoneInfo

    if "-" in text[:9]:
        day, clock = text.split("-", 1)
        zone: Any = UTC
    else:
        parts = text.split(" ")
        day, clock = parts[0], parts[1] if len(parts) > 1 else "00:00:00"
        zone = ZoneInfo(parts[2]) if len(parts) > 2 else ZoneInfo(NEW_YORK)
    stamp = dt.datetime.strptime(day + clock.strip(), "%Y%m%d%H:%M:%S").replace(tzinfo=zone)
    return stamp.timestamp()


# ---------------------------------------------------------------- state

@dataclasses.dataclass
class Instrument:
    con_id: int
    symbol: str
    primary: str
    currency: str = "USD"
    sec_type: str = "STK"
    min_tick: float = 0.01

    def fields11(self, exchange: str = "SMART") -> list:
        """conId .. tradingClass, without primaryExchange (execDetails, openOrder, position)."""
        return [self.con_id, self.symbol, self.sec_type, "", 0.0, "", "", exchange, self.currency,
                self.symbol, "NMS"]


@dataclasses.dataclass
class GwOrder:
    order_id: int
    client_id: int
    perm_id: int
    ref: str
    inst: Instrument
    action: str
    quantity: float
    order_type: str
    limit: Optional[float]
    tif: str
    account: str
    received: float
    status: str = "PendingSubmit"
    filled: float = 0.0
    value: float = 0.0           # sum of fill quantity * price
    last_price: float = 0.0
    cancel: bool = False
    done: bool = False
    completed_at: float = 0.0
    reason: str = ""
    task: Optional[asyncio.Task] = None
    connection: int = 0          # serial of the connection that placed it

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> float:
        return self.value / self.filled if self.filled else 0.0

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclasses.dataclass
class GwExecution:
    exec_id: str
    order: GwOrder
    shares: float
    price: float
    time: float
    cum_qty: float
    avg_price: float
    commission: float


@dataclasses.dataclass
class Market:
    """Daily bars per symbol: ``dates`` (datetime.date), and open/high/low/close/volume lists."""

    dates: list
    bars: dict[str, dict[str, list]]


def load_market(source: str = "sp500", history: int = 600, shift: bool = True,
                symbols: Optional[list[str]] = None, now: Optional[float] = None) -> Market:
    import numpy as np
    import pandas as pd

    if source == "sp500":
        from plugins.data.sp500 import SP500
        data = SP500().load()
    elif source == "stocks":
        from plugins.data.stocks import Stocks
        data = Stocks().load()
    elif source == "synthetic":
        from plugins.data.synthetic import Synthetic
        data = Synthetic(n_bars=max(history, 300)).load()
    else:
        from plugins.data.csv import CSVData
        data = CSVData(path=source).load()
    if symbols:
        data = data.select([s for s in symbols])
    if data.n_bars > history:
        data = data.select(start=data.index[data.n_bars - history])
    close = data.close
    n = close.shape[0]
    prev = np.vstack([close[:1], close[:-1]])
    opens = data.open if data.open is not None else prev
    highs = data.high if data.high is not None else np.maximum(opens, close) * 1.002
    lows = data.low if data.low is not None else np.minimum(opens, close) * 0.998
    with np.errstate(invalid="ignore", divide="ignore"):
        vols = data.volume if data.volume is not None else np.round(2e8 / close)
    if shift:
        last = last_session(now)
        dates = [d.date() for d in pd.bdate_range(end=last, periods=n)]
    else:
        dates = [d.date() for d in data.index.tz_convert(NEW_YORK)]
    bars = {}
    for j, sym in enumerate(data.symbols):
        ok = np.isfinite(close[:, j])
        bars[sym] = {"ok": ok.tolist(), "open": opens[:, j].tolist(), "high": highs[:, j].tolist(),
                     "low": lows[:, j].tolist(), "close": close[:, j].tolist(),
                     "volume": np.nan_to_num(vols[:, j]).tolist()}
    return Market(dates=dates, bars=bars)


def last_session(now: Optional[float] = None) -> dt.date:
    """The last weekday whose 16:00 New York close is at or before ``now``."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(NEW_YORK))
    day = local.date()
    if local.time() < dt.time(16, 0):
        day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


class Connection:
    def __init__(self, gw: "FakeGateway", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.gw = gw
        self.reader = reader
        self.writer = writer
        self.client_id: Optional[int] = None
        self.positions = False
        self.account_updates: Optional[str] = None  # the account subscribed to, if any
        self.closed = False
        gw.n_connections += 1
        self.serial = gw.n_connections
        self.started = time.time()

    def send(self, fields: list) -> None:
        if self.closed or self.gw.faults.stalled():
            return
        if self.writer.is_closing():  # the client went away; the reader notices and cleans up
            self.closed = True
            return
        try:
            self.writer.write(frame(fields))
        except Exception:  # the peer went away: the reader loop notices
            self.closed = True

    def abort(self) -> None:
        self.closed = True
        transport = self.writer.transport
        if transport is not None:
            transport.abort()


# ---------------------------------------------------------------- the gateway

class FakeGateway:
    """The server. ``await start()`` on a running loop, or ``start_in_thread()`` from a test."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, account: str = "DU1234567",
                 cash: float = 1_000_000.0, market: Optional[Market] = None, data: str = "sp500",
                 history: int = 600, fill_delay: float = 0.05, partial: int = 2,
                 ack_delay: float = 0.0, commission_per_share: float = 0.005,
                 commission_min: float = 1.0, positions: Optional[dict[str, float]] = None,
                 start_order_id: int = 1) -> None:
        self.host = host
        self.port = port
        self.accounts = [a for a in account.split(",") if a]
        self.account = self.accounts[0]
        # one book per managed account: cash, and symbol -> [quantity, average cost]
        self.cash = {a: float(cash) for a in self.accounts}
        self.books: dict[str, dict[str, list[float]]] = {a: {} for a in self.accounts}
        self.market = market if market is not None else load_market(data, history)
        self.fill_delay = fill_delay
        self.partial = max(int(partial), 1)
        self.ack_delay = ack_delay
        self.commission_per_share = commission_per_share
        self.commission_min = commission_min
        self.instruments: dict[str, Instrument] = {}
        for k, sym in enumerate(sorted(self.market.bars)):
            self.instruments[sym] = Instrument(con_id=265598 + 1000 * k, symbol=sym,
                                               primary="NASDAQ" if sym in NASDAQ else "NYSE")
        self.prices = {s: _last(b["close"], b["ok"]) for s, b in self.market.bars.items()}
        for sym, qty in (positions or {}).items():  # initial positions: the first account's
            self.books[self.account][sym] = [float(qty), self.prices[sym]]
            self.cash[self.account] -= float(qty) * self.prices[sym]
        self.orders: list[GwOrder] = []
        self.executions: list[GwExecution] = []
        self.received: list[dict] = []        # every placeOrder, as received
        self.violations: list[str] = []       # orders received while trading was impossible
        self.hist_requests: list[tuple[float, str]] = []
        self.connections: list[Connection] = []
        self.next_order_id = start_order_id
        self.next_perm_id = 1_000_001
        self.n_exec = 0
        # faults
        self.reject_next = 0
        self.reject_symbols: set[str] = set()
        self.drop_after_orders: Optional[int] = None
        self.hist_limit: Optional[tuple[int, float]] = None
        self.faults = Faults(self)
        self.n_connections = 0
        self.ib_up: Optional[asyncio.Event] = None
        self.farm_ok = True
        self.market_data_on = True
        self.farms: dict[str, tuple[str, bool]] = {}  # farm name -> (service, up), set by farm_status
        self.read_only_api = False
        self.server: Optional[asyncio.base_events.Server] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[LoopThread] = None
        self._price_changed: Optional[asyncio.Condition] = None

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> "FakeGateway":
        self.loop = asyncio.get_running_loop()
        self.ib_up = asyncio.Event()
        self.ib_up.set()
        self._price_changed = asyncio.Condition()
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        for order in self.orders:
            if order.task is not None and not order.task.done():
                order.task.cancel()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def start_in_thread(self) -> "FakeGateway":
        self._thread = LoopThread(self.start, self.stop, name="fake-ib-gateway")
        self._thread.open()
        return self

    def stop_thread(self) -> None:
        if self._thread is not None:
            self._thread.close()
            self._thread = None

    def call(self, fn: Callable, *args: Any, timeout: float = 10) -> Any:
        """Run ``fn(*args)`` (a function or coroutine function) on the gateway's loop."""
        async def wrapped():
            out = fn(*args)
            if asyncio.iscoroutine(out):
                out = await out
            return out

        if self.loop is None:
            raise RuntimeError("the gateway is not running")
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    # ------------------------------------------------------------ inspection (thread-safe via call)
    def snapshot(self, account: Optional[str] = None) -> dict:
        """State for assertions: ``positions``, ``cash`` and ``net_liquidation`` of ``account``
        (default the first), every order received, executions, orders, faults seen."""
        account = account or self.account

        def take():
            return {
                "positions": {s: p[0] for s, p in self.books[account].items() if p[0] != 0},
                "cash": self.cash[account],
                "net_liquidation": self.net_liquidation(account),
                "received": [dict(r) for r in self.received],
                "executions": [{"exec_id": e.exec_id, "ref": e.order.ref, "symbol": e.order.inst.symbol,
                                "shares": e.shares * e.order.sign, "price": e.price, "time": e.time,
                                "commission": e.commission, "client_id": e.order.client_id}
                               for e in self.executions],
                "orders": [{"ref": o.ref, "order_id": o.order_id, "client_id": o.client_id,
                            "status": o.status, "filled": o.filled * o.sign,
                            "quantity": o.quantity * o.sign, "done": o.done, "reason": o.reason}
                           for o in self.orders],
                "violations": list(self.violations),
                "hist_requests": list(self.hist_requests),
                "clients": [c.client_id for c in self.connections if not c.closed],
            }
        if self.loop is not None and self._thread is not None and not self._thread.is_current():
            return self.call(take)
        return take()

    # ------------------------------------------------------------ faults
    def drop(self, client_id: Optional[int] = None) -> int:
        """Close client sockets (all, or those of ``client_id``) as a gateway restart does."""
        n = 0
        for conn in list(self.connections):
            if client_id is None or conn.client_id == client_id:
                conn.abort()
                n += 1
        return n

    async def reset(self, seconds: float) -> None:
        """A nightly reset: every socket closed and no listener for ``seconds`` (connections
        are refused), then back on the same port with the same state."""
        self.server.close()
        self.drop()
        await self.server.wait_closed()
        await asyncio.sleep(seconds)
        self.server = await asyncio.start_server(self._serve, self.host, self.port)

    def start_reset(self, seconds: float) -> None:
        asyncio.get_running_loop().create_task(self.reset(seconds))

    def broadcast_code(self, code: int, message: Optional[str] = None) -> None:
        for conn in self.connections:
            if conn.client_id is not None:
                conn.send([4, 2, -1, code, message or CONNECTIVITY.get(code, f"code {code}"), ""])

    async def outage(self, seconds: float, data_lost: bool = False) -> None:
        """IB's side goes away: 1100, no fills and no orders for ``seconds``, then 1101/1102."""
        self.ib_up.clear()
        self.broadcast_code(1100)
        await asyncio.sleep(seconds)
        self.ib_up.set()
        self.broadcast_code(1101 if data_lost else 1102)

    def start_outage(self, seconds: float, data_lost: bool = False) -> None:
        asyncio.get_running_loop().create_task(self.outage(seconds, data_lost))

    def farm(self, ok: bool) -> None:
        self.farm_ok = ok
        self.broadcast_code(2104 if ok else 2103)

    def market_data(self, on: bool) -> None:
        """Market data on or off: off, every quote request is answered with error 354 (the
        account has no market-data subscription); orders still fill at the gateway's prices."""
        self.market_data_on = bool(on)
    def farm_status(self, name: str, ok: bool, service: str = "market data", idle: bool = False) -> None:
        """One data farm lost or back, by name, with IB's code and text for its ``service``
        (``idle``: IB's "inactive but available on demand", which counts as up). Quotes are
        served while every market-data farm is up."""
        lost, back, on_demand, label = FARM_CODES[service]
        self.farms[name] = (service, ok)
        self.farm_ok = all(up for kind, up in self.farms.values() if kind == "market data")
        if ok and idle and on_demand is not None:
            self.broadcast_code(on_demand, f"{label} connection is inactive but should be available "
                                           f"upon demand.{name}")
        else:
            self.broadcast_code(back if ok else lost, f"{label} connection is {'OK' if ok else 'broken'}:{name}")

    def read_only(self, on: bool = True) -> None:
        """The API's Read-Only mode (TWS / IB Gateway setting): orders are refused with error 321."""
        self.read_only_api = on

    async def set_price(self, symbol: str, price: float) -> None:
        self.prices[symbol] = float(price)
        self._push_account()
        async with self._price_changed:
            self._price_changed.notify_all()

    def open_order(self, client_id: int, ref: str, symbol: str, quantity: float,
                   limit: float, order_id: Optional[int] = None) -> int:
        """Seed a resting limit order as if ``client_id`` had placed it earlier."""
        oid = order_id if order_id is not None else self.next_order_id
        self.next_order_id = max(self.next_order_id, oid + 1)
        order = GwOrder(order_id=oid, client_id=client_id, perm_id=self._perm(), ref=ref,
                        inst=self.instruments[symbol], action="BUY" if quantity > 0 else "SELL",
                        quantity=abs(quantity), order_type="LMT", limit=limit, tif="DAY",
                        account=self.account, received=time.time(), status="Submitted")
        self.orders.append(order)
        order.task = asyncio.get_running_loop().create_task(self._work(order, acked=True))
        return oid

    # ------------------------------------------------------------ money
    def net_liquidation(self, account: Optional[str] = None) -> float:
        account = account or self.account
        return self.cash[account] + sum(p[0] * self.prices[s] for s, p in self.books[account].items())

    def _account_values(self, account: str) -> list[tuple[str, str, str]]:
        nlv = self.net_liquidation(account)
        cash = self.cash[account]
        gross = sum(abs(p[0]) * self.prices[s] for s, p in self.books[account].items())
        values = {"NetLiquidation": nlv, "TotalCashValue": cash, "GrossPositionValue": gross,
                  "EquityWithLoanValue": nlv, "BuyingPower": 4 * nlv - gross,
                  "AvailableFunds": nlv - gross / 2, "ExcessLiquidity": nlv - gross / 4,
                  "SettledCash": cash}
        rows = [(tag, f"{values[tag]:.2f}", "USD") for tag in ACCOUNT_TAGS]
        rows += [("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD")]
        return rows

    def _portfolio_row(self, account: str, sym: str) -> list:
        qty, cost = self.books[account].get(sym, [0.0, 0.0])
        price = self.prices[sym]
        inst = self.instruments[sym]
        return [7, 8, inst.con_id, sym, inst.sec_type, "", 0.0, "", "", inst.primary, inst.currency,
                sym, "NMS", qty, price, qty * price, cost, qty * (price - cost), 0.0, account]

    def _push_account(self, account: Optional[str] = None, symbol: Optional[str] = None) -> None:
        """Account values (and the symbol's portfolio and position rows) to subscribers."""
        for conn in self.connections:
            for acct in ([account] if account else self.accounts):
                if conn.account_updates == acct:
                    for tag, value, cur in self._account_values(acct):
                        conn.send([6, 2, tag, value, cur, acct])
                    if symbol is not None:
                        conn.send(self._portfolio_row(acct, symbol))
                if conn.positions and symbol is not None:
                    conn.send(self._position_row(acct, symbol))

    def _position_row(self, account: str, sym: str) -> list:
        qty, cost = self.books[account].get(sym, [0.0, 0.0])
        return [61, 3, account, *self.instruments[sym].fields11(""), qty, cost]

    # ------------------------------------------------------------ socket
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, reader, writer)
        self.connections.append(conn)
        try:
            prefix = await reader.readexactly(4)
            if prefix != b"API\0":
                return
            await self._read_frame(reader)  # "v157..178": we pin one version
            conn.send([SERVER_VERSION, dt.datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")])
            while not conn.closed:
                fields = await self._read_frame(reader)
                self._dispatch(conn, fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception:  # a bug here must not take the whole gateway down
            log.exception("fake gateway: error serving client %s", conn.client_id)
        finally:
            conn.closed = True
            if conn in self.connections:
                self.connections.remove(conn)
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> list[str]:
        size = struct.unpack(">I", await reader.readexactly(4))[0]
        body = await reader.readexactly(size)
        fields = body.decode(errors="backslashreplace").split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        return fields

    def _dispatch(self, conn: Connection, f: list[str]) -> None:
        if self.faults.stalled():
            return
        msg = int(f[0])
        if conn.client_id is None and msg != 71:
            return
        handler = {
            71: self._start_api, 61: self._req_positions, 64: self._cancel_positions,
            5: self._req_open_orders, 16: self._req_all_open_orders, 15: lambda c, f: None,
            99: self._req_completed, 6: self._req_account_updates, 76: self._req_account_multi,
            77: lambda c, f: None, 62: self._req_account_summary, 63: lambda c, f: None,
            7: self._req_executions, 9: self._req_contract_details, 20: self._req_historical,
            25: lambda c, f: None, 3: self._place_order, 4: self._cancel_order,
            58: self._global_cancel, 49: self._req_current_time, 8: self._req_ids,
            1: self._req_mkt_data, 2: lambda c, f: None, 59: lambda c, f: None,
            17: lambda c, f: c.send([15, 1, ",".join(self.accounts)]),
        }.get(msg)
        if handler is None:
            log.info("fake gateway: ignoring message %s", f)
            return
        handler(conn, f)

    # ------------------------------------------------------------ session
    def _start_api(self, conn: Connection, f: list[str]) -> None:
        client_id = int(f[2])
        if any(c is not conn and c.client_id == client_id and not c.closed for c in self.connections):
            conn.send([4, 2, -1, 326, "Unable to connect as the client id is already in use. "
                       "Retry with a unique client id.", ""])
            conn.client_id = client_id
            asyncio.get_running_loop().call_later(0.05, conn.abort)
            return
        conn.client_id = client_id
        conn.started = time.time()
        conn.send([9, 1, self.next_order_id])
        conn.send([15, 1, ",".join(self.accounts)])
        conn.send([4, 2, -1, 2104 if self.farm_ok else 2103,
                   CONNECTIVITY[2104 if self.farm_ok else 2103], ""])
        conn.send([4, 2, -1, 2106, CONNECTIVITY[2106], ""])
        if not self.ib_up.is_set():
            conn.send([4, 2, -1, 1100, CONNECTIVITY[1100], ""])

    def _req_current_time(self, conn: Connection, f: list[str]) -> None:
        conn.send([49, 1, int(time.time())])

    def _req_ids(self, conn: Connection, f: list[str]) -> None:
        conn.send([9, 1, self.next_order_id])

    def _req_positions(self, conn: Connection, f: list[str]) -> None:
        conn.positions = True
        for account in self.accounts:
            for sym in sorted(self.books[account]):
                conn.send(self._position_row(account, sym))
        conn.send([62, 1])

    def _cancel_positions(self, conn: Connection, f: list[str]) -> None:
        conn.positions = False

    def _req_account_updates(self, conn: Connection, f: list[str]) -> None:
        subscribe, account = f[2] == "1", f[3] or self.account
        if not subscribe or account not in self.books:
            conn.account_updates = None
            if subscribe:
                conn.send([4, 2, -1, 321, f"Error validating request: account {account} is unknown", ""])
            return
        conn.account_updates = account
        for tag, value, cur in self._account_values(account):
            conn.send([6, 2, tag, value, cur, account])
        for sym in sorted(self.books[account]):
            conn.send(self._portfolio_row(account, sym))
        conn.send([8, 1, time.strftime("%H:%M")])
        conn.send([54, 1, account])

    def _req_account_multi(self, conn: Connection, f: list[str]) -> None:
        req_id, account, model = f[2], f[3] or self.account, f[4]
        if account in self.books:
            for tag, value, cur in self._account_values(account):
                conn.send([73, 1, req_id, account, model, tag, value, cur])
        conn.send([74, 1, req_id])

    def _req_account_summary(self, conn: Connection, f: list[str]) -> None:
        req_id, tags = f[2], set(f[4].split(","))
        for account in self.accounts:
            for tag, value, cur in self._account_values(account):
                if tag in tags:
                    conn.send([63, 1, req_id, account, tag, value, cur])
        conn.send([64, 1, req_id])

    # ------------------------------------------------------------ contracts and data
    def _instrument(self, symbol: str, con_id: str = "") -> Optional[Instrument]:
        if con_id and con_id != "0":
            for inst in self.instruments.values():
                if str(inst.con_id) == con_id:
                    return inst
        return self.instruments.get(symbol)

    def _req_contract_details(self, conn: Connection, f: list[str]) -> None:
        req_id = f[2]
        inst = self._instrument(f[4], f[3])
        if inst is None or (f[5] not in ("", "STK")):
            conn.send([4, 2, req_id, 200, "No security definition has been found for the request", ""])
            return
        hours = ";".join(f"{d:%Y%m%d}:0930-{d:%Y%m%d}:1600" for d in self.market.dates[-2:])
        conn.send([10, req_id, inst.symbol, inst.sec_type, "", 0.0, "", f[10] or "SMART",
                   inst.currency, inst.symbol, "NMS", "NMS", inst.con_id, inst.min_tick,
                   "", "ACTIVETIM,AD,ADJUST,ALERT,ALGO,LMT,MKT,STP", "SMART,NYSE,NASDAQ,ARCA", 1,
                   0, f"{inst.symbol} INC", inst.primary, "", "", "", "", "US/Eastern", hours,
                   hours, "", "", 0,
                   1, "", "", "26,26", "", "COMMON",
                   "0.0001", "0.0001", "100"])
        conn.send([52, 1, req_id])

    def _req_mkt_data(self, conn: Connection, f: list[str]) -> None:
        req_id, inst = f[2], self._instrument(f[4], f[3])
        if inst is None:
            conn.send([4, 2, req_id, 200, "No security definition has been found for the request", ""])
            return
        if not self.market_data_on:
            conn.send([4, 2, req_id, 354, "Requested market data is not subscribed.", ""])
            return
        if not self.farm_ok:
            conn.send([4, 2, req_id, 10197, "No market data during competing live session", ""])
            return
        price = self.prices[inst.symbol]
        tick = inst.min_tick
        for tick_type, value in ((1, price - tick), (2, price + tick), (4, price), (9, price)):
            conn.send([1, 6, req_id, tick_type, round(value, 4), 100, 0])
        conn.send([57, 1, req_id])

    def _req_historical(self, conn: Connection, f: list[str]) -> None:
        req_id = f[1]
        inst = self._instrument(f[3], f[2])
        now = time.time()
        if inst is None:
            conn.send([4, 2, req_id, 200, "No security definition has been found for the request", ""])
            return
        if self.hist_limit is not None:
            limit, window = self.hist_limit
            recent = [t for t, _ in self.hist_requests if now - t < window]
            if len(recent) >= limit:
                self.hist_requests.append((now, "violation:" + inst.symbol))
                conn.send([4, 2, req_id, 162, "Historical Market Data Service error message:"
                           "Historical data request pacing violation", ""])
                return
        self.hist_requests.append((now, inst.symbol))
        end_text, bar_size, duration = f[15], f[16], f[17]
        if bar_size.strip() != "1 day":
            conn.send([4, 2, req_id, 162, "Historical Market Data Service error message:"
                       f"this gateway serves '1 day' bars only, not '{bar_size}'", ""])
            return
        end = parse_ib_time(end_text)
        last_day = last_session(end) if end is not None else self.market.dates[-1]
        amount, unit = (duration.split() + ["D"])[:2]
        days = int(amount) * {"S": 1 / 86400, "D": 1, "W": 7, "M": 31, "Y": 366}.get(unit.upper(), 1)
        first_day = last_day - dt.timedelta(days=max(math.ceil(days), 1))
        b = self.market.bars[inst.symbol]
        rows = []
        for i, day in enumerate(self.market.dates):
            if first_day < day <= last_day and b["ok"][i]:
                close = b["close"][i]
                rows += [day.strftime("%Y%m%d"), round(b["open"][i], 6), round(b["high"][i], 6),
                         round(b["low"][i], 6), round(close, 6), int(b["volume"][i]),
                         round(close, 6), 1000]
        n = len(rows) // 8
        start = first_day.strftime("%Y%m%d") + " 00:00:00"
        conn.send([17, req_id, start, last_day.strftime("%Y%m%d") + " 23:59:59", n, *rows])

    # ------------------------------------------------------------ orders
    def _perm(self) -> int:
        self.next_perm_id += 1
        return self.next_perm_id

    def _place_order(self, conn: Connection, f: list[str]) -> None:
        order_id = int(f[1])
        symbol, con_id = f[3], f[2]
        action, qty, otype = f[16], float(f[17] or 0), f[18]
        limit = float(f[19]) if f[19] else None
        tif, account, ref = f[21] or "DAY", f[23] or self.account, f[26]
        now = time.time()
        self.received.append({"time": now, "client_id": conn.client_id, "order_id": order_id,
                              "ref": ref, "symbol": symbol, "action": action, "quantity": qty,
                              "type": otype, "limit": limit})
        if self.read_only_api:  # refused before it exists: a later cancel finds nothing (10147)
            conn.send([4, 2, order_id, 321, READ_ONLY, ""])
            return
        existing = next((o for o in self.orders
                         if o.client_id == conn.client_id and o.order_id == order_id), None)
        if existing is not None:
            if existing.done:
                conn.send([4, 2, order_id, 103, f"Duplicate order id {order_id}", ""])
            else:  # a modification: new size or limit
                existing.quantity, existing.limit = qty, limit
                self._send_open(existing)
                self._send_status(existing)
            return
        self.next_order_id = max(self.next_order_id, order_id + 1)
        inst = self._instrument(symbol, con_id)
        if inst is None:
            conn.send([4, 2, order_id, 200, "No security definition has been found for the request", ""])
            return
        order = GwOrder(order_id=order_id, client_id=conn.client_id, perm_id=self._perm(), ref=ref,
                        inst=inst, action=action, quantity=qty, order_type=otype, limit=limit,
                        tif=tif, account=account, received=now, connection=conn.serial)
        self.orders.append(order)
        reason = None
        if account not in self.accounts:
            reason = f"Order rejected - reason:The account {account} is not managed by this login"
        elif not self.ib_up.is_set():
            self.violations.append(f"order {ref} received during a connectivity outage")
            reason = "Order rejected - reason:Not connected to IB"
        elif self.reject_next > 0:
            self.reject_next -= 1
            reason = "Order rejected - reason:The order was rejected by the fault injector"
        elif symbol in self.reject_symbols or "*" in self.reject_symbols:
            reason = f"Order rejected - reason:{symbol} is not available for trading"
        elif otype not in ("MKT", "LMT") or qty <= 0 or (otype == "LMT" and limit is None):
            reason = f"Order rejected - reason:unsupported order {otype} {qty}"
        if reason is not None:
            order.reason = reason
            self._finish(order, "Cancelled")
            conn.send([4, 2, order_id, 201, reason, ""])
            self._send_status(order)
            return
        order.task = asyncio.get_running_loop().create_task(self._work(order))
        n = len(self.received)
        if self.drop_after_orders is not None and n >= self.drop_after_orders:
            self.drop_after_orders = None
            asyncio.get_running_loop().call_later(0.01, conn.abort)

    def _owner(self, order: GwOrder) -> list[Connection]:
        return [c for c in self.connections
                if not c.closed and (c.client_id == order.client_id or c.client_id == 0)
                and not self.faults.hidden(c, order)]

    def _send_open(self, order: GwOrder) -> None:
        for conn in self._owner(order):
            conn.send(self.open_order_fields(order))

    def _send_status(self, order: GwOrder) -> None:
        for conn in self._owner(order):
            conn.send([3, order.order_id, order.status, order.filled, order.remaining, order.avg_price,
                       order.perm_id, 0, order.last_price, order.client_id, "", 0.0])

    def _finish(self, order: GwOrder, status: str) -> None:
        order.status = status
        order.done = True
        order.completed_at = time.time()

    def _marketable(self, order: GwOrder) -> bool:
        if order.order_type == "MKT":
            return True
        price = self.prices[order.inst.symbol]
        return price <= order.limit + 1e-9 if order.action == "BUY" else price >= order.limit - 1e-9

    async def _work(self, order: GwOrder, acked: bool = False) -> None:
        try:
            if not acked:
                if self.ack_delay:
                    await asyncio.sleep(self.ack_delay)
                if order.cancel or order.done:  # cancelled, or filled by an outage, meanwhile
                    return
                order.status = "PreSubmitted"
                self._send_open(order)
                self._send_status(order)
                await asyncio.sleep(min(self.fill_delay, 0.02))
                if order.done:
                    return
                order.status = "Submitted"
                self._send_status(order)
            chunks = _chunks(order.quantity, self.partial)
            while order.remaining > 1e-9 and not order.cancel:
                await asyncio.sleep(self.fill_delay)
                await self.ib_up.wait()
                if order.cancel:
                    break
                if not self._marketable(order):
                    async with self._price_changed:
                        try:
                            await asyncio.wait_for(self._price_changed.wait(), 0.5)
                        except asyncio.TimeoutError:
                            pass
                    continue
                shares = min(chunks.pop(0) if chunks else order.remaining, order.remaining)
                self._fill(order, shares, self.prices[order.inst.symbol])
        except asyncio.CancelledError:
            pass

    def _fill(self, order: GwOrder, shares: float, price: float, when: Optional[float] = None) -> None:
        now = time.time() if when is None else when
        sym = order.inst.symbol
        first = order.filled == 0
        order.filled += shares
        order.value += shares * price
        order.last_price = price
        fee = shares * self.commission_per_share
        if first:
            fee = max(fee, self.commission_min)
        fee = min(fee, 0.01 * shares * price) if shares * price > 0 else fee
        self.n_exec += 1
        ex = GwExecution(exec_id=f"0000e0d5.{order.perm_id:08x}.{self.n_exec:02d}.01", order=order,
                         shares=shares, price=price, time=now, cum_qty=order.filled,
                         avg_price=order.avg_price, commission=round(fee, 6))
        self.executions.append(ex)
        book = self.books[order.account]
        qty, cost = book.get(sym, [0.0, 0.0])
        delta = order.sign * shares
        new = qty + delta
        if new == 0:
            cost = 0.0
        elif qty == 0 or (qty > 0) != (new > 0):
            cost = price
        elif abs(new) > abs(qty):
            cost = (qty * cost + delta * price) / new
        book[sym] = [new, cost]
        self.cash[order.account] -= delta * price + ex.commission
        done = order.remaining <= 1e-9
        if done:
            self._finish(order, "Filled")
        for conn in self._owner(order):
            conn.send(self.exec_fields(ex, -1))
            conn.send([3, order.order_id, order.status, order.filled, order.remaining, order.avg_price,
                       order.perm_id, 0, price, order.client_id, "", 0.0])
            if done:
                conn.send(self.open_order_fields(order))
            conn.send(self.commission_fields(ex))
        self._push_account(order.account, sym)

    def _cancel_order(self, conn: Connection, f: list[str]) -> None:
        order_id = int(f[2])
        order = next((o for o in self.orders
                      if o.order_id == order_id and o.client_id == conn.client_id), None)
        if order is None:
            conn.send([4, 2, order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.", ""])
            return
        self._cancel(order)

    def _cancel(self, order: GwOrder) -> None:
        if order.done:
            for conn in self._owner(order):
                conn.send([4, 2, order.order_id, 10148, f"OrderId {order.order_id} that needs to be "
                           f"cancelled cannot be cancelled, state: {order.status}.", ""])
            return
        order.cancel = True
        self._finish(order, "Cancelled")
        for conn in self._owner(order):
            conn.send([4, 2, order.order_id, 202, "Order Canceled - reason:", ""])
        self._send_status(order)

    def _global_cancel(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done:
                self._cancel(order)

    def _visible(self, conn: Connection, order: GwOrder) -> bool:
        return conn.client_id == 0 or order.client_id == conn.client_id

    def _req_open_orders(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done and self._visible(conn, order) and order.status != "PendingSubmit" \
                    and not self.faults.hidden(conn, order):
                conn.send(self.open_order_fields(order))
                conn.send([3, order.order_id, order.status, order.filled, order.remaining,
                           order.avg_price, order.perm_id, 0, order.last_price, order.client_id, "", 0.0])
        conn.send([53, 1])
        self.faults.fill_returning(conn)

    def _req_all_open_orders(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done and order.status != "PendingSubmit" and not self.faults.hidden(conn, order):
                conn.send(self.open_order_fields(order))
        conn.send([53, 1])

    def _req_completed(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if order.done and not self.faults.hidden(conn, order):
                conn.send(self.completed_order_fields(order))
        conn.send([102])

    def _req_executions(self, conn: Connection, f: list[str]) -> None:
        req_id = int(f[2])
        client = int(f[3] or 0)
        since = parse_ib_time(f[5]) if len(f) > 5 else None
        symbol = f[6] if len(f) > 6 else ""
        for ex in self.executions:
            o = ex.order
            if client and o.client_id != client:
                continue
            if not client and not self._visible(conn, o):
                continue
            if since is not None and ex.time < since:
                continue
            if symbol and o.inst.symbol != symbol:
                continue
            if self.faults.hidden(conn, o):
                continue
            conn.send(self.exec_fields(ex, req_id))
            conn.send(self.commission_fields(ex))
        conn.send([55, 1, req_id])

    # ------------------------------------------------------------ message bodies
    def exec_fields(self, ex: GwExecution, req_id: int) -> list:
        o = ex.order
        return [11, req_id, o.order_id, *o.inst.fields11("SMART"), ex.exec_id, ib_time(ex.time),
                o.account, o.inst.primary, "BOT" if o.action == "BUY" else "SLD", ex.shares, ex.price,
                o.perm_id, o.client_id, 0, ex.cum_qty, ex.avg_price, self.faults.echo(o.ref), "", "", "", 1]

    @staticmethod
    def commission_fields(ex: GwExecution) -> list:
        return [59, 1, ex.exec_id, ex.commission, "USD", "", "", ""]

    def open_order_fields(self, o: GwOrder) -> list:
        """openOrder at version 176, in the order ``ib_async.decoder.Decoder.openOrder`` reads."""
        lmt = o.limit if o.limit is not None else 0.0
        return [
            5, o.order_id, *o.inst.fields11("SMART"),
            o.action, o.quantity, o.order_type, lmt, 0.0, o.tif, "", o.account, "O", 0, self.faults.echo(o.ref),
            o.client_id, o.perm_id, 0, 0, 0.0, "", "", "", "", "",
            "",                                    # faProfile (version < 177)
            "", "", "", "", "", 0, "", "", 0, "", "", "", "", "", 0, 0, 0, 0, "", 0, 0, 0, "",
            0, 0, "", 0, "", "",                   # ... parentId, triggerMethod, volatility, deltaNeutral*
            0, 0, "", "", "", "", "",              # continuousUpdate .. comboLegsDescrip
            0, 0, 0,                               # combo legs, order combo legs, smart combo params
            "", "", "",                            # scaleInitLevelSize, scaleSubsLevelSize, increment
            "",                                    # hedgeType
            0, "", "", 0, 0,                       # optOutSmartRouting .. notHeld, dnc present
            "",                                    # algoStrategy
            0, 0, o.status, "", "", "", "", "", "", "", "", "", "", "", "", "", "", 0, 0,
            0,                                     # conditions
            "", "", "", "", "", "", "", "", "", "", "", "", 0, 0, "", 0,
            "", 0, 0,                              # duration, postToAts, autoCancelParent
            "", "", "", "", "",                    # minTradeQty .. midOffsetAtHalf (>= 170)
        ]

    def completed_order_fields(self, o: GwOrder) -> list:
        """completedOrder at version 176, in the order ``Decoder.completedOrder`` reads."""
        lmt = o.limit if o.limit is not None else 0.0
        status = o.status
        return [
            101, *o.inst.fields11("SMART"),
            o.action, o.quantity, o.order_type, lmt, 0.0, o.tif, "", o.account, "O", 0, self.faults.echo(o.ref),
            o.perm_id, 0, 0, 0.0, "", "", "", "",
            "",                                    # faProfile (version < 177)
            "", "", "", "", "", 0, "", "", "", "", "", "", "", 0, 0, 0, "", 0, 0, "", 0, "", "",
            0, 0, "", "", "",                      # continuousUpdate .. comboLegsDescrip
            0, 0, 0,
            "", "", "",
            "",
            "", "", 0, 0,                          # clearingAccount, clearingIntent, notHeld, dnc
            "",
            0, status, 0, 0,
            0,
            "", "", "", 0, 0, "", o.filled, 0, 0, "", 0, 0, "",
            time.strftime("%Y%m%d %H:%M:%S", time.gmtime(o.completed_at or time.time())) + " UTC",
            o.reason or status,
            "", "", "", "", "",
        ]


class Faults:
    """A misbehaving gateway, scripted from a test: ``gw.faults.stall(2)``, ``gw.faults.drop_ref =
    True``, ``gw.faults.report_late(0.5)``, ``gw.call(gw.faults.start_outage, 1.0)``. Flags and
    ``stall`` may be set from any thread; ``outage`` runs on the gateway's loop (``gw.call``)."""

    def __init__(self, gw: "FakeGateway") -> None:
        self.gw = gw
        self.drop_ref = False        # orderRef left empty in openOrder, completedOrder, execDetails
        self.late = 0.0              # see report_late
        self.stalled_until = 0.0
        self.returning: dict[int, list[GwOrder]] = {}  # client id -> orders to fill on its return

    def stall(self, seconds: float) -> None:
        """For ``seconds`` the gateway keeps every socket open and accepts new ones, reads every
        request and answers none (a handshake neither); orders it already holds keep working at
        IB, and what they report meanwhile is lost."""
        self.stalled_until = time.time() + float(seconds)

    def stalled(self) -> bool:
        return time.time() < self.stalled_until

    def echo(self, ref: str) -> str:
        return "" if self.drop_ref else ref

    def report_late(self, seconds: float) -> None:
        """From now on, for ``seconds`` after a client connects again, the orders it placed on an
        earlier connection are missing from every answer (open and completed orders, executions)
        and their updates are not sent; they keep working meanwhile. 0 turns it off."""
        self.late = float(seconds)

    def hidden(self, conn: Connection, order: GwOrder) -> bool:
        return bool(self.late) and order.client_id == conn.client_id \
            and order.connection != conn.serial and time.time() - conn.started < self.late

    async def outage(self, seconds: float, fill_resting: bool = True, lasting: Optional[float] = None) -> None:
        """The gateway goes away: every socket closed and connections refused for ``seconds``.
        With ``fill_resting`` every working order fills in full meanwhile (a limit order at its
        limit), stamped ``lasting`` seconds (default ``seconds``) before the gateway is back, so a
        test can stage an outage of minutes in a second; the client hears nothing of those
        fills. The last of them fills only once its client is back, right after its first
        open-orders request: a live fill that reaches the client before it can reconcile."""
        gw = self.gw
        gw.server.close()
        gw.drop()
        await gw.server.wait_closed()
        resting = [o for o in gw.orders if not o.done] if fill_resting else []
        stamp = time.time() + seconds - (seconds if lasting is None else float(lasting))
        for order in resting[:-1]:
            gw._fill(order, order.remaining, self._price(order), when=stamp)
        for order in resting[-1:]:
            self.returning.setdefault(order.client_id, []).append(order)
        await asyncio.sleep(seconds)
        gw.server = await asyncio.start_server(gw._serve, gw.host, gw.port)

    def start_outage(self, seconds: float, fill_resting: bool = True, lasting: Optional[float] = None) -> None:
        asyncio.get_running_loop().create_task(self.outage(seconds, fill_resting, lasting))

    def fill_returning(self, conn: Connection) -> None:
        for order in self.returning.pop(conn.client_id, []):
            if not order.done:
                self.gw._fill(order, order.remaining, self._price(order))

    def _price(self, order: GwOrder) -> float:
        return order.limit if order.limit is not None else self.gw.prices[order.inst.symbol]


def _last(values: list[float], ok: list[bool]) -> float:
    for v, good in zip(reversed(values), reversed(ok)):
        if good:
            return float(v)
    return float("nan")


def _chunks(quantity: float, parts: int) -> list[float]:
    """``quantity`` in ``parts`` fills of whole shares (fewer when it is small)."""
    whole = float(quantity).is_integer()
    parts = max(1, min(parts, int(quantity) if whole and quantity >= 1 else 1))
    if not whole:
        return [quantity]
    base, extra = divmod(int(quantity), parts)
    return [float(base + (1 if i < extra else 0)) for i in range(parts)]


# ---------------------------------------------------------------- command line

def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m plugins.broker.ib.fake_gateway",
                                description="A fake IB Gateway speaking the TWS API protocol "
                                            f"(server version {SERVER_VERSION}) for dry runs.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4002)
    p.add_argument("--account", default="DU1234567", help="managed account(s), comma-separated")
    p.add_argument("--cash", type=float, default=1_000_000.0)
    p.add_argument("--data", default="sp500", help="sp500 | stocks | synthetic | a CSV/Parquet path")
    p.add_argument("--history", type=int, default=600, help="daily bars served per symbol")
    p.add_argument("--position", action="append", default=[], metavar="SYMBOL=QTY")
    p.add_argument("--fill-delay", type=float, default=0.2, help="seconds between partial fills")
    p.add_argument("--partial", type=int, default=2, help="fills per order")
    p.add_argument("--ack-delay", type=float, default=0.0, help="seconds before an order is acknowledged")
    p.add_argument("--reject", action="append", default=[], metavar="SYMBOL",
                   help="reject orders for SYMBOL with error 201 (* for every symbol)")
    p.add_argument("--reject-next", type=int, default=0, help="reject the next N orders")
    p.add_argument("--drop-after-orders", type=int, default=None, help="drop the socket after N orders")
    p.add_argument("--outage", default=None, metavar="AT:SECONDS",
                   help="code 1100 at AT seconds after start, 1102 SECONDS later")
    p.add_argument("--reset", default=None, metavar="AT:SECONDS",
                   help="a nightly reset: close every socket at AT seconds, refuse connections for SECONDS")
    p.add_argument("--farm-broken", default=None, metavar="AT:SECONDS",
                   help="code 2103 at AT seconds after start, 2104 SECONDS later")
    p.add_argument("--read-only", action="store_true", help="the API's Read-Only mode: orders get error 321")
    p.add_argument("--hist-limit", default=None, metavar="N/SECONDS",
                   help="historical-data pacing: more than N requests in SECONDS is error 162")
    p.add_argument("--no-market-data", action="store_true",
                   help="refuse quotes with error 354, as for an account without market data")
    p.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE",
                   help="set a symbol's price (a shock) after start")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        gw = FakeGateway(host=args.host, port=args.port, account=args.account, cash=args.cash,
                         data=args.data, history=args.history, fill_delay=args.fill_delay,
                         partial=args.partial, ack_delay=args.ack_delay,
                         positions={k: float(v) for k, v in (s.split("=") for s in args.position)})
        gw.reject_symbols = set(args.reject)
        gw.reject_next = args.reject_next
        gw.drop_after_orders = args.drop_after_orders
        gw.market_data(not args.no_market_data)
        gw.read_only(args.read_only)
        if args.hist_limit:
            n, window = args.hist_limit.split("/")
            gw.hist_limit = (int(n), float(window))
        await gw.start()
        for item in args.price:
            sym, value = item.split("=")
            await gw.set_price(sym, float(value))
        loop = asyncio.get_running_loop()
        if args.outage:
            at, seconds = (float(x) for x in args.outage.split(":"))
            loop.call_later(at, gw.start_outage, seconds)
        if args.reset:
            at, seconds = (float(x) for x in args.reset.split(":"))
            loop.call_later(at, gw.start_reset, seconds)
        if args.farm_broken:
            at, seconds = (float(x) for x in args.farm_broken.split(":"))
            loop.call_later(at, gw.farm, False)
            loop.call_later(at + seconds, gw.farm, True)
        print(f"fake IB gateway listening on {gw.host}:{gw.port} (server version {SERVER_VERSION}, "
              f"account {','.join(gw.accounts)}, {len(gw.instruments)} symbols, last bar "
              f"{gw.market.dates[-1]}); Ctrl-C to stop", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await gw.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"fake_gateway: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
