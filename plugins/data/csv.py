"""A user's own prices from a CSV or Parquet file, validated before any stage sees them."""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Literal, Optional

import numpy as np
import pandas as pd

from pipeline.contracts import DataSource
from pipeline.errors import ConfigError, DataError
from pipeline.market import FIELDS, MarketData
from plugins.data._frames import US_TZ, as_ns, at_close, day, is_daily, select

PRICES = ("open", "high", "low", "close")


class CSVData(DataSource):
    """Prices from a CSV (``.csv``, ``.csv.gz``) or Parquet (``.parquet``, ``.pq``) file.

    Layouts (``layout="auto"`` picks long when there is a ``symbol`` column):

    - long: one row per symbol and bar, columns ``date``, ``symbol``, ``close`` and optionally
      ``open``, ``high``, ``low``, ``volume``; names are case-insensitive, other columns ignored.
    - wide: a date column (the one named ``date``, else the first) then one column of closes
      per symbol, named by the symbol.

    A Parquet file's index, when it is not a plain row number, is read as a column.

    Time: values with a UTC offset are converted to ``tz``; naive date-times are localised to
    ``tz``; naive dates (every value at midnight) are bars stamped at ``close_time`` in ``tz``.
    ``YYYYMMDD`` integers are read as dates.

    Prices must already be adjusted for splits and dividends. The file is rejected with a
    one-line error naming the file, symbol and date when: a symbol's timestamps go backwards
    (``sort=True`` sorts them instead), a symbol has two rows for one timestamp, a value is not
    a number, a price is zero or negative, volume is negative, high < low or the open or close
    lies outside [low, high], a bar has some fields but not others, or a symbol has no price.

    Missing bars: a symbol may start late (NaN before its first price). A bar missing after its
    first price (a gap or a delisting) follows ``fill``: ``"error"`` rejects the file,
    ``"ffill"`` repeats the last close as a flat bar (open = high = low = close) with volume 0,
    ``"drop"`` removes every date on which any symbol has such a gap.

    ``start``/``end`` (inclusive) and ``symbols`` slice the data; fewer than ``min_history``
    bars left is an error.
    """

    rules = {"min_history": "[1, inf)"}

    def __init__(self, path: str, layout: Literal["auto", "long", "wide"] = "auto",
                 tz: str = US_TZ, close_time: str = "16:00", sort: bool = False,
                 fill: Literal["error", "ffill", "drop"] = "error",
                 start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2):
        self.path = path
        self.layout = layout
        self.tz = tz
        self.close_time = close_time
        self.sort = sort
        self.fill = fill
        self.start = start
        self.end = end
        self.symbols = symbols
        self.min_history = min_history

    def load(self) -> MarketData:
        close = _time_of_day(self.close_time)
        _check_zone(self.tz)
        src = _read(self.path)
        cols = _columns(src)
        layout = self.layout if self.layout != "auto" else ("long" if "symbol" in cols else "wide")
        parse = _long if layout == "long" else _wide
        index, symbols, arrays = parse(src, cols, self.tz, close, self.sort)
        daily = is_daily(index)
        _check_bars(src, index, symbols, arrays, daily)
        index, arrays = _fill_gaps(src, index, symbols, arrays, daily, self.fill)
        name = os.path.basename(self.path).split(".")[0] or "csv"
        data = MarketData(index=index, symbols=symbols, name=name, **arrays)
        return select(data, self.path, self.start, self.end, self.symbols, self.min_history)


# ---------------------------------------------------------------- reading

@dataclasses.dataclass
class _Source:
    """The table as read, and how to point the user at one of its rows."""

    name: str
    table: pd.DataFrame
    first_line: int  # CSV: the header is line 1; Parquet rows count from 1
    unit: str

    def row(self, i: int) -> str:
        return f"{self.unit} {i + self.first_line}"


def _time_of_day(text: str) -> pd.Timedelta:
    try:
        t = datetime.time.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"data.close_time={text!r} is not a time of day; write HH:MM, "
                          f"e.g. 16:00") from None
    return pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def _check_zone(tz: str) -> None:
    try:
        pd.Timestamp(0).tz_localize(tz)
    except (KeyError, ValueError, TypeError):
        raise ConfigError(f"data.tz={tz!r} is not a time zone; use an IANA name such as "
                          f"America/New_York or UTC") from None


def _read(path: str) -> _Source:
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise DataError(f"data.path={path!r}: no such file ({full}); check the path (relative "
                        f"paths start from {os.getcwd()})")
    lower = full.lower()
    if lower.endswith((".parquet", ".pq")):
        try:
            table = pd.read_parquet(full)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as Parquet ({exc}); check the file") from None
        if not isinstance(table.index, pd.RangeIndex):
            table = table.reset_index()
        src = _Source(path, table, 1, "row")
    elif lower.endswith((".csv", ".csv.gz")):
        try:
            table = pd.read_csv(full)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot be read as CSV ({exc}); check the file") from None
        src = _Source(path, table, 2, "line")
    else:
        raise DataError(f"data.path={path!r}: unknown file type; use .csv, .csv.gz, .parquet "
                        f"or .pq")
    if table.empty:
        raise DataError(f"{path} has no data rows; point data.path at a file with prices")
    return src


