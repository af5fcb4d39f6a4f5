"""The order-book vocabulary: the ``OrderBook`` data contract and the contracts of event data,
event strategies and the exchange model that fills their orders (``pipeline/lob/`` replays them).

Time in an ``OrderBook`` is seconds after midnight (LOBSTER's clock); the engine works in
integer nanoseconds so that latencies add exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import Broker, DataSource, Strategy

US_TZ = "America/New_York"
NO_QUOTE = -(1 << 62)     # a compiled quote rule's "no quote on this side"


@dataclasses.dataclass(frozen=True, eq=False)
class OrderBook:
    """Level-2 snapshots and trades of one instrument over one session.

    ``time`` (T,) seconds after midnight, non-decreasing; ``bid_price``/``bid_size``/
    ``ask_price``/``ask_size`` (T x L) best level first, NaN price and 0 size where a level is
    empty. Trades: ``trade_row`` (M,) the snapshot row at which the trade is known (the book
    after it), non-decreasing; ``trade_price``, ``trade_size``; ``trade_sign`` +1 when the buyer
    was the aggressor, -1 the seller. A decision at row ``k`` may use rows ``[0, k]`` and the
    trades with ``trade_row <= k``.
    """

    time: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray
    trade_row: np.ndarray
    trade_price: np.ndarray
    trade_size: np.ndarray
    trade_sign: np.ndarray
    symbol: str = "LOB"
    date: Optional[str] = None
    tz: str = US_TZ

    def __post_init__(self) -> None:
        T = self.time.shape[0]
        for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != T or arr.shape != self.bid_price.shape:
                raise ValueError(f"OrderBook.{name} has shape {arr.shape}, expected "
                                 f"({T}, levels) like bid_price {self.bid_price.shape}")
        M = self.trade_row.shape[0]
        for name in ("trade_price", "trade_size", "trade_sign"):
            if getattr(self, name).shape != (M,):
                raise ValueError(f"OrderBook.{name} has shape {getattr(self, name).shape}, "
                                 f"expected ({M},) like trade_row")
        if T and np.any(np.diff(self.time) < 0):
            raise ValueError("OrderBook.time must be non-decreasing")
        if M and (np.any(np.diff(self.trade_row) < 0) or self.trade_row[-1] >= T
                  or self.trade_row[0] < 0):
            raise ValueError("OrderBook.trade_row must be non-decreasing row numbers of the book")

    # -- shape ------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.time.shape[0])

    @property
    def levels(self) -> int:
        return int(self.bid_price.shape[1])

    @property
    def trade_time(self) -> np.ndarray:
        return self.time[self.trade_row]

    # -- derived quotes ---------------------------------------------------------------------
    @property
    def mid(self) -> np.ndarray:
        return (self.bid_price[:, 0] + self.ask_price[:, 0]) / 2.0

    @property
    def spread(self) -> np.ndarray:
        return self.ask_price[:, 0] - self.bid_price[:, 0]

    @property
    def microprice(self) -> np.ndarray:
        """Size-weighted mid: ``(ask * bid_size + bid * ask_size) / (bid_size + ask_size)``;
        it leans toward the side whose queue is smaller (the side likely to move first)."""
        qb, qa = self.bid_size[:, 0], self.ask_size[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.ask_price[:, 0] * qb + self.bid_price[:, 0] * qa) / (qb + qa)

    # -- views and clocks -------------------------------------------------------------------
    def view(self, end: int) -> "OrderBook":
        """The first ``end`` rows and the trades known by then."""
        return self.window(0, end)

    def window(self, start: int, end: int) -> "OrderBook":
        """Rows ``[start, end)`` and their trades (``trade_row`` counted from ``start``). Slices
        of a checked book need no checks: built without them, so a strategy may take one at
        every event."""
        lo = int(np.searchsorted(self.trade_row, start, side="left"))
        hi = int(np.searchsorted(self.trade_row, end, side="left"))
        out = object.__new__(OrderBook)
        values = out.__dict__
        values.update(self.__dict__)
        for name in ("time", "bid_price", "bid_size", "ask_price", "ask_size"):
            values[name] = values[name][start:end]
        for name in ("trade_price", "trade_size", "trade_sign"):
            values[name] = values[name][lo:hi]
        values["trade_row"] = self.trade_row[lo:hi] - start if start else self.trade_row[lo:hi]
        return out

    def rows_at(self, seconds: np.ndarray) -> np.ndarray:
        """The last row at or before each clock time (seconds after midnight); -1 if none."""
        return np.searchsorted(self.time, np.asarray(seconds, dtype=float), side="right") - 1

    def decision_rows(self, every: float, start: Optional[float] = None,
                      end: Optional[float] = None) -> np.ndarray:
        """Rows at a regular clock grid of ``every`` seconds (the book as it stood then)."""
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.int64)
        lo = self.time[0] if start is None else start
        hi = self.time[-1] if end is None else end
        grid = np.arange(np.ceil(lo / every) * every, hi + 1e-9, every)
        rows = self.rows_at(grid)
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def timestamps(self) -> pd.DatetimeIndex:
        """Row times as tz-aware stamps (needs ``date``)."""
        if self.date is None:
            raise ValueError("OrderBook.date is not set: times are seconds after midnight")
        base = pd.Timestamp(self.date)
        return (base + pd.to_timedelta(self.time, unit="s")).tz_localize(self.tz)


# ---------------------------------------------------------------- contracts

class EventSource(DataSource):
    """Event data: ``load()`` returns one ``OrderBook``; ``chunks()`` streams it in pieces of
    about ``chunk_rows`` rows (a file larger than memory), in time order. The default reads it
    whole; a file reader overrides ``chunks``."""

    chunk_rows: Optional[int] = None

    def load(self) -> OrderBook:  # type: ignore[override]
        raise NotImplementedError

    def chunks(self) -> Iterator[OrderBook]:
        yield self.load()


class EventStrategy(Strategy):
    """A strategy on order-book events, called by the event engine every ``interval`` seconds
    of the replay's clock (from the first event's time, rounded down to the interval).

    ``decide(ctx)`` reads ``ctx.book`` (an ``OrderBook``) at row ``ctx.row``: the last event
    the strategy has received (feed latency applied); rows after it are never shown. It reads
    its own state (``ctx.position``, ``ctx.cash``, ``ctx.orders``: the open orders it knows of,
    each with ``id``, ``side``, ``price``, ``leaves``) and acts through ``ctx.buy(price, qty)``,
    ``ctx.sell(price, qty)`` (limit orders), ``ctx.market(qty)`` (signed) and ``ctx.cancel(id)``.
    ``history`` is how many seconds of past events ``decide`` reads at most (the engine keeps
    that much when it streams a file in chunks). Truncation invariance: the actions at a
    decision are the same whether the replay stops there or runs on (tested for every one).
    """

    interval: float = 1.0
    history: float = 0.0

    def decide(self, ctx) -> None:
        raise NotImplementedError

    def quote_kernel(self) -> Optional[tuple]:
        """A quoting strategy's decision compiled with numba, or None (``decide`` is called).

        ``(rule, params, qty)``: ``rule(time, bid_price, bid_size, ask_price, ask_size,
        trade_row, trade_price, trade_size, trade_sign, position, tick, params)``, compiled
        with ``quote_signature()``, reads the book up to the last row received (the arrays end
        there: no later row is passed) and returns the ``(bid, ask)`` it wants to show in
        ticks, ``NO_QUOTE`` for a side not quoted. The engine then does what ``decide`` would:
        per side it keeps the first open order (not being cancelled) at the wanted price,
        cancels the others, and sends a limit order of ``qty`` at ``ticks * tick`` (rounded to
        10 decimals) when none is kept. The whole replay then runs compiled, with the same
        results as through ``decide`` (``tests/pipeline/lob/test_compiled_loop.py``).
        """
        return None

    def target_kernel(self) -> Optional[tuple]:
        """A taker's decision compiled with numba, or None: ``(rule, params)`` with ``rule``
        of ``target_signature()`` (the arguments of a quote rule) returning the position it
        wants. The engine does what a taker's ``decide`` does: while it knows of no open order,
        a wanted position other than the current one is reached with one market order."""
        return None

    def signal(self, data, at: np.ndarray) -> np.ndarray:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} trades order-book events: run it on event "
                                  f"data (data=lob_synthetic or data=lobster)")


def quote_signature():
    """The numba signature of a compiled quote rule (``EventStrategy.quote_kernel``); numba
    loads only when an event run asks for it."""
    from numba import types

    return types.UniTuple(types.int64, 2)(*_rule_arguments())


def target_signature():
    """The numba signature of a compiled taker rule (``EventStrategy.target_kernel``)."""
    from numba import types

    return types.float64(*_rule_arguments())


def _rule_arguments() -> tuple:
    """time, bid/ask price and size, trades (row, price, size, sign), position, tick, params."""
    from numba import types

    f1, f2, i1 = types.float64[::1], types.float64[:, ::1], types.int64[::1]
    return f1, f2, f2, f2, f2, i1, f1, f1, f1, types.float64, types.float64, f1


class ExchangeModel(Broker):
    """How the simulated venue fills event strategies' orders (the broker of an event run).

    Latency (seconds): ``feed_latency`` (exchange event -> strategy), ``entry_latency``
    (strategy -> exchange) and ``response_latency`` (exchange fill or ack -> strategy), each
    constant or, with ``latency="lognormal"``, drawn per order (entry and response) around its
    value with log-dispersion ``latency_sigma``. ``queue``: where a resting limit order stands
    (``risk_averse`` or ``power_prob``, see ``pipeline/lob/kernel.py``); ``queue_power`` the
    exponent of the probabilistic model; ``partial_fills`` False fills an order whole once it
    is reached (hftbacktest's no-partial-fill exchange). Fees per side as a fraction of notional in basis
    points (negative: a rebate) plus per share; ``tick`` the price grid.
    """

    feed_latency: float = 0.0
    entry_latency: float = 0.0
    response_latency: float = 0.0
    latency: str = "constant"
    latency_sigma: float = 0.0
    queue: str = "risk_averse"
    queue_power: float = 2.0
    partial_fills: bool = True
    maker_fee_bps: float = 0.0
    taker_fee_bps: float = 0.0
    maker_fee_per_share: float = 0.0
    taker_fee_per_share: float = 0.0
    tick: float = 0.01
    max_orders: int = 64
