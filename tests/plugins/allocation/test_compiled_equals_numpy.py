"""The compiled kernels (pipeline/core/kernels.py) give the numpy implementation's numbers.

The oracles below are the numpy/LAPACK code the kernels replaced (commit d54bdf9), kept here
verbatim in substance: same algorithm, same decisions, numpy's and LAPACK's rounding. The
kernels must agree with them to 1e-10 (weights) on real windows of the bundled S&P 500 sample,
decision after decision with each warm start taken from the last, and on random problems.
"""

import numpy as np
import pytest
from scipy.linalg import lapack

from pipeline.core import estimators
from plugins.allocation._common import weight_bounds
from plugins.allocation._solvers import box_qp, risk_budget_weights, solve_pd
from plugins.allocation.min_variance import MinVariance
from plugins.allocation.risk_parity import RiskParity

TOL = 1e-10


def np_solve_pd(A, b):
    _, x, info = lapack.dposv(A, b)
    assert info == 0
    return x


def np_ledoit_wolf(X):
    Xc = X - X.mean(axis=0)
    n, p = Xc.shape
    S = Xc.T @ Xc / n
    if p == 1:
        return S
    row_sq = np.einsum("ij,ij->i", Xc, Xc)
    mu = row_sq.sum() / (n * p)
    frob = np.dot(S.ravel(), S.ravel())
    delta = (frob - p * mu * mu) / p
    beta = min((row_sq @ row_sq / n - frob) / (p * n), delta)
    s = float(beta / delta) if delta > 0 and beta > 0 else 0.0
    cov = (1.0 - s) * S
    cov.flat[:: p + 1] += s * S.diagonal().sum() / p
    return cov


def np_positive_definite(cov):
    def safe(A):
        factor, info = lapack.dpotrf(A)
        return info == 0 and float(np.min(np.diag(factor))) ** 2 > floor

    floor = 1e-12 * float(np.max(np.diag(cov)))
    if safe(cov):
        return cov
    scale = float(np.mean(np.diag(cov)))
    scale = scale if scale > 0 else 1.0
    for k in range(-10, 1):
        ridged = cov + scale * 10.0 ** k * np.eye(cov.shape[0])
        if safe(ridged):
            return ridged
    raise AssertionError("not positive semi-definite")


def np_risk_budget_weights(cov, budgets, x0=None, tol=1e-11, max_iter=100):
    m = budgets.size
    b = budgets / budgets.sum()
    sd = np.sqrt(np.diag(cov))
    C = cov / np.outer(sd, sd)
    y = np.sqrt(b)
    if x0 is not None:
        guess = x0 * sd
        ok = np.isfinite(guess) & (guess > 0)
        if ok.all():
            y = guess
        elif ok.any():
            scale = np.sqrt(b[ok].sum() / (guess[ok] @ C[np.ix_(ok, ok)] @ guess[ok]))
            y = np.where(ok, guess * scale, y)
    Cy = C @ y
    r = 1.0 / np.sqrt(y @ Cy)
    y, Cy = y * r, Cy * r
    f = None
    sc = 1.0 / b.min()
    for _ in range(max_iter):
        q = b / y
        g = Cy - q
        if (np.abs(g) * y <= tol * b).all():
            break
        H = C.copy()
        H.ravel()[:: m + 1] += q / y
        dy = np_solve_pd(H, g)
        dec = g @ dy
        if dec <= 1e-32:
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


def np_box_qp(Q, c, lo, hi, x0, total=None):
    m = c.size
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
                target = np_solve_pd(QFF, rhs)
            else:
                sol = np_solve_pd(QFF, np.column_stack((rhs, ones[: F.size])))
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
        g = Q @ x - c
        if total is not None and not F.size:
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


def np_walk(returns, signals, at, lookback, min_history, solve):
    """WindowAllocator's walk as it was: fancy-indexed window, NaN rows, sides, constants."""
    out = np.zeros(signals.shape)
    prev = np.zeros(signals.shape[1])
    for i, t in enumerate(at):
        cols = np.flatnonzero(signals[i])
        if cols.size:
            side = np.sign(signals[i, cols])
            X = returns[max(0, t - lookback + 1): t + 1, cols]
            X = X[~np.isnan(X).any(axis=1)]
            w = side / side.size
            if X.shape[0] >= max(min_history, 2):
                P = X * side
                live = ~(P == P[0]).all(axis=0)
                if live.any():
                    cov = np_positive_definite(np_ledoit_wolf(P[:, live]))
                    w = np.zeros(side.size)
                    w[live] = solve(cov, np.maximum(prev[cols] * side, 0.0)[live])
                    w = w * side
            out[i, cols] = w
        prev = out[i]
    return out


def np_budget_start(prev, lo, hi):
    m = lo.size
    if prev is not None and np.all(prev >= lo) and np.all(prev <= hi) and abs(prev.sum() - 1.0) < 1e-9:
        return prev
    return np.full(m, 1.0 / m)


