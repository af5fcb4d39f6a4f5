"""Covariance and expected-return estimators over a window of returns.

Shared by the allocators (plugins/allocation) and by risk constraints such as vol targeting,
so that ``covariance: ledoit_wolf`` means the same matrix everywhere. A window ``X`` is an
``n x m`` array of simple returns, rows oldest first, and must be NaN-free
(``complete_rows`` drops incomplete rows). Estimates are per bar (a daily window gives daily
moments); nothing here annualises.

Config-facing layer: the ``CovarianceMethod`` / ``MeanMethod`` literals are what a component
annotates its ``covariance`` / ``expected_returns`` parameter with, and ``covariance`` /
``expected_returns`` dispatch on those names with a shared ``halflife``.

numpy, except what an allocator pays on every decision: ``position_window``, the Ledoit-Wolf
estimate and ``positive_definite``'s factorisations run compiled (``pipeline.core.kernels``,
numba, imported by their first call so that a run which estimates nothing never loads it).
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

CovarianceMethod = Literal["sample", "ledoit_wolf", "ewma"]
MeanMethod = Literal["historical", "ewma", "james_stein"]

# ---------------------------------------------------------------- windows

def complete_rows(X: np.ndarray) -> np.ndarray:
    """The rows of ``X`` without any NaN (leading rows before a listing, gaps)."""
    if not np.isnan(X).any():  # the common case, at a fraction of the row-wise test's cost
        return X
    return X[~np.isnan(X).any(axis=1)]


def position_window(R: np.ndarray, start: int, stop: int, cols: np.ndarray,
                    side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An allocator's window in one pass: rows ``start:stop`` of columns ``cols`` of ``R``,
    the rows holding any NaN dropped (as ``complete_rows``), times ``side`` (position
    returns, n x m), and ``live``: True for the columns that are not identical on every row
    (a constant column -- halted, stale, a sleeve that never traded -- has zero variance and
    no risk estimate). Decided exactly, not by a variance threshold."""
    from pipeline.core import kernels  # numba: loaded by the first allocator that estimates

    return kernels.position_window(R, int(start), int(stop), np.asarray(cols, dtype=np.int64),
                                   np.asarray(side, dtype=np.float64))


def ewma_weights(n: int, halflife: float) -> np.ndarray:
    """Observation weights ``w_k ∝ 2^(-(n-1-k)/halflife)`` (newest last), summing to 1."""
    w = np.exp2((np.arange(n) - (n - 1)) / halflife)
    return w / w.sum()


# ---------------------------------------------------------------- covariance

def _column_means(X: np.ndarray) -> np.ndarray:
    # a BLAS matrix-vector product: several times faster than X.mean(axis=0) on small windows
    return np.full(X.shape[0], 1.0 / X.shape[0]) @ X


def sample_covariance(X: np.ndarray, ddof: int = 1) -> np.ndarray:
    """``S = Xc' Xc / (n - ddof)`` with ``Xc`` the de-meaned window (``np.cov``, skfolio's
    ``EmpiricalCovariance``)."""
    Xc = X - _column_means(X)
    return Xc.T @ Xc / (X.shape[0] - ddof)


