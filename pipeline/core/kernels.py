"""Compiled numerics (numba): the Cholesky factorisation and the estimators and solvers on it.

What each kernel computes, and the numerical behaviour it promises, is documented where it is
called: ``pipeline.core.estimators`` (``position_window``, ``ledoit_wolf_covariance``,
``positive_definite``) and ``plugins.allocation._solvers`` (``solve_pd``, ``box_qp``,
``risk_budget_weights``). Those functions are the interface; nothing else calls these.

Two rules shape this module:

- It imports numba at the top, so it is itself imported only inside the functions that use
  it: a run whose allocator estimates nothing (the default, equal weight) never loads numba.
- Every kernel that factorises lives here, beside ``cholesky``: numba's on-disk cache
  (``cache=True``) is invalidated when the file of a cached function changes, not when a
  function it calls in another file does, so a solver elsewhere would keep a stale Cholesky.

Kernels report failures by a status code, never by raising (the callers raise the project's
errors with the context they have). The sums in the dot products, the factorisation and the
cross products may be reordered by the compiler (``_SUMS``: SIMD lanes, fused multiply-adds;
``_gram`` is 8x faster for it), which changes the last bits against numpy but is fixed at
compile time: the same inputs give the same bits on one machine (numba compiles for the host
CPU, so another CPU's vector width may round differently, as OpenBLAS already does).
"""

from __future__ import annotations

import numba
import numpy as np

OK, NOT_PD = 0, 1
# positive_definite's codes besides a ridge exponent in [-10, 0]
PD_AS_IS, PD_NONFINITE, PD_FAILED = -11, -12, 1
# the one licence given to the compiler, where a sum is a loop: reorder it into SIMD lanes
# (and fuse multiply-adds); no assumption about NaN or infinities, which the callers test for
_SUMS = {"reassoc", "contract"}


# ---------------------------------------------------------------- linear algebra

@numba.njit(cache=True, fastmath=_SUMS)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    s = 0.0
    for i in range(a.size):
        s += a[i] * b[i]
    return s


