"""Seeded synthetic markets: correlated geometric Brownian motion with consistent OHLCV."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.market import MarketData
from plugins.data._frames import at_close, parse_date, select

BARS_PER_YEAR = 252
# Share of a day's variance realised overnight (close to next open); US large caps are ~0.2-0.3.
OVERNIGHT = 0.2
# Shares traded on a typical day, the day-to-day dispersion of log volume, and how much log
# volume rises per unit of the day's absolute standardised shock (busy days move prices).
VOLUME_MEDIAN = 1e6
VOLUME_SIGMA = 0.4
VOLUME_SHOCK = 0.3


class Synthetic(DataSource):
    """``n_symbols`` stocks named S000, S001, ... over ``n_bars`` business days from
    ``first_date``, each bar stamped at 16:00 America/New_York; no NaN.

    Log returns are Gaussian with annual arithmetic ``drift`` and volatility ``vol``, and
    every pair of symbols has correlation ``correlation`` (one common factor), all starting
    at ``price``. With ``ohlcv`` each day is split into an overnight move (the open gaps from
    the previous close; a fifth of the variance) and an intraday Brownian path from open to
    close whose maximum and minimum are drawn exactly (Brownian-bridge extremes), so
    high >= max(open, close) and low <= min(open, close); volume is lognormal around 1e6
    shares and higher on days with large moves. The closes do not depend on ``ohlcv``.

    The same ``seed`` gives identical arrays; ``start``/``end``/``symbols`` slice the result.
    """

    rules = {"n_symbols": "[1, inf)", "n_bars": "[2, inf)", "vol": "[0, inf)",
             "correlation": "[0, 1]", "price": "(0, inf)", "min_history": "[1, inf)"}

    def __init__(self, n_symbols: int = 10, n_bars: int = 2520, seed: int = 7,
                 drift: float = 0.07, vol: float = 0.2, correlation: float = 0.3,
                 price: float = 100.0, first_date: str = "2010-01-04", ohlcv: bool = True,
                 start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2):
        self.n_symbols = n_symbols
        self.n_bars = n_bars
        self.seed = seed
        self.drift = drift
        self.vol = vol
        self.correlation = correlation
        self.price = price
        self.first_date = first_date
        self.ohlcv = ohlcv
        self.start = start
        self.end = end
        self.symbols = symbols
        self.min_history = min_history

    def load(self) -> MarketData:
        T, N = int(self.n_bars), int(self.n_symbols)
        index = at_close(pd.bdate_range(parse_date(self.first_date, "first_date").normalize(),
                                        periods=T))
        rng = np.random.default_rng(self.seed)
        rho = float(self.correlation)

        def shocks() -> np.ndarray:  # standard normals with pairwise correlation rho
            common = rng.standard_normal((T, 1))
            return np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.standard_normal((T, N))

        day_var = self.vol ** 2 / BARS_PER_YEAR
        mu = (self.drift - self.vol ** 2 / 2) / BARS_PER_YEAR  # log drift giving E[growth] = drift
        z_night, z_day = shocks(), shocks()
        r_night = OVERNIGHT * mu + np.sqrt(OVERNIGHT * day_var) * z_night
        r_day = (1 - OVERNIGHT) * mu + np.sqrt((1 - OVERNIGHT) * day_var) * z_day
        log_close = np.log(self.price) + np.cumsum(r_night + r_day, axis=0)
        close = np.exp(log_close)
        names = tuple(f"S{j:0{max(3, len(str(N - 1)))}d}" for j in range(N))
        if not self.ohlcv:
            data = MarketData(index=index, symbols=names, close=close, name="synthetic")
            return select(data, "synthetic", self.start, self.end, self.symbols, self.min_history)

        log_open = log_close - r_day
        # Extremes of a Brownian path from 0 to x with variance s2: the maximum is
        # (x + sqrt(x^2 - 2 s2 ln U)) / 2 for U uniform on (0, 1], the minimum mirrors it.
        s2 = (1 - OVERNIGHT) * day_var
        u_hi, u_lo = 1.0 - rng.random((T, N)), 1.0 - rng.random((T, N))
        up = (r_day + np.sqrt(r_day ** 2 - 2 * s2 * np.log(u_hi))) / 2
        down = (r_day - np.sqrt(r_day ** 2 - 2 * s2 * np.log(u_lo))) / 2
        open_ = np.exp(log_open)
        # max/min only absorb rounding between the two routes to the close.
        high = np.maximum(np.exp(log_open + up), np.maximum(open_, close))
        low = np.minimum(np.exp(log_open + down), np.minimum(open_, close))
        shock = np.abs(np.sqrt(OVERNIGHT) * z_night + np.sqrt(1 - OVERNIGHT) * z_day)
        volume = VOLUME_MEDIAN * np.exp(VOLUME_SIGMA * rng.standard_normal((T, N))
                                        + VOLUME_SHOCK * (shock - np.sqrt(2 / np.pi)))
        data = MarketData(index=index, symbols=names, close=close, open=open_, high=high,
                          low=low, volume=volume, name="synthetic")
        return select(data, "synthetic", self.start, self.end, self.symbols, self.min_history)
