"""Numerical kernels shared by the allocators: risk budgeting (ERC) and a box-constrained QP.

Both take a covariance in "position space" (returns already multiplied by their side), so a
weight is always the long amount of a position; the allocators put the signs back.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.linalg import lapack


def solve_pd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A^-1 b`` for a symmetric positive-definite ``A`` (LAPACK ``dposv``: a Cholesky solve,
    a few microseconds for 20 x 20, where ``np.linalg.solve`` pays an LU and its overhead)."""
    _, x, info = lapack.dposv(A, b)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (dposv info={info})")
    return x


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
    m = budgets.size
    b = budgets / budgets.sum()
    sd = np.sqrt(np.diag(cov))
    C = cov / np.outer(sd, sd)
    # sqrt(b) solves the problem exactly for uncorrelated columns: the cold start
    y = np.sqrt(b)
    if x0 is not None:
        guess = x0 * sd
        ok = np.isfinite(guess) & (guess > 0)
        if ok.all():
            y = guess
        elif ok.any():
            # put the guessed entries on the scale of the others before mixing them in
            scale = np.sqrt(b[ok].sum() / (guess[ok] @ C[np.ix_(ok, ok)] @ guess[ok]))
            y = np.where(ok, guess * scale, y)
    Cy = C @ y
    # the optimum has y'Cy = sum(b) = 1: start on that radius
    r = 1.0 / np.sqrt(y @ Cy)
    y, Cy = y * r, Cy * r
    f = None  # the objective, needed only by the line search
    sc = 1.0 / b.min()
    tol_b = tol * b
    for _ in range(max_iter):
        q = b / y
        g = Cy - q
        # y_i |g_i| = |y_i (C y)_i - b_i|: the budget residual, from the gradient
        if (np.abs(g) * y <= tol_b).all():
            break
        H = C.copy()
        H.ravel()[:: m + 1] += q / y
        dy = solve_pd(H, g)
        dec = g @ dy  # squared Newton decrement
        if dec <= 1e-32:  # nothing left to gain at double precision
            break
        if sc * dec < 0.05:
            y = y - dy
            Cy = C @ y
            f = None
            continue
        if f is None:
            f = 0.5 * (y @ Cy) - b @ np.log(y)
        ratio = np.max(dy / y)
        t = 1.0 if ratio < 1.0 else 0.99 / ratio
        while True:
            y_new = y - t * dy
            Cy_new = C @ y_new
            f_new = 0.5 * (y_new @ Cy_new) - b @ np.log(y_new)
            if f_new <= f - 1e-4 * t * dec or t < 1e-12:
                break
            t *= 0.5
        y, Cy, f = y_new, Cy_new, f_new
    w = y / sd
    return w / w.sum()


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
    m = c.size
    # scale to unit mean variance so the multiplier tolerance is relative
    s = float(np.mean(np.diag(Q)))
    Q, c = Q / s, c / s
    x = x0.astype(np.float64, copy=True)
    at_lo, at_hi = x <= lo, x >= hi
    held = at_lo | at_hi
    ones = np.ones(m)
    for _ in range(10 * m + 50):
        F = np.flatnonzero(~held)
        if F.size:
            rhs = c[F] - Q[np.ix_(F, held)] @ x[held] if held.any() else c[F]
            QFF = Q[np.ix_(F, F)]
            if total is None:
                target = solve_pd(QFF, rhs)
            else:
                sol = solve_pd(QFF, np.column_stack((rhs, ones[: F.size])))
                nu = (sol[:, 0].sum() - (total - x[held].sum())) / sol[:, 1].sum()
                target = sol[:, 0] - nu * sol[:, 1]
            p = target - x[F]
            with np.errstate(divide="ignore", invalid="ignore"):
                room = np.where(p > 0, (hi[F] - x[F]) / p, np.where(p < 0, (lo[F] - x[F]) / p, np.inf))
            k = int(np.argmin(room))
            if room[k] < 1.0:
                x[F] += room[k] * p
                j = F[k]
                up = p[k] > 0
                x[j] = hi[j] if up else lo[j]
                at_hi[j], at_lo[j], held[j] = up, not up, True
                continue
            x[F] = target
        # at the minimum over the current face: check the held variables' multipliers
        g = Q @ x - c
        if total is not None and not F.size:
            # a vertex: sum(x) = total leaves no single variable free to move, so the move
            # to test is a transfer from the held-high variable with the largest gradient
            # to the held-low one with the smallest (a descent iff the former exceeds it)
            up = np.flatnonzero(at_lo)
            down = np.flatnonzero(at_hi)
            if not up.size or not down.size:
                break
            k, j = up[np.argmin(g[up])], down[np.argmax(g[down])]
            if g[j] - g[k] <= 1e-12:
                break
            held[[k, j]] = at_lo[[k, j]] = at_hi[[k, j]] = False
            continue
        lam = g - g[F].mean() if total is not None else g
        wrong = np.where(at_lo, -lam, np.where(at_hi, lam, -np.inf))
        j = int(np.argmax(wrong))
        if wrong[j] <= 1e-12:
            break
        held[j] = at_lo[j] = at_hi[j] = False
    return x