def ledoit_wolf_shrinkage(X: np.ndarray) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity of the window toward ``mu I``.

    With ``S = Xc'Xc/n`` (``Xc`` de-meaned), ``mu = tr(S)/p``, ``d^2 = ||S - mu I||_F^2 / p``
    and ``b^2 = min(d^2, (sum_k ||x_k||^4 / n - ||S||_F^2) / (p n))`` the intensity is
    ``b^2 / d^2`` -- exactly ``sklearn.covariance.ledoit_wolf_shrinkage``, using
    ``sum((X^2)'(X^2)) = sum_k ||x_k||^4`` to avoid a second p x p product.
    Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance
    matrices", J. Multivariate Analysis 88 (2004).
    """
    from pipeline.core import kernels

    return kernels.ledoit_wolf(np.asarray(X, dtype=np.float64))[1]


def ledoit_wolf_covariance(X: np.ndarray) -> np.ndarray:
    """``(1 - s) S + s mu I`` with ``S`` the maximum-likelihood covariance (divisor ``n``),
    ``mu = tr(S)/p`` and ``s`` from ``ledoit_wolf_shrinkage``: ``sklearn.covariance.LedoitWolf``.
    Compiled (``pipeline.core.kernels.ledoit_wolf``): one pass for the means, one for the
    de-meaned cross products, none of numpy's per-call overhead on a small window.
    """
    from pipeline.core import kernels

    return kernels.ledoit_wolf(np.asarray(X, dtype=np.float64))[0]


def ewma_covariance(X: np.ndarray, halflife: float) -> np.ndarray:
    """Exponentially weighted covariance with weights ``w = ewma_weights(n, halflife)``:
    ``sum_k w_k (x_k - m)(x_k - m)' / (1 - sum_k w_k^2)`` around the weighted mean ``m``.

    The divisor is the reliability-weights bias correction, so the estimate matches
    ``pandas.DataFrame.ewm(halflife=...).cov()`` on the window and tends to the sample
    covariance as the half-life grows (RiskMetrics, 1996, without its zero-mean shortcut).
    """
    w = ewma_weights(X.shape[0], halflife)
    Xc = X - w @ X
    Xw = Xc * w[:, None]
    return Xw.T @ Xc / (1.0 - w @ w)


def covariance(X: np.ndarray, method: CovarianceMethod = "ledoit_wolf",
               halflife: float = 63.0) -> np.ndarray:
    """The ``method`` covariance of the window; ``halflife`` (bars) is used by ``ewma``."""
    if method == "sample":
        return sample_covariance(X)
    if method == "ledoit_wolf":
        return ledoit_wolf_covariance(X)
    if method == "ewma":
        return ewma_covariance(X, halflife)
    raise ValueError(f"unknown covariance method {method!r}: expected one of sample, "
                     f"ledoit_wolf, ewma")


def sample_and_covariance(X: np.ndarray, method: CovarianceMethod = "ledoit_wolf",
                          halflife: float = 63.0) -> tuple[np.ndarray, np.ndarray]:
    """``(sample_covariance(X), covariance(X, method, halflife))``: HRP clusters on the one and
    splits with the other every decision. With ``sample`` both are one array."""
    sample = sample_covariance(X)
    return sample, (sample if method == "sample" else covariance(X, method, halflife))


# ---------------------------------------------------------------- rolling windows

def window_sums(Y: np.ndarray, at: np.ndarray, lookback: int,
                decay: float | np.ndarray = 1.0) -> np.ndarray:
    """``S[k] = sum_{s = max(0, t-lookback+1)}^{t} decay^(t-s) Y[s]`` for ``t = at[k]``.

    ``decay`` is a scalar or one value per column of ``Y`` (1: plain sums). Decisions are
    grouped in blocks ``b = (t // B) B``; one cumulative sum of ``Y[s] decay^(b-s)`` over
    rows ``[b - lookback, b + B)`` serves a whole block, and a window's sum is a difference
    of two of its entries rescaled by ``decay^(t-b)``. Rescaling around each block keeps the
    factors below ``2^500`` and the differences free of the cancellation that one cumulative
    sum over the whole history would suffer, so the cost is a few passes over ``Y`` however
    many windows are asked for.
    """
    T, n = Y.shape
    L = int(lookback)
    # powers are taken once per distinct rate (a handful), not per column
    rates, column_rate = np.unique(np.broadcast_to(np.asarray(decay, dtype=np.float64), (n,)),
                                   return_inverse=True)
    plain = bool(np.all(rates == 1.0))
    B = L if plain else max(1, min(L, int(500.0 / -np.log2(rates.min()))))
    out = np.empty((at.size, n))
    block = at // B
    for j in np.unique(block):
        b = int(j) * B
        lo, hi = max(0, b - L), min(T, b + B)
        C = np.zeros((hi - lo + 1, n))
        if plain:
            np.cumsum(Y[lo:hi], axis=0, out=C[1:])
        else:
            scale = rates[None, :] ** (b - np.arange(lo, hi))[:, None]
            np.cumsum(Y[lo:hi] * scale[:, column_rate], axis=0, out=C[1:])
        sel = block == j
        t = at[sel]
        s0 = np.maximum(t - L + 1, 0)
        diff = C[t - lo + 1] - C[s0 - lo]
        out[sel] = diff if plain else (rates[None, :] ** (t - b)[:, None])[:, column_rate] * diff
    return out


def positive_definite(cov: np.ndarray) -> np.ndarray:
    """``cov`` itself when it is safely positive definite, otherwise ``cov + eps I`` with the
    smallest ``eps = mean variance x 10^k`` (``k = -10, -9, ...``) that makes it so.

    "Safely": Cholesky succeeds and every pivot (the variance of a column not explained by
    the columns before it) exceeds ``1e-12`` of the largest variance -- an exactly singular
    matrix often passes a bare Cholesky on rounding noise, and then has a meaningless
    inverse. A singular covariance (collinear or duplicated columns, more columns than
    rows with the sample estimator) so gets a unique inverse and minimum; the ridge is far
    below any real variance, so it only splits exactly-redundant columns evenly. The
    Cholesky factorisations are compiled (``pipeline.core.kernels.ridge_exponent``).
    """
    from pipeline.core import kernels

    k = kernels.ridge_exponent(np.ascontiguousarray(cov, dtype=np.float64))
    if k == kernels.PD_AS_IS:
        return cov
    if k == kernels.PD_NONFINITE:
        raise ValueError("covariance has NaN or infinite entries; check the returns for "
                         "infinities (a price of zero) and drop incomplete rows first")
    if k == kernels.PD_FAILED:
        raise ValueError("covariance is far from positive semi-definite: it was not estimated "
                         "from one set of complete rows")
    scale = float(np.mean(np.diag(cov)))
    scale = scale if scale > 0 else 1.0
    return cov + scale * 10.0 ** k * np.eye(cov.shape[0])


def correlation(cov: np.ndarray) -> np.ndarray:
    """``D^-1 cov D^-1`` with ``D = diag(sqrt(diag(cov)))``, diagonal exactly 1."""
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    np.fill_diagonal(corr, 1.0)
    return corr


# ---------------------------------------------------------------- expected returns

def historical_mean(X: np.ndarray) -> np.ndarray:
    """Arithmetic mean return of each column."""
    return X.mean(axis=0)


def ewma_mean(X: np.ndarray, halflife: float) -> np.ndarray:
    """``sum_k w_k x_k`` with ``w = ewma_weights(n, halflife)`` (pandas' adjusted ``ewm().mean()``)."""
    return ewma_weights(X.shape[0], halflife) @ X


def james_stein_mean(X: np.ndarray, cov: Optional[np.ndarray] = None) -> np.ndarray:
    """Positive-part James-Stein shrinkage of the sample means toward their grand mean.

    ``mu_JS = (1 - b) mu + b mean(mu)`` with
    ``b = clip((tr(C) - 2 lambda_max(C)) / (n ||mu - mean(mu)||^2), 0, 1)`` and ``C`` the
    covariance of the returns (the sample covariance when ``cov`` is None). Inside [0, 1]
    this is skfolio's ``ShrunkMu(method=JAMES_STEIN)``; the clip keeps it a shrinkage when
    one eigenvalue dominates (a market factor), where the raw formula would expand the means.
    James & Stein (1961); Jorion, "Bayes-Stein estimation for portfolio analysis", JFQA (1986).
    """
    mu = X.mean(axis=0)
    spread = mu - mu.mean()
    ss = spread @ spread
    if ss == 0.0:
        return mu
    C = sample_covariance(X) if cov is None else cov
    eig = np.linalg.eigvalsh(C)
    b = min(max((eig.sum() - 2.0 * eig[-1]) / (X.shape[0] * ss), 0.0), 1.0)
    return mu - b * spread


def expected_returns(X: np.ndarray, method: MeanMethod = "historical", halflife: float = 63.0,
                     cov: Optional[np.ndarray] = None) -> np.ndarray:
    """The ``method`` expected return per bar of each column; ``cov`` feeds ``james_stein``."""
    if method == "historical":
        return historical_mean(X)
    if method == "ewma":
        return ewma_mean(X, halflife)
    if method == "james_stein":
        return james_stein_mean(X, cov)
    raise ValueError(f"unknown expected-returns method {method!r}: expected one of "
                     f"historical, ewma, james_stein")


def average_true_range(high: Optional[np.ndarray], low: Optional[np.ndarray], close: np.ndarray,
                       window: int) -> np.ndarray:
    """Wilder's average true range, ``T x N``, row ``t`` from bars up to ``t`` (NaN until
    ``window`` true ranges exist). Without highs and lows the true range is the absolute
    close-to-close change (the proxy close-only data allows). Wilder's smoothing is the
    exponential average with ``alpha = 1 / window`` seeded by the first ``window`` ranges' mean;
    a bar with no range (missing data) carries the average over.
    """
    from scipy.signal import lfilter  # scipy.signal: 0.9 s of every run.py start otherwise

    c = np.asarray(close, dtype=float)
    prev = np.vstack([np.full((1, c.shape[1]), np.nan), c[:-1]])
    if high is None or low is None:
        tr = np.abs(c - prev)
    else:
        h, lo = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
        tr = np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))
    out = np.full_like(c, np.nan)
    alpha = 1.0 / window
    for j in range(c.shape[1]):
        valid = np.flatnonzero(np.isfinite(tr[:, j]))
        if valid.size < window:
            continue
        seed = valid[window - 1]
        x = tr[valid[:window], j]
        rest = tr[seed + 1:, j]
        gaps = ~np.isfinite(rest)
        if not gaps.any():  # the usual case, as a linear filter; holes take the loop below
            y, _ = lfilter([alpha], [1.0, alpha - 1.0], rest, zi=[(1.0 - alpha) * x.mean()])
            out[seed, j] = x.mean()
            out[seed + 1:, j] = y
            continue
        a = x.mean()
        out[seed, j] = a
        for t, v in enumerate(rest, start=seed + 1):
            a = a + (v - a) * alpha if np.isfinite(v) else a
            out[t, j] = a
    return out
