"""A take-profit: a limit order a fixed distance above a long's entry (below a short's)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import ExitRule
from pipeline.core.exits import ExitLevels
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderType
from plugins.exits._distance import Distance


class TakeProfit(ExitRule):
    """Exit when the price rises ``pct`` above the entry (falls below, short), or ``atr``
    times the average true range over ``atr_window`` bars known at the entry's decision."""

    def __init__(self, pct: Optional[float] = None, atr: Optional[float] = None,
                 atr_window: int = 14, sleeves: Optional[list] = None,
                 cooldown: Optional[int] = None) -> None:
        self.pct, self.atr, self.atr_window = pct, atr, atr_window
        self.sleeves, self.cooldown = sleeves, cooldown
        self.distance_ = Distance("take_profit", pct, atr, atr_window)

    def prepare(self, data: MarketData) -> None:
        self.distance_.prepare(data)

    def levels(self, side, entry, bar, columns) -> ExitLevels:
        limit = np.asarray(entry, dtype=float) + np.asarray(side) * self.distance_.price(entry, bar, columns)
        return ExitLevels(rule="take_profit", type=OrderType.LIMIT,
                          limit=np.where(limit > 0, limit, np.nan))
