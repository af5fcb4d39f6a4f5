"""CSCV's inner loop, compiled with numba: per combination of blocks, every trial's in- and
out-of-sample metric from its block sums, the in-sample best and its out-of-sample rank.

``overfitting.pbo_from_sums`` calls it on chunks of combinations. The metric from block sums
(``sum``, ``sum of squares`` over ``rows`` rows): the mean, or the Sharpe ratio
``mean / sqrt(var)`` with ``var = max(s2 - rows mean^2, 0) / (rows - 1)``, 0 or +-inf when the
variance is zero up to rounding; the choice and the rank as ``overfitting._choose`` makes
them (ties share the mean rank). Fused into one pass: the numpy version made eight C x N
temporaries per chunk of combinations and took 0.6 s per thousand trials; the combinations
are spread over the cores (the summary runs after the workers are done).
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _metric(s1: float, s2: float, rows: int, sharpe: bool, zero_var: float) -> float:
    mean = s1 / rows
    if not sharpe:
        return mean
    mean_sq = s2 / rows
    var = max(s2 - rows * (mean * mean), 0.0) / (rows - 1)
    if var <= zero_var * mean_sq:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / math.sqrt(var)


@numba.njit(cache=True, parallel=True)
def choose(s1: np.ndarray, s2: np.ndarray, tot1: np.ndarray, tot2: np.ndarray, rows: int, sharpe: bool,
           zero_var: float, chosen: np.ndarray, omega: np.ndarray, is_chosen: np.ndarray,
           oos_chosen: np.ndarray) -> None:
    """Fill ``chosen``, ``omega``, ``is_chosen``, ``oos_chosen`` (one entry per row of ``s1``,
    a combination's in-sample block sums; ``tot - s`` its out-of-sample ones)."""
    c, n = s1.shape
    for i in numba.prange(c):  # combinations are independent: one per thread at a time
        oos = np.empty(n)
        best, best_j = -math.inf, -1
        for j in range(n):
            v = _metric(s1[i, j], s2[i, j], rows, sharpe, zero_var)
            # np.argmax: the first maximum, and the first NaN if there is one
            if best_j < 0 or v > best or (math.isnan(v) and not math.isnan(best)):
                best, best_j = v, j
            oos[j] = _metric(tot1[j] - s1[i, j], tot2[j] - s2[i, j], rows, sharpe, zero_var)
        target = oos[best_j]
        below, ties = 0, 0
        for j in range(n):
            below += oos[j] < target
            ties += oos[j] == target
        chosen[i] = best_j
        omega[i] = (below + (ties + 1) / 2.0) / (n + 1)
        is_chosen[i] = best
        oos_chosen[i] = target
