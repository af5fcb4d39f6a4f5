"""Risk parity: equal risk contribution (ERC) weights on the covariance of the window."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history
from plugins.allocation._solvers import risk_budget_weights


class RiskParity(WindowAllocator):
    """Long-only equal risk contribution: every column carries the same share of variance.

    ``w_i (Sigma w)_i / w'Sigma w = 1/m``, ``w > 0``, ``sum(w) = 1`` (Maillard, Roncalli &
    Teiletche, "The properties of equally weighted risk contribution portfolios", JPM 2010),
    solved by Newton's method on Spinu's (2013) convex formulation
    (``plugins.allocation._solvers.risk_budget_weights``) to 1e-11 relative in the risk
    contributions. ``weigh`` warm-starts each decision from the previous one's weights.

    Window handling (NaN rows, ``min_history`` fallback to equal weight, constant columns at
    weight 0, sides, singular covariance) is ``WindowAllocator``'s.
    """

    rules = WINDOW_RULES

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf", halflife: float = 63.0) -> None:
        check_history(lookback, min_history)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        m = P.shape[1]
        return risk_budget_weights(self._covariance(P), np.full(m, 1.0 / m), x0=prev)
