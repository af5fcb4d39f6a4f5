"""Adaptive: a VWAP schedule that speeds up or slows down with the market, bin by bin."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins, Orders
from plugins.execution._common import WINDOW_RULES, Scheduled, Window, check_window, volume_weights

# share of a day's price variance that falls overnight, between the arrival (the close at the
# decision) and the session's open: US large caps are about 0.2-0.3
OVERNIGHT = 0.25
# bin prices are averages over their bins: differences of averages of a Brownian path have
# 2/3 of the variance of the points they stand for
AVERAGING = 1.5


class Adaptive(Scheduled):
    """Follows the forecast volume profile (VWAP) at a pace set, at the start of every bin,
    by an urgency computed from what is known then (bins before it, never the bin itself).

    In bin ``b`` it trades the fraction ``min(1, w_b / W_b * exp(u_b))`` of what remains,
    with ``w_b`` the bin's forecast share and ``W_b`` the forecast share left from ``b`` to
    the window's end (``u_b = 0`` for every bin is exactly VWAP), and everything left in the
    window's last bin. The urgency

        u_b = 4 ln 2 (urgency - 1/2)                  4x slower at 0, 4x faster at 1
            + price_weight * clip(z_b, -3, 3)         the price moved in the order's favour
            + vol_weight * ln(clip(r_b, 1/4, 4))      the session is more volatile than expected
            - spread_weight * clip(h / (s sqrt(d)), 0, 3)   the spread is wide against the risk

    where ``z_b = -side * ln(p_(b-1) / arrival) / (s sqrt(OVERNIGHT + t_b))`` is the move since
    arrival in units of the volatility expected since (overnight and the ``t_b`` of the session
    elapsed; positive when a buy got cheaper: aggressive in the money, locking in a good price
    before it goes), ``r_b`` the volatility of the bins' prices so far over the daily volatility
    ``s`` (a volatile session raises the risk of waiting; 1 before two bins have traded), and
    ``h / (s sqrt(d))`` the half-spread over the price risk of one bin of length ``d`` (crossing
    a wide spread often costs more than waiting risks). ``start``, ``end``, ``limit_bps``, ``max_participation`` and ``min_slice``
    are those of every scheduling algorithm (``plugins/execution/_common.py``).
    """

    rules = {**WINDOW_RULES, "urgency": "[0, 1]", "price_weight": "[0, 10]",
             "vol_weight": "[0, 10]", "spread_weight": "[0, 10]"}

    def __init__(self, urgency: float = 0.5, price_weight: float = 0.5, vol_weight: float = 0.5,
                 spread_weight: float = 1.0, start: float = 0.0, end: float = 1.0,
                 limit_bps: Optional[float] = None, max_participation: Optional[float] = None,
                 min_slice: float = 0.0) -> None:
        check_window(start, end)
        self.urgency = urgency
        self.price_weight = price_weight
        self.vol_weight = vol_weight
        self.spread_weight = spread_weight
        self.start = start
        self.end = end
        self.limit_bps = limit_bps
        self.max_participation = max_participation
        self.min_slice = min_slice

    def schedule(self, orders: Orders, bins: Bins, window: Window) -> np.ndarray:
        base = volume_weights(bins, window)
        left = np.cumsum(base[::-1], axis=0)[::-1]
        side, sigma, m = np.sign(orders.quantity), bins.sigma, orders.quantity.size
        n_bins = bins.elapsed.size
        duration = np.diff(bins.elapsed, prepend=0.0)[:, None]
        began = bins.elapsed[:, None] - duration
        middle = bins.elapsed[:, None] - duration / 2
        logp = np.log(bins.price)
        before = np.vstack([np.log(orders.arrival), logp[:-1]])  # the last price known at b
        # squared moves between bin prices seen before b, over the time they span
        seen = np.vstack([np.zeros((2, m)), np.cumsum(np.diff(logp, axis=0) ** 2, axis=0)])[:n_bins]
        spanned = np.vstack([[[0.0]], middle[:-1] - middle[0]])
        with np.errstate(invalid="ignore", divide="ignore"):
            z = -side * (before - before[0]) / (sigma * np.sqrt(began + OVERNIGHT))
            ratio = np.sqrt(AVERAGING * seen / spanned) / sigma
            spread = bins.half_spread / (sigma * np.sqrt(duration))
            ratio = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
            u = (4.0 * np.log(2.0) * (self.urgency - 0.5)
                 + self.price_weight * np.clip(np.nan_to_num(z), -3.0, 3.0)
                 + self.vol_weight * np.log(np.clip(ratio, 0.25, 4.0))
                 - self.spread_weight * np.clip(np.nan_to_num(spread, posinf=3.0), 0.0, 3.0))
            pace = np.where(left > 0, np.minimum(base / left * np.exp(u), 1.0), 0.0)
        pace[window.last] = 1.0
        remaining = np.vstack([np.ones((1, m)), np.cumprod(1.0 - pace, axis=0)[:-1]])
        return remaining * pace
