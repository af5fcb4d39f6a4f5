import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

from plugins.data.stocks import Stocks


@pytest.fixture(scope="module")
def raw():
    root = importlib.util.find_spec("bokeh_sampledata").submodule_search_locations[0]
    path = os.path.join(root, "_data", "stocks.csv.gz")
    return pd.read_csv(path).pivot(index="Date", columns="Ticker")


@pytest.fixture(scope="module")
def stocks():
    return Stocks().load()


def test_shape_and_late_listings(stocks):
    assert stocks.symbols == ("AAPL", "FB", "GOOG", "IBM", "MSFT")
    assert stocks.n_bars == 3270 and stocks.name == "stocks"
    assert stocks.index[0] == pd.Timestamp("2000-03-01 16:00", tz="America/New_York")
    assert stocks.index[-1] == pd.Timestamp("2013-03-01 16:00", tz="America/New_York")
    close = stocks.frame("close")
    assert close["FB"].first_valid_index().date().isoformat() == "2012-05-18"
    assert close["GOOG"].first_valid_index().date().isoformat() == "2004-08-19"
    for s in close:  # NaN only before a listing, never inside a series
        assert close[s].loc[close[s].first_valid_index():].notna().all()


def test_adjusted_close_is_the_files_adj_close(stocks, raw):
    expect = raw["Adj Close"].to_numpy()
    np.testing.assert_allclose(stocks.close, expect, rtol=1e-13)


def test_dollar_volume_is_preserved(stocks, raw):
    np.testing.assert_allclose(stocks.close * stocks.volume,
                               (raw["Close"] * raw["Volume"]).to_numpy(), rtol=1e-12)


def test_adjustment_scales_every_price_by_one_factor(stocks, raw):
    factor = (raw["Adj Close"] / raw["Close"]).to_numpy()
    for field in ("Open", "High", "Low"):
        np.testing.assert_allclose(getattr(stocks, field.lower()), raw[field].to_numpy() * factor,
                                   rtol=1e-13)


def test_ohlc_consistency(stocks):
    bar = ~np.isnan(stocks.close)
    for field in ("open", "high", "low", "volume"):
        assert (np.isnan(getattr(stocks, field)) == ~bar).all()
    h, lo, o, c = (getattr(stocks, f)[bar] for f in ("high", "low", "open", "close"))
    assert (h >= lo).all() and (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all() and (stocks.volume[bar] > 0).all()


def test_selecting_a_late_symbol_starts_at_its_listing():
    fb = Stocks(symbols=["FB"]).load()
    assert fb.index[0].date().isoformat() == "2012-05-18" and not np.isnan(fb.close).any()
