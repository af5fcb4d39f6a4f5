"""Risk budgeting: each column carries a user-given share of the portfolio's variance."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.estimators import CovarianceMethod
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history
from plugins.allocation._solvers import risk_budget_weights


class RiskBudgeting(WindowAllocator):
    """Long-only weights with risk contributions proportional to ``budgets``.

    ``w_i (Sigma w)_i / w'Sigma w = b_i / sum_{j eligible} b_j`` (Roncalli, "Introduction to
    Risk Parity and Budgeting", 2013, ch. 2), solved like ``RiskParity`` (Spinu 2013, Newton,
    1e-11 relative, warm-started across decisions).

    ``budgets`` -- non-negative numbers, normalised over the columns eligible at each decision:

    - ``None``: equal budgets (ERC, as ``RiskParity``);
    - a list: one budget per column of the ``returns`` given to ``weigh`` (symbols at the asset
      level, sleeves at the sleeve level), in column order; ``weigh_one`` takes one per
      column of its window;
    - a dict ``{name: budget}``: by column name, for ``weigh(..., columns=names)`` /
      ``weigh_one(..., columns=names)``; names not in the dict get budget 1, so
      ``{AAPL: 2}`` gives AAPL twice the risk share of each other column.

    A column with budget 0 gets weight 0; if every eligible column has budget 0 the decision
    falls back to equal weight, as with too little history.
    """

    rules = WINDOW_RULES

    def __init__(self, budgets: Union[dict[str, float], list[float], None] = None,
                 lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf", halflife: float = 63.0) -> None:
        check_history(lookback, min_history)
        values = budgets.values() if isinstance(budgets, dict) else (budgets or [])
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
               or v < 0 for v in values):
            raise ValueError(f"budgets must be non-negative numbers, got {budgets!r}")
        self.budgets = budgets
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife

    def resolve(self, n: int, columns: Optional[Sequence[str]] = None) -> np.ndarray:
        """The budget of each of ``n`` columns (named ``columns`` when given)."""
        if self.budgets is None:
            return np.ones(n)
        if isinstance(self.budgets, dict):
            if columns is None:
                raise ConfigError("allocation.budgets is given by column name, but the caller "
                                  "passed no column names; give budgets as a list in column "
                                  "order instead")
            unknown = sorted(set(self.budgets) - set(map(str, columns)))
            if unknown:
                raise ConfigError(f"budgets names {unknown}, which are not columns here "
                                  f"({', '.join(map(str, columns))}); fix allocation.budgets or "
                                  f"portfolio.budgets")
            return np.array([float(self.budgets.get(str(c), 1.0)) for c in columns])
        if len(self.budgets) != n:
            raise ConfigError(f"allocation.budgets has {len(self.budgets)} entries for {n} "
                              f"columns; give one budget per column, in column order")
        return np.asarray(self.budgets, dtype=np.float64)

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray,
              columns: Optional[Sequence[str]] = None) -> np.ndarray:
        return self._walk(returns, signals, at, self.resolve(returns.shape[1], columns))

    def weigh_one(self, returns: np.ndarray, side: np.ndarray,
                  columns: Optional[Sequence[str]] = None) -> np.ndarray:
        side = np.asarray(side, dtype=np.float64)
        return self._weigh_last(returns, side, self.resolve(side.size, columns))

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        m = P.shape[1]
        funded = budgets > 0
        if not funded.any():
            return np.full(m, 1.0 / m)
        cov = self._covariance(P)
        if funded.all():
            return risk_budget_weights(cov, budgets, x0=prev)
        w = np.zeros(m)
        w[funded] = risk_budget_weights(cov[np.ix_(funded, funded)], budgets[funded],
                                        x0=None if prev is None else prev[funded])
        return w
