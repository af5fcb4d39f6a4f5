import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import ConfigError, DataError
from plugins.data.csv import CSVData

NY = "America/New_York"
DATES = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]


def long_frame() -> pd.DataFrame:
    rows = []
    for k, sym in enumerate(["BBB", "AAA"]):  # not alphabetical: file order is kept
        for i, d in enumerate(DATES):
            c = 10.0 * (k + 1) + i
            rows.append({"date": d, "symbol": sym, "open": c - 0.5, "high": c + 1.0,
                         "low": c - 1.0, "close": c, "volume": 1000.0 * (i + 1)})
    return pd.DataFrame(rows)


def write(tmp_path, frame: pd.DataFrame, name: str = "prices.csv") -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def load(path, **kw):
    return CSVData(path=path, **kw).load()


def error(path, **kw) -> str:
    with pytest.raises(DataError) as err:
        load(path, **kw)
    msg = str(err.value)
    assert "\n" not in msg and path in msg
    return msg


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("name", ["prices.csv", "prices.parquet", "prices.csv.gz"])
def test_long_round_trip(tmp_path, name):
    frame = long_frame()
    d = load(write(tmp_path, frame, name))
    assert d.symbols == ("BBB", "AAA") and d.name == "prices"
    assert list(d.index) == [pd.Timestamp(f"{x} 16:00", tz=NY) for x in DATES]
    for field in ("open", "high", "low", "close", "volume"):
        expect = frame.pivot(index="date", columns="symbol", values=field)[["BBB", "AAA"]]
        np.testing.assert_array_equal(getattr(d, field), expect.to_numpy())


@pytest.mark.parametrize("name", ["wide.csv", "wide.parquet"])
def test_wide_round_trip(tmp_path, name):
    frame = pd.DataFrame({"Date": DATES, "XOM": [1.0, 2, 3, 4, 5],
                          "ABC": [np.nan, np.nan, 7, 8, 9]})
    d = load(write(tmp_path, frame, name))
    assert d.symbols == ("XOM", "ABC") and not d.has("volume")
    np.testing.assert_array_equal(d.close, frame[["XOM", "ABC"]].to_numpy())
    assert d.index[0] == pd.Timestamp("2024-01-02 16:00", tz=NY)


def test_parquet_with_a_datetime_index(tmp_path):
    frame = pd.DataFrame({"AAA": [1.0, 2.0, 3.0]}, index=pd.DatetimeIndex(DATES[:3], name="Date"))
    path = tmp_path / "indexed.parquet"
    frame.to_parquet(path)
    d = load(str(path))
    assert d.symbols == ("AAA",) and d.index[2] == pd.Timestamp("2024-01-04 16:00", tz=NY)


def test_column_names_are_case_insensitive_and_extras_ignored(tmp_path):
    frame = long_frame().rename(columns={"date": "Date", "symbol": "SYMBOL", "close": "Close"})
    frame["note"] = "x"
    d = load(write(tmp_path, frame))
    assert d.symbols == ("BBB", "AAA") and d.has("volume")


def test_times_zones_and_close_time(tmp_path):
    naive = pd.DataFrame({"date": ["2024-01-02 10:30", "2024-01-02 11:30"], "AAA": [1.0, 2.0]})
    # London's morning is outside every XNYS session (the default calendar): no calendar here
    d = load(write(tmp_path, naive, "naive.csv"), tz="Europe/London", calendar=None)
    assert d.index[0] == pd.Timestamp("2024-01-02 10:30", tz="Europe/London")
    # offsets that change with DST are converted, not rejected
    aware = pd.DataFrame({"date": ["2024-03-08 16:00-05:00", "2024-03-11 16:00-04:00"],
                          "AAA": [1.0, 2.0]})
    d = load(write(tmp_path, aware, "aware.csv"))
    assert list(d.index.hour) == [16, 16] and str(d.index.tz) == NY
    dates = pd.DataFrame({"date": [20240102, 20240103], "AAA": [1.0, 2.0]})
    d = load(write(tmp_path, dates, "ints.csv"), close_time="17:30", tz="UTC")
    assert d.index[1] == pd.Timestamp("2024-01-03 17:30", tz="UTC")


