"""Cap the absolute weight of any one symbol."""

from __future__ import annotations

import numpy as np

from pipeline.contracts import Constraint, RiskContext


class MaxWeight(Constraint):
    """``|w_i| <= limit`` for every symbol.

    With ``redistribute`` (the default) the excess of capped names is handed to the uncapped
    ones in proportion to their weights, repeatedly, so the gross exposure is kept whenever
    ``limit x (number of holdings)`` allows it (the usual index-capping method); what cannot
    be placed stays in cash. Without it, weights are only clipped.
    """

    order = 20.0
    primary = "limit"
    rules = {"limit": "(0, 1]"}

    def __init__(self, limit: float = 0.25, redistribute: bool = True) -> None:
        self.limit = limit
        self.redistribute = redistribute

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        absw = np.abs(weights)
        bound = (absw > self.limit * (1 + 1e-12)).any(axis=1)
        if not bound.any():
            return weights, bound
        w = np.abs(weights[bound])
        gross = w.sum(axis=1, keepdims=True)
        capped = w >= self.limit
        w = np.minimum(w, self.limit)
        if self.redistribute:
            # each pass caps at least one more name, so N passes always suffice
            for _ in range(w.shape[1]):
                excess = gross - w.sum(axis=1, keepdims=True)
                free = np.where(capped, 0.0, w)
                room = free.sum(axis=1, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    w = np.where(capped | (room <= 0), w, w + excess * free / room)
                over = w > self.limit
                if not over.any():
                    break
                capped |= over
                w = np.minimum(w, self.limit)
        out = weights.copy()
        out[bound] = np.sign(weights[bound]) * w
        return out, bound
