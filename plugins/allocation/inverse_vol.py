"""Inverse volatility: weights proportional to 1 / sigma, vectorised over all decisions."""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline.contracts import Allocator
from plugins.allocation._common import WINDOW_RULES, check_history

# windowed sums lose a few eps of the mean square to cancellation: a variance below this
# share of it is recomputed from its window, where "constant column" is decided exactly,
# as weigh_one decides it
_REFINE = 1e-8


def _window_moments(X: np.ndarray, decay: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of the window ``X`` (n x m, NaN = no observation): the variance with weight
    ``decay^age`` per observation, whether the column is constant, and its observations."""
    n = X.shape[0]
    valid = ~np.isnan(X)
    a = np.where(valid, (decay ** np.arange(n - 1, -1, -1.0))[:, None], 0.0)
    X0 = np.where(valid, X, 0.0)
    W, W2 = a.sum(axis=0), (a * a).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (a * X0).sum(axis=0) / W
        var = (a * (X0 - mean) ** 2).sum(axis=0) / (W - W2 / W)
    constant = (np.where(valid, X, -np.inf).max(axis=0, initial=-np.inf)
                == np.where(valid, X, np.inf).min(axis=0, initial=np.inf))
    return var, constant, valid.sum(axis=0)


def _window_sums(Y: np.ndarray, at: np.ndarray, L: int, decay: float,
                 decays: tuple[float, float] | None = None) -> np.ndarray:
    """``sum_{s = max(0, t-L+1)}^{t} decay^(t-s) Y[s]`` for each ``t`` in ``at`` (all columns).

    Decisions are grouped by block ``b = (t // B) B``; one cumulative sum of
    ``Y[s] decay^(b-s)`` over rows ``[b - L, b + B)`` serves the whole block, and a window's
    sum is a difference of two entries rescaled by ``decay^(t-b)``. Rescaling around each
    block keeps the factors within ``2^500`` (``B <= 500 halflives``) and the differences
    free of the cancellation a cumulative sum over the whole history would suffer. With
    ``decays``, the first and second halves of ``Y``'s columns use those two decays instead.
    """
    T, n = Y.shape
    rates = np.full(n, decay) if decays is None else np.repeat(decays, n // 2)
    slowest = rates[rates < 1.0].max(initial=0.0)
    B = L if slowest == 0.0 else max(1, min(L, int(500.0 / -np.log2(slowest))))
    out = np.empty((at.size, n))
    block = at // B
    for j in np.unique(block):
        b = int(j) * B
        lo, hi = max(0, b - L), min(T, b + B)
        scale = rates[None, :] ** (b - np.arange(lo, hi))[:, None]
        C = np.zeros((hi - lo + 1, n))
        np.cumsum(Y[lo:hi] * scale, axis=0, out=C[1:])
        sel = block == j
        t = at[sel]
        s0 = np.maximum(t - L + 1, 0)
        out[sel] = rates[None, :] ** (t - b)[:, None] * (C[t - lo + 1] - C[s0 - lo])
    return out


class InverseVol(Allocator):
    """``w_i = side_i (1/sigma_i) / sum_j (1/sigma_j)`` over the eligible columns.

    ``sigma_i`` is the standard deviation of column ``i`` over its own valid observations in
    the last ``lookback`` bars, with weight ``lambda^age`` per observation: ``lambda = 1``
    (``covariance: sample``, divisor ``n - 1``) or ``lambda = 2^(-1/halflife)``
    (``covariance: ewma``, with the reliability-weights bias correction of
    ``pipeline.estimators.ewma_covariance``). Only the diagonal matters here, so Ledoit-Wolf
    is not offered.

    Fallbacks: a decision where some eligible column has fewer than ``min_history`` valid
    observations gets equal weight; a column constant over its window (zero volatility) gets
    weight 0 (all constant: equal weight).

    ``weigh`` is vectorised: the windowed (decayed) sums of ``1, r, r^2`` at every decision
    come from block-wise cumulative sums (``_window_sums``), a few numpy passes over the
    history whatever the number of decisions.
    """

    rules = WINDOW_RULES

    def __init__(self, lookback: int = 252, min_history: int = 60,
                 covariance: Literal["sample", "ewma"] = "sample", halflife: float = 63.0) -> None:
        check_history(lookback, min_history)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife

    def _decay(self) -> float:
        return 1.0 if self.covariance == "sample" else 0.5 ** (1.0 / self.halflife)

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        decay, L = self._decay(), int(self.lookback)
        valid = ~np.isnan(returns)
        X0 = np.where(valid, returns, 0.0)
        n_sym = returns.shape[1]
        sums = _window_sums(np.hstack([valid, X0, X0 * X0]), at, L, decay)
        W, S1, S2 = (sums[:, j * n_sym:(j + 1) * n_sym] for j in range(3))
        if decay == 1.0:
            count, W2 = W, W
        else:
            more = _window_sums(np.hstack([valid, valid]).astype(np.float64), at, L, decay,
                                (1.0, decay * decay))
            count, W2 = more[:, :n_sym], more[:, n_sym:]
        with np.errstate(divide="ignore", invalid="ignore"):
            var = (S2 - S1 * S1 / W) / (W - W2 / W)
            mean_square = S2 / W
        start = np.maximum(at - L + 1, 0)
        constant = np.zeros(var.shape, dtype=bool)
        fuzzy = (signals != 0) & (count >= 2) & ~(var > _REFINE * mean_square)
        for k, j in zip(*np.nonzero(fuzzy)):
            v, c, _ = _window_moments(returns[start[k]: at[k] + 1, j: j + 1], decay)
            var[k, j], constant[k, j] = v[0], c[0]
        return self._from_moments(var, constant, np.rint(count), np.sign(signals))

    def weigh_one(self, returns: np.ndarray, side: np.ndarray) -> np.ndarray:
        window = np.asarray(returns, dtype=np.float64)[-int(self.lookback):]
        var, constant, count = _window_moments(window, self._decay())
        side = np.asarray(side, dtype=np.float64)
        return self._from_moments(var[None], constant[None], count[None], side[None])[0]

    def _from_moments(self, var: np.ndarray, constant: np.ndarray, count: np.ndarray,
                      side: np.ndarray) -> np.ndarray:
        """Weights for rows of per-column moments; ``side`` is 0 where not eligible."""
        eligible = side != 0
        m = eligible.sum(axis=1, keepdims=True)
        equal = np.divide(side, m, out=np.zeros(side.shape), where=m > 0)
        short = (eligible & (count < int(self.min_history))).any(axis=1)
        usable = eligible & (count >= 2) & ~constant & (var > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(usable, 1.0 / np.sqrt(np.where(usable, var, 1.0)), 0.0)
        total = inv.sum(axis=1, keepdims=True)
        w = np.divide(side * inv, total, out=np.zeros(side.shape), where=total > 0)
        return np.where((short | (total[:, 0] <= 0))[:, None], equal, w)
