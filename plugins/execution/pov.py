"""POV: a fixed share of the market's volume in every bin until done."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins, Orders
from plugins.execution._common import WINDOW_RULES, Scheduled, Window, check_window


class POV(Scheduled):
    """Percent of volume: in each bin of the window the child is ``rate`` times the volume
    the bin trades (read as it prints, the way a POV algorithm follows the tape), until the
    parent is done; the broker holds the parent to ``rate`` of each bin's volume, so no bin
    ever sees more. A quiet session may leave part of the parent at the horizon: cancelled or
    swept, as the broker's ``unfilled`` says. ``start``, ``end``, ``limit_bps`` and
    ``min_slice`` are those of every scheduling algorithm (``plugins/execution/_common.py``).
    """

    rules = {**WINDOW_RULES, "rate": "(0, 1]"}

    def __init__(self, rate: float = 0.1, start: float = 0.0, end: float = 1.0,
                 limit_bps: Optional[float] = None, min_slice: float = 0.0) -> None:
        check_window(start, end)
        self.rate = rate
        self.start = start
        self.end = end
        self.limit_bps = limit_bps
        self.min_slice = min_slice

    def participation(self) -> Optional[float]:
        return self.rate

    def schedule(self, orders: Orders, bins: Bins, window: Window) -> np.ndarray:
        wanted = self.rate * bins.volume * window.mask[:, None] / np.abs(orders.quantity)
        return np.diff(np.minimum(wanted.cumsum(0), 1.0), axis=0, prepend=0.0)
