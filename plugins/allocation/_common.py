"""What every estimating allocator shares: the window, the fallback, and the sides.

``WindowAllocator`` turns the contract's ``(returns, side)`` into the one question each
allocator answers -- long weights from a clean window of position returns -- so that NaN
handling, the too-little-history fallback and the sign convention live in one place.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core import estimators
from pipeline.core.contracts import Allocator

WINDOW_RULES = {"lookback": "[2, inf)", "min_history": "[2, inf)", "halflife": "(0, inf)"}


def check_history(lookback: int | str, min_history: int | str) -> None:
    """Durations (``20d``) are compared once in bars (``pipeline.core.params.in_bars``)."""
    if isinstance(lookback, int) and isinstance(min_history, int) and min_history > lookback:
        raise ValueError(f"min_history={min_history} exceeds lookback={lookback}: no window "
                         f"could ever hold enough history; lower min_history or raise lookback")


def check_bounds(min_weight: Optional[float], max_weight: Optional[float]) -> None:
    if min_weight is not None and max_weight is not None and min_weight > max_weight:
        raise ValueError(f"min_weight={min_weight} exceeds max_weight={max_weight}")


def weight_bounds(min_weight: Optional[float], max_weight: Optional[float],
                  m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column bounds for ``m`` columns (None: unbounded), widened to include ``1/m``.

    A fully invested portfolio of ``m`` columns needs ``lo <= 1/m <= hi``; when the number of
    eligible columns makes the configured bounds infeasible (``max_weight=0.2`` with three
    columns) the offending bound is relaxed to ``1/m`` rather than failing the decision.
    """
    lo = -np.inf if min_weight is None else min(min_weight, 1.0 / m)
    hi = np.inf if max_weight is None else max(max_weight, 1.0 / m)
    return np.full(m, lo), np.full(m, hi)


class WindowAllocator(Allocator):
    """Base of the allocators that estimate from the last ``lookback`` bars of returns.

    For each decision, on the eligible columns' window of returns:

    1. rows with any NaN are dropped (bars before a column's listing, gaps);
    2. fewer than ``min_history`` remaining rows -> equal weight ``side / m`` (the fallback);
    3. returns are turned into position returns ``r * side`` (a short earns ``-r``), so every
       allocator solves a long-only problem and the sign of a weight is its side;
    4. columns constant over the window (zero variance: halted, stale, a sleeve that never
       traded) have no risk estimate and get weight 0; if every column is constant -> the
       equal-weight fallback;
    5. ``_position_weights`` weighs the rest; a singular covariance gets the smallest ridge
       that makes it positive definite (``pipeline.core.estimators.positive_definite``).

    Subclasses set ``lookback``, ``min_history`` (and, when they estimate moments,
    ``covariance``, ``halflife``, ``expected_returns``) in ``__init__`` and implement
    ``_position_weights``. ``weigh`` walks the decisions in order and hands each one the
    previous decision's weights, for warm starts and smoothing.
    """

    lookback: int
    min_history: int

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray) -> np.ndarray:
        return self._walk(returns, signals, at, None)

    def weigh_one(self, returns: np.ndarray, side: np.ndarray) -> np.ndarray:
        return self._weigh_last(returns, np.asarray(side, dtype=np.float64), None)

    def _weigh_last(self, returns: np.ndarray, side: np.ndarray,
                    budgets: Optional[np.ndarray]) -> np.ndarray:
        """``weigh_one``: the last ``lookback`` rows, no previous decision."""
        returns = np.asarray(returns, dtype=np.float64)
        n = returns.shape[0]
        return self._weights(returns, max(0, n - int(self.lookback)), n, np.arange(side.size),
                             side, None, budgets)

    def _walk(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray,
              budgets: Optional[np.ndarray]) -> np.ndarray:
        """The decisions in order, each seeing the previous one's weights; ``budgets`` (N,)
        are per-column risk budgets for the allocators that take them."""
        out = np.zeros(signals.shape, dtype=np.float64)
        prev = np.zeros(signals.shape[1])
        window = int(self.lookback)
        # column-major, so that each window's per-column passes run over contiguous memory
        returns = np.asfortranarray(returns, dtype=np.float64)
        for i, t in enumerate(at):
            cols = np.flatnonzero(signals[i])
            if cols.size:
                out[i, cols] = self._weights(returns, max(0, t - window + 1), t + 1, cols,
                                             np.sign(signals[i, cols]), prev[cols],
                                             None if budgets is None else budgets[cols])
            prev = out[i]
        return out

    def _weights(self, returns: np.ndarray, start: int, stop: int, cols: np.ndarray,
                 side: np.ndarray, prev: Optional[np.ndarray],
                 budgets: Optional[np.ndarray]) -> np.ndarray:
        """The weights of columns ``cols`` (sides ``side``) on rows ``start:stop`` of ``returns``."""
        P, live = estimators.position_window(returns, start, stop, cols, side)
        if P.shape[0] < max(int(self.min_history), 2) or not live.any():
            return self._fallback(side)
        # previous weights in position terms; a position that flipped side held nothing
        prev_pos = None if prev is None else np.maximum(prev * side, 0.0)
        if live.all():
            return self._position_weights(P, prev_pos, budgets) * side
        w = np.zeros(side.size)
        w[live] = self._position_weights(P[:, live], None if prev_pos is None else prev_pos[live],
                                         None if budgets is None else budgets[live])
        return w * side

    def _fallback(self, side: np.ndarray) -> np.ndarray:
        """Weights when the window cannot support an estimate: equal weight."""
        return side / side.size

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        """Long weights for the clean window ``P`` (n x m position returns, n >= min_history,
        no constant column). ``prev`` holds the previous decision's weights of these columns
        (0 where not held; None for a one-off call), ``budgets`` per-column risk budgets
        (RiskBudgeting only)."""
        raise NotImplementedError

    # -- estimators configured on the subclass ------------------------------------------------
    def _covariance(self, P: np.ndarray) -> np.ndarray:
        """The configured covariance, ridged to positive definite when singular."""
        return estimators.positive_definite(estimators.covariance(P, self.covariance, self.halflife))

    def _expected_returns(self, P: np.ndarray, cov: np.ndarray) -> np.ndarray:
        return estimators.expected_returns(P, self.expected_returns, self.halflife, cov)
