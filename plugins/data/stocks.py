"""Five US stocks with daily OHLCV, bundled with bokeh_sampledata: data for execution studies."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.market import MarketData
from plugins.data._frames import adjusted, at_close, bundled_file, select

SOURCE = "stocks (bokeh_sampledata's stocks.csv.gz)"


class Stocks(DataSource):
    """Daily OHLCV of AAPL, FB, GOOG, IBM and MSFT, 2000-03-01..2013-03-01 (Quandl WIKI, public
    domain), as shipped with bokeh_sampledata (``_data/stocks.csv.gz``); works offline.

    The file's open, high, low, close and volume are as traded (unadjusted) next to an
    ``Adj Close``. They are adjusted here for splits and dividends: prices are multiplied by
    ``Adj Close / Close`` (so the close is the file's ``Adj Close``, to rounding) and volume
    is divided by it, so dollar volume (price x shares) is unchanged and participation limits
    stay meaningful.
    FB (from 2012-05-18) and GOOG (from 2004-08-19) are NaN before they list. Bars are
    stamped at 16:00 America/New_York.

    ``start``/``end`` (inclusive dates) and ``symbols`` slice the data; fewer than
    ``min_history`` bars left is an error.
    """

    rules = {"min_history": "[1, inf)"}
    calendar = "XNYS"  # NYSE sessions: paper and live ticks skip its holidays

    def __init__(self, start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2):
        self.start = start
        self.end = end
        self.symbols = symbols
        self.min_history = min_history

    def load(self) -> MarketData:
        path = bundled_file("bokeh_sampledata", "_data/stocks.csv.gz", "the stocks data")
        wide = pd.read_csv(path).pivot(index="Date", columns="Ticker")
        frames = adjusted({f.lower(): wide[f] for f in ("Open", "High", "Low", "Close", "Volume")},
                          wide["Adj Close"])
        index = at_close(pd.to_datetime(wide.index, format="%Y-%m-%d"))
        for frame in frames.values():
            frame.index = index
        data = MarketData.from_frames(frames, name="stocks")
        return select(data, SOURCE, self.start, self.end, self.symbols, self.min_history)
