"""A stop-loss: a stop order a fixed distance below a long's entry (above a short's)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import ExitRule
from pipeline.core.exits import ExitLevels
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderType
from plugins.exits._distance import Distance


class StopLoss(ExitRule):
    """Exit when the price falls ``pct`` below the entry (rises above, short), or ``atr``
    times the average true range over ``atr_window`` bars known at the entry's decision.
    The level is fixed at entry; ``trailing_stop`` is the one that follows the price."""

    def __init__(self, pct: Optional[float] = None, atr: Optional[float] = None,
                 atr_window: int = 14, sleeves: Optional[list] = None,
                 cooldown: Optional[int] = None) -> None:
        self.pct, self.atr, self.atr_window = pct, atr, atr_window
        self.sleeves, self.cooldown = sleeves, cooldown
        self.distance_ = Distance("stop_loss", pct, atr, atr_window)

    def prepare(self, data: MarketData) -> None:
        self.distance_.prepare(data)

    def levels(self, side, entry, bar, columns) -> ExitLevels:
        stop = np.asarray(entry, dtype=float) - np.asarray(side) * self.distance_.price(entry, bar, columns)
        return ExitLevels(rule="stop_loss", type=OrderType.STOP,
                          stop=np.where(stop > 0, stop, np.nan))
