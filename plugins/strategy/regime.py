"""Regime filter: gate or scale any strategy by a market regime detected without look-ahead."""

from __future__ import annotations

import warnings
from typing import Any, Literal, Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import Window
from plugins.strategy._common import causal_view, check_rule, latest, refit_bars
from plugins.strategy.momentum import Momentum


class Regime(Strategy):
    """Multiply another strategy's signal by ``high_scale`` in a turbulent regime and by
    ``low_scale`` otherwise (``high_scale=0``: stand aside when markets are turbulent).

    The market is the equal-weight mean of the symbols' daily returns. The regime at bar ``t``:

    - ``method="volatility"``: turbulent when the market's realised volatility over the
      ``vol_window`` bars to ``t`` is above the ``quantile`` of its own history from the first
      full window to ``t`` (an expanding quantile, so only the past sets the bar; known
      from ``min_history`` volatility observations on). A volatility-managed rule in the
      spirit of Moreira & Muir (2017, "Volatility-managed portfolios").
    - ``method="markov"``: a two-state Markov-switching model with regime-dependent mean
      and variance (Hamilton 1989; ``statsmodels.tsa.regime_switching.MarkovRegression``),
      fitted on the last ``fit_window`` market returns (all of them while fewer, or with
      ``fit_window=null``) up to each refit bar (the first bar of
      every ``refit`` period, first at ``min_history``); turbulent when the *filtered*
      probability of the high-variance state at ``t`` - computed with the latest fit's
      parameters from returns up to ``t`` only, never the smoothed one - exceeds ``threshold``.

    ``base`` is the wrapped strategy: a Strategy object, built from a config node with its own
    ``_target_`` (``null`` means ``Momentum()``). Magnitudes matter only to allocators that
    use them; a ``0`` always removes the position.
    """

    rules = {"vol_window": "[2, inf)", "quantile": "(0, 1)", "min_history": "[20, inf)",
             "high_scale": "[0, inf)", "low_scale": "[0, inf)", "fit_window": "[100, inf)",
             "threshold": "(0, 1)"}

    def __init__(self, base: Any = None, method: Literal["volatility", "markov"] = "volatility",
                 vol_window: Window = 21, quantile: float = 0.8, min_history: Window = 504,
                 high_scale: float = 0.0, low_scale: float = 1.0,
                 refit: Union[str, int] = "yearly", fit_window: Optional[int] = 2520,
                 threshold: float = 0.5) -> None:
        check_rule(refit, "refit")
        if base is not None and not isinstance(base, Strategy):
            raise ValueError(f"base={base!r} is not a Strategy; give a node with _target_, e.g. "
                             f"{{_target_: plugins.strategy.momentum.Momentum}}")
        self.base = base
        self.method = method
        self.vol_window = vol_window
        self.quantile = quantile
        self.min_history = min_history
        self.high_scale = high_scale
        self.low_scale = low_scale
        self.refit = refit
        self.fit_window = fit_window
        self.threshold = threshold

    def _base(self) -> Strategy:
        if self.base is not None:
            return self.base
        return Momentum()

    def regime_warmup(self) -> int:
        if self.method == "volatility":
            return self.vol_window + self.min_history
        return self.min_history

    def warmup(self) -> int:
        return max(self._base().warmup(), self.regime_warmup())

    # ------------------------------------------------------------------ regime
    @staticmethod
    def market_returns(data: MarketData) -> np.ndarray:
        r = data.returns
        ok = np.isfinite(r)
        count = ok.sum(axis=1)
        total = np.where(ok, r, 0.0).sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def turbulent(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        """Boolean per decision: True in the turbulent regime (False before it is known)."""
        at = np.asarray(at, dtype=np.int64)
        if at.size == 0:
            return np.zeros(0, dtype=bool)
        view = causal_view(data, at)
        mret = self.market_returns(view)
        if self.method == "volatility":
            vol = pd.Series(mret).rolling(self.vol_window, min_periods=self.vol_window).std()
            bar = vol.expanding(min_periods=self.min_history).quantile(self.quantile)
            high = (vol > bar).to_numpy()
            return high[at]
        return self._markov(mret, view.index, at) > self.threshold

    def _markov(self, mret: np.ndarray, index: pd.DatetimeIndex, at: np.ndarray) -> np.ndarray:
        """Filtered probability of the high-variance state at each decision (0 before a fit)."""
        from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

        refits = refit_bars(index, self.refit, self.min_history)
        which = latest(refits, at)
        prob = np.zeros(at.size)
        for f in np.unique(which[which >= 0]):
            rows = np.flatnonzero(which == f)
            r = int(refits[f])
            lo = 1 if self.fit_window is None else max(1, r - self.fit_window + 1)
            fit_y = 100.0 * np.nan_to_num(mret[lo: r + 1])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = MarkovRegression(fit_y, k_regimes=2, switching_variance=True)
                try:
                    params = model.fit(disp=False).params
                except Exception:  # EM/BFGS failure: no regime this period, stated as 0
                    continue
                names = model.param_names
                s2 = [params[names.index("sigma2[0]")], params[names.index("sigma2[1]")]]
                high = int(np.argmax(s2))
                end = int(at[rows].max())
                path = 100.0 * np.nan_to_num(mret[lo: end + 1])
                filt = MarkovRegression(path, k_regimes=2, switching_variance=True).filter(params)
            p = np.asarray(filt.filtered_marginal_probabilities)[:, high]
            prob[rows] = p[at[rows] - lo]
        return prob

    # ------------------------------------------------------------------ signal
    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        base = np.asarray(self._base().signal(data, at), dtype=np.float64)
        if at.size == 0:
            return base
        high = self.turbulent(data, at)
        scale = np.where(high, self.high_scale, self.low_scale)
        return base * scale[:, None]
