"""The event engine: an order book replayed in time order, a strategy deciding on a clock, an
exchange model filling its orders with latency and queue position.

Three clocks, in integer nanoseconds: the exchange's (event times), the strategy's local one
(decisions every ``interval``), and the latencies between them. A decision at local time ``T``

- sees the book rows with exchange time ``<= T - feed_latency`` (never a later one);
- knows the fills and cancels that happened at the exchange by ``T - response_latency``;
- sends orders that reach the exchange at ``T + entry_latency`` (drawn per order when the
  latency model is a distribution), where ``pipeline/lob/kernel.py`` fills them.

The book arrives in chunks (``EventSource.chunks``); the engine keeps the rows the strategy's
``history`` and the queue model still need, so memory is bounded by a chunk. Money: cash and
position are the exchange's truth; equity is marked at the mid at every decision.

A strategy with a compiled rule (``EventStrategy.quote_kernel``: the market maker;
``target_kernel``: the microstructure taker) runs in ``pipeline/lob/loop.py``: this loop
compiled, with the same results; the Python loop here is the reference and runs every other
strategy.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from typing import Iterable, Iterator, Optional

import numpy as np

from pipeline.core.errors import ConfigError, UserError
from pipeline.core.lob import NO_QUOTE, EventStrategy, ExchangeModel, OrderBook
from pipeline.lob import kernel, loop

NS = 1_000_000_000
MARKOUTS = (1.0, 10.0)          # seconds after a fill at which adverse selection is measured


@dataclasses.dataclass
class OpenOrder:
    """An order as the strategy knows it: sent and not known to be done."""

    id: int
    side: int            # +1 buy, -1 sell
    price: float         # NaN: a market order
    qty: float
    leaves: float
    cancelling: bool     # a cancel is on its way


@dataclasses.dataclass
class Result:
    """A finished replay: tables as column lists, and the run's figures."""

    orders: dict
    fills: dict
    equity: dict
    actions: list
    capital: float
    events: int
    tick: float


class Context:
    """What ``EventStrategy.decide`` sees and acts through (one per decision)."""

    def __init__(self, engine: "Replay", now: int, row: int) -> None:
        self._engine = engine
        self.time = now / NS                     # local clock, seconds after midnight
        self.book: OrderBook = engine.view
        self.row = row                           # last row received; -1: none yet
        self.position = engine.known_position
        self.cash = engine.known_cash
        self.tick = engine.tick
        self.orders = [OpenOrder(o.id, o.side, o.price, o.qty, o.qty - o.known_filled, o.cancel_sent >= 0)
                       for o in engine.open_orders()]

    def buy(self, price: float, qty: float) -> int:
        return self._engine.send(+1, price, qty, self.time)

    def sell(self, price: float, qty: float) -> int:
        return self._engine.send(-1, price, qty, self.time)

    def market(self, qty: float) -> int:
        return self._engine.send(1 if qty > 0 else -1, float("nan"), abs(qty), self.time, market=True)

    def cancel(self, order_id: int) -> None:
        self._engine.cancel(order_id)


@dataclasses.dataclass
class _Order:
    id: int
    side: int
    price: float
    qty: float
    market: bool
    sent: int
    entry: int
    response: int
    slot: int = -1
    ahead: float = float("nan")
    filled: float = 0.0
    known_filled: float = 0.0
    status: str = "sent"        # sent | resting | filled | cancelled | expired
    done_known: int = -1        # local time the strategy learns it is done
    cancel_sent: int = -1


