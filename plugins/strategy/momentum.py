"""Momentum: cross-sectional (rank symbols by trailing return) or time-series (trade each
symbol's own trend), with a skipped recent window and optional volatility scaling."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import Window
from plugins.strategy._common import cross_sectional_top

BARS_PER_YEAR = 252


class Momentum(Strategy):
    """Cross-sectional momentum (Jegadeesh & Titman 1993) or time-series momentum
    (Moskowitz, Ooi & Pedersen 2012).

    At decision bar ``t`` the score of a symbol is its return from ``t - lookback`` to
    ``t - skip``: ``close[t - skip] / close[t - lookback] - 1``. Skipping the most recent
    ``skip`` bars avoids the short-term reversal effect (the classic "12-1" momentum is
    ``lookback=252, skip=21``). A symbol needs prices at ``t - lookback``, ``t - skip`` and ``t``.

    - ``mode="cross_sectional"``: the ``top_k`` highest scores get +1 (with ``long_short``,
      the ``top_k`` lowest also get -1), whatever the sign of their returns. Ties go to the
      earlier column.
    - ``mode="time_series"``: every symbol with a positive score gets +1 (with ``long_short``
      every negative one gets -1); ``top_k``, when set, keeps at most the ``top_k`` strongest
      on each side, ``null`` keeps all.

    ``vol_target`` (annualised, e.g. 0.4 as in Moskowitz et al.) turns the +-1 into a
    conviction ``vol_target / sigma``, sigma being the symbol's annualised standard deviation
    of daily returns over the ``vol_window`` bars to ``t``; allocators that use magnitudes
    (the signal's contract) then size positions inversely to risk. ``null`` keeps +-1.

    ``lookback``, ``skip`` and ``vol_window`` count bars, or take durations turned into bars
    of the data (``20d``: 20 sessions, ``2h``; ``pipeline.core.params.Window``).
    """

    rules = {"lookback": "[1, inf)", "skip": "[0, inf)", "top_k": "[1, inf)",
             "vol_target": "(0, inf)", "vol_window": "[2, inf)"}

    def __init__(self, lookback: Window = 252, skip: Window = 21, top_k: Optional[int] = 5,
                 mode: Literal["cross_sectional", "time_series"] = "cross_sectional",
                 long_short: bool = False, vol_target: Optional[float] = None,
                 vol_window: Window = 63) -> None:
        # durations (20d, 2h) are compared once in bars (``pipeline.core.params.in_bars``)
        if isinstance(skip, int) and isinstance(lookback, int) and skip >= lookback:
            raise ValueError(f"skip ({skip}) must be smaller than lookback ({lookback}): "
                             "the score is the return from t - lookback to t - skip")
        if top_k is None and mode == "cross_sectional":
            raise ValueError("top_k=null needs mode='time_series': cross-sectional momentum "
                             "holds the top_k symbols by rank")
        self.lookback = lookback
        self.skip = skip
        self.top_k = top_k
        self.mode = mode
        self.long_short = long_short
        self.vol_target = vol_target
        self.vol_window = vol_window

    def warmup(self) -> int:
        return max(self.lookback, self.vol_window if self.vol_target else 0)

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        close = data.close
        at = np.asarray(at, dtype=np.int64)
        out = np.zeros((len(at), close.shape[1]))
        ok = at >= self.warmup()
        if not ok.any():
            return out
        rows = at[ok]
        with np.errstate(invalid="ignore", divide="ignore"):
            score = close[rows - self.skip] / close[rows - self.lookback] - 1.0
        score[~np.isfinite(close[rows])] = np.nan
        if self.mode == "cross_sectional":
            picked = cross_sectional_top(score, self.top_k).astype(np.float64)
            if self.long_short:
                short = cross_sectional_top(score, self.top_k, largest=False) & (picked == 0)
                picked[short] = -1.0
        else:
            k = score.shape[1] if self.top_k is None else self.top_k
            with np.errstate(invalid="ignore"):
                up = cross_sectional_top(np.where(score > 0, score, np.nan), k)
                down = cross_sectional_top(np.where(score < 0, score, np.nan), k, largest=False)
            picked = up.astype(np.float64)
            if self.long_short:
                picked[down] = -1.0
        if self.vol_target:
            picked *= self._vol_scale(close, rows)
        out[ok] = picked
        return out

    def _vol_scale(self, close: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """vol_target / annualised volatility of daily log returns over the vol window."""
        w = self.vol_window
        logp = np.log(close)
        # (K, w, N) trailing windows of daily log returns ending at each decision
        offsets = np.arange(-w + 1, 1)
        idx = rows[:, None] + offsets[None, :]
        rets = logp[idx] - logp[idx - 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = np.std(rets, axis=1, ddof=1) * np.sqrt(BARS_PER_YEAR)
            scale = self.vol_target / sigma
        return np.where(np.isfinite(scale), scale, 0.0)
