import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import ConfigError, DataError
from plugins.data.sp500 import SP500


@pytest.fixture(scope="module")
def full():
    return SP500().load()


def test_shape_dates_and_timezone(full):
    assert (full.n_bars, full.n_symbols) == (8313, 20)
    assert full.name == "sp500"
    assert str(full.index.tz) == "America/New_York"
    assert full.index[0] == pd.Timestamp("1990-01-02 16:00", tz="America/New_York")
    assert full.index[-1] == pd.Timestamp("2022-12-28 16:00", tz="America/New_York")
    assert full.close.dtype == np.float64 and not np.isnan(full.close).any()
    assert (full.close > 0).all()
    assert not any(full.has(f) for f in ("open", "high", "low", "volume"))


def test_slice_by_dates_and_symbols(full):
    part = SP500(start="2020-01-01", end="2020-01-31", symbols=["MSFT", "AAPL"]).load()
    assert part.symbols == ("MSFT", "AAPL")
    assert part.index[0].date().isoformat() == "2020-01-02"
    assert part.index[-1].date().isoformat() == "2020-01-31"  # end is inclusive
    rows = (full.index >= part.index[0]) & (full.index <= part.index[-1])
    cols = [full.symbols.index("MSFT"), full.symbols.index("AAPL")]
    np.testing.assert_array_equal(part.close, full.close[rows][:, cols])


def test_unknown_symbol_names_it_the_source_and_the_choices():
    with pytest.raises(DataError) as err:
        SP500(symbols=["AAPL", "TSLA"]).load()
    msg = str(err.value)
    assert "'TSLA'" in msg and "sp500" in msg and "AAPL, AMD" in msg and "XOM" in msg


def test_too_little_history_says_how_many_bars_and_what_to_change():
    with pytest.raises(DataError) as err:
        SP500(start="2020-01-02", end="2020-01-03", min_history=5).load()
    msg = str(err.value)
    assert "has 2 bars" in msg and "min_history=5" in msg and "data.start" in msg
    assert "1990-01-02..2022-12-28" in msg


def test_range_outside_the_data_and_reversed_dates():
    with pytest.raises(DataError, match="has 0 bars"):
        SP500(start="2030-01-01").load()
    with pytest.raises(DataError, match="after data.end"):
        SP500(start="2020-02-01", end="2020-01-01").load()
    with pytest.raises(ConfigError, match="data.start='soon' is not a date"):
        SP500(start="soon").load()
