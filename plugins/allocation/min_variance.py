"""Minimum variance: the fully invested portfolio with the least variance, within bounds."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod
from pipeline.core.params import Window
from plugins.allocation._common import (WINDOW_RULES, WindowAllocator, check_bounds,
                                        check_history, weight_bounds)
from plugins.allocation._solvers import box_qp, budget_start, solve_pd


class MinVariance(WindowAllocator):
    """``argmin w'Sigma w`` subject to ``sum(w) = 1`` and ``min_weight <= w_i <= max_weight``.

    - Unconstrained (``min_weight: null`` and ``max_weight: null``): the closed form
      ``w = Sigma^-1 1 / (1'Sigma^-1 1)`` (Merton, "An analytic derivation of the efficient
      portfolio frontier", JFQA 1972). Weights may then be negative, i.e. oppose their side,
      and the gross exceeds 1 while the net (in the sides' direction) is 1.
    - Bounded (the default, long-only ``[0, 1]``): a QP solved by a primal active-set method
      (``plugins.allocation._solvers.box_qp``), exact to rounding; ``null`` leaves that side
      unbounded. Bounds that no fully invested portfolio of the ``m`` eligible columns can
      meet are relaxed to ``1/m`` (see ``weight_bounds``).

    Bounds are on weights in each position's direction (``min_weight >= 0`` keeps every
    weight on its side). A singular covariance gets the smallest ridge that makes it
    positive definite, so duplicated columns split their weight evenly.
    """

    rules = {**WINDOW_RULES, "min_weight": "[-1, 1]", "max_weight": "(0, inf)"}

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf", halflife: float = 63.0,
                 min_weight: Optional[float] = 0.0, max_weight: Optional[float] = 1.0) -> None:
        check_history(lookback, min_history)
        check_bounds(min_weight, max_weight)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife
        self.min_weight = min_weight
        self.max_weight = max_weight

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        cov = self._covariance(P)
        m = cov.shape[0]
        if self.min_weight is None and self.max_weight is None:
            x = solve_pd(cov, np.ones(m))
            return x / x.sum()
        lo, hi = weight_bounds(self.min_weight, self.max_weight, m)
        return box_qp(cov, np.zeros(m), lo, hi, budget_start(prev, lo, hi), total=1.0)
