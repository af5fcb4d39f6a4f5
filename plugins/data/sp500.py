"""The default data: skfolio's bundled S&P 500 sample, read straight from its file."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.market import MarketData
from plugins.data._frames import at_close, bundled_file, select

SOURCE = "sp500 (skfolio's S&P 500 sample)"


class SP500(DataSource):
    """Daily adjusted closes of 20 S&P 500 stocks, 1990-01-02..2022-12-28 (8313 bars), as
    shipped with skfolio (``skfolio/datasets/data/sp500_dataset.csv.gz``); works offline.

    Close only: the file has no open, high, low or volume, so a session's reference price is
    its close and volume-driven execution (VWAP, POV, participation caps) has nothing to read;
    use ``data=stocks`` for OHLCV. Bars are stamped at 16:00 America/New_York.

    ``start``/``end`` (inclusive dates) and ``symbols`` slice the data; fewer than
    ``min_history`` bars left is an error.
    """

    rules = {"min_history": "[1, inf)"}
    calendar = "XNYS"  # NYSE sessions: paper and live ticks skip its holidays
    caveats = ("survivorship bias: the bundled sp500 sample holds 20 of today's large S&P 500 members "
               "over their whole history; stocks that failed, were acquired or left the index are "
               "missing, so past returns are overstated, most for stock-picking strategies (the "
               "universe benchmark, the buy-and-hold of the same 20, shares the bias)",)

    def __init__(self, start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2):
        self.start = start
        self.end = end
        self.symbols = symbols
        self.min_history = min_history

    def load(self) -> MarketData:
        path = bundled_file("skfolio", "datasets/data/sp500_dataset.csv.gz", "the sp500 data")
        frame = pd.read_csv(path, index_col=0)
        data = MarketData(index=at_close(pd.to_datetime(frame.index, format="%Y-%m-%d")),
                          symbols=tuple(frame.columns),
                          close=np.ascontiguousarray(frame.to_numpy(dtype=np.float64)),
                          name="sp500")
        return select(data, SOURCE, self.start, self.end, self.symbols, self.min_history)
