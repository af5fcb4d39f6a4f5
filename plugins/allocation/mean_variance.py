"""Mean-variance: maximum Sharpe ratio, or minimum variance for a target return, in bounds."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.estimators import CovarianceMethod, MeanMethod
from plugins.allocation._common import (WINDOW_RULES, WindowAllocator, check_bounds,
                                        check_history, weight_bounds)
from plugins.allocation._solvers import box_qp, solve_pd


def _max_return(mu: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The fully invested portfolio with the highest ``mu'w`` for uniform bounds ``[lo, hi]``
    (at least one finite): fill the best columns first (the LP's greedy solution)."""
    m = mu.size
    order = np.argsort(-mu, kind="stable")
    if np.isfinite(lo):
        w = np.full(m, lo)
        room = np.minimum(np.full(m, hi - lo), 1.0 - m * lo)
        w[order] += np.clip((1.0 - m * lo) - np.concatenate(([0.0], np.cumsum(room)[:-1])), 0.0, room)
    else:  # only an upper bound: everything at it, the surplus taken from the worst column
        w = np.full(m, hi)
        w[order[-1]] -= m * hi - 1.0
    return w


class MeanVariance(WindowAllocator):
    """Markowitz mean-variance on the window's ``mu`` and ``Sigma`` (per bar), fully invested.

    - ``objective: max_sharpe``: ``argmax (mu - r_f)'w / sqrt(w'Sigma w)``;
    - ``objective: target_return``: ``argmin w'Sigma w`` subject to ``mu'w >= target_return``;

    both subject to ``sum(w) = 1`` and ``min_weight <= w_i <= max_weight`` (``null``:
    unbounded; bounds that ``m`` columns cannot meet are relaxed to ``1/m``). Markowitz,
    "Portfolio selection", J. Finance 7 (1952).

    Unbounded, the closed forms apply: tangency ``w = Sigma^-1 (mu - r_f) / 1'Sigma^-1 (mu - r_f)``
    and the two-fund target portfolio ``w = [(C - tB) Sigma^-1 1 + (tA - B) Sigma^-1 mu] / (AC - B^2)``
    with ``A = 1'Sigma^-1 1``, ``B = 1'Sigma^-1 mu``, ``C = mu'Sigma^-1 mu`` (Merton 1972).
    Bounded, both walk the critical line ``w(lam) = argmin 1/2 w'Sigma w - lam mu'w`` (each
    point a ``box_qp`` warm-started from the previous one): the target portfolio is the
    ``w(lam)`` whose return equals the target, and the maximum Sharpe portfolio is the one
    where ``lam (mu - r_f)'w = w'Sigma w`` -- the KKT conditions of the Sharpe ratio, which
    is unimodal along the line -- both found by Illinois regula falsi, exact within a
    segment of the piecewise-linear line.

    Documented fallbacks (never NaN): when no portfolio in the bounds has a positive excess
    return, max Sharpe returns the minimum-variance portfolio; when the target exceeds the
    best return the bounds allow, the highest-return portfolio is returned; when the minimum
    variance portfolio already beats the target, it is returned. Weights can oppose their
    side only when ``min_weight`` is negative or null. ``target_return`` and
    ``risk_free_rate`` are per bar, like the returns.
    """

    rules = {**WINDOW_RULES, "min_weight": "[-1, 1]", "max_weight": "(0, inf)"}

    def __init__(self, lookback: int = 252, min_history: int = 60,
                 covariance: CovarianceMethod = "ledoit_wolf",
                 expected_returns: MeanMethod = "james_stein", halflife: float = 63.0,
                 objective: Literal["max_sharpe", "target_return"] = "max_sharpe",
                 target_return: float = 0.0, risk_free_rate: float = 0.0,
                 min_weight: Optional[float] = 0.0, max_weight: Optional[float] = 1.0) -> None:
        check_history(lookback, min_history)
        check_bounds(min_weight, max_weight)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.expected_returns = expected_returns
        self.halflife = halflife
        self.objective = objective
        self.target_return = target_return
        self.risk_free_rate = risk_free_rate
        self.min_weight = min_weight
        self.max_weight = max_weight

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        cov = self._covariance(P)
        mu = self._expected_returns(P, cov)
        if self.min_weight is None and self.max_weight is None:
            return self._closed_form(cov, mu)
        lo, hi = weight_bounds(self.min_weight, self.max_weight, mu.size)
        if self.objective == "max_sharpe":
            return self._max_sharpe(cov, mu - self.risk_free_rate, lo, hi)
        return self._target(cov, mu, lo, hi)

    def _closed_form(self, cov: np.ndarray, mu: np.ndarray) -> np.ndarray:
        m = mu.size
        inv = solve_pd(cov, np.column_stack((np.ones(m), mu)))
        inv1, invmu = inv[:, 0], inv[:, 1]
        A, B, C = inv1.sum(), invmu.sum(), mu @ invmu
        if self.objective == "max_sharpe":
            z = invmu - self.risk_free_rate * inv1  # Sigma^-1 (mu - r_f)
            return z / z.sum() if z.sum() > 0 else inv1 / A
        t = self.target_return
        D = A * C - B * B
        if B / A >= t or D <= 1e-12 * A * C:  # minimum variance meets it, or mu is flat
            return inv1 / A
        return ((C - t * B) * inv1 + (t * A - B) * invmu) / D

    @staticmethod
    def _line(cov: np.ndarray, mu: np.ndarray, lo: np.ndarray, hi: np.ndarray):
        """``lam -> w(lam)`` on the critical line, each solve warm-started by the last."""
        last = [np.full(mu.size, 1.0 / mu.size)]

        def w(lam: float) -> np.ndarray:
            last[0] = box_qp(cov, lam * mu, lo, hi, last[0], total=1.0)
            return last[0]
        return w

    @staticmethod
    def _bracket_and_root(g, lam: float, g0: float) -> np.ndarray:
        """``w`` at the sign change of ``g`` (negative at ``lam = 0`` with value ``g0``, positive
        for large ``lam``; ``g(lam)`` returns ``(value, w)``): ``lam`` grows fourfold until
        ``g > 0``, then Illinois regula falsi, exact once the bracket is inside one segment."""
        lam_lo, g_lo = 0.0, g0
        for _ in range(200):  # 4^200: far past any scale, a guard against a flat g
            g_hi, w = g(lam)
            if g_hi > 0:
                break
            lam_lo, g_lo = lam, g_hi
            lam *= 4.0
        else:
            return w
        lam_hi = lam
        for _ in range(100):
            lam = lam_hi - g_hi * (lam_hi - lam_lo) / (g_hi - g_lo)
            val, w = g(lam)
            if val == 0.0 or lam_hi - lam_lo <= 1e-13 * lam_hi:
                break
            if val > 0:
                lam_hi, g_hi = lam, val
                g_lo *= 0.5
            else:
                lam_lo, g_lo = lam, val
                g_hi *= 0.5
            if abs(val) <= 1e-15 * abs(g_hi - g_lo):
                break
        return w

    def _max_sharpe(self, cov: np.ndarray, excess: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> np.ndarray:
        line = self._line(cov, excess, lo, hi)
        w_mv = line(0.0)
        if excess @ _max_return(excess, lo[0], hi[0]) <= 0:
            return w_mv  # no portfolio earns more than the risk-free rate

        def phi(lam: float) -> tuple[float, np.ndarray]:
            w = line(lam)
            return lam * (excess @ w) - w @ cov @ w, w

        var_mv = w_mv @ cov @ w_mv
        lam = var_mv / np.max(np.abs(excess))
        return self._bracket_and_root(phi, lam, -var_mv)

    def _target(self, cov: np.ndarray, mu: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> np.ndarray:
        t = self.target_return
        line = self._line(cov, mu, lo, hi)
        w_mv = line(0.0)
        if mu @ w_mv >= t:
            return w_mv
        best = _max_return(mu, lo[0], hi[0])
        if mu @ best <= t:
            return best

        def gap(lam: float) -> tuple[float, np.ndarray]:
            w = line(lam)
            return mu @ w - t, w

        return self._bracket_and_root(gap, (w_mv @ cov @ w_mv) / np.max(np.abs(mu)), mu @ w_mv - t)
