"""Skip trades too small to be worth their costs."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Book, Constraint


class MinTrade(Constraint):
    """No trade smaller than ``threshold`` of equity: ``|target_i - current_i| < threshold``
    keeps the current weight of that name (``book.weights``, before trading).

    With ``close_out`` (the default) a trade that closes a position (target 0) is always
    made, however small, so a name the strategy dropped is sold rather than left as dust.
    Runs last (order 98), after the turnover cap: it only removes trades, so the turnover
    stays within the cap.
    """

    order = 98.0
    primary = "threshold"
    stateful = True
    rules = {"threshold": "(0, 1)"}

    def __init__(self, threshold: float = 0.005, close_out: bool = True) -> None:
        self.threshold = threshold
        self.close_out = close_out

    def apply_step(self, target: np.ndarray, book: Book) -> tuple[np.ndarray, bool]:
        current = np.nan_to_num(book.weights, nan=0.0, posinf=0.0, neginf=0.0)
        trade = np.abs(target - current)
        skip = (trade > 0) & (trade < self.threshold)
        if self.close_out:
            skip &= target != 0
        if not skip.any():
            return target, False
        return np.where(skip, current, target), True
