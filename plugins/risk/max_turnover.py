"""Cap the trading of each rebalance."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Book, Constraint


class MaxTurnover(Constraint):
    """``sum_i |target_i - current_i| <= limit`` at each rebalance (weights of equity).

    A rebalance that would trade more moves only part of the way from the current weights
    (``book.weights``, before trading) to the target, along the straight line:
    ``current + (limit / turnover) x (target - current)``, so every name trades the same
    fraction of its intended trade and the trade is exactly ``limit``. The rest of the way
    is left to the following rebalances; a backtest starting in cash builds its book over
    ``1 / limit`` rebalances or so. Runs at order 95, after drawdown control (which it may
    slow) and before the minimum trade size (which only removes trades).
    """

    order = 95.0
    primary = "limit"
    stateful = True
    rules = {"limit": "(0, inf)"}

    def __init__(self, limit: float = 0.5) -> None:
        self.limit = limit

    def apply_step(self, target: np.ndarray, book: Book) -> tuple[np.ndarray, bool]:
        current = np.nan_to_num(book.weights, nan=0.0, posinf=0.0, neginf=0.0)
        trade = target - current
        turnover = float(np.abs(trade).sum())
        if not turnover > self.limit * (1 + 1e-12):
            return target, False
        return current + trade * (self.limit / turnover), True
