"""``FakeGateway``: the server (sockets, the handshake, request dispatch, accounts, contracts and
data) and its controls for tests (inspection, connectivity faults, prices)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from typing import Any, Callable, Optional

from pipeline.core.loop_thread import LoopThread
from plugins.broker.ib.fake_gateway.faults import Faults
from plugins.broker.ib.fake_gateway.orders import OrderDesk
from plugins.broker.ib.fake_gateway.protocol import (ACCOUNT_TAGS, CONNECTIVITY, FARM_CODES, SERVER_VERSION,
                                                      frame, parse_ib_time, read_frame)
from plugins.broker.ib.fake_gateway.state import (NASDAQ, UTC, GwExecution, GwOrder, Instrument, Market,
                                                   last_session, last_valid, load_market)

log = logging.getLogger("fake_gateway")


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

class FakeGateway(OrderDesk):
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
        self.prices = {s: last_valid(b["close"], b["ok"]) for s, b in self.market.bars.items()}
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
        self.closing = False

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
        # resting orders' loops wake and end on their own: cancelled while they wait on the
        # price condition, they tie the loop's shutdown up for LoopThread's whole timeout
        self.closing = True
        if self._price_changed is not None:
            async with self._price_changed:
                self._price_changed.notify_all()
        working = [o.task for o in self.orders if o.task is not None and not o.task.done()]
        if working:
            await asyncio.wait(working, timeout=1.0)
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
                            "quantity": o.quantity * o.sign, "done": o.done, "reason": o.reason,
                            "type": o.order_type, "tif": o.tif, "limit": o.limit, "aux": o.aux,
                            "trail_percent": o.trail_percent, "trail_stop": o.trail_stop,
                            "oca": o.oca, "parent_id": o.parent_id, "symbol": o.inst.symbol}
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
        self.observe(symbol)
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
            await read_frame(reader)  # "v157..178": we pin one version
            conn.send([SERVER_VERSION, dt.datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")])
            while not conn.closed:
                fields = await read_frame(reader)
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