class Replay:
    """One replay of ``chunks`` by ``strategy`` on ``exchange`` (see the module docstring)."""

    def __init__(self, chunks: Iterable[OrderBook], strategy: Optional[EventStrategy],
                 exchange: ExchangeModel, capital: float, seed: int, interval: Optional[float] = None,
                 origin: Optional[float] = None, compiled: bool = True) -> None:
        self.chunks: Iterator[OrderBook] = iter(chunks)
        self.strategy = strategy
        quote_kernel, target_kernel = (getattr(strategy, f, None) if compiled else None
                                       for f in ("quote_kernel", "target_kernel"))
        self.quoter = quote_kernel() if quote_kernel is not None else None
        self.taker = target_kernel() if target_kernel is not None and self.quoter is None else None
        self.ex = exchange
        self.tick = float(exchange.tick)
        self.model = {"risk_averse": kernel.RISK_AVERSE, "power_prob": kernel.POWER_PROB}.get(exchange.queue)
        if self.model is None:
            raise ConfigError(f"broker.queue={exchange.queue!r}: expected risk_averse or power_prob")
        self.interval = int(round((interval or getattr(strategy, "interval", 1.0)) * NS))
        self.history = int(getattr(strategy, "history", 0.0) * NS)
        self.feed = int(round(exchange.feed_latency * NS))
        self.rng = np.random.default_rng(seed)
        self.capital = float(capital)
        self.origin = None if origin is None else int(round(origin * NS))
        m = int(exchange.max_orders)
        self.o_state = np.zeros(m, np.int8)
        self.o_side = np.zeros(m, np.int8)
        self.o_px = np.zeros(m, np.int64)
        self.o_leaves = np.zeros(m)
        self.o_front = np.zeros(m)
        self.o_cum = np.zeros(m)
        self.slot_order = [-1] * m
        self.orders: list[_Order] = []
        self.open: dict[int, _Order] = {}
        self.pending: list = []                # (exchange ns, seq, kind, order id) heap
        self.known: list = []                  # (local ns, seq, kind, order id, qty, px, fee) heap
        self.seq = 0
        self.cash = self.known_cash = float(capital)
        self.position = self.known_position = 0.0
        self.fill_cols = {k: [] for k in ("order_id", "time", "known_time", "side", "price", "qty", "maker",
                                          "fee", "queue_ahead", "entry_latency", "response_latency",
                                          "mid", "mid_1s", "mid_10s")}
        self.markouts: list = []               # (exchange ns, fill index, column) heap
        self.equity = {k: [] for k in ("time", "mid", "position", "cash", "equity")}
        self.actions: list = []
        self.events = 0
        self.view: Optional[OrderBook] = None
        self.done = False
        self._load_first()
        # fill buffers: kernel.run_rows keeps len(o_state) places free; an arriving order fills
        # at most once per level (the compiled kernel has no bounds checks)
        cap = 4 * m + self.a[1].shape[1]
        self.f = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64),
                  np.zeros(cap), np.zeros(cap, np.bool_))

    # -- the book buffer ----------------------------------------------------------------------
    def _arrays(self, book: OrderBook):
        """The kernel's view of a chunk: nanoseconds, integer price ticks (empty levels as
        sentinels beyond any price), sizes."""
        def ticks(price, empty):
            scaled = price / self.tick
            missing = np.isnan(scaled)
            scaled[missing] = 0.0
            out = np.rint(scaled).astype(np.int64)
            out[missing] = empty
            return out

        return (np.rint(book.time * NS).astype(np.int64), ticks(book.bid_price, kernel.NO_BID),
                np.asarray(book.bid_size, float), ticks(book.ask_price, kernel.NO_ASK),
                np.asarray(book.ask_size, float), book.trade_row.astype(np.int64),
                np.rint(book.trade_price / self.tick).astype(np.int64),
                np.asarray(book.trade_size, float), book.trade_sign.astype(np.int64))

    def _load_first(self) -> None:
        book = next(self.chunks, None)
        if book is None or book.n_rows == 0:
            raise UserError("the event data holds no events: nothing to replay")
        self.book = book
        self.a = self._arrays(book)
        self.kp = 0                            # next row to process
        self.j = 0                             # next trade
        self.events += book.n_rows

    def _more(self) -> bool:
        """Append the next chunk, keeping the rows still needed; False at the end of the data."""
        nxt = next(self.chunks, None)
        if nxt is None:
            self.done = True
            return False
        t = self.a[0]
        keep_from = t[max(self.kp - 1, 0)] - self.history - self.feed
        r0 = min(max(int(np.searchsorted(t, keep_from, side="left")) - 1, 0), max(self.kp - 1, 0))
        self._resolve_markouts()
        old, m = self.book, int(np.searchsorted(self.a[5], r0, side="left"))
        new = self._arrays(nxt)
        shift = len(self.a[0]) - r0
        self.a = tuple(np.concatenate([mine[r0:], theirs]) for mine, theirs in zip(self.a[:5], new[:5])) + (
            np.concatenate([self.a[5][m:] - r0, new[5] + shift]),
            *(np.concatenate([mine[m:], theirs]) for mine, theirs in zip(self.a[6:], new[6:])))
        if self.strategy is None:          # nothing reads the book itself
            self.book = nxt
        else:
            self.book = OrderBook(
                time=np.concatenate([old.time[r0:], nxt.time]),
                bid_price=np.concatenate([old.bid_price[r0:], nxt.bid_price]),
                bid_size=np.concatenate([old.bid_size[r0:], nxt.bid_size]),
                ask_price=np.concatenate([old.ask_price[r0:], nxt.ask_price]),
                ask_size=np.concatenate([old.ask_size[r0:], nxt.ask_size]),
                trade_row=np.concatenate([old.trade_row[m:] - r0, nxt.trade_row + shift]),
                trade_price=np.concatenate([old.trade_price[m:], nxt.trade_price]),
                trade_size=np.concatenate([old.trade_size[m:], nxt.trade_size]),
                trade_sign=np.concatenate([old.trade_sign[m:], nxt.trade_sign]),
                symbol=old.symbol, date=old.date, tz=old.tz)
        self.kp -= r0
        self.j = int(np.searchsorted(self.a[5], self.kp, side="left"))
        self.events += nxt.n_rows
        return True

    # -- the exchange ---------------------------------------------------------------------------
    def advance(self, until: int) -> None:
        """Process every event and order arrival with exchange time ``<= until``, in time order
        (an arrival after the events stamped at its own time)."""
        while True:
            nxt = self.pending[0][0] if self.pending else None
            stop = until if nxt is None or nxt > until else nxt
            while True:
                t = self.a[0]
                k1 = int(np.searchsorted(t, stop, side="right"))
                if k1 > self.kp:
                    self._rows(k1)
                if self.kp == t.size and not self.done and self._more():
                    continue
                break
            if nxt is None or nxt > until:
                return
            self._arrival(heapq.heappop(self.pending))

    def _rows(self, k1: int) -> None:
        t, bt, bq, at, aq, tr_row, tr_tick, tr_qty, tr_sign = self.a
        f_slot, f_row, f_px, f_qty, f_maker = self.f
        while self.kp < k1:
            k, self.j, n = kernel.run_rows(self.kp, k1, self.j, bt, bq, at, aq, tr_row, tr_tick, tr_qty,
                                           tr_sign, self.o_state, self.o_side, self.o_px, self.o_leaves,
                                           self.o_front, self.o_cum, self.model, float(self.ex.queue_power),
                                           1.0, bool(self.ex.partial_fills), f_slot, f_row, f_px, f_qty, f_maker, 0)
            for i in range(n):
                self._record_fill(int(f_slot[i]), t[f_row[i]], int(f_row[i]), int(f_px[i]), float(f_qty[i]), True)
            self.kp = k

    def _arrival(self, item) -> None:
        when, _, kind, oid = item
        o = self.orders[oid]
        k = self.kp - 1
        if kind == "cancel":
            if o.status in ("sent", "resting"):   # a cancel may overtake its order (random latency)
                if o.status == "resting":
                    self.o_state[o.slot] = kernel.FREE
                o.status = "cancelled"
                self._learn(when + o.response, "done", oid)
            return
        if o.status == "cancelled":
            return
        slot = int(np.flatnonzero(self.o_state == kernel.FREE)[0]) if (self.o_state == kernel.FREE).any() else -1
        if slot < 0 or k < 0:
            o.status = "expired"               # no room at the venue (or no book yet): rejected
            self._learn(when + o.response, "done", oid)
            return
        self.slot_order[slot] = oid
        o.slot = slot
        px = 0 if o.market else int(round(o.price / self.tick))
        t, bt, bq, at, aq = self.a[:5]
        f_slot, f_row, f_px, f_qty, f_maker = self.f
        n, ahead = kernel.arrive(slot, o.side, px, o.qty, o.market, k, bt, bq, at, aq, self.o_state,
                                 self.o_side, self.o_px, self.o_leaves, self.o_front, self.o_cum,
                                 bool(self.ex.partial_fills), f_slot, f_row, f_px, f_qty, f_maker, 0)
        o.status = "resting"
        o.ahead = ahead
        for i in range(n):
            self._record_fill(slot, when, k, int(f_px[i]), float(f_qty[i]), False)
        if o.status == "resting" and self.o_state[slot] == kernel.FREE:
            o.status = "expired"               # a market order the visible book could not fill
            self._learn(when + o.response, "done", oid)

    def _record_fill(self, slot: int, when: int, row: int, px_tick: int, qty: float, maker: bool) -> None:
        oid = self.slot_order[slot]
        o = self.orders[oid]
        px = px_tick * self.tick
        notional = px * qty
        ex = self.ex
        fee = (notional * (ex.maker_fee_bps if maker else ex.taker_fee_bps) / 1e4
               + qty * (ex.maker_fee_per_share if maker else ex.taker_fee_per_share))
        self.cash -= o.side * notional + fee
        self.position += o.side * qty
        o.filled += qty
        if o.filled >= o.qty - 1e-9:
            o.status = "filled"
        # the mid the fill is measured against: the book before a resting order's event, the
        # book the order met on arrival
        ref = row - 1 if maker and row > 0 else row
        bid, ask = self.a[1][ref, 0], self.a[3][ref, 0]
        mid = (bid + ask) * self.tick / 2 if bid != kernel.NO_BID and ask != kernel.NO_ASK else float("nan")
        c = self.fill_cols
        index = len(c["order_id"])
        for key, value in (("order_id", oid), ("time", when / NS), ("known_time", (when + o.response) / NS),
                           ("side", o.side), ("price", px), ("qty", qty), ("maker", maker), ("fee", fee),
                           ("queue_ahead", o.ahead), ("entry_latency", o.entry / NS),
                           ("response_latency", o.response / NS), ("mid", mid),
                           ("mid_1s", float("nan")), ("mid_10s", float("nan"))):
            c[key].append(value)
        for h, col in zip(MARKOUTS, ("mid_1s", "mid_10s")):
            heapq.heappush(self.markouts, (when + int(h * NS), index, col))
        self._learn(when + o.response, "fill", oid, qty, px, fee)

    def _resolve_markouts(self) -> None:
        """The mid at each fill's horizons, once the buffer holds a row after it (or the data
        ended): a measurement after the run, never shown to the strategy."""
        t = self.a[0]
        while self.markouts and (self.markouts[0][0] < t[-1] or self.done):
            when, index, col = heapq.heappop(self.markouts)
            r = int(np.searchsorted(t, when, side="right")) - 1
            bid, ask = self.a[1][r, 0], self.a[3][r, 0]
            if bid != kernel.NO_BID and ask != kernel.NO_ASK:
                self.fill_cols[col][index] = (bid + ask) * self.tick / 2

    # -- what the strategy knows ------------------------------------------------------------------
    def _learn(self, when: int, kind: str, oid: int, qty: float = 0.0, px: float = 0.0, fee: float = 0.0) -> None:
        self.seq += 1
        heapq.heappush(self.known, (when, self.seq, kind, oid, qty, px, fee))

    def _catch_up(self, now: int) -> None:
        while self.known and self.known[0][0] <= now:
            _, _, kind, oid, qty, px, fee = heapq.heappop(self.known)
            o = self.orders[oid]
            if kind == "fill":
                o.known_filled += qty
                self.known_position += o.side * qty
                self.known_cash -= o.side * qty * px + fee
                if o.known_filled >= o.qty - 1e-9:
                    self._done(o, now)
            else:
                self._done(o, now)

    def _done(self, o: _Order, now: int) -> None:
        if o.done_known < 0:
            o.done_known = now
            del self.open[o.id]

    def open_orders(self) -> list[_Order]:
        return list(self.open.values())

    def send(self, side: int, price: float, qty: float, now_s: float, market: bool = False) -> int:
        name = type(self.strategy).__name__
        if not (np.isfinite(qty) and qty > 0) or (not market and not (np.isfinite(price) and price > 0)):
            raise UserError(f"strategy {name} at {now_s:.6f}: an order with price {price} and size {qty}; "
                            f"prices and sizes must be positive numbers")
        if not market and abs(price / self.tick - round(price / self.tick)) > 1e-6:
            raise UserError(f"strategy {name} at {now_s:.6f}: price {price} is off the tick grid "
                            f"{self.tick} (broker.tick); round it to a tick")
        entry, response = self._latency(self.ex.entry_latency), self._latency(self.ex.response_latency)
        now = self._now
        o = _Order(len(self.orders), side, float("nan") if market else float(price), float(qty), market,
                   now, entry, response)
        self.orders.append(o)
        self.open[o.id] = o
        self.seq += 1
        heapq.heappush(self.pending, (now + entry, self.seq, "new", o.id))
        self.actions.append((now, "market" if market else "limit", side, o.price, o.qty))
        return o.id

    def cancel(self, order_id: int) -> None:
        o = self.orders[order_id]
        if o.cancel_sent >= 0 or o.done_known >= 0:
            return
        o.cancel_sent = self._now
        entry = self._latency(self.ex.entry_latency)
        self.seq += 1
        heapq.heappush(self.pending, (self._now + entry, self.seq, "cancel", order_id))
        self.actions.append((self._now, "cancel", o.side, o.price, float(order_id)))

    def _latency(self, mean: float) -> int:
        if self.ex.latency == "lognormal" and mean > 0:
            s = float(self.ex.latency_sigma)
            return int(round(mean * np.exp(s * self.rng.standard_normal() - s * s / 2) * NS))
        return int(round(mean * NS))

    # -- the run ------------------------------------------------------------------------------------
    def _start(self) -> int:
        step = self.interval
        return -(-int(self.a[0][0]) // step) * step if self.origin is None else self.origin

    def run(self) -> Result:
        if self.quoter is not None or self.taker is not None:
            return self._run_compiled()
        step = self.interval
        now = self._start()
        while True:
            self.advance(now)
            t = self.a[0]
            if self.done and now > t[-1]:
                break
            self._now = now
            self._catch_up(now)
            row = int(np.searchsorted(t, now - self.feed, side="right")) - 1
            self._mark(now)
            if self.strategy is not None and row >= 0:
                self.view = self.book.view(row + 1)
                self.strategy.decide(Context(self, now, row))
            now += step
        self._resolve_markouts()
        return self._result()

    def _run_compiled(self) -> Result:
        """``run`` with the strategy's compiled quote or taker rule, in ``pipeline/lob/loop.py``
        (the same results); Python only between chunks and when a table needs room."""
        no_quotes, no_target = loop.unused()
        if self.quoter is not None:
            quote_rule, params, qty = self.quoter
            rules = (quote_rule, no_target)
        else:
            (target_rule, params), qty = self.taker, 1.0
            rules = (no_quotes, target_rule)
        name, ex, tab = type(self.strategy).__name__, self.ex, loop.Tables(4 * self.o_state.size + self.a[1].shape[1] + 8)
        if not (np.isfinite(qty) and qty > 0):
            raise UserError(f"strategy {name}: quotes of size {qty}; sizes must be positive numbers")
        lognormal = ex.latency == "lognormal"
        c = tab.c
        c[loop.C_NOW] = self._start()
        tab.x[:4] = self.cash, self.position, self.known_cash, self.known_position
        ci = np.array([self.model, bool(ex.partial_fills), self.interval, self.feed, round(ex.entry_latency * NS),
                       round(ex.response_latency * NS), lognormal, tab.margin, self.taker is not None], np.int64)
        cf = np.array([ex.queue_power, self.tick, ex.maker_fee_bps, ex.taker_fee_bps, ex.maker_fee_per_share,
                       ex.taker_fee_per_share, ex.entry_latency, ex.response_latency, qty], float)
        venue = (self.o_state, self.o_side, self.o_px, self.o_leaves, self.o_front, self.o_cum,
                 np.full(self.o_state.size, -1, np.int64), *self.f)
        run, status, shown, book = loop.compiled(), loop.ROOM, None, ()
        while status != loop.DONE:
            if status == loop.BAD:
                bad = int(c[loop.C_BAD])
                price = float("nan") if bad == NO_QUOTE else round(bad * self.tick, 10)
                raise UserError(f"strategy {name} at {c[loop.C_NOW] / NS:.6f}: an order with price {price} and "
                                f"size {tab.x[loop.X_BAD]}; prices and sizes must be positive numbers")
            if status == loop.MORE:
                if not self._more():
                    c[loop.C_LAST] = 1
            elif status == loop.ROOM:
                tab.grow(self.rng if lognormal else None, float(ex.latency_sigma))
            if shown is not self.book:          # a new buffer: the exchange's arrays and the strategy's
                shown = b = self.book
                book = (*map(_plain, self.a), *(_plain(v, float) for v in (
                    b.time, b.bid_price, b.bid_size, b.ask_price, b.ask_size, b.trade_price, b.trade_size, b.trade_sign)))
            c[loop.C_KP], c[loop.C_J] = self.kp, self.j
            status = run(*rules, params, *book, *venue, *tab.arrays(), ci, cf)
            self.kp, self.j = int(c[loop.C_KP]), int(c[loop.C_J])
        orders, fills, equity, actions = tab.result(self.tick)
        return Result(orders=orders, fills=fills, equity=equity, actions=actions, capital=self.capital,
                      events=self.events, tick=self.tick)

    def _mark(self, now: int) -> None:
        t = self.a[0]
        r = int(np.searchsorted(t, now, side="right")) - 1
        bid, ask = self.a[1][r, 0].item(), self.a[3][r, 0].item()
        mid = (bid + ask) * self.tick / 2 if r >= 0 and bid != kernel.NO_BID and ask != kernel.NO_ASK else math.nan
        e = self.equity
        e["time"].append(now / NS)
        e["mid"].append(mid)
        e["position"].append(self.position)
        e["cash"].append(self.cash)
        e["equity"].append(self.cash + self.position * mid if self.position else self.cash)

    def _result(self) -> Result:
        cols = {k: [] for k in ("order_id", "sent", "arrival", "side", "kind", "price", "qty", "filled",
                                "status", "queue_ahead", "entry_latency", "response_latency", "cancel_sent")}
        for o in self.orders:
            for key, value in (("order_id", o.id), ("sent", o.sent / NS), ("arrival", (o.sent + o.entry) / NS),
                               ("side", o.side), ("kind", "market" if o.market else "limit"),
                               ("price", o.price), ("qty", o.qty), ("filled", o.filled),
                               ("status", "resting" if o.status == "sent" else o.status),
                               ("queue_ahead", o.ahead), ("entry_latency", o.entry / NS),
                               ("response_latency", o.response / NS),
                               ("cancel_sent", o.cancel_sent / NS if o.cancel_sent >= 0 else float("nan"))):
                cols[key].append(value)
        return Result(orders=cols, fills=self.fill_cols, equity=self.equity, actions=self.actions,
                      capital=self.capital, events=self.events, tick=self.tick)


def _plain(values: np.ndarray, dtype=None) -> np.ndarray:
    """The array as the compiled loop's signature takes it: contiguous and writeable (a
    read-only file buffer is copied)."""
    values = np.ascontiguousarray(values, dtype)
    return values if values.flags.writeable else values.copy()


def replay(chunks: Iterable[OrderBook], strategy: Optional[EventStrategy], exchange: ExchangeModel,
           capital: float = 1_000_000.0, seed: int = 7, interval: Optional[float] = None,
           origin: Optional[float] = None, compiled: bool = True) -> Result:
    """Replay ``chunks`` (one ``OrderBook`` or pieces of one, in time order) with ``strategy``
    deciding every ``interval`` seconds (its own by default) from ``origin`` (seconds after
    midnight; by default the first event's time rounded up to the interval); ``strategy=None``
    replays the book alone (the engine's own speed). A strategy with a compiled rule
    (``EventStrategy.quote_kernel``, ``target_kernel``) runs in the compiled loop unless
    ``compiled=False``."""
    if isinstance(chunks, OrderBook):
        chunks = [chunks]
    return Replay(chunks, strategy, exchange, capital, seed, interval, origin, compiled).run()
