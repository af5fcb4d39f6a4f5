"""A time stop: close a position after it has been held a number of bars."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import ExitRule
from pipeline.core.errors import ConfigError
from pipeline.core.exits import ExitLevels
from pipeline.core.orders import OrderType


class TimeStop(ExitRule):
    """Exit in the closing auction of the ``bars``-th bar the position is held (the entry's
    session counts as the first), whatever the price did."""

    def __init__(self, bars: int = 20, sleeves: Optional[list] = None,
                 cooldown: Optional[int] = None) -> None:
        if not (isinstance(bars, int) and not isinstance(bars, bool) and bars >= 1):
            raise ConfigError(f"exits.time_stop.bars={bars!r}: a whole number of bars >= 1")
        self.bars = bars
        self.sleeves, self.cooldown = sleeves, cooldown

    def levels(self, side, entry, bar, columns) -> ExitLevels:
        return ExitLevels(rule="time_stop", type=OrderType.MARKET_ON_CLOSE,
                          after=np.full(np.shape(entry), self.bars, dtype=np.int64))
