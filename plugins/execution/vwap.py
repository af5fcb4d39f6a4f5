"""VWAP: slices in proportion to the forecast volume profile."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins, Orders
from plugins.execution._common import WINDOW_RULES, Scheduled, Window, check_window, volume_weights


class VWAP(Scheduled):
    """Each bin of the window gets the parent times the bin's share of the window's forecast
    volume (``Bins.forecast``: known before the session, never the volume the session then
    trades), so the average price tracks the interval's VWAP as far as the forecast does.
    Where no volume is forecast the slices are equal in time. Parameters ``start``, ``end``,
    ``limit_bps``, ``max_participation`` and ``min_slice`` are those of every scheduling
    algorithm (``plugins/execution/_common.py``)."""

    rules = dict(WINDOW_RULES)

    def __init__(self, start: float = 0.0, end: float = 1.0, limit_bps: Optional[float] = None,
                 max_participation: Optional[float] = None, min_slice: float = 0.0) -> None:
        check_window(start, end)
        self.start = start
        self.end = end
        self.limit_bps = limit_bps
        self.max_participation = max_participation
        self.min_slice = min_slice

    def schedule(self, orders: Orders, bins: Bins, window: Window) -> np.ndarray:
        return volume_weights(bins, window)
