"""Multi-asset Kelly: the growth-optimal leverage vector, fractional and capped."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod, MeanMethod
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history
from plugins.allocation._solvers import solve_pd, box_qp


class Kelly(WindowAllocator):
    """Growth-optimal weights ``f* = argmax_f  mu'f - 1/2 f'Sigma f``, scaled and capped.

    The quadratic is the second-order expansion of the expected log growth
    ``E[log(1 + f'r)]`` (Thorp, "The Kelly criterion in blackjack, sports betting and the
    stock market", 2006, sec. 7; MacLean, Thorp & Ziemba, "The Kelly Capital Growth
    Investment Criterion", 2011), with ``mu`` and ``Sigma`` per bar from the configured
    estimators (``expected_returns: james_stein`` shrinks ``mu``, which Kelly amplifies most).

    - ``long_only: false``: ``f* = Sigma^-1 mu`` (closed form; a weight may oppose its side
      when the position's expected return is negative after accounting for correlations);
    - ``long_only: true``: ``f* >= 0`` in each position's direction, solved as a bounded QP
      (``box_qp``); a position with no positive contribution to growth gets 0.

    Then ``f = fraction * f*`` (fractional Kelly: ``fraction = 1`` is full Kelly, 0.5 half
    Kelly, which gives up a quarter of the growth for half the volatility), and if
    ``sum|f| > max_leverage`` the vector is scaled down to ``max_leverage`` (same mix, a
    smaller effective fraction).

    Kelly documents a different gross than the contract's 1: ``sum|w|`` lies in
    ``[0, max_leverage]``, the rest is cash; all zeros when nothing has an edge. The
    too-little-history fallback is equal weight scaled to ``min(1, max_leverage)``.
    """

    rules = {**WINDOW_RULES, "fraction": "(0, 1]", "max_leverage": "(0, inf)"}

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf",
                 expected_returns: MeanMethod = "james_stein", halflife: float = 63.0,
                 fraction: float = 0.5, max_leverage: float = 1.0, long_only: bool = True) -> None:
        check_history(lookback, min_history)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.expected_returns = expected_returns
        self.halflife = halflife
        self.fraction = fraction
        self.max_leverage = max_leverage
        self.long_only = long_only

    def _fallback(self, side: np.ndarray) -> np.ndarray:
        return side * (min(1.0, self.max_leverage) / side.size)

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        cov = self._covariance(P)
        mu = self._expected_returns(P, cov)
        m = mu.size
        if self.long_only:
            # the previous weights (any non-negative point is feasible) guess which are zero
            start = np.zeros(m) if prev is None else prev
            f = box_qp(cov, mu, np.zeros(m), np.full(m, np.inf), start)
        else:
            f = solve_pd(cov, mu)
        f = f * self.fraction
        gross = np.abs(f).sum()
        return f * (self.max_leverage / gross) if gross > self.max_leverage else f