def np_min_variance(cov, prev):
    lo, hi = weight_bounds(0.0, 1.0, cov.shape[0])
    return np_box_qp(cov, np.zeros(cov.shape[0]), lo, hi, np_budget_start(prev, lo, hi), total=1.0)


def np_risk_parity(cov, prev):
    m = cov.shape[0]
    return np_risk_budget_weights(cov, np.full(m, 1.0 / m), x0=prev)


def momentum_signals(returns, at, top_k, lookback=30):
    """+1 on the ``top_k`` best trailing returns and, when there is room, -1 on the worst two:
    the eligible set, the sides and so the warm starts change from decision to decision."""
    growth = np.log1p(np.nan_to_num(returns))
    signals = np.zeros((at.size, returns.shape[1]))
    for i, t in enumerate(at):
        order = np.argsort(-growth[max(0, t - lookback + 1): t + 1].sum(axis=0), kind="stable")
        signals[i, order[:top_k]] = 1.0
        if top_k <= returns.shape[1] - 2:
            signals[i, order[-2:]] = -1.0
    return signals


@pytest.mark.parametrize("top_k", [5, 12, 20])
@pytest.mark.parametrize("name", ["min_variance", "risk_parity"])
def test_walks_equal_the_numpy_walk(sp500_returns, name, top_k):
    R = sp500_returns.copy()
    R[:400, 3] = np.nan           # a late listing
    R[2000:2300, 11] = 0.0        # a halted column: constant over whole windows
    at = np.arange(30, R.shape[0], 21)
    signals = momentum_signals(R, at, top_k)
    alloc, solve = {"min_variance": (MinVariance(), np_min_variance),
                    "risk_parity": (RiskParity(), np_risk_parity)}[name]
    got = alloc.weigh(R, signals, at)
    want = np_walk(R, signals, at, 252, 60, solve)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_estimators_equal_numpy(sp500_returns, random_returns):
    rng = np.random.default_rng(3)
    windows = [sp500_returns[t - 251: t + 1] for t in range(300, sp500_returns.shape[0], 97)]
    windows += [random_returns(rng, int(rng.integers(2, 400)), int(rng.integers(1, 40)))
                for _ in range(200)]
    for X in windows:
        lw = estimators.ledoit_wolf_covariance(X)
        scale = np.diag(lw).max()  # entries are compared on the scale of the variances
        np.testing.assert_allclose(lw, np_ledoit_wolf(X), rtol=0, atol=1e-12 * scale)
        twin = estimators.sample_covariance(np.column_stack([X, X[:, :1]]))  # singular
        for cov in (lw, twin):
            np.testing.assert_allclose(estimators.positive_definite(cov), np_positive_definite(cov),
                                       rtol=0, atol=1e-12 * scale)


def test_solvers_equal_numpy_on_random_problems(random_covariance):
    rng = np.random.default_rng(11)
    for i in range(300):
        m = int(rng.integers(1, 41))
        Q = random_covariance(rng, m)
        c = rng.uniform(0, 50) * rng.standard_normal(m) * np.sqrt(np.diag(Q)) * 0.05
        lo = np.full(m, min([-np.inf, -0.3, 0.0, 0.01][i % 4], 1.0 / m))
        hi = np.full(m, max([np.inf, 1.0, 0.2][i % 3], 1.0 / m))
        total = 1.0 if i % 2 == 0 else None
        if total is None and not (np.isfinite(lo[0]) or np.isfinite(hi[0])):
            hi[:] = 1.0
        x0 = np.full(m, 1.0 / m) if total else np.clip(np.zeros(m), lo, hi)
        x = box_qp(Q, c, lo, hi, x0, total)
        scale = 1.0 + np.abs(x).max()
        np.testing.assert_allclose(x, np_box_qp(Q, c, lo, hi, x0, total), rtol=0, atol=TOL * scale)
        # warm start: a nearby problem from this solution (its active set held)
        Q2 = Q + 1e-4 * np.diag(np.diag(Q)) * rng.uniform(0, 1, m)
        np.testing.assert_allclose(box_qp(Q2, 1.01 * c, lo, hi, x, total),
                                   np_box_qp(Q2, 1.01 * c, lo, hi, x, total), rtol=0, atol=TOL * scale)
        b = rng.uniform(0.1, 1.0, m)
        w = risk_budget_weights(Q, b)
        np.testing.assert_allclose(w, np_risk_budget_weights(Q, b), rtol=0, atol=TOL)
        guess = w * rng.uniform(0.8, 1.2, m)
        guess[rng.uniform(size=m) < 0.2] = [np.nan, 0.0][i % 2]  # partly unusable warm starts
        np.testing.assert_allclose(risk_budget_weights(Q2, b, x0=guess),
                                   np_risk_budget_weights(Q2, b, x0=guess), rtol=0, atol=TOL)
        rhs = np.column_stack([c, np.ones(m)])
        want = np_solve_pd(Q, rhs)
        np.testing.assert_allclose(solve_pd(Q, rhs), want, rtol=0, atol=1e-9 * np.abs(want).max())
