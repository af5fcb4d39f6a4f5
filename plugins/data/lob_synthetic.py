"""A seeded synthetic limit order book: queue dynamics in which imbalance and order flow matter.

The model is a small queue-reactive book (in the spirit of Cont & de Larrard 2013 and
Huang, Lehalle & Rosenbaum 2015), simple enough to read in one screen:

- Prices sit on a tick grid; ``levels`` queues per side are visible, the best bid and ask one
  tick apart at rest.
- Events arrive as a Poisson process (``rate`` per second). Each is a limit order (adds to a
  queue), a cancellation (removes from one) or a market order (removes from the best
  opposite queue and prints a trade). Limit orders and cancellations pick a level with
  probability halving per level away from the best.
- Market-order direction follows a persistent latent flow ``x`` in (-1, 1) (an AR(1) through
  ``tanh``): buys have probability ``(1 + informed * x) / 2``. Order flow is therefore
  autocorrelated, as in real markets (Lillo & Farmer 2004), and trade-flow imbalance carries
  information about the next moves.
- When the best ask queue is emptied (by trades or cancellations) the ask side steps up one
  tick and the next message is a new bid one tick higher: the mid moves up one tick in two
  half-tick steps, and the spread returns to one tick. An empty best bid moves it down. Since
  the smaller queue empties first more often, the queue imbalance predicts the next mid move.
- New levels coming into view and queue refills draw their sizes from a geometric law around
  ``depth`` lots. Order sizes are whole lots with a power-law tail (a Pareto law of exponent
  ``size_tail``, capped at ``max_lots``): most orders are one or two lots, a few are large,
  as in Gopikrishnan et al. (2000) and Maslov & Mills (2001).
- Activity follows the intraday U-shape (Admati & Pfleiderer 1988; Jain & Joh 1988): the event
  intensity is ``u_shape`` times higher at the open and the close of a ``session`` of seconds
  than at midday (a parabola, mean ``rate``), repeating for books longer than a session.

``synthetic_book`` returns the ``OrderBook`` and, with ``messages=True``, the LOBSTER-style
message table that produced it (so ``write_lobster`` / ``read_lobster`` round-trip it).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from pipeline.core.lob import EventSource, OrderBook

# event kinds, also LOBSTER message types
NEW, CANCEL, DELETE, EXECUTE = 1, 2, 3, 4


def synthetic_book(n_events: int = 20_000, levels: int = 5, seed: int = 7, price: float = 100.0,
                   tick: float = 0.01, lot: int = 100, depth: float = 6.0, rate: float = 20.0,
                   market_share: float = 0.2, cancel_share: float = 0.35, informed: float = 0.6,
                   persistence: float = 0.995, start: float = 34_200.0,
                   symbol: str = "SYN", date: Optional[str] = "2024-01-02",
                   size_tail: float = 2.0, max_lots: int = 100, u_shape: float = 2.0,
                   session: float = 23_400.0, messages: bool = False):
    """Simulate ``n_events`` order-book events (plus the refill message after each price move).

    Same ``seed``, same book. Returns an ``OrderBook`` with ``levels`` levels per side, or
    ``(book, messages)`` with ``messages=True`` (columns time, type, order_id, size, price,
    direction, as in a LOBSTER message file; prices in dollars).
    """
    if not 0 < market_share < 1 or not 0 <= cancel_share < 1 or market_share + cancel_share >= 1:
        raise ValueError("market_share and cancel_share must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    L = int(levels)
    n = int(n_events)
    # all randomness drawn up front (one stream per purpose, so changing one rule does not
    # reshuffle the others)
    gaps = rng.exponential(1.0 / rate, n)
    kind_u = rng.random(n)
    side_u = rng.random(n)
    level_u = rng.random(n)
    size_draw = np.minimum(np.floor(1.0 + rng.pareto(size_tail, n)), max_lots)
    shocks = rng.standard_normal(n)
    refill = rng.geometric(1.0 / depth, (n, 2))
    latent = np.empty(n)
    acc = 0.0
    scale = np.sqrt(1 - persistence ** 2)
    for k in range(n):
        acc = persistence * acc + scale * shocks[k]
        latent[k] = acc
    flow = np.tanh(latent)
    # level choice: P(level l) proportional to 2^-l
    level_cdf = np.cumsum(0.5 ** np.arange(L))
    level_cdf /= level_cdf[-1]
    levels_of = np.searchsorted(level_cdf, level_u, side="right")

    ticks = int(round(price / tick))          # best bid in ticks
    bid = [int(q) * lot for q in rng.geometric(1.0 / depth, L)]
    ask = [int(q) * lot for q in rng.geometric(1.0 / depth, L)]
    gap_ticks = 1                              # ask - bid in ticks (1 at rest, 2 transiently)

    cap = 2 * n + 1
    times = np.empty(cap)
    bp = np.empty((cap, L))
    bq = np.empty((cap, L))
    ap = np.empty((cap, L))
    aq = np.empty((cap, L))
    msg = np.empty((cap, 5))                   # type, size, price, direction, order id
    rows = 0
    trade_rows = []
    t = start
    order_id = 1

    def record(kind: int, size: int, px_ticks: int, direction: int) -> None:
        nonlocal rows
        times[rows] = t
        bp[rows] = (ticks - np.arange(L)) * tick
        ap[rows] = (ticks + gap_ticks + np.arange(L)) * tick
        bq[rows] = bid
        aq[rows] = ask
        msg[rows] = (kind, size, px_ticks * tick, direction, order_id)
        rows += 1

    for k in range(n):
        t += gaps[k]
        u = kind_u[k]
        buy_side = side_u[k] < 0.5
        lvl = int(levels_of[k])
        size = int(size_draw[k]) * lot
        order_id += 1
        if u < market_share:                   # market order
            buy = side_u[k] < (1.0 + informed * flow[k]) / 2.0
            queue = ask if buy else bid
            filled = min(size, queue[0])
            queue[0] -= filled
            px = ticks + gap_ticks if buy else ticks
            trade_rows.append(rows)
            depleted = queue[0] == 0
            if depleted:
                _step_away(queue, int(refill[k, 0]) * lot)
            if depleted and buy:
                gap_ticks += 1                  # ask stepped up
            elif depleted:
                ticks -= 1                      # bid stepped down
                gap_ticks += 1
            record(EXECUTE, filled, px, -1 if buy else 1)
            if depleted:
                t += gaps[k] * 1e-3
                _refill(buy, ask, bid, int(refill[k, 1]) * lot, L)
                if buy:
                    ticks += 1
                    gap_ticks -= 1
                    record(NEW, bid[0], ticks, 1)
                else:
                    gap_ticks -= 1
                    record(NEW, ask[0], ticks + gap_ticks, -1)
            continue
        queue = bid if buy_side else ask
        px = (ticks - lvl) if buy_side else (ticks + gap_ticks + lvl)
        direction = 1 if buy_side else -1
        if u < market_share + cancel_share:      # cancellation
            floor = 0 if lvl == 0 else lot       # inner levels keep at least one lot
            removed = min(size, queue[lvl] - floor)
            if removed <= 0:
                continue                         # nothing to cancel there: no event
            queue[lvl] -= removed
            if lvl > 0 or queue[0] > 0:
                record(CANCEL, removed, px, direction)
                continue
            # the best queue was cancelled away: that side steps back one tick ...
            _step_away(queue, int(refill[k, 0]) * lot)
            if buy_side:
                ticks -= 1
            gap_ticks += 1
            record(DELETE, removed, px, direction)
            # ... and the other side improves by one tick (a new order inside the spread)
            t += gaps[k] * 1e-3
            _refill(not buy_side, ask, bid, int(refill[k, 1]) * lot, L)
            gap_ticks -= 1
            if buy_side:
                record(NEW, ask[0], ticks + gap_ticks, -1)
            else:
                ticks += 1
                record(NEW, bid[0], ticks, 1)
            continue
        queue[lvl] += size                       # new limit order
        record(NEW, size, px, direction)

    times[:rows] = start + _clock(times[:rows] - start, u_shape, session)
    trade_rows_arr = np.asarray(trade_rows, dtype=np.int64)
    book = OrderBook(time=times[:rows].copy(), bid_price=bp[:rows].copy(),
                     bid_size=bq[:rows].copy(), ask_price=ap[:rows].copy(),
                     ask_size=aq[:rows].copy(), trade_row=trade_rows_arr,
                     trade_price=msg[trade_rows_arr, 2].copy(),
                     trade_size=msg[trade_rows_arr, 1].copy(),
                     trade_sign=-msg[trade_rows_arr, 3].copy(), symbol=symbol, date=date)
    if not messages:
        return book
    table = pd.DataFrame({"time": times[:rows], "type": msg[:rows, 0].astype(np.int64),
                          "order_id": msg[:rows, 4].astype(np.int64),
                          "size": msg[:rows, 1].astype(np.int64), "price": msg[:rows, 2],
                          "direction": msg[:rows, 3].astype(np.int64)})
    return book, table


def _step_away(queue: list, fresh: int) -> None:
    """The best queue is empty: the next level becomes the best, a new level comes into view."""
    del queue[0]
    queue.append(fresh)


def _refill(up: bool, ask: list, bid: list, fresh: int, L: int) -> None:
    """After the ask stepped up (``up``), a new best bid one tick higher; else a new best ask
    one tick lower. The opposite side's deepest visible level drops out of view."""
    side = bid if up else ask
    side.insert(0, fresh)
    del side[L:]


