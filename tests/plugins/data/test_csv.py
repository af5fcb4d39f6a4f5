import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, DataError
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
    d = load(write(tmp_path, naive, "naive.csv"), tz="Europe/London")
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
    assert "missing close" in msg and "data.layout=wide" in msg


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
