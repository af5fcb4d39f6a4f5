"""Cap the absolute weight of any one symbol."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext
from pipeline.core.weights import cap


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
        bound = (np.abs(weights) > self.limit * (1 + 1e-12)).any(axis=1)
        if not bound.any():
            return weights, bound
        out = weights.copy()
        out[bound] = cap(weights[bound], self.limit, self.redistribute)
        return out, bound
