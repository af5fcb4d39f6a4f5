"""A market maker on the order book: Avellaneda-Stoikov quotes with inventory limits."""

from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from pipeline.core.lob import NO_QUOTE, EventStrategy, quote_signature


class MarketMaker(EventStrategy):
    """Quotes a bid and an ask around an inventory-skewed reservation price every ``interval``
    seconds (Avellaneda & Stoikov 2008, "High-frequency trading in a limit order book"):

        reservation  r = mid - q * gamma * sigma^2 * horizon
        spread       delta_a + delta_b = gamma * sigma^2 * horizon + (2 / gamma) * ln(1 + gamma / kappa)

    with ``q`` the inventory in quotes (position / ``order_qty``), ``sigma^2`` the mid's variance
    per second over the last ``vol_window`` seconds (its realised variance; ``sigma`` when set),
    ``horizon`` the seconds over which inventory risk is counted (a rolling horizon, so the quotes
    do not change as a session ends) and ``kappa`` the decay of fill intensity with distance from
    the mid (per dollar). Bids are rounded down and asks up to the tick, and never cross the
    book (a quote inside the spread joins as the new best). At ``max_inventory`` shares long it
    stops bidding, short it stops offering (quotes already resting may take it one quote past). A quote already resting at the wanted price is kept
    (its queue place is worth keeping); a quote at another price is cancelled and replaced.
    """

    rules = {"interval": "(0, inf)", "gamma": "(0, inf)", "kappa": "(0, inf)", "horizon": "[0, inf)",
             "sigma": "(0, inf)", "vol_window": "(0, inf)", "order_qty": "(0, inf)",
             "max_inventory": "(0, inf)"}

    def __init__(self, interval: float = 0.1, gamma: float = 0.1, kappa: float = 200.0,
                 horizon: float = 60.0, sigma: Optional[float] = None, vol_window: float = 60.0,
                 order_qty: float = 100.0, max_inventory: float = 1000.0) -> None:
        self.interval = interval
        self.gamma = gamma
        self.kappa = kappa
        self.horizon = horizon
        self.sigma = sigma
        self.vol_window = vol_window
        self.order_qty = order_qty
        self.max_inventory = max_inventory

    @property
    def history(self) -> float:
        return self.vol_window

    def variance(self, book, row: int) -> float:
        """The mid's realised variance per second over ``(t - vol_window, t]``."""
        if self.sigma is not None:
            return self.sigma ** 2
        t = book.time
        lo = int(np.searchsorted(t, t[row] - self.vol_window, side="right"))
        mid = (book.bid_price[lo: row + 1, 0] + book.ask_price[lo: row + 1, 0]) / 2
        moves = np.diff(mid[np.isfinite(mid)])
        return float(moves @ moves) / self.vol_window

    def quotes(self, book, row: int, position: float, tick: float) -> tuple[float, float]:
        """The (bid, ask) to show; NaN for a side not quoted."""
        bid, ask = float(book.bid_price[row, 0]), float(book.ask_price[row, 0])
        if not (math.isfinite(bid) and math.isfinite(ask)):
            return math.nan, math.nan
        var = self.variance(book, row)
        q = position / self.order_qty
        r = (bid + ask) / 2 - q * self.gamma * var * self.horizon
        half = (self.gamma * var * self.horizon + 2.0 / self.gamma * math.log1p(self.gamma / self.kappa)) / 2
        my_bid = min(math.floor((r - half) / tick + 1e-9), round(bid / tick)) * tick
        my_ask = max(math.ceil((r + half) / tick - 1e-9), round(ask / tick)) * tick
        if position >= self.max_inventory:
            my_bid = math.nan
        if position <= -self.max_inventory:
            my_ask = math.nan
        return round(my_bid, 10), round(my_ask, 10)

    def quote_kernel(self) -> Optional[tuple]:
        """``quotes`` compiled (``_quotes``), for the engine's compiled loop; the constants are
        computed here as ``quotes`` computes them, so both give the same ticks. None for a
        subclass that changes the quotes or the decision in Python (they are what runs)."""
        if any(getattr(type(self), f) is not getattr(MarketMaker, f) for f in ("decide", "quotes", "variance")):
            return None
        params = np.array([math.nan if self.sigma is None else self.sigma ** 2, self.vol_window,
                           self.order_qty, self.gamma, self.horizon,
                           2.0 / self.gamma * math.log1p(self.gamma / self.kappa), self.max_inventory], float)
        return _compiled(), params, float(self.order_qty)

    def decide(self, ctx) -> None:
        want = self.quotes(ctx.book, ctx.row, ctx.position, ctx.tick)
        for side, price in ((1, want[0]), (-1, want[1])):
            mine = [o for o in ctx.orders if o.side == side]
            keep = [o for o in mine if not o.cancelling and abs(o.price - price) < ctx.tick / 2]
            for o in mine:
                if o not in keep[:1]:
                    ctx.cancel(o.id)
            if not keep and math.isfinite(price):
                (ctx.buy if side > 0 else ctx.sell)(price, self.order_qty)


def _quotes(time, bid_price, bid_size, ask_price, ask_size, trade_row, trade_price, trade_size, trade_sign,
            position, tick, params):
    """``MarketMaker.quotes`` in ticks, line for line (numba); the book ends at the last row received."""
    var, window, order_qty, gamma, horizon, spread, max_inventory = params[:7]
    row = time.shape[0] - 1
    bid, ask = bid_price[row, 0], ask_price[row, 0]
    if not (np.isfinite(bid) and np.isfinite(ask)):
        return NO_QUOTE, NO_QUOTE
    if np.isnan(var):
        lo = np.searchsorted(time, time[row] - window, side="right")
        mid = (bid_price[lo: row + 1, 0] + ask_price[lo: row + 1, 0]) / 2
        moves = np.diff(mid[np.isfinite(mid)])
        var = np.dot(moves, moves) / window        # BLAS, as numpy's ``moves @ moves``
    q = position / order_qty
    r = (bid + ask) / 2 - q * gamma * var * horizon
    half = (gamma * var * horizon + spread) / 2
    my_bid = min(math.floor((r - half) / tick + 1e-9), int(np.rint(bid / tick)))
    my_ask = max(math.ceil((r + half) / tick - 1e-9), int(np.rint(ask / tick)))
    if position >= max_inventory:
        my_bid = NO_QUOTE
    if position <= -max_inventory:
        my_ask = NO_QUOTE
    return my_bid, my_ask


@functools.lru_cache(maxsize=None)
def _compiled():
    from numba import njit

    return njit(quote_signature(), cache=True)(_quotes)
