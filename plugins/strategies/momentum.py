"""Cross-sectional momentum: long the top-k symbols by trailing return, skipping the last month."""

from __future__ import annotations

import numpy as np

from pipeline.contracts import Strategy
from pipeline.market import MarketData


class Momentum(Strategy):
    """Jegadeesh & Titman (1993) cross-sectional momentum.

    At decision bar ``t`` the score of a symbol is its return from ``t - lookback`` to
    ``t - skip``: ``close[t - skip] / close[t - lookback] - 1``. Skipping the most recent
    ``skip`` bars avoids the short-term reversal effect (the classic "12-1" momentum is
    ``lookback=252, skip=21``). The ``top_k`` highest scores get signal 1, the rest 0; a symbol
    needs prices at ``t - lookback``, ``t - skip`` and ``t``. Ties go to the earlier column.
    """

    rules = {"lookback": "[1, inf)", "skip": "[0, inf)", "top_k": "[1, inf)"}

    def __init__(self, lookback: int = 252, skip: int = 21, top_k: int = 5) -> None:
        if skip >= lookback:
            raise ValueError(f"skip ({skip}) must be smaller than lookback ({lookback}): "
                             "the score is the return from t - lookback to t - skip")
        self.lookback = lookback
        self.skip = skip
        self.top_k = top_k

    def warmup(self) -> int:
        return self.lookback

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        close = data.close
        at = np.asarray(at)
        out = np.zeros((len(at), close.shape[1]))
        ok = at >= self.lookback
        if not ok.any():
            return out
        rows = at[ok]
        with np.errstate(invalid="ignore", divide="ignore"):
            score = close[rows - self.skip] / close[rows - self.lookback] - 1.0
        score[~np.isfinite(close[rows])] = np.nan
        ranked = np.where(np.isfinite(score), score, -np.inf)
        top = np.argsort(-ranked, axis=1, kind="stable")[:, : self.top_k]
        picked = np.zeros_like(score)
        np.put_along_axis(picked, top, 1.0, axis=1)
        picked[~np.isfinite(score)] = 0.0
        out[ok] = picked
        return out
