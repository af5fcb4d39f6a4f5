"""Mean reversion: trade the z-score of price, or of a market-residual, against a rolling mean."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import Window
from plugins.strategy._common import band_positions, causal_view


class MeanReversion(Strategy):
    """Z-score mean reversion with entry / exit (and optional stop) bands.

    Per symbol and bar ``t``, over the trailing ``lookback`` bars ending at ``t``:

    - ``series="price"``: ``z = (x_t - mean(x)) / std(x)`` with ``x`` the log close (a Bollinger
      band in z units; Poterba & Summers 1988 and Lo & MacKinlay 1990 on short-horizon reversal).
    - ``series="residual"``: ``x`` is first regressed on the market's log index ``m`` (the
      cumulated equal-weight mean of the symbols' log returns) over the window,
      ``x = a + b m + e``, and ``z`` is the last residual over the residuals' standard
      deviation: the idiosyncratic deviation, as in the s-score of Avellaneda & Lee (2010,
      "Statistical arbitrage in the US equities market").

    The position follows the band rule, evaluated at every bar (not only at decisions, so it
    does not depend on the schedule): open ``-sign(z)`` when ``|z| >= entry``, close when
    ``|z| <= exit``, hold in between; with ``stop`` set, close when ``|z| >= stop`` and wait for
    ``|z| <= exit`` before re-entering. Signals are -1, 0 or +1.
    """

    rules = {"lookback": "[3, inf)", "entry": "(0, inf)", "exit": "[0, inf)", "stop": "(0, inf)"}

    def __init__(self, lookback: Window = 20, series: Literal["price", "residual"] = "price",
                 entry: float = 2.0, exit: float = 0.5, stop: Optional[float] = None) -> None:
        if exit >= entry:
            raise ValueError(f"exit ({exit}) must be below entry ({entry}): a position opens at "
                             f"|z| >= entry and closes at |z| <= exit")
        if stop is not None and stop <= entry:
            raise ValueError(f"stop ({stop}) must be above entry ({entry})")
        self.lookback = lookback
        self.series = series
        self.entry = entry
        self.exit = exit
        self.stop = stop

    def warmup(self) -> int:
        return self.lookback

    def zscore(self, data: MarketData) -> np.ndarray:
        """The T x N z-score path; row t uses rows [t - lookback + 1, t]."""
        with np.errstate(invalid="ignore", divide="ignore"):
            x = pd.DataFrame(np.log(data.close))
        w = self.lookback
        if self.series == "price":
            roll = x.rolling(w, min_periods=w)
            z = (x - roll.mean()) / roll.std()
            return self._clean(z.to_numpy())
        ret = x.diff()
        market = pd.Series(np.nanmean(ret.to_numpy()[1:], axis=1) if len(x) > 1 else [],
                           index=x.index[1:], dtype=np.float64)
        m = market.cumsum().reindex(x.index).fillna(0.0)
        rx, rm = x.rolling(w, min_periods=w), m.rolling(w, min_periods=w)
        cov = rx.cov(m)
        var_m = rm.var()
        var_x = rx.var()
        beta = cov.div(var_m, axis=0)
        resid_last = (x - rx.mean()).sub((m - rm.mean()).to_numpy()[:, None] * beta.to_numpy())
        # residual variance in the window (ddof 1 on the levels, as for the moments)
        var_e = var_x - beta.mul(cov)
        z = resid_last / np.sqrt(var_e.where(var_e > 0))
        return self._clean(z.to_numpy())

    @staticmethod
    def _clean(z: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(z), z, np.nan)

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        if at.size == 0:
            return np.zeros((0, data.n_symbols))
        view = causal_view(data, at)
        z = self.zscore(view)
        pos = band_positions(z, self.entry, self.exit, self.stop)
        pos[~np.isfinite(view.close)] = 0.0
        return pos[at]