def test_bad_zone_and_close_time_are_config_errors(tmp_path):
    path = write(tmp_path, long_frame())
    with pytest.raises(ConfigError, match="data.tz='Mars/Olympus'"):
        load(path, tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="data.close_time='4pm'"):
        load(path, close_time="4pm")


# ---------------------------------------------------------------- file and column errors

def test_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="nope.csv': no such file"):
        load(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "prices.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        load(str(path))


def test_long_layout_needs_its_columns(tmp_path):
    path = write(tmp_path, long_frame().drop(columns="close"))
    msg = error(path, layout="long")
    assert "no close column" in msg and "data.layout=long|wide|ohlcv" in msg


def test_non_numeric_column_is_named(tmp_path):
    frame = long_frame()
    frame["volume"] = frame["volume"].astype(object)
    frame.loc[3, "volume"] = "1,000"
    msg = error(write(tmp_path, frame))
    assert "column 'volume'" in msg and "'1,000'" in msg and "line 5" in msg


def test_unparseable_date_is_named(tmp_path):
    frame = long_frame()
    frame.loc[2, "date"] = "2024/01/04"
    msg = error(write(tmp_path, frame))
    assert "'2024/01/04'" in msg and "line 4" in msg and "column 'date'" in msg


# ---------------------------------------------------------------- validation rules

def test_unsorted_dates_error_or_sort(tmp_path):
    frame = long_frame()
    frame.iloc[[1, 2]] = frame.iloc[[2, 1]].to_numpy()
    path = write(tmp_path, frame)
    msg = error(path)
    assert "BBB on 2024-01-03" in msg and "comes after 2024-01-04" in msg
    assert "data.sort=true" in msg
    d = load(path, sort=True)
    np.testing.assert_array_equal(d.close[:, 0], [10, 11, 12, 13, 14])


def test_unsorted_wide_file_names_the_date(tmp_path):
    frame = pd.DataFrame({"date": ["2024-01-03", "2024-01-02"], "AAA": [1.0, 2.0]})
    path = write(tmp_path, frame)
    assert "2024-01-02 (line 3) comes after 2024-01-03" in error(path)
    assert list(load(path, sort=True).close[:, 0]) == [2.0, 1.0]


def test_duplicate_timestamp_is_always_an_error(tmp_path):
    frame = pd.concat([long_frame(), long_frame().iloc[[7]]], ignore_index=True)
    path = write(tmp_path, frame)
    for sort in (False, True):
        msg = error(path, sort=sort)
        assert "AAA has two rows for 2024-01-04" in msg and "line 9 and line 12" in msg


def test_gap_inside_a_series(tmp_path):
    frame = long_frame().drop(index=[2, 8])  # BBB 2024-01-04, AAA 2024-01-05
    path = write(tmp_path, frame)
    msg = error(path)
    assert "BBB has no price on 2024-01-04" in msg and "(and 1 more)" in msg
    assert "data.fill=ffill" in msg and "data.fill=drop" in msg


def test_fill_ffill_repeats_the_last_close_with_no_volume(tmp_path):
    d = load(write(tmp_path, long_frame().drop(index=[2])), fill="ffill")
    assert d.n_bars == 5
    for field in ("open", "high", "low", "close"):
        assert getattr(d, field)[2, 0] == 11.0
    assert d.volume[2, 0] == 0.0 and d.close[2, 1] == 22.0


def test_fill_drop_removes_the_dates(tmp_path):
    d = load(write(tmp_path, long_frame().drop(index=[2, 8])), fill="drop")
    assert [t.day for t in d.index] == [2, 3, 8]
    assert not np.isnan(d.close).any()


def test_late_start_is_not_a_gap(tmp_path):
    d = load(write(tmp_path, long_frame().drop(index=[0, 1])))
    assert np.isnan(d.close[:2, 0]).all() and not np.isnan(d.close[2:]).any()


@pytest.mark.parametrize("value", [0.0, -3.0])
def test_non_positive_price(tmp_path, value):
    frame = long_frame()
    frame.loc[6, ["low", "close"]] = value
    msg = error(write(tmp_path, frame))
    assert f"AAA on 2024-01-03 has low {value}" in msg and "positive" in msg


def test_high_below_low(tmp_path):
    frame = long_frame()
    frame.loc[3, ["high", "low"]] = [12.0, 14.0]
    msg = error(write(tmp_path, frame))
    assert "BBB on 2024-01-05 has high 12.0 below low 14.0" in msg


def test_close_outside_the_range(tmp_path):
    frame = long_frame()
    frame.loc[4, "close"] = 99.0
    msg = error(write(tmp_path, frame))
    assert "BBB on 2024-01-08 has close 99.0 above high 15.0" in msg


def test_bar_with_some_fields_missing(tmp_path):
    frame = long_frame()
    frame.loc[1, "volume"] = np.nan
    msg = error(write(tmp_path, frame))
    assert "BBB on 2024-01-03 has a close but no volume" in msg


def test_unknown_symbol_lists_the_available_ones(tmp_path):
    path = write(tmp_path, long_frame())
    msg = error(path, symbols=["ZZZ"])
    assert "'ZZZ'" in msg and "available: BBB, AAA" in msg


def test_too_little_history(tmp_path):
    path = write(tmp_path, long_frame())
    msg = error(path, start="2024-01-08")
    assert "has 1 bar between" in msg and "data.min_history=2" in msg


def test_slicing(tmp_path):
    d = load(write(tmp_path, long_frame()), start="2024-01-03", end="2024-01-04", symbols=["AAA"])
    assert d.symbols == ("AAA",) and list(d.close[:, 0]) == [21.0, 22.0]


def test_intraday_messages_show_the_time(tmp_path):
    frame = pd.DataFrame({"date": ["2024-01-02 10:00", "2024-01-02 10:05", "2024-01-02 10:05"],
                          "AAA": [1.0, 2.0, 3.0]})
    assert "two rows for 2024-01-02 10:05:00 (line 3 and line 4)" in error(write(tmp_path, frame))


# ---------------------------------------------------------------- issue 13: data read, not guessed

RAW = {"Open": [10.0, 20.0, 21.0], "High": [11.0, 22.0, 23.0], "Low": [9.0, 19.0, 20.0],
       "Close": [10.0, 21.0, 22.0], "Adj Close": [5.0, 21.0, 22.0], "Volume": [100.0, 300.0, 400.0]}


def ohlcv_frame(**rename) -> pd.DataFrame:
    """One symbol's bars as downloaders write them: a 2:1 split after the first bar."""
    frame = pd.DataFrame({"Date": DATES[:3], **RAW})
    return frame.rename(columns=rename)


def write_text(tmp_path, text: str, name: str = "prices.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_13_1_single_ticker_ohlcv_file_is_one_symbol_adjusted_by_its_adj_close(tmp_path):
    d = load(write(tmp_path, ohlcv_frame(), "AAPL.csv"))
    assert d.symbols == ("AAPL",) and d.n_bars == 3
    factor = np.array(RAW["Adj Close"]) / np.array(RAW["Close"])
    np.testing.assert_allclose(d.close[:, 0], RAW["Adj Close"], rtol=1e-15)
    for field in ("open", "high", "low"):
        np.testing.assert_array_equal(getattr(d, field)[:, 0],
                                      np.array(RAW[field.capitalize()]) * factor)
    np.testing.assert_array_equal(d.volume[:, 0], np.array(RAW["Volume"]) / factor)
    (note,) = d.notes
    assert "one symbol's bars (AAPL)" in note and "adjusted" in note and "'Adj Close'" in note


@pytest.mark.parametrize("rename", [
    {"Date": "date", "Open": "open", "High": "high", "Low": "low", "Close": "close",
     "Adj Close": "adj_close", "Volume": "volume"},
    {"Date": "Datetime", "Open": "OPEN", "Adj Close": "AdjClose", "Volume": "VOLUME"},
    {"Date": "timestamp", "Adj Close": "adjusted_close"},
])
def test_13_1_ohlcv_headers_in_any_common_spelling_and_data_symbol_names_it(tmp_path, rename):
    d = load(write(tmp_path, ohlcv_frame(**rename), "download.csv"), symbol="MSFT")
    assert d.symbols == ("MSFT",) and d.has("open") and d.has("volume")
    np.testing.assert_allclose(d.close[:, 0], RAW["Adj Close"], rtol=1e-15)
    assert repr(rename.get("Adj Close", "Adj Close")) in d.notes[0]


def test_13_1_ohlcv_without_adj_close_says_its_close_is_taken_as_it_is(tmp_path):
    frame = ohlcv_frame().drop(columns="Adj Close")
    frame["Dividends"] = 0.0  # yfinance's history() writes these beside the bars
    frame["Stock Splits"] = 0.0
    d = load(write(tmp_path, frame, "SPY.csv"))
    assert d.symbols == ("SPY",)
    np.testing.assert_array_equal(d.close[:, 0], RAW["Close"])
    assert "'Close' column as they are" in d.notes[0] and "must already be adjusted" in d.notes[0]


@pytest.mark.parametrize("name", ["Ticker", "Symbol", "ticker"])
def test_13_1_ticker_or_symbol_column_is_the_symbol_column_of_a_long_file(tmp_path, name):
    frame = long_frame().rename(columns={"symbol": name, "close": "Close"})
    d = load(write(tmp_path, frame))
    assert d.symbols == ("BBB", "AAA") and d.has("volume")
    assert "a long file (2 symbols)" in d.notes[0]


def test_13_2_two_columns_that_read_as_one_role_are_an_error(tmp_path):
    frame = long_frame().rename(columns={"close": "Close"})
    frame["Ticker"] = frame["symbol"]
    msg = error(write(tmp_path, frame))
    assert "columns 'symbol' and 'Ticker' both read as the symbol" in msg
    assert "data.columns={symbol: ...}" in msg
    assert load(write(tmp_path, frame), columns={"symbol": "Ticker"}).symbols == ("BBB", "AAA")


def test_13_1_yfinance_adj_close_declared_as_the_close(tmp_path):
    d = load(write_text(tmp_path, YF_OLD_ADJ), columns={"close": "Adj Close"})
    np.testing.assert_array_equal(d.close, [[92.8, 370.9], [92.1, 370.6], [90.95, 368.0]])
    assert "closes from its 'Adj Close' column, already adjusted" in d.notes[0]


def test_13_1_long_file_with_adj_close_is_adjusted(tmp_path):
    frame = long_frame().rename(columns={"symbol": "Ticker"})
    frame["Adj Close"] = frame["close"] / 2
    d = load(write(tmp_path, frame))
    np.testing.assert_allclose(d.close, long_frame().pivot(index="date", columns="symbol",
                                                           values="close")[["BBB", "AAA"]] / 2)
    assert "'Adj Close'" in d.notes[0]


YF_FIELDS_FIRST = """Price,Close,Close,High,High,Low,Low,Open,Open,Volume,Volume
Ticker,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT
Date,,,,,,,,,,
2024-01-02,185.6,370.9,188.4,375.9,183.9,366.5,187.2,373.9,82488700,25258600
2024-01-03,184.2,370.6,185.9,373.3,183.4,368.7,184.2,369.0,58414500,23083500
2024-01-04,181.9,368.0,183.1,373.1,180.9,367.1,182.2,370.7,71983600,20901500
"""
YF_TICKERS_FIRST = """Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,MSFT,MSFT,MSFT,MSFT,MSFT
Price,Open,High,Low,Close,Volume,Open,High,Low,Close,Volume
Date,,,,,,,,,,
2024-01-02,187.2,188.4,183.9,185.6,82488700,373.9,375.9,366.5,370.9,25258600
2024-01-03,184.2,185.9,183.4,184.2,58414500,369.0,373.3,368.7,370.6,23083500
2024-01-04,182.2,183.1,180.9,181.9,71983600,370.7,373.1,367.1,368.0,20901500
"""
YF_OLD_ADJ = """,Adj Close,Adj Close,Close,Close
,AAPL,MSFT,AAPL,MSFT
Date,,,,
2024-01-02,92.8,370.9,185.6,370.9
2024-01-03,92.1,370.6,184.2,370.6
2024-01-04,90.95,368.0,181.9,368.0
"""


@pytest.mark.parametrize("text", [YF_FIELDS_FIRST, YF_TICKERS_FIRST,
                                  YF_FIELDS_FIRST.replace("Date,,,,,,,,,,\n", "")])
def test_13_1_yfinance_stacked_header_reads_as_the_wide_panel_it_is(tmp_path, text):
    d = load(write_text(tmp_path, text))
    assert d.symbols == ("AAPL", "MSFT") and d.n_bars == 3
    assert d.index[0] == pd.Timestamp("2024-01-02 16:00", tz=NY)
    np.testing.assert_array_equal(d.close[:, 0], [185.6, 184.2, 181.9])
    np.testing.assert_array_equal(d.volume[:, 1], [25258600, 23083500, 20901500])
    np.testing.assert_array_equal(d.open[:, 1], [373.9, 369.0, 370.7])
    assert "two header rows (2 symbols)" in d.notes[0]


def test_13_1_yfinance_stacked_header_with_adj_close_is_adjusted(tmp_path):
    d = load(write_text(tmp_path, YF_OLD_ADJ))
    np.testing.assert_allclose(d.close, [[92.8, 370.9], [92.1, 370.6], [90.95, 368.0]],
                               rtol=1e-15)
    assert "'Adj Close'" in d.notes[0]


def test_13_1_yfinance_parquet_with_two_column_levels(tmp_path):
    columns = pd.MultiIndex.from_product([["Close", "Volume"], ["AAPL", "MSFT"]],
                                         names=["Price", "Ticker"])
    frame = pd.DataFrame([[1.0, 2.0, 10.0, 20.0], [1.5, 2.5, 11.0, 21.0]], columns=columns,
                         index=pd.DatetimeIndex(DATES[:2], name="Date"))
    path = tmp_path / "yf.parquet"
    frame.to_parquet(path)
    d = load(str(path))
    assert d.symbols == ("AAPL", "MSFT")
    np.testing.assert_array_equal(d.close, [[1.0, 2.0], [1.5, 2.5]])
    np.testing.assert_array_equal(d.volume, [[10.0, 20.0], [11.0, 21.0]])


def test_13_2_ambiguous_layout_is_refused_naming_the_file_and_the_layouts(tmp_path):
    frame = pd.DataFrame({"Date": DATES[:3], "Close": [1.0, 2, 3], "MSFT": [4.0, 5, 6]})
    path = write(tmp_path, frame)
    msg = error(path)
    assert "ambiguous" in msg and "not long" in msg and "ohlcv" in msg and "wide" in msg
    assert "data.layout=long|wide|ohlcv" in msg and "data.columns=" in msg
    # declaring the layout settles it
    assert load(path, layout="ohlcv").symbols == ("prices",)
    assert load(path, layout="wide").symbols == ("Close", "MSFT")


@pytest.mark.parametrize("layout", ["auto", "wide"])
def test_13_2_volume_column_in_a_wide_file_is_never_traded(tmp_path, layout):
    frame = pd.DataFrame({"Date": DATES[:3], "AAPL": [1.0, 2, 3],
                          "AAPL Volume": [1e6, 2e6, 3e6]})
    msg = error(write(tmp_path, frame), layout=layout)
    assert "column 'AAPL Volume' holds volume, not prices" in msg and "data.layout=" in msg


def test_13_2_text_column_in_a_wide_file_is_never_traded(tmp_path):
    frame = pd.DataFrame({"Date": DATES[:3], "AAPL": [1.0, 2, 3], "Name": ["Apple"] * 3})
    msg = error(write(tmp_path, frame))
    assert "column 'Name' holds text ('Apple' on line 2), not prices" in msg
    assert "data.layout=long|wide|ohlcv" in msg


def test_13_2_data_columns_declares_headers_spelt_otherwise(tmp_path):
    frame = long_frame().rename(columns={"symbol": "Sec", "close": "Last"}).drop(
        columns=["open", "high", "low"])
    path = write(tmp_path, frame)
    assert "ambiguous" in error(path) and "'Sec', 'Last'" in error(path)
    d = load(path, columns={"symbol": "Sec", "close": "Last"})
    assert d.symbols == ("BBB", "AAA") and d.close[0, 1] == 20.0
    with pytest.raises(DataError, match="data.columns.close='Px' is not a column"):
        load(path, columns={"close": "Px"})
    with pytest.raises(ConfigError, match="data.columns.price"):
        load(path, columns={"price": "Last"})


def test_13_2_ohlcv_needs_a_close_and_adj_close_needs_the_raw_close(tmp_path):
    msg = error(write(tmp_path, ohlcv_frame().drop(columns=["Close", "Adj Close"])))
    assert "no close column" in msg and "data.layout=long|wide|ohlcv" in msg
    msg = error(write(tmp_path, ohlcv_frame().drop(columns=["Close"]), "adj.csv"))
    assert "'Adj Close' but no raw close" in msg and "'Open', 'High', 'Low', 'Volume'" in msg


def test_13_2_data_symbol_only_names_an_ohlcv_file(tmp_path):
    path = write(tmp_path, long_frame())
    with pytest.raises(ConfigError, match="data.symbol='X' names the one symbol of an ohlcv"):
        load(path, symbol="X")


def test_13_2_stacked_header_declared_long_is_refused(tmp_path):
    msg = error(write_text(tmp_path, YF_FIELDS_FIRST), layout="long")
    assert "two header rows" in msg and "data.layout=wide" in msg


@pytest.mark.filterwarnings("error")
def test_13_2_pandas_warnings_never_reach_the_user(tmp_path):
    # times pandas cannot infer one format for (it warns, then reads value by value)
    frame = pd.DataFrame({"date": ["2024-01-02 4:00 PM", "2024-01-03 4:00 PM"],
                          "AAA": [1.0, 2.0]})
    d = load(write(tmp_path, frame))
    assert d.index[1] == pd.Timestamp("2024-01-03 16:00", tz=NY)
    # numeric tickers beside text ones in a file larger than pandas' read chunk (DtypeWarning)
    days, names = 1000, [str(7000 + k) for k in range(299)] + ["AAPL"]
    i = np.arange(days * len(names))
    date = pd.Timestamp("2000-01-03") + pd.to_timedelta(i % days, unit="D")
    big = pd.DataFrame({"date": date.strftime("%Y-%m-%d"), "symbol": np.repeat(names, days),
                        "close": 1.0 + i % 7})
    # calendar days, weekends too: no exchange calendar, whose warning would be the loader's own
    d = load(write(tmp_path, big, "big.csv"), calendar=None)
    assert d.symbols == tuple(names) and d.n_bars == days


def test_13_3_ambiguous_day_month_order_is_an_error_naming_the_line(tmp_path):
    frame = pd.DataFrame({"Date": ["01/01/2020", "02/01/2020", "03/01/2020"],
                          "AAA": [1.0, 2, 3]})
    msg = error(write(tmp_path, frame))
    assert "column 'Date' has '02/01/2020' on line 3" in msg
    assert "data.date_format='%m/%d/%Y'" in msg and "data.date_format='%d/%m/%Y'" in msg


@pytest.mark.parametrize("dates, second", [
    (["12/01/2020", "13/01/2020"], "2020-01-13"),  # 13 cannot be a month: day first
    (["01/12/2020", "01/13/2020"], "2020-01-13"),  # month first
    (["02.01.2020 16:00", "31.01.2020 09:30"], "2020-01-31 09:30"),
])
def test_13_3_a_row_that_proves_the_order_decides_it(tmp_path, dates, second):
    frame = pd.DataFrame({"Date": dates, "AAA": [1.0, 2]})
    d = load(write(tmp_path, frame), close_time="00:00")
    assert d.index[1].tz_localize(None) == pd.Timestamp(second)


def test_13_3_date_format_declares_the_order(tmp_path):
    frame = pd.DataFrame({"Date": ["03/04/2020", "04/04/2020"], "AAA": [1.0, 2]})
    path = write(tmp_path, frame)
    d = load(path, date_format="%d/%m/%Y")
    assert [t.month for t in d.index] == [4, 4] and [t.day for t in d.index] == [3, 4]
    assert load(path, date_format="%m/%d/%Y").index[1].day == 4
    frame.loc[1, "Date"] = "2020-04-04"
    msg = error(write(tmp_path, frame), date_format="%d/%m/%Y")
    assert "'2020-04-04' on line 3" in msg and "data.date_format='%d/%m/%Y'" in msg


def downloaded_bars(n: int = 300) -> pd.DataFrame:
    """Daily bars of one ticker, columns as Yahoo's download writes them."""
    rng = np.random.default_rng(3)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return pd.DataFrame({"Date": pd.bdate_range("2020-01-02", periods=n).strftime("%Y-%m-%d"),
                         "Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99,
                         "Close": close, "Adj Close": close * 0.97,
                         "Volume": rng.integers(1_000_000, 2_000_000, n)})


@pytest.mark.slow
@pytest.mark.parametrize("style", ["flat", "yfinance"])
def test_13_1_run_py_trades_one_symbol_from_a_single_ticker_download(tmp_path, style):
    bars = downloaded_bars()
    path = tmp_path / "AAPL.csv"
    if style == "flat":  # Date,Open,High,Low,Close,Adj Close,Volume
        bars.to_csv(path, index=False)
    else:  # yfinance >= 0.2.51: Price/field row, Ticker row, Date row
        fields = ["Close", "High", "Low", "Open", "Volume"]
        header = ("Price," + ",".join(fields) + "\nTicker" + ",AAPL" * len(fields)
                  + "\nDate" + "," * len(fields) + "\n")
        path.write_text(header + bars[["Date"] + fields].to_csv(index=False, header=False))
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, str(root / "run.py"), "data=csv", f"data.path={path}",
                           f"out_dir={out}"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["data"]["symbols"] == ["AAPL"]
    fills = pd.read_csv(out / "fills.csv")
    assert len(fills) > 0 and set(fills["symbol"]) == {"AAPL"}
    (note,) = [a for a in prov["assumptions"] if a.startswith("data:")]
    if style == "flat":
        assert "one symbol's bars (AAPL)" in note and "adjusted" in note and "'Adj Close'" in note
    else:
        assert "two header rows (1 symbol)" in note and "'Close' column as they are" in note


# ---------------------------------------------------------------- sessions (issues 18.7, 19.1)

def sessions_frame(days) -> pd.DataFrame:
    return pd.DataFrame({"date": list(days), "AAA": np.linspace(10.0, 11.0, len(days))})


def test_18_7_missing_sessions_of_the_exchange_are_reported(tmp_path):
    # 2024-07-03 is missing; 2024-07-04 (Independence Day) is no NYSE session
    path = write(tmp_path, sessions_frame(["2024-07-01", "2024-07-02", "2024-07-04", "2024-07-05"]))
    with pytest.warns(UserWarning, match=r"1 XNYS session\(s\) have no bar \(2024-07-03\); "
                                         r"1 date\(s\) are no XNYS session \(2024-07-04\)"):
        d = load(path)
    assert any("2024-07-03" in n for n in d.notes) and d.n_bars == 4  # the bars are left as they are
    msg = error(path, missing_sessions="error")
    assert "XNYS session(s) have no bar (2024-07-03)" in msg and "data.missing_sessions=warn" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load(path, missing_sessions="ignore").notes) == 1
        assert len(load(path, calendar=None).notes) == 1
        load(write(tmp_path, sessions_frame(["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05"]),
                   "full.csv"))  # a full calendar: nothing to say


def test_18_7_another_exchanges_calendar(tmp_path):
    # 2024-08-26 is a UK bank holiday (XLON closed), an NYSE session
    path = write(tmp_path, sessions_frame(["2024-08-23", "2024-08-26", "2024-08-27"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(path)
    with pytest.warns(UserWarning, match=r"no XLON session \(2024-08-26\)"):
        load(path, calendar="XLON", tz="Europe/London")
    with pytest.raises(ConfigError, match="calendar 'NOPE' is not an exchange calendar"):
        load(path, calendar="NOPE")


def minute_file(tmp_path) -> str:
    times = pd.date_range("2024-07-01 09:31", "2024-07-01 16:00", freq="1min")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M:%S"), "AAA": np.linspace(10, 11, len(times))})
    return write(tmp_path, frame, "minutes.csv")


def test_19_1_csv_declares_its_bar_size(tmp_path):
    path = minute_file(tmp_path)
    d = load(path)
    assert d.intraday and d.bar_length == pd.Timedelta(minutes=1) and d.bar_size is None
    assert load(path, bar_size="1min").bar_size == pd.Timedelta(minutes=1)
    assert "data.bar_size=5min but its bars are 1min apart" in error(path, bar_size="5min")
    with pytest.raises(ConfigError, match="data.bar_size='often' is not a bar size"):
        load(path, bar_size="often")
