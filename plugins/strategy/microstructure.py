"""Microstructure signals from level-2 quotes and trades: queue imbalance, microprice and
trade-flow imbalance, for intraday horizons (seconds to minutes)."""

from __future__ import annotations

import functools
from typing import Literal, Optional

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.lob import EventStrategy, target_signature

KINDS = ("combined", "imbalance", "microprice", "trade_flow")


class Microstructure(EventStrategy):
    """Short-horizon direction from the limit order book.

    ``signal(book, at)`` reads an order book (``plugins.data.lobster.OrderBook``: best-first
    bid/ask prices and sizes per level, and signed trades; read from LOBSTER files with
    ``read_lobster`` or simulated with ``plugins.data.lob_synthetic.synthetic_book``) at decision
    rows ``at`` and returns a ``len(at) x 1`` array (one instrument per book). Row ``i`` uses
    book rows ``[0, at[i]]`` and the trades known by then only. The components, each in [-1, 1]:

    - ``imbalance``: depth imbalance over the first ``levels`` levels,
      ``sum_l w_l (bid_l - ask_l) / sum_l w_l (bid_l + ask_l)`` with ``w_l = decay^(l-1)``;
      at one level it is the queue imbalance of Gould & Bonart (2016, "Queue imbalance as a
      one-tick-ahead price predictor in a limit order book"; also Cartea, Jaimungal & Penalva
      2015), which predicts the sign of the next mid-price move.
    - ``microprice``: the size-weighted mid ``(ask q_bid + bid q_ask) / (q_bid + q_ask)``
      minus the mid, in half-spreads (the first-order micro-price of Stoikov 2018); it moves
      toward the side with the smaller queue. In half-spreads it equals the level-1 queue
      imbalance, so ``combined`` leans on the best level twice (through ``imbalance`` too).
    - ``trade_flow``: signed traded volume over total traded volume in the last
      ``flow_window`` seconds (buyer-initiated positive): the trade imbalance of Chordia &
      Subrahmanyam (2004); Cont, Kukanov & Stoikov (2014) extend it to limit orders and
      cancellations (order-flow imbalance).

    ``kind="combined"`` is the mean of the three. Values with ``|s| < threshold`` become 0
    (no trade on a weak signal). Positive means buy.

    As a taker on event data (``python run.py data=lob_synthetic strategy=microstructure``):
    every ``interval`` seconds the signal of the book as received sets a target position of
    ``signal * max_position`` shares (in whole ``lot``s), reached with a market order (none
    while an order is still open). From Python, ``signal(book, rows)`` scores many rows at once::

        from plugins.data.lobster import read_lobster
        from plugins.strategy.microstructure import Microstructure

        book = read_lobster("AAPL_2012-06-21_34200000_57600000_message_10.csv",
                            "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
        rows = book.decision_rows(every=1.0)          # the book as it stood each second
        score = Microstructure(kind="combined", levels=3).signal(book, rows)[:, 0]
    """

    rules = {"levels": "[1, inf)", "decay": "(0, 1]", "flow_window": "(0, inf)",
             "threshold": "[0, 1)", "interval": "(0, inf)", "max_position": "(0, inf)", "lot": "(0, inf)"}

    def __init__(self, kind: Literal["imbalance", "microprice", "trade_flow", "combined"] = "combined",
                 levels: int = 3, decay: float = 0.5, flow_window: float = 30.0,
                 threshold: float = 0.0, interval: float = 1.0, max_position: float = 500.0,
                 lot: float = 100.0) -> None:
        self.kind = kind
        self.levels = levels
        self.decay = decay
        self.flow_window = flow_window
        self.threshold = threshold
        self.interval = interval
        self.max_position = max_position
        self.lot = lot

    @property
    def history(self) -> float:
        return self.flow_window

    def decide(self, ctx) -> None:
        if ctx.orders:
            return
        book, row = ctx.book, ctx.row
        # the rows the trade-flow window can reach, so a decision costs the same at any depth
        lo = int(np.searchsorted(book.time, book.time[row] - self.flow_window, side="right"))
        lo = min(lo, row)
        s = float(self.signal(book.window(lo, row + 1), np.array([row - lo]))[0, 0])
        target = round(s * self.max_position / self.lot) * self.lot
        if target != ctx.position:
            ctx.market(target - ctx.position)

    def target_kernel(self) -> Optional[tuple]:
        """``decide``'s target compiled (``_target``), with the level weights computed here as
        ``components`` computes them; None for a subclass that changes them in Python."""
        if any(getattr(type(self), f) is not getattr(Microstructure, f) for f in ("decide", "components", "signal")):
            return None
        head = [KINDS.index(self.kind), self.flow_window, self.threshold, self.max_position, self.lot]
        return _compiled(), np.array(head + list(self.decay ** np.arange(self.levels)), float)

    def components(self, book, at: np.ndarray) -> dict[str, np.ndarray]:
        """The three signals at rows ``at`` (each of length ``len(at)``)."""
        if not all(hasattr(book, f) for f in ("bid_size", "ask_size", "trade_row", "time")):
            raise DataError(f"the microstructure strategy needs an order book (level-2 quotes and "
                            f"trades, plugins.data.lobster.OrderBook), got "
                            f"{type(book).__name__}; daily bars carry no book: load LOBSTER files "
                            f"with plugins.data.lobster.read_lobster and call signal(book, rows)")
        at = np.asarray(at, dtype=np.int64)
        if at.size and (at.min() < 0 or at.max() >= book.time.shape[0]):
            raise ValueError(f"decision rows must be in [0, {book.time.shape[0] - 1}]")
        L = min(self.levels, book.bid_size.shape[1])
        w = self.decay ** np.arange(L)
        qb = np.nan_to_num(book.bid_size[at, :L]) @ w
        qa = np.nan_to_num(book.ask_size[at, :L]) @ w
        with np.errstate(invalid="ignore", divide="ignore"):
            imbalance = np.where(qb + qa > 0, (qb - qa) / (qb + qa), 0.0)
            b1, a1 = book.bid_size[at, 0], book.ask_size[at, 0]
            pb, pa = book.bid_price[at, 0], book.ask_price[at, 0]
            micro = (pa * b1 + pb * a1) / (b1 + a1)
            half = (pa - pb) / 2.0
            micro_dev = (micro - (pa + pb) / 2.0) / half
        micro_dev = np.where(np.isfinite(micro_dev), micro_dev, 0.0)
        # trades known at row k: trade_row <= k; within (time[k] - window, time[k]]
        csum_signed = np.concatenate([[0.0], np.cumsum(book.trade_sign * book.trade_size)])
        csum_total = np.concatenate([[0.0], np.cumsum(book.trade_size)])
        hi = np.searchsorted(book.trade_row, at, side="right")
        trade_time = book.time[book.trade_row]
        lo = np.searchsorted(trade_time, book.time[at] - self.flow_window, side="right")
        lo = np.minimum(lo, hi)
        signed = csum_signed[hi] - csum_signed[lo]
        total = csum_total[hi] - csum_total[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            flow = np.where(total > 0, signed / total, 0.0)
        return {"imbalance": imbalance, "microprice": micro_dev, "trade_flow": flow}

    def signal(self, book, at: np.ndarray) -> np.ndarray:
        parts = self.components(book, at)
        if self.kind == "combined":
            s = (parts["imbalance"] + parts["microprice"] + parts["trade_flow"]) / 3.0
        else:
            s = parts[self.kind]
        s = np.where(np.abs(s) < self.threshold, 0.0, s)
        return s[:, None]


def _target(time, bid_price, bid_size, ask_price, ask_size, trade_row, trade_price, trade_size, trade_sign,
            position, tick, params):
    """``Microstructure.decide``'s target position, line for line with ``components`` on the
    window ``decide`` takes (numba); the book ends at the last row received."""
    kind, window, threshold, max_position, lot = params[:5]
    row = time.shape[0] - 1
    lo = min(np.searchsorted(time, time[row] - window, side="right"), row)
    L = min(params.shape[0] - 5, bid_size.shape[1])
    w = params[5: 5 + L]
    qb = np.dot(np.nan_to_num(bid_size[row, :L]), w)            # BLAS ddot, as numpy's (1, L) @ (L,)
    qa = np.dot(np.nan_to_num(ask_size[row, :L]), w)
    imbalance = (qb - qa) / (qb + qa) if qb + qa > 0 else 0.0
    b1, a1, pb, pa = bid_size[row, 0], ask_size[row, 0], bid_price[row, 0], ask_price[row, 0]
    micro = (pa * b1 + pb * a1) / (b1 + a1)
    micro = (micro - (pa + pb) / 2.0) / ((pa - pb) / 2.0)
    micro = micro if np.isfinite(micro) else 0.0
    first = np.searchsorted(trade_row, lo, side="left")          # the window's trades, summed from its start
    signed = np.cumsum(trade_sign[first:] * trade_size[first:])
    total = np.cumsum(trade_size[first:])
    hi = trade_row.shape[0] - first
    start = min(np.searchsorted(time[trade_row[first:]], time[row] - window, side="right"), hi)
    s_signed = (signed[hi - 1] if hi > 0 else 0.0) - (signed[start - 1] if start > 0 else 0.0)
    s_total = (total[hi - 1] if hi > 0 else 0.0) - (total[start - 1] if start > 0 else 0.0)
    flow = s_signed / s_total if s_total > 0 else 0.0
    s = ((imbalance + micro + flow) / 3.0 if kind == 0 else imbalance if kind == 1
         else micro if kind == 2 else flow)
    if abs(s) < threshold:
        s = 0.0
    return np.rint(s * max_position / lot) * lot + 0.0        # + 0.0: round() gives 0, never -0


@functools.lru_cache(maxsize=None)
def _compiled():
    from numba import njit

    return njit(target_signature(), cache=True, error_model="numpy")(_target)
