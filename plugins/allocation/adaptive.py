"""Adaptive: risk budgets tilted toward recent risk-adjusted performance, correlation-aware."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod, MeanMethod
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history
from plugins.allocation._solvers import risk_budget_weights

# beyond |t| = 4 a mean return is as established as it gets; the clip also bounds the
# spread of budgets at exp(8 x performance_weight), which keeps the risk-budget solve exact
_T_CLIP = 4.0


class Adaptive(WindowAllocator):
    """Risk budgeting whose budgets follow each column's recent risk-adjusted performance.

    At each decision, on the window's position returns (``n`` rows):

    1. performance: the t-statistic of each column's mean return,
       ``t_i = mu_i / sqrt(Sigma_ii / n)`` (``mu`` from ``expected_returns``, ``Sigma`` from
       ``covariance``), clipped to ``[-4, 4]``;
    2. budgets: ``b_i = exp(k t_i) / sum_j exp(k t_j)`` with ``k = performance_weight``
       (``k = 0``: equal budgets, plain ERC);
    3. correlation-aware target: the long-only weights whose risk contributions equal the
       budgets, ``w*_i (Sigma w*)_i / w*'Sigma w* = b_i`` (solved like ``RiskParity``). The
       full covariance enters here: a column correlated with the others adds more to
       portfolio risk per unit of weight, so it gets less weight for the same budget, and a
       diversifying column more;
    4. smoothing: ``w = normalise((1 - s) w* + s w_prev)`` with ``s = smoothing`` and
       ``w_prev`` the previous decision's weights on these columns (0 for a column not
       held, or held on the other side).

    ``weigh`` carries ``w_prev`` from one decision to the next; ``weigh_one`` has no
    previous decision and returns ``w*``. Long-only in each position's direction, gross 1.
    Builds on Roncalli, "Introduction to Risk Parity and Budgeting" (2013) for step 3.
    """

    rules = {**WINDOW_RULES, "performance_weight": "[0, 2]", "smoothing": "[0, 1)"}

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf",
                 expected_returns: MeanMethod = "historical", halflife: float = 63.0,
                 performance_weight: float = 0.5, smoothing: float = 0.5) -> None:
        check_history(lookback, min_history)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.expected_returns = expected_returns
        self.halflife = halflife
        self.performance_weight = performance_weight
        self.smoothing = smoothing

    def budgets_for(self, P: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """Steps 1-2: the performance-tilted risk budgets of the window ``P``."""
        mu = self._expected_returns(P, cov)
        t = np.clip(mu / np.sqrt(np.diag(cov) / P.shape[0]), -_T_CLIP, _T_CLIP)
        z = self.performance_weight * t
        b = np.exp(z - z.max())
        return b / b.sum()

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        cov = self._covariance(P)
        target = risk_budget_weights(cov, self.budgets_for(P, cov), x0=prev)
        if prev is None or self.smoothing == 0 or prev.sum() <= 0:
            return target
        w = (1.0 - self.smoothing) * target + self.smoothing * prev
        return w / w.sum()
