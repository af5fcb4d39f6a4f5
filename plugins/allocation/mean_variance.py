"""Mean-variance: maximum Sharpe ratio, or minimum variance for a target return, in bounds."""

from __future__ import annotations

from typing import Callable, Literal, Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod, MeanMethod
from pipeline.core.params import Window
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
    is unimodal along the line. Both conditions are linear in ``lam`` on each face of the
    line, so safeguarded Newton steps find them exactly, usually in two or three QPs.

    Documented fallbacks (never NaN): when no portfolio in the bounds has a positive excess
    return, max Sharpe returns the minimum-variance portfolio; when the target exceeds the
    best return the bounds allow, the highest-return portfolio is returned; when the minimum
    variance portfolio already beats the target, it is returned. Weights can oppose their
    side only when ``min_weight`` is negative or null. ``target_return`` and
    ``risk_free_rate`` are per bar, like the returns.
    """

    rules = {**WINDOW_RULES, "min_weight": "[-1, 1]", "max_weight": "(0, inf)"}

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
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
    def _walk_line(cov: np.ndarray, mu: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   measure: Callable[[float, np.ndarray, np.ndarray], tuple[float, float]],
                   w: np.ndarray, tol: float) -> np.ndarray:
        """``w(lam)`` at the sign change of ``measure`` along the critical line.

        ``w(lam) = argmin 1/2 w'Sigma w - lam mu'w`` (``box_qp``, warm-started by the last
        point) is linear in ``lam`` on each face (set of variables at a bound):
        ``w = u + lam v`` with ``v_F = Sigma_FF^-1 (mu_F - nu 1)``, ``sum(v_F) = 0``.
        ``measure(lam, w, v) -> (value, slope)`` gives the quantity whose root is sought
        (negative at ``lam = 0``) and its exact slope on that face, so a Newton step lands on
        the root whenever the root lies on the current face; steps that leave the bracket
        fall back to growing ``lam`` or bisecting.
        """
        lam, lam_lo, lam_hi = 0.0, 0.0, np.inf
        for _ in range(200):
            w = box_qp(cov, lam * mu, lo, hi, w, total=1.0)
            free = (w > lo) & (w < hi)
            v = np.zeros_like(w)
            if free.any():
                sol = solve_pd(cov[np.ix_(free, free)], np.column_stack((mu[free], np.ones(free.sum()))))
                v[free] = sol[:, 0] - sol[:, 0].sum() / sol[:, 1].sum() * sol[:, 1]
            value, slope = measure(lam, w, v)
            if abs(value) <= tol:
                break
            if value > 0:
                lam_hi = lam
            else:
                lam_lo = lam
            if np.isfinite(lam_hi) and lam_hi - lam_lo <= 1e-13 * lam_hi:
                break
            step = lam - value / slope if slope > 0 else np.nan
            if lam_lo < step < lam_hi:
                lam = step
            elif np.isfinite(lam_hi):
                lam = 0.5 * (lam_lo + lam_hi)
            else:  # no usable step and no upper end yet: look further out
                lam = 4.0 * max(lam, tol)
        return w

    def _max_sharpe(self, cov: np.ndarray, excess: np.ndarray, lo: np.ndarray,
                    hi: np.ndarray) -> np.ndarray:
        m = excess.size
        if excess @ _max_return(excess, lo[0], hi[0]) <= 0:
            # no portfolio earns more than the risk-free rate: minimum variance
            return box_qp(cov, np.zeros(m), lo, hi, np.full(m, 1.0 / m), total=1.0)

        def measure(lam: float, w: np.ndarray, v: np.ndarray) -> tuple[float, float]:
            # phi = lam mu'w - w'Sigma w; on a face d(phi)/d(lam) = mu'w - lam mu'v
            ret = excess @ w
            return lam * ret - w @ cov @ w, ret - lam * (excess @ v)

        scale = float(np.mean(np.diag(cov)))
        return self._walk_line(cov, excess, lo, hi, measure, np.full(m, 1.0 / m), 1e-14 * scale)

    def _target(self, cov: np.ndarray, mu: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> np.ndarray:
        t = self.target_return
        m = mu.size
        best = _max_return(mu, lo[0], hi[0])
        if mu @ best <= t:
            return best

        def measure(lam: float, w: np.ndarray, v: np.ndarray) -> tuple[float, float]:
            gap = mu @ w - t
            # the minimum-variance portfolio already beats the target: stop there
            return (0.0 if lam == 0.0 and gap >= 0 else gap), mu @ v

        return self._walk_line(cov, mu, lo, hi, measure, np.full(m, 1.0 / m),
                               1e-13 * float(np.max(np.abs(mu))))