def _columns(src: _Source) -> dict[str, str]:
    """Lower-cased column name -> the name in the file."""
    cols: dict[str, str] = {}
    for c in src.table.columns:
        key = str(c).strip().lower()
        if key in cols:
            raise DataError(f"{src.name}: columns {cols[key]!r} and {c!r} differ only in case; "
                            f"rename one")
        cols[key] = c
    return cols


def _numbers(src: _Source, column: str) -> np.ndarray:
    values = src.table[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    parsed = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & values.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src.name}: column {column!r} has {values.iloc[i]!r} on {src.row(i)}, "
                        f"which is not a number; fix it (leave the cell empty for no bar)")
    return parsed.to_numpy(dtype=np.float64)


def _stamps(src: _Source, column: str, tz: str, close: pd.Timedelta) -> pd.DatetimeIndex:
    raw = src.table[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{src.name}: {src.row(int(missing[0]))} has no {column!r}; give every "
                        f"row a date")
    if pd.api.types.is_numeric_dtype(raw):  # YYYYMMDD integers, not nanoseconds since 1970
        raw = raw.astype(np.int64).astype(str)
    parsed = None
    for utc in (False, True):  # utc=True only to accept offsets that change with DST
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(raw, utc=utc))
            break
        except (ValueError, TypeError):
            continue
    if parsed is None:
        i = int(np.flatnonzero(pd.to_datetime(raw, utc=True, errors="coerce").isna())[0])
        raise DataError(f"{src.name}: column {column!r} has {raw.iloc[i]!r} on {src.row(i)}, "
                        f"which is not a date in the format of {raw.iloc[0]!r}; write every "
                        f"date the same way, e.g. 2020-01-31")
    if parsed.tz is not None:
        return as_ns(parsed.tz_convert(tz))
    try:
        if (parsed == parsed.normalize()).all():
            return at_close(parsed, tz, close)
        return as_ns(parsed.tz_localize(tz))
    except ValueError as exc:  # a local time skipped or repeated by a DST change
        raise DataError(f"{src.name}: {exc}; give times with a UTC offset, or set data.tz "
                        f"to the zone they were recorded in") from None


def _check_order(src: _Source, stamps: pd.DatetimeIndex, symbol: Optional[np.ndarray],
                 sort: bool) -> None:
    """Duplicates are always an error; timestamps going backwards are unless ``sort``."""
    daily = is_daily(stamps.sort_values())
    keys = pd.DataFrame({"symbol": symbol if symbol is not None else "", "time": stamps})
    dup = np.flatnonzero(keys.duplicated().to_numpy())
    if dup.size:
        i = int(dup[0])
        first = int(np.flatnonzero(((keys["symbol"] == keys["symbol"].iloc[i])
                                    & (keys["time"] == keys["time"].iloc[i])).to_numpy())[0])
        who = f"{keys['symbol'].iloc[i]} has" if symbol is not None else "there are"
        raise DataError(f"{src.name}: {who} two rows for {day(stamps[i], daily)} "
                        f"({src.row(first)} and {src.row(i)}); keep one")
    if sort:
        return
    step = keys.groupby("symbol", sort=False)["time"].diff()
    back = np.flatnonzero((step < pd.Timedelta(0)).to_numpy())
    if back.size:
        i = int(back[0])
        who = f"{keys['symbol'].iloc[i]} on " if symbol is not None else ""
        raise DataError(f"{src.name}: {who}{day(stamps[i], daily)} ({src.row(i)}) comes after "
                        f"{day(stamps[i] - step.iloc[i], daily)}; sort the file by date, or set "
                        f"data.sort=true")


# ---------------------------------------------------------------- layouts

Parsed = tuple[pd.DatetimeIndex, tuple[str, ...], dict[str, np.ndarray]]


def _long(src: _Source, cols: dict[str, str], tz: str, close: pd.Timedelta, sort: bool) -> Parsed:
    missing = [c for c in ("date", "symbol", "close") if c not in cols]
    if missing:
        raise DataError(f"{src.name}: a long file needs columns date, symbol, close (missing "
                        f"{', '.join(missing)}; found {', '.join(map(str, src.table.columns))}); "
                        f"rename them, or set data.layout=wide for a date column then one "
                        f"column of closes per symbol")
    fields = [f for f in FIELDS if f in cols]
    values = {f: _numbers(src, cols[f]) for f in fields}
    stamps = _stamps(src, cols["date"], tz, close)
    symbol = src.table[cols["symbol"]]
    blank = np.flatnonzero(symbol.isna().to_numpy())
    if blank.size:
        raise DataError(f"{src.name}: {src.row(int(blank[0]))} has no symbol; fill it in or "
                        f"remove the row")
    symbol = symbol.astype(str).str.strip().to_numpy()
    _check_order(src, stamps, symbol, sort)
    rows = pd.DataFrame({"time": stamps, "symbol": symbol, **values})
    order = pd.unique(symbol)  # symbols in the order the file first mentions them
    wide = rows.pivot(index="time", columns="symbol", values=fields)
    arrays = {f: wide[f].reindex(columns=order).to_numpy(dtype=np.float64) for f in fields}
    return as_ns(pd.DatetimeIndex(wide.index)), tuple(order), arrays


