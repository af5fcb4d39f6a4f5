"""Hold every symbol that has a price."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData


class BuyAndHold(Strategy):
    """Long every symbol with a price at the decision bar (signal 1, else 0).

    The allocation stage sizes the positions and the schedule decides when they are reset:
    with ``schedule.rebalance=once`` this is literal buy-and-hold; with a periodic schedule
    and ``allocation=equal_weight`` it is the rebalanced equal-weight portfolio.
    """

    def __init__(self) -> None:
        pass

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        return np.isfinite(data.close[at]).astype(np.float64)