def _clock(business: np.ndarray, u: float, session: float) -> np.ndarray:
    """Business time (unit intensity) to clock time under the U-shaped intensity
    ``(1 + (u - 1) (2 tau / D - 1)^2) / m`` per session of ``D`` seconds (``m`` makes its mean
    one): the inverse of its integral, by interpolation on a fine grid."""
    if u == 1.0:
        return business
    tau = np.linspace(0.0, session, 4097)
    m = 1.0 + (u - 1.0) / 3.0
    cum = (tau + (u - 1.0) * session / 6.0 * ((2.0 * tau / session - 1.0) ** 3 + 1.0)) / m
    day, rest = np.divmod(business, session)
    return day * session + np.interp(rest, cum, tau)


class LOBSynthetic(EventSource):
    """The seeded synthetic book as event data (``data=lob_synthetic``); ``synthetic_book``
    documents the model and every parameter. ``seed`` follows the run's seed."""

    rules = {"n_events": "[1, inf)", "levels": "[1, inf)", "price": "(0, inf)", "tick": "(0, inf)",
             "lot": "[1, inf)", "depth": "(1, inf)", "rate": "(0, inf)", "informed": "[0, 1]",
             "persistence": "[0, 1)", "size_tail": "(0, inf)", "max_lots": "[1, inf)",
             "u_shape": "(0, inf)", "session": "(0, inf)"}
    caveats = ("a simulated book: its queues, spread and order flow follow a small queue-reactive "
               "model (plugins/data/lob_synthetic.py), not a real market",)

    def __init__(self, n_events: int = 20_000, levels: int = 5, seed: int = 7, price: float = 100.0,
                 tick: float = 0.01, lot: int = 100, depth: float = 6.0, rate: float = 20.0,
                 market_share: float = 0.2, cancel_share: float = 0.35, informed: float = 0.6,
                 persistence: float = 0.995, start: float = 34_200.0, symbol: str = "SYN",
                 date: Optional[str] = "2024-01-02", size_tail: float = 2.0, max_lots: int = 100,
                 u_shape: float = 2.0, session: float = 23_400.0) -> None:
        self.n_events = n_events
        self.levels = levels
        self.seed = seed
        self.price = price
        self.tick = tick
        self.lot = lot
        self.depth = depth
        self.rate = rate
        self.market_share = market_share
        self.cancel_share = cancel_share
        self.informed = informed
        self.persistence = persistence
        self.start = start
        self.symbol = symbol
        self.date = date
        self.size_tail = size_tail
        self.max_lots = max_lots
        self.u_shape = u_shape
        self.session = session

    def load(self) -> OrderBook:
        return synthetic_book(**self.get_params())
