"""Covariance and expected-return estimators over a window of returns, in plain numpy.

Shared by the allocators (plugins/allocation) and by risk constraints such as vol targeting,
so that ``covariance: ledoit_wolf`` means the same matrix everywhere. A window ``X`` is an
``n x m`` array of simple returns, rows oldest first, and must be NaN-free
(``complete_rows`` drops incomplete rows). Estimates are per bar (a daily window gives daily
moments); nothing here annualises.

Config-facing layer: the ``CovarianceMethod`` / ``MeanMethod`` literals are what a component
annotates its ``covariance`` / ``expected_returns`` parameter with, and ``covariance`` /
``expected_returns`` dispatch on those names with a shared ``halflife``.
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


def constant_columns(X: np.ndarray) -> np.ndarray:
    """True for columns whose returns are identical on every row of the window (zero
    variance: a halted or stale price, a sleeve that never traded), for which no risk
    estimate exists. Decided exactly, not by a variance threshold."""
    return (X == X[0]).all(axis=0)


def ewma_weights(n: int, halflife: float) -> np.ndarray:
    """Observation weights ``w_k ∝ 2^(-(n-1-k)/halflife)`` (newest last), summing to 1."""
    w = np.exp2((np.arange(n) - (n - 1)) / halflife)
    return w / w.sum()


# ---------------------------------------------------------------- covariance

def sample_covariance(X: np.ndarray, ddof: int = 1) -> np.ndarray:
    """``S = Xc' Xc / (n - ddof)`` with ``Xc`` the de-meaned window (``np.cov``, skfolio's
    ``EmpiricalCovariance``)."""
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / (X.shape[0] - ddof)


def _ledoit_wolf(Xc: np.ndarray) -> tuple[np.ndarray, float]:
    """``(S, s)``: the maximum-likelihood covariance of the de-meaned window and the
    Ledoit-Wolf shrinkage intensity (see ``ledoit_wolf_shrinkage``)."""
    n, p = Xc.shape
    S = Xc.T @ Xc / n
    if p == 1:
        return S, 0.0
    row_sq = np.einsum("ij,ij->i", Xc, Xc)
    mu = row_sq.sum() / (n * p)
    frob = np.dot(S.ravel(), S.ravel())
    delta = (frob - p * mu * mu) / p  # ||S - mu I||_F^2 / p, as tr(S) = p mu
    beta = min((row_sq @ row_sq / n - frob) / (p * n), delta)
    # delta == 0: S already is the target (equal variances, no correlation)
    return S, (float(beta / delta) if delta > 0 and beta > 0 else 0.0)


def ledoit_wolf_shrinkage(X: np.ndarray) -> float:
    """Ledoit-Wolf (2004) shrinkage intensity of the window toward ``mu I``.

    With ``S = Xc'Xc/n`` (``Xc`` de-meaned), ``mu = tr(S)/p``, ``d^2 = ||S - mu I||_F^2 / p``
    and ``b^2 = min(d^2, (sum_k ||x_k||^4 / n - ||S||_F^2) / (p n))`` the intensity is
    ``b^2 / d^2`` -- exactly ``sklearn.covariance.ledoit_wolf_shrinkage``, using
    ``sum((X^2)'(X^2)) = sum_k ||x_k||^4`` to avoid a second p x p product.
    Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance
    matrices", J. Multivariate Analysis 88 (2004).
    """
    return _ledoit_wolf(X - X.mean(axis=0))[1]


def ledoit_wolf_covariance(X: np.ndarray) -> np.ndarray:
    """``(1 - s) S + s mu I`` with ``S`` the maximum-likelihood covariance (divisor ``n``),
    ``mu = tr(S)/p`` and ``s`` from ``ledoit_wolf_shrinkage``: ``sklearn.covariance.LedoitWolf``.
    """
    S, s = _ledoit_wolf(X - X.mean(axis=0))
    p = S.shape[0]
    cov = (1.0 - s) * S
    cov.flat[:: p + 1] += s * S.diagonal().sum() / p
    return cov


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


def positive_definite(cov: np.ndarray) -> np.ndarray:
    """``cov`` itself when Cholesky succeeds, otherwise ``cov + eps I`` with the smallest
    ``eps = mean variance x 10^k`` (``k = -10, -9, ...``) that makes it positive definite.

    A singular covariance (collinear or duplicated columns, more columns than rows with the
    sample estimator) then has a unique inverse and minimum; the ridge is far below any
    real variance, so it only splits exactly-redundant columns evenly.
    """
    if not np.isfinite(cov).all():
        raise ValueError("covariance has NaN or infinite entries; check the returns for "
                         "infinities (a price of zero) and drop incomplete rows first")
    try:
        np.linalg.cholesky(cov)
        return cov
    except np.linalg.LinAlgError:
        pass
    scale = float(np.mean(np.diag(cov)))
    scale = scale if scale > 0 else 1.0
    eye = np.eye(cov.shape[0])
    for k in range(-10, 1):
        ridged = cov + scale * 10.0 ** k * eye
        try:
            np.linalg.cholesky(ridged)
            return ridged
        except np.linalg.LinAlgError:
            continue
    raise ValueError("covariance is far from positive semi-definite: it was not estimated "
                     "from one set of complete rows")


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
