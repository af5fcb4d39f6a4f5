"""Scale the book down when its gross exposure exceeds a limit."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext


class MaxGrossLeverage(Constraint):
    """``sum |w_i| <= limit``: rows above the limit are scaled down proportionally."""

    order = 80.0
    primary = "limit"
    rules = {"limit": "(0, inf)"}

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = limit

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        gross = np.abs(weights).sum(axis=1)
        bound = gross > self.limit * (1 + 1e-12)
        if not bound.any():
            return weights, bound
        out = weights.copy()
        out[bound] *= (self.limit / gross[bound])[:, None]
        return out, bound
