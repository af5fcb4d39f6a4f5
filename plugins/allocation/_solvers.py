"""Numerical kernels shared by the allocators: risk budgeting (ERC) and a box-constrained QP.

Both take a covariance in "position space" (returns already multiplied by their side), so a
weight is always the long amount of a position; the allocators put the signs back. The loops
run compiled (``pipeline.core.kernels``, numba, imported by the first solve); these functions
are their interface: they give the kernels float64 arrays (matrices C-contiguous, so each
kernel compiles once) and turn a kernel's status into an error.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _checked(result: tuple[np.ndarray, int]) -> np.ndarray:
    from pipeline.core import kernels  # numba: loaded by the first solve

    x, status = result
    if status != kernels.OK:
        raise np.linalg.LinAlgError("matrix is not positive definite (a Cholesky pivot is not "
                                    "positive)")
    return x


def _matrix(A: np.ndarray) -> np.ndarray:
    # one memory layout, so that each kernel is compiled (and cached) once
    return np.ascontiguousarray(A, dtype=np.float64)


def solve_pd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A^-1 b`` for a symmetric positive-definite ``A`` (its upper triangle is read) and
    ``b`` a vector or the columns of a matrix: a compiled Cholesky solve, a few microseconds
    for 20 x 20, where ``np.linalg.solve`` pays an LU and its overhead."""
    from pipeline.core import kernels

    B = np.asarray(b, dtype=np.float64)
    x = _checked(kernels.solve_pd(_matrix(A), B.reshape(B.shape[0], -1)))
    return x[:, 0] if B.ndim == 1 else x


# ---------------------------------------------------------------- risk budgeting

def risk_budget_weights(cov: np.ndarray, budgets: np.ndarray, x0: Optional[np.ndarray] = None,
                        tol: float = 1e-11, max_iter: int = 100) -> np.ndarray:
    """Long-only weights whose risk contributions equal ``budgets``.

    Finds ``w > 0``, ``sum(w) = 1`` with ``w_i (cov w)_i / w'cov w = b_i`` for budgets
    ``b_i > 0`` summing to 1 (equal budgets: equal risk contribution, ERC). Following
    Spinu, "An algorithm for computing risk parity weights" (SSRN 2297383, 2013), the
    solution is the normalised minimiser of the strictly convex

        f(y) = 1/2 y'C y - sum_i b_i log y_i,   y > 0,

    whose stationarity condition ``y_i (C y)_i = b_i`` is the budget condition. ``C`` is the
    correlation matrix (``y = sd * w`` up to scale), which keeps the Newton system well scaled.
    Newton steps with a fraction-to-the-boundary rule and Armijo backtracking; once the
    Newton decrement of the self-concordant ``f / min(b)`` is below 0.22 the full step is
    provably feasible and quadratically convergent, so it is taken without a line search.
    Stops when every risk contribution is within ``tol`` (relative) of its budget.

    ``cov`` must have a positive diagonal; a positive semi-definite ``cov`` is enough as long
    as no long-only combination of columns is riskless. ``x0`` (weights, any positive scale;
    NaN or non-positive entries are ignored) warm-starts the solve, e.g. with the previous
    decision's solution.
    """
    from pipeline.core import kernels

    b = np.asarray(budgets, dtype=np.float64)
    warm = x0 is not None
    x = np.asarray(x0, dtype=np.float64) if warm else b
    return _checked(kernels.risk_budget(_matrix(cov), b, x, warm, float(tol), int(max_iter)))


def risk_contributions(cov: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Shares of portfolio variance ``w_i (cov w)_i / w'cov w`` (they sum to 1)."""
    cw = cov @ w
    return w * cw / (w @ cw)


# ---------------------------------------------------------------- box-constrained QP

def box_qp(Q: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, x0: np.ndarray,
           total: Optional[float] = None) -> np.ndarray:
    """``argmin 1/2 x'Q x - c'x`` subject to ``lo <= x <= hi`` and, if ``total`` is given,
    ``sum(x) = total``; ``Q`` positive definite, bounds may be infinite.

    Primal active-set method (Nocedal & Wright, "Numerical Optimization", 2nd ed., 2006,
    Algorithm 16.3) whose working set is the variables held at a bound: solve the
    equality-constrained problem on the free variables, walk toward its solution until a
    bound blocks (then hold that variable), and at a face's minimum release the held
    variable whose multiplier has the wrong sign; optimal when none has. ``x0`` must be
    feasible; variables exactly at a bound in ``x0`` start held, so the previous solution of
    a nearby problem is a good warm start.
    """
    from pipeline.core import kernels

    budget = total is not None
    return _checked(kernels.box_qp(_matrix(Q), np.asarray(c, dtype=np.float64),
                                   np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64),
                                   np.asarray(x0, dtype=np.float64), budget,
                                   float(total) if budget else 0.0))


def budget_start(prev: Optional[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A feasible start for ``box_qp`` with ``sum(w) = 1``: the previous decision's weights
    when they are feasible (their active set is then a good guess), else equal weight."""
    from pipeline.core import kernels

    if prev is None:
        return np.full(lo.size, 1.0 / lo.size)
    return kernels.budget_start(np.asarray(prev, dtype=np.float64), lo, hi)
