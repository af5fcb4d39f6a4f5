"""Interactive Brokers through ``ib_async``: paper and live trading (``mode=paper broker=ib``).

Only ``ib_async``'s asynchronous API is used, on the runner's event loop: ``connectAsync``,
``reqPositionsAsync``, ``reqContractDetailsAsync``, ``reqTickersAsync``, ``reqOpenOrdersAsync``,
``reqCompletedOrdersAsync``, ``reqExecutionsAsync``, and ``placeOrder``/``cancelOrder`` with
events (never ``ib.sleep`` or a blocking call).

Connection state machine (``pipeline.core.live_broker.LiveBroker`` documents the states):

- socket lost: ``disconnected``; trading pauses; reconnect with exponential backoff
  (``reconnect_delay`` doubling up to ``reconnect_max_delay``, with jitter; at most
  ``reconnect_attempts`` tries, null for ever); on success ``connectAsync`` re-syncs positions,
  open and completed orders, account updates and executions, and the runner reconciles
  (``reconnected``);
- 1100 (IB lost its connection to TWS/Gateway): ``ib_lost``; trading pauses;
- 1101 (restored, data lost): account updates and positions are requested again, then
  ``restored_data_lost``; 1102 (restored, data kept): ``restored``; both resume trading and
  make the runner reconcile;
- data farms, tracked by name (the message ends with it: ``...is broken:usfarm``): a market
  data farm lost (2103) means no quotes, and pauses orders while ``pause_on_farm_broken`` (their
  price checks need quotes) until that farm is back (2104, or 2108: idle, available on demand);
  an HMDS farm lost (2105; back 2106/2107) means no historical bars, a security-definition farm
  lost (2157; back 2158) no contract lookups: neither pauses orders. ``farm_broken`` /
  ``farm_ok`` say which farm and what it pauses.
- 321 "Read-Only": the API is read-only and takes no order: ``failed``, saying how to allow
  orders; 326 (client id in use) is a connection error that says so.

- a request unanswered for ``timeout`` seconds (a gateway that keeps the socket open and stops
  answering): the same as a lost socket; the socket is closed, ``disconnected`` reported and
  the reconnect loop takes over; the request raises ``NotConnected`` (the runner waits for the
  connection, up to ``max_outage`` seconds, and asks again).

A gateway that cannot be reached after ``connect_attempts`` tries is a one-line error naming
host:port and what to do. Host, port, client id and account come from the config or the
environment (``IB_HOST``, ``IB_PORT``, ``IB_CLIENT_ID``, ``IB_ACCOUNT``; see
``conf/broker/ib.yaml``). Use a client id of its own for the runner: orders are bound to it, and
after a restart the runner finds its orders again through it.

Stocks only (``sec_type`` STK) on ``exchange`` in ``currency``; limit prices are rounded to the
contract's minimum tick away from the market (a buy limit down, a sell limit up). Market
children become MKT DAY orders and limit children LMT DAY orders, each carrying its
``orderRef``; exits go as IB's own STP, STP LMT, TRAIL, MOC/LOC/MOO orders in an ``ocaGroup``
(``translate.ib_order``), held by the gateway while the runner is down. ``lot_size`` 1 (whole shares): IB's API does not take fractional orders for
most accounts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from typing import Literal, Optional

from pipeline.core.contracts import Broker, ChildOrders, Fills, Orders, Session
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.live_broker import (BrokerError, Execution, Listener, LiveBroker, LiveOrder, NotConnected,
                                       OrderUpdate)
from plugins.broker.ib import codes
from plugins.broker.ib.codes import FARMS, READ_ONLY
from plugins.broker.ib.translate import execution, farm_name, ib_order, order_update, reason

log = logging.getLogger("robo_trader.ib")



class ClientIdInUse(ConnectionError):
    """Error 326: another connection holds this client id."""


class IBBroker(Broker, LiveBroker):
    """Trades through TWS or IB Gateway (or ``plugins.broker.ib.fake_gateway``)."""

    rules = {"port": "[1, 65535]", "client_id": "[0, 2147483647]", "timeout": "(0, 600]",
             "connect_attempts": "[1, 1000]", "reconnect_attempts": "[1, 1000000]",
             "reconnect_delay": "(0, 600]", "reconnect_max_delay": "(0, 3600]",
             "quote_timeout": "(0, 60]", "lot_size": "(0, inf)", "max_outage": "(0, inf)"}

    def __init__(self, host: str = "127.0.0.1", port: int = 4002, client_id: int = 17,
                 account: Optional[str] = None, live: bool = False, exchange: str = "SMART",
                 currency: str = "USD", timeout: float = 10.0, connect_attempts: int = 3,
                 reconnect_attempts: Optional[int] = None, reconnect_delay: float = 0.5,
                 reconnect_max_delay: float = 30.0, pause_on_farm_broken: bool = True,
                 quote_timeout: float = 2.0, unfilled: Literal["cancel", "sweep"] = "cancel",
                 lot_size: Optional[float] = 1.0, max_outage: Optional[float] = 1800.0) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.account = account
        self.live = live
        self.exchange = exchange
        self.currency = currency
        self.timeout = timeout
        self.connect_attempts = connect_attempts
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.pause_on_farm_broken = pause_on_farm_broken
        self.quote_timeout = quote_timeout
        self.unfilled = unfilled
        self.lot_size = lot_size
        self.max_outage = max_outage

    # ------------------------------------------------------------ backtest: not this broker
    def execute(self, orders: Orders, children: ChildOrders, session: Session) -> Fills:
        raise ConfigError("broker=ib trades through IB Gateway/TWS: run it with mode=paper (or "
                          "mode=live); backtest with broker=sim")

    # ------------------------------------------------------------ connection
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ready(self) -> asyncio.Event:
        return self._ready

    async def start(self, listener: Listener) -> None:
        from ib_async import IB

        _quiet_ib_logs()
        self._listener = listener
        self._ready = asyncio.Event()
        self._state = "disconnected"
        self._farms_down: dict[str, str] = {}  # farm name -> the service it provides
        self._refused = False
        self._stopping = False
        self._account = self.account
        self._contracts: dict = {}
        self._ticks: dict[str, float] = {}
        self._reconnecting: Optional[asyncio.Task] = None
        self._dropped_because: Optional[str] = None
        self.ib_ = IB()
        self.ib_.RaiseRequestErrors = False
        ib = self.ib_
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        ib.orderStatusEvent += self._on_trade
        ib.openOrderEvent += self._on_trade
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.client.throttleStart += self._on_throttle
        await self._connect(self.connect_attempts, first=True)

    def _on_throttle(self) -> None:
        # IB's API takes about 50 messages a second; ib_async queues the rest, so children go
        # out later than their bins say
        client = self.ib_.client
        log.warning("IB API pacing: more than %d requests in %gs; the rest are queued and sent late",
                    client.MaxRequests, client.RequestsInterval)

    async def stop(self) -> None:
        self._stopping = True
        if getattr(self, "_reconnecting", None) is not None:
            self._reconnecting.cancel()
        ib = getattr(self, "ib_", None)
        if ib is not None and ib.isConnected():
            ib.disconnect()

    async def _connect(self, attempts: Optional[int], first: bool) -> None:
        delay = self.reconnect_delay
        attempt = 0
        last: Optional[BaseException] = None
        while attempts is None or attempt < attempts:
            attempt += 1
            try:
                await self._connect_once()
                self._state = "connected"
                self._update_ready()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, timed out, client id in use, closed early
                last = exc
                log.info("connect to %s failed (attempt %d): %r", self.where(), attempt, exc)
            if self._stopping:
                return
            if attempts is not None and attempt >= attempts:
                break
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.reconnect_max_delay)
        raise BrokerError(self._unreachable(last, attempt))

    def _unreachable(self, exc: Optional[BaseException], attempts: int) -> str:
        if isinstance(exc, ClientIdInUse):
            return (f"client id {self.client_id} is already in use at IB Gateway/TWS {self.where()} (error 326, "
                    f"{attempts} attempt{'s' if attempts != 1 else ''}): another program is connected with it "
                    f"(a second runner, a notebook, a tool); stop that one, or give this run a free id with "
                    f"broker.client_id=<n> (IB_CLIENT_ID); orders can be cancelled only by the id that placed them")
        what = _describe(exc)
        return (f"cannot connect to IB Gateway/TWS at {self.where()} with client id {self.client_id} "
                f"({what}, {attempts} attempt{'s' if attempts != 1 else ''}): start IB Gateway or TWS "
                f"with the API enabled on that port (Configure > API > Settings), or set broker.host/"
                f"broker.port (IB_HOST/IB_PORT); for a dry run start `python -m "
                f"plugins.broker.ib.fake_gateway --port {self.port}`")

    async def _connect_once(self) -> None:
        ib = self.ib_
        loop = asyncio.get_running_loop()
        refused = loop.create_future()

        def on_api_error(message: str) -> None:
            if not refused.done():
                refused.set_result(ConnectionError(message))

        def on_error(req_id, code, message, contract) -> None:
            if code == 326 and not refused.done():
                refused.set_result(ClientIdInUse(f"client id {self.client_id} already in use"))

        ib.client.apiError += on_api_error
        ib.errorEvent += on_error
        self._farms_down.clear()  # the gateway reports every farm's state on connecting
        # the account is subscribed to once it is known to be managed here (use_account), so a
        # wrong account id is reported at once instead of timing out a subscription
        task = asyncio.ensure_future(ib.connectAsync(self.host, self.port, clientId=self.client_id,
                                                     timeout=self.timeout))
        try:
            done, _ = await asyncio.wait({task, refused}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
            else:
                task.cancel()
                try:
                    await task
                except BaseException:
                    pass
                if ib.client.isConnected():
                    ib.disconnect()
                raise refused.result()
        finally:
            ib.client.apiError -= on_api_error
            ib.errorEvent -= on_error
        if not ib.isConnected():
            raise ConnectionError("the gateway closed the connection while synchronising")
        if self._account and self._account in ib.managedAccounts():
            await self._subscribe(self._account)

    async def _subscribe(self, account: str) -> None:
        """Account values and portfolio updates for ``account`` (once per connection)."""
        if any(v.account == account for v in self.ib_.accountValues()):
            return
        try:
            await asyncio.wait_for(self.ib_.reqAccountUpdatesAsync(account), self.timeout)
        except asyncio.TimeoutError:
            log.warning("account updates for %s timed out", account)

    def _quotes_lost(self) -> list[str]:
        return sorted(name for name, service in self._farms_down.items() if service == "market data")

    def _update_ready(self) -> None:
        ok = self._state == "connected" and not (self.pause_on_farm_broken and self._quotes_lost())
        if ok:
            self._ready.set()
        else:
            self._ready.clear()

    def _on_disconnected(self) -> None:
        if self._stopping or self._state == "disconnected":
            return
        self._state = "disconnected"
        self._update_ready()
        why, self._dropped_because = self._dropped_because, None
        self._listener.on_connection("disconnected", why or f"socket to {self.where()} lost; reconnecting")
        self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            await self._connect(self.reconnect_attempts, first=False)
        except BrokerError as exc:
            self._listener.on_connection("failed", str(exc))
            return
        if not self._stopping:
            self._listener.on_connection("reconnected", f"to {self.where()}; positions, orders and "
                                                        f"executions re-synchronised")

    def _on_error(self, req_id: int, code: int, message: str, contract) -> None:
        if code == 1100:
            self._state = "ib_lost"
            self._update_ready()
            self._listener.on_connection("ib_lost", f"{code} {message}")
        elif code in (1101, 1102):
            if code == 1101:  # data lost: subscriptions are gone, ask again
                asyncio.ensure_future(self._resubscribe())
                return
            self._state = "connected"
            self._update_ready()
            self._listener.on_connection("restored", f"{code} {message}")
        elif code in FARMS:
            self._farm(code, message)
        elif code == 321 and READ_ONLY in message.lower():
            self._refuse(message)

    def _farm(self, code: int, message: str) -> None:
        """One farm lost or back, by name: only what it serves is paused, and the runner told."""
        service, up = FARMS[code]
        name = farm_name(message) or service
        if up:
            if self._farms_down.pop(name, None) is None:
                return  # it was not lost: the routine report on connecting, or a repeat
            self._update_ready()
            waiting = self._quotes_lost()
            tail = ""
            if service == "market data" and self.pause_on_farm_broken:
                tail = (f"; orders still wait for market data farm(s) {', '.join(waiting)}" if waiting
                        else "; orders resume")
            self._listener.on_connection("farm_ok", f"{service} farm {name} is back ({code}){tail}")
            return
        if self._farms_down.get(name) == service:
            return
        self._farms_down[name] = service
        self._update_ready()
        if service == "market data":
            effect = ("no quotes for the orders' price checks: orders wait until it is back "
                      "(broker.pause_on_farm_broken=true)" if self.pause_on_farm_broken else
                      "no quotes: orders go on, checked against the decision's prices "
                      "(broker.pause_on_farm_broken=false)")
        elif service == "historical data":
            effect = "no historical bars (data=ib) until it is back; orders go on"
        else:
            effect = "no contract lookups for symbols not qualified yet; orders go on"
        self._listener.on_connection("farm_broken", f"{service} farm {name} lost ({code}): {effect}")

    def _refuse(self, message: str) -> None:
        """The API is read-only: no order can be placed, so the run stops saying how to allow them."""
        if self._refused:
            return
        self._refused = True
        self._listener.on_connection(
            "failed", f"the API of IB Gateway/TWS at {self.where()} is read-only (error 321: {reason(message)}): "
                      f"it takes no orders; untick 'Read-Only API' (IB Gateway: Configure > Settings > API > "
                      f"Settings; TWS: File > Global Configuration > API > Settings) and run again")

    async def _ask(self, request, what: str):
        """``await request()`` within ``timeout``. A gateway that does not answer in time is treated
        as gone (the socket is closed and the reconnect loop takes over): ``NotConnected``."""
        if not self.ib_.isConnected():
            raise NotConnected(f"not connected to {self.where()}")
        try:
            return await asyncio.wait_for(request(), self.timeout)
        except asyncio.TimeoutError:
            detail = (f"{self.where()} did not answer {what} within broker.timeout={self.timeout:g}s: "
                      f"taken as a lost connection; reconnecting")
            if self.ib_.isConnected():
                self._dropped_because = detail
                self.ib_.disconnect()  # reports disconnected and starts the reconnect loop
            raise NotConnected(detail) from None
        except ConnectionError as exc:  # the socket went away mid-request
            raise NotConnected(f"{self.where()}: {exc}") from None

    async def _resubscribe(self) -> None:
        ib = self.ib_
        try:
            if self._account:
                await asyncio.wait_for(ib.reqAccountUpdatesAsync(self._account), self.timeout)
            await asyncio.wait_for(ib.reqPositionsAsync(), self.timeout)
        except Exception as exc:
            log.warning("resubscribing after 1101 failed: %r", exc)
        self._state = "connected"
        self._update_ready()
        self._listener.on_connection("restored_data_lost", "1101: subscriptions renewed")

    # ------------------------------------------------------------ accounts and contracts
    def managed_accounts(self) -> list[str]:
        return list(self.ib_.managedAccounts())

    paper_rule = codes.PAPER_RULE
    paper_login = "an IB paper login"

    def is_paper(self, account: str) -> bool:
        return account.startswith(codes.PAPER_PREFIX)

    def use_account(self, account: str) -> None:
        self._account = account

    async def subscribe(self) -> None:
        await self._subscribe(self._account)

    async def qualify(self, symbols: list[str]) -> None:
        from ib_async import Stock

        async def one(symbol: str):
            details = await self._ask(
                lambda: self.ib_.reqContractDetailsAsync(Stock(symbol, self.exchange, self.currency)),
                f"the contract details of {symbol}")
            details = [d for d in details if d.contract.secType == "STK"]
            return symbol, details

        missing, ambiguous = [], []
        for symbol, details in await asyncio.gather(*[one(s) for s in symbols]):
            if not details:
                missing.append(symbol)
            elif len(details) > 1:
                ambiguous.append(symbol)
            else:
                contract = details[0].contract
                contract.exchange = self.exchange
                self._contracts[symbol] = contract
                self._ticks[symbol] = float(details[0].minTick or 0.01)
        if missing or ambiguous:
            parts = []
            if missing:
                parts.append(f"unknown to IB: {', '.join(missing)}")
            if ambiguous:
                parts.append(f"ambiguous: {', '.join(ambiguous)}")
            raise DataError(f"contracts ({'; '.join(parts)}) as STK on {self.exchange} in {self.currency}: "
                            f"check data.symbols, broker.exchange and broker.currency")

    def round_price(self, symbol: str, price: float, side: float) -> float:
        tick = self._ticks.get(symbol, 0.01) if hasattr(self, "_ticks") else 0.01
        steps = price / tick
        steps = math.floor(steps + 1e-9) if side > 0 else math.ceil(steps - 1e-9)
        return round(steps * tick, 10)

    # ------------------------------------------------------------ book
    def _mine(self, account: str) -> bool:
        return not self._account or account == self._account

    async def positions(self) -> dict[str, float]:
        rows = await self._ask(self.ib_.reqPositionsAsync, "the positions request")
        out: dict[str, float] = {}
        for p in rows:
            if self._mine(p.account) and p.contract.secType == "STK" and p.position:
                out[p.contract.symbol] = out.get(p.contract.symbol, 0.0) + float(p.position)
        return out

    def held(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.ib_.positions(self._account or ""):
            if p.contract.secType == "STK" and p.position:
                out[p.contract.symbol] = out.get(p.contract.symbol, 0.0) + float(p.position)
        return out

    def equity(self) -> Optional[float]:
        for v in self.ib_.accountValues(self._account or ""):
            if v.tag == "NetLiquidation" and v.currency in (self.currency, "BASE") and not v.modelCode:
                try:
                    return float(v.value)
                except ValueError:
                    return None
        return None

    async def net_liquidation(self) -> float:
        value = self.equity()
        if value is None:
            rows = await self._ask(lambda: self.ib_.accountSummaryAsync(self._account or ""),
                                   "the account summary request")
            for v in rows:
                if v.tag == "NetLiquidation":
                    value = float(v.value)
        if value is None:
            raise BrokerError(f"the gateway at {self.where()} reported no NetLiquidation for "
                              f"{self._account}: is the account id right?")
        return value

    async def quotes(self, symbols: list[str]) -> dict[str, float]:
        contracts = [self._contracts[s] for s in symbols if s in self._contracts]
        self._quote_problem = ""
        if not contracts:
            return {}
        refused: dict[str, str] = {}

        def on_error(req_id, code, message, contract) -> None:
            if contract is not None and contract.symbol in symbols and not 2100 <= code < 2200:
                refused[contract.symbol] = f"IB error {code}: {message.strip()}"

        started = time.time()
        self.ib_.errorEvent += on_error
        try:
            tickers = await asyncio.wait_for(self.ib_.reqTickersAsync(*contracts), self.quote_timeout)
        except asyncio.TimeoutError:
            # a snapshot can take IB seconds to close: what has arrived so far still counts
            tickers = [t for t in map(self.ib_.ticker, contracts) if t is not None]
            refused.update({c.symbol: f"no snapshot within broker.quote_timeout={self.quote_timeout:g}s"
                            for c in contracts})
        except ConnectionError as exc:
            self._quote_problem = f"not connected: {exc}"
            return {}
        finally:
            self.ib_.errorEvent -= on_error
        out = {}
        for t in tickers:
            # ib_async keeps a contract's ticker across requests: values that no tick of this
            # request refreshed are an earlier day's
            if not t.timestamp or t.timestamp < started:
                continue
            for value in (t.last, t.midpoint(), t.close):
                if value is not None and math.isfinite(value) and value > 0:
                    out[t.contract.symbol] = float(value)
                    break
        if len(out) < len(contracts):
            self._quote_problem = "; ".join(sorted(set(refused.values()))) or "the snapshot had no price"
        return out

    def quote_problem(self) -> str:
        return getattr(self, "_quote_problem", "")

    # ------------------------------------------------------------ orders
    def next_order_id(self) -> int:
        try:
            return self.ib_.client.getReqId()
        except ConnectionError:
            raise NotConnected(f"not connected to {self.where()}") from None

    def place(self, order: LiveOrder) -> None:
        built = ib_order(order, self._account or "")  # an order that must never go fails first
        if not self.ib_.isConnected():
            raise NotConnected(f"not connected to {self.where()}")
        if order.order_id and any(t.order.orderId == order.order_id and t.isDone() for t in self.ib_.trades()):
            raise BrokerError(f"{order.ref} is over at the gateway: it cannot be modified")
        contract = self._contracts[order.symbol]
        try:
            self.ib_.placeOrder(contract, built)
        except ConnectionError as exc:
            raise NotConnected(str(exc)) from None

    def _trade(self, ref: str):
        for trade in self.ib_.trades():
            if trade.order.orderRef == ref and trade.order.orderId and not trade.isDone():
                return trade
        return None

    def cancel(self, ref: str) -> bool:
        trade = self._trade(ref)
        if trade is None or not self.ib_.isConnected():
            return False
        self.ib_.cancelOrder(trade.order)
        return True

    async def cancel_open(self) -> list[str]:
        trades = await self._ask(self.ib_.reqOpenOrdersAsync, "the open orders request")
        refs = []
        for trade in trades:
            if not trade.isDone() and trade.order.clientId in (self.client_id, 0):
                self.ib_.cancelOrder(trade.order)
                refs.append(trade.order.orderRef)
        return refs

    async def known_orders(self) -> list[OrderUpdate]:
        ib = self.ib_
        await self._ask(lambda: ib.reqCompletedOrdersAsync(apiOnly=True), "the completed orders request")
        # every client's open orders, so that an orderRef placed under another client id is
        # known too (and never sent twice), then this client's, which keep their status
        await self._ask(ib.reqAllOpenOrdersAsync, "the open orders request")
        await self._ask(ib.reqOpenOrdersAsync, "the open orders request")
        # with the orders this connection handed over and the gateway has not acknowledged yet;
        # without an orderRef too (the runner knows them by their ids)
        return [order_update(trade) for trade in ib.trades()]

    async def executions(self) -> list[Execution]:
        from ib_async import ExecutionFilter

        # no time window: the gateway's whole record (the day's) for this client and account
        flt = ExecutionFilter(clientId=self.client_id, acctCode=self._account or "")
        fills = await self._ask(lambda: self.ib_.reqExecutionsAsync(flt), "the executions request")
        known = self.ib_.wrapper.fills
        out = []
        for fill in fills:
            stored = known.get(fill.execution.execId, fill)
            out.append(execution(stored))
        return out

    # ------------------------------------------------------------ events -> listener
    def _on_trade(self, trade) -> None:
        if trade.order.orderRef or trade.order.orderId or trade.order.permId:
            update = order_update(trade)
            if update.error_code == 321 and READ_ONLY in update.message.lower():
                self._refuse(update.message)  # before the order's refusal, so it is not counted a reject
            self._listener.on_order(update)

    def _on_exec(self, trade, fill) -> None:
        if not fill.execution.orderRef and trade is not None:
            fill.execution.orderRef = trade.order.orderRef
        self._listener.on_execution(execution(fill))

    def _on_commission(self, trade, fill, report) -> None:
        self._listener.on_commission(report.execId, float(report.commission), report.currency)


def _quiet_ib_logs() -> None:
    # ib_async logs every order error with the whole Trade; the journal and the runner's lines
    # say what happened, so its loggers stay quiet unless asked (HYDRA verbose / logging config)
    for name in ("ib_async", "ib_async.wrapper", "ib_async.client", "ib_async.ib"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _describe(exc: Optional[BaseException]) -> str:
    if exc is None:
        return "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