@numba.njit(cache=True)
def _matvec(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.empty(A.shape[0])
    for i in range(A.shape[0]):
        out[i] = _dot(A[i], x)
    return out


@numba.njit(cache=True, fastmath=_SUMS)
def cholesky(A: np.ndarray, L: np.ndarray) -> bool:
    """``L`` (lower) with ``L L' = A``, from ``A``'s upper triangle as LAPACK's ``dpotrf``
    reads it; False when a pivot is not positive (or NaN): ``A`` is not positive definite."""
    n = A.shape[0]
    for j in range(n):
        d = A[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 0.0:
            return False
        d = np.sqrt(d)
        L[j, j] = d
        for i in range(j + 1, n):
            s = A[j, i]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
    return True


@numba.njit(cache=True, fastmath=_SUMS)
def cho_solve(L: np.ndarray, x: np.ndarray) -> None:
    """``x <- (L L')^-1 x`` in place, ``L`` from ``cholesky``."""
    n = x.size
    for i in range(n):
        s = x[i]
        for k in range(i):
            s -= L[i, k] * x[k]
        x[i] = s / L[i, i]
    for i in range(n - 1, -1, -1):
        s = x[i]
        for k in range(i + 1, n):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]


@numba.njit(cache=True)
def solve_pd(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, int]:
    """``(A^-1 B, status)`` for the columns of ``B`` (n x k)."""
    n = A.shape[0]
    L = np.empty((n, n))
    X = np.empty((B.shape[1], n))
    if not cholesky(A, L):
        return X.T, NOT_PD
    for j in range(B.shape[1]):
        X[j] = B[:, j]
        cho_solve(L, X[j])
    return X.T, OK


# ---------------------------------------------------------------- estimators

@numba.njit(cache=True)
def position_window(R: np.ndarray, start: int, stop: int, cols: np.ndarray,
                    side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P, live)``: rows ``start:stop`` of columns ``cols`` of ``R`` without the rows that
    hold a NaN, times ``side`` (P is n x m, column-major), and which columns vary."""
    m, n = cols.size, stop - start
    PT = np.empty((m, n))
    holes = False
    for j in range(m):
        column, s, row = R[start:stop, cols[j]], side[j], PT[j]
        for k in range(n):
            v = column[k]
            row[k] = v * s
            holes |= v != v
    if holes:  # rare: rows before a listing, gaps
        clean = np.ones(n, dtype=np.bool_)
        for j in range(m):
            for k in range(n):
                if np.isnan(PT[j, k]):
                    clean[k] = False
        PT = PT[:, np.flatnonzero(clean)]
        n = PT.shape[1]
    live = np.zeros(m, dtype=np.bool_)
    for j in range(m):
        for k in range(1, n):
            if PT[j, k] != PT[j, 0]:
                live[j] = True
                break
    return PT.T, live


@numba.njit(cache=True, fastmath=_SUMS)
def _gram(XT: np.ndarray) -> np.ndarray:
    """``XT XT'`` (p x p, exactly symmetric) for rows ``XT[j]`` (the de-meaned columns)."""
    p, n = XT.shape
    S = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            s = 0.0
            for k in range(n):
                s += XT[i, k] * XT[j, k]
            S[i, j] = s
            S[j, i] = s
    return S


@numba.njit(cache=True, fastmath=_SUMS)
def ledoit_wolf(X: np.ndarray) -> tuple[np.ndarray, float]:
    """``(covariance, shrinkage)``: Ledoit-Wolf on the window ``X`` (n x p, NaN-free)."""
    n, p = X.shape
    XT = np.empty((p, n))
    for j in range(p):
        mean = 0.0
        for k in range(n):
            mean += X[k, j]
        mean /= n
        for k in range(n):
            XT[j, k] = X[k, j] - mean
    S = _gram(XT) / n
    if p == 1:
        return S, 0.0
    row_sq = np.zeros(n)
    for j in range(p):
        for k in range(n):
            row_sq[k] += XT[j, k] * XT[j, k]
    trace, frob = 0.0, 0.0
    for i in range(p):
        trace += S[i, i]
        for j in range(p):
            frob += S[i, j] * S[i, j]
    mu = row_sq.sum() / (n * p)
    delta = (frob - p * mu * mu) / p  # ||S - mu I||_F^2 / p, as tr(S) = p mu
    beta = min((_dot(row_sq, row_sq) / n - frob) / (p * n), delta)
    # delta == 0: S already is the target (equal variances, no correlation)
    shrink = beta / delta if delta > 0 and beta > 0 else 0.0
    cov = (1.0 - shrink) * S
    for i in range(p):
        cov[i, i] += shrink * trace / p
    return cov, shrink


@numba.njit(cache=True)
def _safe_cholesky(A: np.ndarray, floor: float, L: np.ndarray) -> bool:
    if not cholesky(A, L):
        return False
    low = L[0, 0]
    for i in range(1, A.shape[0]):
        low = min(low, L[i, i])
    return low * low > floor


@numba.njit(cache=True)
def ridge_exponent(cov: np.ndarray) -> int:
    """``PD_AS_IS``, the ``k`` of the smallest ridge ``mean variance x 10^k`` that makes
    ``cov`` safely positive definite, ``PD_NONFINITE`` or ``PD_FAILED``."""
    p = cov.shape[0]
    for i in range(p):
        for j in range(p):
            if not np.isfinite(cov[i, j]):
                return PD_NONFINITE
    top, scale = cov[0, 0], 0.0
    for i in range(p):
        top = max(top, cov[i, i])
        scale += cov[i, i]
    floor = 1e-12 * top
    L = np.empty((p, p))
    if _safe_cholesky(cov, floor, L):
        return PD_AS_IS
    scale = scale / p if scale > 0 else 1.0
    ridged = cov.copy()
    for k in range(-10, 1):
        eps = scale * 10.0 ** k
        for i in range(p):
            ridged[i, i] = cov[i, i] + eps
        if _safe_cholesky(ridged, floor, L):
            return k
    return PD_FAILED


# ---------------------------------------------------------------- risk budgeting

@numba.njit(cache=True)
def _objective(b: np.ndarray, y: np.ndarray, Cy: np.ndarray) -> float:
    return 0.5 * _dot(y, Cy) - _dot(b, np.log(y))


@numba.njit(cache=True)
def risk_budget(cov: np.ndarray, budgets: np.ndarray, x0: np.ndarray, warm: bool, tol: float,
                max_iter: int) -> tuple[np.ndarray, int]:
    """``(w, status)``: Spinu's Newton method, as ``risk_budget_weights`` documents it."""
    m = budgets.size
    b = budgets / budgets.sum()
    sd = np.sqrt(np.diag(cov))
    C = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            C[i, j] = cov[i, j] / (sd[i] * sd[j])
    # sqrt(b) solves the problem exactly for uncorrelated columns: the cold start
    y = np.sqrt(b)
    if warm:
        guess = x0 * sd
        ok = np.isfinite(guess) & (guess > 0)
        if ok.all():
            y = guess
        elif ok.any():
            # put the guessed entries on the scale of the others before mixing them in
            quad, bsum = 0.0, 0.0
            for i in range(m):
                if ok[i]:
                    bsum += b[i]
                    for j in range(m):
                        if ok[j]:
                            quad += guess[i] * C[i, j] * guess[j]
            scale = np.sqrt(bsum / quad)
            for i in range(m):
                if ok[i]:
                    y[i] = guess[i] * scale
    Cy = _matvec(C, y)
    # the optimum has y'Cy = sum(b) = 1: start on that radius
    r = 1.0 / np.sqrt(_dot(y, Cy))
    y, Cy = y * r, Cy * r
    f, known = 0.0, False  # the objective, needed only by the line search
    sc = 1.0 / b.min()
    H, L = np.empty((m, m)), np.empty((m, m))
    dy = np.empty(m)
    for _ in range(max_iter):
        converged = True
        for i in range(m):
            dy[i] = Cy[i] - b[i] / y[i]  # the gradient; y_i |g_i| is the budget residual
            if abs(dy[i]) * y[i] > tol * b[i]:
                converged = False
        if converged:
            break
        g = dy.copy()
        H[:] = C
        for i in range(m):
            H[i, i] += b[i] / y[i] / y[i]
        if not cholesky(H, L):
            return y, NOT_PD
        cho_solve(L, dy)
        dec = _dot(g, dy)  # squared Newton decrement
        if dec <= 1e-32:  # nothing left to gain at double precision
            break
        if sc * dec < 0.05:
            y = y - dy
            Cy = _matvec(C, y)
            known = False
            continue
        if not known:
            f, known = _objective(b, y, Cy), True
        ratio = np.max(dy / y)
        t = 1.0 if ratio < 1.0 else 0.99 / ratio
        while True:
            y_new = y - t * dy
            Cy_new = _matvec(C, y_new)
            f_new = _objective(b, y_new, Cy_new)
            if f_new <= f - 1e-4 * t * dec or t < 1e-12:
                break
            t *= 0.5
        y, Cy, f = y_new, Cy_new, f_new
    w = y / sd
    return w / w.sum(), OK


# ---------------------------------------------------------------- box-constrained QP

@numba.njit(cache=True)
def budget_start(prev: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``prev`` when ``lo <= prev <= hi`` and ``sum(prev) = 1`` (to 1e-9), else equal weight."""
    m = lo.size
    total = 0.0
    for i in range(m):
        if not lo[i] <= prev[i] <= hi[i]:
            return np.full(m, 1.0 / m)
        total += prev[i]
    return prev if abs(total - 1.0) < 1e-9 else np.full(m, 1.0 / m)


@numba.njit(cache=True)
def box_qp(Q: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, x0: np.ndarray,
           budget: bool, total: float) -> tuple[np.ndarray, int]:
    """``(x, status)``: the primal active-set method ``box_qp`` documents; ``budget`` says
    whether ``sum(x) = total`` binds."""
    m = c.size
    # scale to unit mean variance so the multiplier tolerance is relative
    s = np.mean(np.diag(Q))
    Q, c = Q / s, c / s
    x = x0.copy()
    at_lo, at_hi = x <= lo, x >= hi
    held = at_lo | at_hi
    F = np.empty(m, dtype=np.int64)
    QFF, L = np.empty((m, m)), np.empty((m, m))
    rhs, ones = np.empty(m), np.empty(m)
    target, p, g = np.empty(m), np.empty(m), np.empty(m)
    for _ in range(10 * m + 50):
        nf = 0
        for i in range(m):
            if not held[i]:
                F[nf] = i
                nf += 1
        if nf:
            held_sum = 0.0
            for i in range(m):
                if held[i]:
                    held_sum += x[i]
            for a in range(nf):
                fa = F[a]
                r = c[fa]
                for j in range(m):
                    if held[j]:
                        r -= Q[fa, j] * x[j]
                rhs[a] = r
                for b in range(nf):
                    QFF[a, b] = Q[fa, F[b]]
            if not cholesky(QFF[:nf, :nf], L[:nf, :nf]):
                return x, NOT_PD
            cho_solve(L[:nf, :nf], rhs[:nf])
            if budget:
                ones[:nf] = 1.0
                cho_solve(L[:nf, :nf], ones[:nf])
                nu = (rhs[:nf].sum() - (total - held_sum)) / ones[:nf].sum()
                for a in range(nf):
                    target[a] = rhs[a] - nu * ones[a]
            else:
                target[:nf] = rhs[:nf]
            k, best = 0, np.inf
            for a in range(nf):
                fa = F[a]
                p[a] = target[a] - x[fa]
                if p[a] > 0:
                    room = (hi[fa] - x[fa]) / p[a]
                elif p[a] < 0:
                    room = (lo[fa] - x[fa]) / p[a]
                else:
                    room = np.inf
                if room < best or a == 0:
                    k, best = a, room
            if best < 1.0:
                for a in range(nf):
                    x[F[a]] += best * p[a]
                j = F[k]
                up = p[k] > 0
                x[j] = hi[j] if up else lo[j]
                at_hi[j], at_lo[j], held[j] = up, not up, True
                continue
            for a in range(nf):
                x[F[a]] = target[a]
        # at the minimum over the current face: check the held variables' multipliers
        for i in range(m):
            g[i] = _dot(Q[i], x) - c[i]
        if budget and not nf:
            # a vertex: sum(x) = total leaves no single variable free to move, so the move
            # to test is a transfer from the held-high variable with the largest gradient
            # to the held-low one with the smallest (a descent iff the former exceeds it)
            k, j = -1, -1
            for i in range(m):
                if at_lo[i] and (k < 0 or g[i] < g[k]):
                    k = i
                if at_hi[i] and (j < 0 or g[i] > g[j]):
                    j = i
            if k < 0 or j < 0 or g[j] - g[k] <= 1e-12:
                break
            held[k] = at_lo[k] = at_hi[k] = False
            held[j] = at_lo[j] = at_hi[j] = False
            continue
        shift = 0.0
        if budget:
            for a in range(nf):
                shift += g[F[a]]
            shift /= nf
        j, worst = 0, -np.inf
        for i in range(m):
            lam = g[i] - shift
            wrong = -lam if at_lo[i] else (lam if at_hi[i] else -np.inf)
            if wrong > worst:
                j, worst = i, wrong
        if worst <= 1e-12:
            break
        held[j] = at_lo[j] = at_hi[j] = False
    return x, OK
