"""A trailing stop: a stop that follows the best price since entry and never moves back."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import ExitRule
from pipeline.core.exits import ExitLevels
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderType
from plugins.exits._distance import Distance


class TrailingStop(ExitRule):
    """Exit when the price falls ``pct`` (a fraction) or ``amount`` (a price) below the
    highest price since entry (rises above the lowest, short), or ``atr`` times the average
    true range over ``atr_window`` bars known at the entry's decision (a fixed amount from
    then on, as a broker's trailing stop holds it)."""

    def __init__(self, pct: Optional[float] = None, amount: Optional[float] = None,
                 atr: Optional[float] = None, atr_window: int = 14,
                 sleeves: Optional[list] = None, cooldown: Optional[int] = None) -> None:
        self.pct, self.amount, self.atr, self.atr_window = pct, amount, atr, atr_window
        self.sleeves, self.cooldown = sleeves, cooldown
        self.distance_ = Distance("trailing_stop", pct, atr, atr_window, amount, allow_amount=True)

    def prepare(self, data: MarketData) -> None:
        self.distance_.prepare(data)

    def levels(self, side, entry, bar, columns) -> ExitLevels:
        n = np.shape(entry)
        if self.pct is not None:
            return ExitLevels(rule="trailing_stop", type=OrderType.TRAILING_STOP,
                              trail_percent=np.full(n, float(self.pct)))
        amount = self.distance_.price(entry, bar, columns)
        return ExitLevels(rule="trailing_stop", type=OrderType.TRAILING_STOP,
                          trail_amount=np.where(amount > 0, amount, np.nan))