def _wide(src: _Source, cols: dict[str, str], tz: str, close: pd.Timedelta, sort: bool) -> Parsed:
    date = cols.get("date", src.table.columns[0])
    names = [c for c in src.table.columns if c != date]
    if not names:
        raise DataError(f"{src.name}: a wide file needs a date column then one column of closes "
                        f"per symbol, but it has only {date!r}")
    stamps = _stamps(src, date, tz, close)
    _check_order(src, stamps, None, sort)
    closes = np.column_stack([_numbers(src, c) for c in names])
    order = np.argsort(stamps.asi8, kind="stable")  # identity unless sort=True reordered
    return stamps[order], tuple(str(c).strip() for c in names), {"close": closes[order]}


# ---------------------------------------------------------------- bar checks and gaps

def _first(mask: np.ndarray) -> tuple[int, int, str]:
    """The earliest offending (bar, symbol), and how many more there are, for the message."""
    hits = np.argwhere(mask)
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    return int(hits[0, 0]), int(hits[0, 1]), more


def _check_bars(src: _Source, index: pd.DatetimeIndex, symbols: tuple[str, ...],
                arrays: dict[str, np.ndarray], daily: bool) -> None:
    def fail(mask: np.ndarray, what, todo: str) -> None:
        if mask.any():
            t, j, more = _first(mask)
            raise DataError(f"{src.name}: {symbols[j]} on {day(index[t], daily)} {what(t, j)}"
                            f"{more}; {todo}")

    has_close = ~np.isnan(arrays["close"])
    for j, s in enumerate(symbols):
        if not has_close[:, j].any():
            raise DataError(f"{src.name}: {s} has no close price anywhere in the file; add its "
                            f"prices or remove it")
    for f, a in arrays.items():
        if f != "close":
            fail(np.isnan(a) & has_close, lambda t, j: f"has a close but no {f}",
                 "fill it in, or leave the whole bar empty")
            fail(~np.isnan(a) & ~has_close, lambda t, j: f"has a {f} but no close",
                 "fill in the close, or leave the whole bar empty")
    with np.errstate(invalid="ignore"):  # NaN compares False: only real bars are judged
        for f in PRICES:
            if f in arrays:
                a = arrays[f]
                fail(a <= 0, lambda t, j: f"has {f} {a[t, j].item()}",
                     "prices must be positive: fix or remove the row")
        if "volume" in arrays:
            v = arrays["volume"]
            fail(v < 0, lambda t, j: f"has volume {v[t, j].item()}", "volume cannot be negative")
        hi, lo = arrays.get("high"), arrays.get("low")
        if hi is not None and lo is not None:
            fail(hi < lo, lambda t, j: f"has high {hi[t, j].item()} below low {lo[t, j].item()}",
                 "fix the row (are the columns swapped?)")
        for f in ("open", "close"):
            a = arrays.get(f)
            if a is None:
                continue
            if hi is not None:
                fail(a > hi, lambda t, j: f"has {f} {a[t, j].item()} above high {hi[t, j].item()}",
                     "the high must be the bar's highest price: fix the row")
            if lo is not None:
                fail(a < lo, lambda t, j: f"has {f} {a[t, j].item()} below low {lo[t, j].item()}",
                     "the low must be the bar's lowest price: fix the row")


def _fill_gaps(src: _Source, index: pd.DatetimeIndex, symbols: tuple[str, ...],
               arrays: dict[str, np.ndarray], daily: bool,
               fill: str) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    has_close = ~np.isnan(arrays["close"])
    gap = np.maximum.accumulate(has_close, axis=0) & ~has_close  # missing after the first price
    if not gap.any():
        return index, arrays
    if fill == "error":
        t, j, more = _first(gap)
        first = day(index[int(np.argmax(has_close[:, j]))], daily)
        raise DataError(f"{src.name}: {symbols[j]} has no price on {day(index[t], daily)}, after "
                        f"its first on {first}{more}; add the missing bars, or set data.fill=ffill "
                        f"(repeat the last close, volume 0) or data.fill=drop (remove those dates)")
    if fill == "drop":
        keep = ~gap.any(axis=1)
        return index[keep], {f: a[keep] for f, a in arrays.items()}
    close = pd.DataFrame(arrays["close"]).ffill().to_numpy()
    out = {}
    for f, a in arrays.items():  # a flat bar at the last close: no trade happened
        a = a.copy()
        a[gap] = 0.0 if f == "volume" else close[gap]
        out[f] = a
    return index, out
