"""Inverse volatility: weights proportional to 1 / sigma, vectorised over all decisions."""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline.core.contracts import Allocator
from pipeline.core.estimators import window_sums
from pipeline.core.params import Window
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


class InverseVol(Allocator):
    """``w_i = side_i (1/sigma_i) / sum_j (1/sigma_j)`` over the eligible columns.

    ``sigma_i`` is the standard deviation of column ``i`` over its own valid observations in
    the last ``lookback`` bars, with weight ``lambda^age`` per observation: ``lambda = 1``
    (``covariance: sample``, divisor ``n - 1``) or ``lambda = 2^(-1/halflife)``
    (``covariance: ewma``, with the reliability-weights bias correction of
    ``pipeline.core.estimators.ewma_covariance``). Only the diagonal matters here, so Ledoit-Wolf
    is not offered.

    Fallbacks: a decision where some eligible column has fewer than ``min_history`` valid
    observations gets equal weight; a column constant over its window (zero volatility) gets
    weight 0 (all constant: equal weight).

    ``weigh`` is vectorised: the windowed (decayed) sums of ``1, r, r^2`` at every decision
    come from block-wise cumulative sums (``pipeline.core.estimators.window_sums``), a few numpy
    passes over the history whatever the number of decisions.
    """

    rules = WINDOW_RULES

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
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
        # decayed sums of 1, r, r^2, the squared weights' sum (decay^2) and plain counts (1)
        rates = np.repeat([decay, decay, decay, decay * decay, 1.0], n_sym)
        sums = window_sums(np.hstack([valid, X0, X0 * X0, valid, valid]), at, L, rates)
        W, S1, S2, W2, count = (sums[:, j * n_sym:(j + 1) * n_sym] for j in range(5))
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
