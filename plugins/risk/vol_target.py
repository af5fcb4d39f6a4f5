"""Scale the book to a target ex-ante annual volatility, under a leverage cap."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core import estimators
from pipeline.core.contracts import Constraint, RiskContext
from pipeline.core.errors import ConfigError
from pipeline.core.params import Window


class VolTarget(Constraint):
    """Scale each decision's weights by one factor so that their ex-ante annualised
    volatility is ``target``, with the scaled book's gross at most ``max_leverage``.

    Estimator: for the decision at bar ``t``, the returns of the held columns over the
    ``lookback`` bars ending at ``t`` (``ctx.returns[t - lookback + 1 : t + 1]``, nothing
    after ``t``), rows with a NaN dropped (``pipeline.core.estimators.complete_rows``); their
    ``covariance`` (``pipeline.core.estimators.covariance``: ``sample`` -- the default, unbiased
    for a fixed portfolio's variance --, ``ledoit_wolf``, or ``ewma`` with ``halflife``
    bars) gives the per-bar variance ``w' C w``, annualised by ``periods_per_year`` (null:
    the data's bars a year, 252 sessions x the bars in a session, ``MarketData.bars_per_year``):
    ``vol = sqrt(periods_per_year x w' C w)``. The factor is
    ``min(target / vol, max_leverage / gross)``; a zero estimated vol gets the leverage cap.
    A window with fewer than ``min_history`` complete rows cannot give an estimate: a
    ``ConfigError`` naming the decision (start later, or lower ``min_history``).

    Runs at order 12 -- after ``long_only``, before the per-name and per-group caps -- so
    the caps hold on its output as fractions of equity (they may lower the vol below the
    target, or, redistributing, move it slightly), and before the net and gross leverage
    caps, which are final and can only lower it.
    """

    order = 12.0
    primary = "target"
    rules = {"target": "(0, inf)", "max_leverage": "(0, inf)", "lookback": "[2, inf)",
             "min_history": "[2, inf)", "halflife": "(0, inf)", "periods_per_year": "(0, inf)"}

    def __init__(self, target: float = 0.10, max_leverage: float = 1.0, lookback: Window = 63,
                 min_history: Window = 20, covariance: estimators.CovarianceMethod = "sample",
                 halflife: float = 21.0, periods_per_year: Optional[float] = None) -> None:
        # durations (20d, 2h) are compared once in bars (``pipeline.core.windows.in_bars``)
        if isinstance(lookback, int) and isinstance(min_history, int) and min_history > lookback:
            raise ValueError(f"min_history={min_history} exceeds lookback={lookback}: no window "
                             f"could ever hold enough history; lower min_history or raise lookback")
        self.target = target
        self.max_leverage = max_leverage
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife
        self.periods_per_year = periods_per_year

    def ex_ante_vol(self, w: np.ndarray, returns: np.ndarray, t: int, bars_per_year: float = 252.0) -> float:
        """Annualised ex-ante volatility of weights ``w`` (N,) at decision bar ``t``, by
        ``periods_per_year`` when set, else by the data's ``bars_per_year``."""
        held = np.flatnonzero(w)
        if held.size == 0:
            return 0.0
        window = estimators.complete_rows(returns[max(0, t - self.lookback + 1): t + 1, held])
        if window.shape[0] < self.min_history:
            raise ConfigError(
                f"risk.vol_target: the decision at bar {t} has {window.shape[0]} complete bars of "
                f"returns in its {self.lookback}-bar window, fewer than min_history="
                f"{self.min_history}; lower risk.vol_target.min_history, or let the first "
                f"decision come later (more bars before it)")
        cov = estimators.covariance(window, self.covariance, self.halflife)
        var = float(w[held] @ cov @ w[held]) * (self.periods_per_year or bars_per_year)
        return float(np.sqrt(max(var, 0.0)))

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        out = weights.copy()
        bound = np.zeros(weights.shape[0], dtype=bool)
        gross = np.abs(weights).sum(axis=1)
        for i, t in enumerate(ctx.at):
            if gross[i] == 0:
                continue
            vol = self.ex_ante_vol(weights[i], ctx.returns, int(t), ctx.bars_per_year)
            cap = self.max_leverage / gross[i]
            scale = min(self.target / vol, cap) if vol > 0 else cap
            if abs(scale - 1.0) > 1e-9:
                out[i] = weights[i] * scale
                bound[i] = True
        return out, bound
