"""A user's own prices from a CSV or Parquet file, validated before any stage sees them."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Literal, Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.market import MarketData
from plugins.data._bars import check_bars, fill_gaps
from plugins.data._dates import check_order, check_zone, read_stamps, time_of_day
from plugins.data._frames import (US_TZ, adjusted, as_ns, check_sessions, declared_bars,
                                  is_daily, parquet_dataset, select)

ROLES = ("date", "symbol", "open", "high", "low", "close", "adj_close", "volume")
VALUES = ("open", "high", "low", "close", "adj_close", "volume")
# A header's role, looked up by its key (_key: case, spaces, underscores, dots and dashes do not
# matter, so "Adj Close", "adj_close" and "AdjClose" are one name).
ROLE_OF = {"date": "date", "datetime": "date", "timestamp": "date", "time": "date",
           "symbol": "symbol", "ticker": "symbol", "open": "open", "high": "high", "low": "low",
           "close": "close", "price": "close", "adjclose": "adj_close",
           "adjustedclose": "adj_close", "volume": "volume"}
# Columns downloaders write beside one symbol's bars that are not bars: yfinance's actions,
# Alpha Vantage's and Tiingo's corporate actions and adjusted copies, open interest.
BESIDE_BARS = frozenset({"dividends", "stocksplits", "capitalgains", "dividendamount",
                         "splitcoefficient", "divcash", "splitfactor", "adjopen", "adjhigh",
                         "adjlow", "adjvolume", "openint", "openinterest"})
LAYOUTS = ("the layouts are long (date, symbol or ticker, close[, open, high, low, adj close, "
           "volume]), wide (date, then one column of closes per symbol) and ohlcv (one symbol: "
           "date, open, high, low, close[, adj close, volume]); declare one with "
           "data.layout=long|wide|ohlcv, and name a column the file spells otherwise with "
           "data.columns={close: Last}")


class CSVData(DataSource):
    """Prices from a CSV (.csv, .csv.gz) or Parquet (.parquet, .pq) file, or a dataset folder.

    Headers are read by role, in any common spelling (case, spaces and underscores do not
    matter): date (``date``, ``datetime``, ``timestamp``, ``time``), symbol (``symbol``,
    ``ticker``), ``open``, ``high``, ``low``, close (``close``, ``price``), adjusted close
    (``adj close``, ``adjusted close``) and ``volume``. ``columns`` names the columns a file
    spells otherwise, role -> header (``{close: Last, symbol: Sec}``).

    Layouts (``layout="auto"`` reads them from the headers, and refuses to guess):

    - long: one row per symbol and bar, columns date, symbol and close, optionally open, high,
      low, adjusted close and volume; other columns are ignored. Auto: a symbol column.
    - ohlcv: one symbol's bars (``Date,Open,High,Low,Close,Adj Close,Volume`` as most
      downloaders write it), the symbol named by ``symbol``, else the file's stem. Auto: field
      headers and no column other than those (and dividends, splits, ... beside them).
    - wide: a date column (the one named so, else the first) then one column of closes per
      symbol, named by the symbol. Auto: no field header. A volume or text column is an error,
      never a symbol.
    - a wide panel of bars under two header rows, field names and tickers (either first), as
      yfinance writes several tickers (``Price,Close,Close,...`` / ``Ticker,AAPL,MSFT,...``,
      perhaps a third row ``Date``); read with ``layout`` auto or wide.

    Where there is an adjusted close beside the close, prices are adjusted: multiplied by
    ``adj close / close`` (so the close is the adjusted close) and volume divided by it.
    Otherwise prices must already be adjusted for splits and dividends. Which column gave the
    close is said in the run's provenance (``assumptions``) and the report's data caveats.

    A Parquet file's index, when it is not a plain row number, is read as a column. A folder
    is a Parquet dataset partitioned by symbol or date (``_frames.parquet_dataset``).

    Time: values with a UTC offset are converted to ``tz``; naive date-times are localised to
    ``tz``; naive dates (every value at midnight) are bars stamped at ``close_time`` in ``tz``.
    ``YYYYMMDD`` integers are read as dates. Dates written with day and month as numbers
    (``03/04/2020``) are read in the order some row proves (a day above 12); when every row
    reads both ways it is an error naming the line: ``date_format`` (``%d/%m/%Y``) declares it.

    The file is rejected with a one-line error naming the file, symbol and date when: a
    symbol's timestamps go backwards (``sort=True`` sorts them instead), a symbol has two rows
    for one timestamp, a value is not a number, a price is zero or negative, volume is
    negative, high < low or the open or close lies outside [low, high], a bar has some fields
    but not others, or a symbol has no price.

    Missing bars: a symbol may start late (NaN before its first price). A bar missing after its
    first price (a gap or a delisting) follows ``fill``: ``"error"`` rejects the file,
    ``"ffill"`` repeats the last close as a flat bar (open = high = low = close) with volume 0,
    ``"drop"`` removes every date on which any symbol has such a gap.

    ``start``/``end`` (inclusive) and ``symbols`` slice the data; fewer than ``min_history``
    bars left is an error.

    Bars are daily or intraday (``bar_size``: 1min, 1s; null: from the stamps); sessions of
    exchange ``calendar`` without a bar, and dates that are none, follow ``missing_sessions``.
    Intraday bars belong to the ``calendar`` session whose open..close holds them (an overnight
    session across midnight is one); one outside every session is an error naming it; with
    ``calendar=None`` the bars of one local date are a session.
    """

    rules = {"min_history": "[1, inf)"}
    # a table in memory read instead of ``path`` (the Python API's ``data=``), as a Parquet
    # file's table is read: every check and message the same, naming ``path`` as the source
    frame: Optional[pd.DataFrame] = None

    def __init__(self, path: str, layout: Literal["auto", "long", "wide", "ohlcv"] = "auto",
                 symbol: Optional[str] = None, columns: Optional[dict[str, str]] = None,
                 date_format: Optional[str] = None, tz: str = US_TZ, close_time: str = "16:00",
                 sort: bool = False, fill: Literal["error", "ffill", "drop"] = "error",
                 start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2,
                 bar_size: Optional[str] = None, calendar: Optional[str] = "XNYS",
                 missing_sessions: Literal["warn", "error", "ignore"] = "warn"):
        self.path = path
        self.layout = layout
        self.symbol = symbol
        self.columns = columns
        self.date_format = date_format
        self.tz = tz
        self.close_time = close_time
        self.sort = sort
        self.fill = fill
        self.start = start
        self.end = end
        self.symbols = symbols
        self.min_history = min_history
        self.bar_size, self.calendar, self.missing_sessions = bar_size, calendar, missing_sessions

    def load(self) -> MarketData:
        close = time_of_day(self.close_time)
        check_zone(self.tz)
        declared = _declared(self.columns)
        by_label = {label: role for role, label in declared.items()}

        def role_of(label) -> Optional[str]:  # a declared role is no other column's
            role = by_label.get(str(label).strip()) or ROLE_OF.get(_key(label))
            return None if role in declared and str(label).strip() not in by_label else role

        src, name = self.read(role_of)
        cols = _columns(src, declared, role_of)
        layout = _layout(src, cols, self.layout)
        if self.symbol is not None and layout != "ohlcv":
            raise ConfigError(f"data.symbol={self.symbol!r} names the one symbol of an ohlcv "
                              f"file, but {src.name} reads as {READ_AS[layout]}, whose symbols "
                              f"the file names; drop data.symbol (data.symbols=[...] picks some)")

        def stamps(column) -> pd.DatetimeIndex:
            return read_stamps(src, column, self.tz, close, self.date_format)

        if layout == "panel":
            parsed = _panel(src, role_of, stamps, self.sort)
        elif layout == "long":
            parsed = _long(src, cols, stamps, self.sort)
        elif layout == "ohlcv":
            parsed = _ohlcv(src, cols, stamps, self.sort, self.symbol or name)
        else:
            parsed = _wide(src, cols, stamps, self.sort)
        index, symbols, arrays, labels = parsed
        daily = is_daily(index)
        check_bars(src.name, index, symbols, arrays, daily)
        note = _note(src, layout, symbols, labels, arrays)
        if "adj_close" in arrays:
            arrays = adjusted({f: a for f, a in arrays.items() if f != "adj_close"},
                              arrays["adj_close"])
        index, arrays = fill_gaps(src.name, index, symbols, arrays, daily, self.fill)
        data = MarketData(index=index, symbols=symbols, name=name, notes=(note,), **arrays)
        data = select(declared_bars(data, src.name, self.bar_size), src.name, self.start,
                      self.end, self.symbols, self.min_history)
        return check_sessions(data, src.name, self.calendar, self.missing_sessions)

    def read(self, role_of: Callable) -> tuple["Source", str]:  # the table and the data's name
        return _read(self.path, role_of, self.frame), os.path.basename(self.path.rstrip("/\\")).split(".")[0] or "csv"


# ---------------------------------------------------------------- reading

@dataclasses.dataclass
class Source:
    """The table as read, and how to point the user at one of its rows."""

    name: str
    table: pd.DataFrame
    first_line: int  # CSV: the first line after the header; Parquet rows count from 1
    unit: str
    # Two header rows (fields and tickers): (field, ticker) of each column after the date.
    panel: Optional[list[tuple[str, str]]] = None

    def row(self, i: int) -> str:
        return f"{self.unit} {i + self.first_line}"


def _key(label) -> str:
    return re.sub(r"[^0-9a-z]", "", str(label).lower())


def _names(labels) -> str:
    return ", ".join(repr(str(c)) for c in labels)


def _declared(columns) -> dict[str, str]:
    """``data.columns`` checked: role -> the header that plays it."""
    out: dict[str, str] = {}
    for role, label in dict(columns or {}).items():
        if role not in ROLES:
            raise ConfigError(f"data.columns.{role}: {role!r} is not a role; the roles are "
                              f"{', '.join(ROLES)}")
        label = str(label).strip()
        if label in out.values():
            raise ConfigError(f"data.columns gives {label!r} two roles; give each column one")
        out[role] = label
    return out


def _read(path: str, role_of: Callable, frame: Optional[pd.DataFrame] = None) -> Source:
    full = os.path.abspath(os.path.expanduser(path))
    if frame is not None:  # an unnamed index of dates is the date column
        table = frame.rename_axis(frame.index.name or "date") if frame.index.nlevels == 1 else frame
        src = table_source(path, table, role_of)
    elif os.path.isdir(full):
        src = table_source(path, parquet_dataset(path, full), role_of)
    elif not os.path.isfile(full):
        raise DataError(f"data.path={path!r}: no such file or folder ({full}); check the path "
                        f"(relative paths start from {os.getcwd()})")
    elif full.lower().endswith((".parquet", ".pq")):
        try:
            table = pd.read_parquet(full)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as Parquet ({exc}); check the file") from None
        src = table_source(path, table, role_of)
    elif full.lower().endswith((".csv", ".csv.gz")):
        try:
            head = pd.read_csv(full, header=None, nrows=3, dtype=str, keep_default_na=False)
            header = _stacked([list(row) for row in head.itertuples(index=False)], role_of)
            # low_memory=False: one dtype per column from the whole file, and no DtypeWarning
            if header is None:
                src = Source(path, pd.read_csv(full, low_memory=False), 2, "line")
            else:
                table = pd.read_csv(full, header=None, skiprows=header[0], low_memory=False)
                src = _panel_source(Source(path, table, header[0] + 1, "line"), header)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot be read as CSV ({exc}); check the file") from None
    else:
        raise DataError(f"data.path={path!r}: unknown file type; use .csv, .csv.gz, .parquet "
                        f"or .pq")
    if src.table.empty:
        raise DataError(f"{path} has no data rows; point data.path at a file with prices")
    return src


def table_source(name: str, table: pd.DataFrame, role_of: Callable) -> Source:
    """A table read whole (Parquet, a DuckDB query) as the checks read it: rows from 1, a named
    index as a column, two levels of column names as field names and tickers."""
    table = table if isinstance(table.index, pd.RangeIndex) else table.reset_index()
    src = Source(name, table, 1, "row")
    if isinstance(table.columns, pd.MultiIndex):
        levels = [[str(c) for c in table.columns.get_level_values(i)] for i in range(table.columns.nlevels)]
        header = _stacked(levels, role_of) if len(levels) == 2 else None
        if header is None:
            raise DataError(f"{name}: its columns have {len(levels)} levels that are not field names and "
                            f"tickers; write one level of column names")
        src = _panel_source(src, header)
    return src


def _stacked(rows: list[list[str]], role_of: Callable
             ) -> Optional[tuple[int, str, list[tuple[str, str]]]]:
    """yfinance's header for several tickers: a row of field names and a row of tickers
    (either first), perhaps a third row naming the date column alone. Returns the number of
    header rows, the date column's name and (field, ticker) per column after it; None for a
    file with one header row."""
    def fields(row):
        return ((_key(row[0]) in ("", "price") or role_of(row[0]) == "date")
                and all(role_of(c) in VALUES or ROLE_OF.get(_key(c)) in VALUES
                        or _key(c) in BESIDE_BARS for c in row[1:]))

    def tickers(row):
        return (_key(row[0]) in ("", "ticker", "symbol")
                and all(c.strip() and pd.isna(pd.to_numeric(c, errors="coerce"))
                        for c in row[1:]))

    if len(rows) < 2 or len(rows[0]) < 2:
        return None
    if fields(rows[0]) and tickers(rows[1]):
        f, t = 0, 1
    elif tickers(rows[0]) and fields(rows[1]):
        f, t = 1, 0
    else:
        return None
    third = len(rows) > 2 and role_of(rows[2][0]) == "date" and not any(
        c.strip() for c in rows[2][1:])
    date = rows[2][0] if third else next((r[0] for r in rows[:2] if role_of(r[0]) == "date"),
                                         "date")
    return (3 if third else 2), date.strip(), [(a.strip(), b.strip())
                                               for a, b in zip(rows[f][1:], rows[t][1:])]


def _panel_source(src: Source, header: tuple[int, str, list[tuple[str, str]]]) -> Source:
    _, date, panel = header
    src.table.columns = [date] + [f"{ticker} {field}" for field, ticker in panel]
    src.panel = panel
    return src


def _columns(src: Source, declared: dict[str, str], role_of: Callable) -> dict[str, str]:
    """Role -> the column that plays it (for a panel, the field names play them)."""
    labels = [f for f, _ in src.panel] if src.panel is not None else list(src.table.columns)
    present = {str(c).strip() for c in labels}
    for role, label in declared.items():
        if label not in present:
            raise DataError(f"data.columns.{role}={label!r} is not a column of {src.name} (its "
                            f"columns: {_names(dict.fromkeys(labels))}); fix the name")
    if src.panel is not None:
        return {}
    lower: dict[str, str] = {}
    for c in labels:
        key = str(c).strip().lower()
        if key in lower:
            raise DataError(f"{src.name}: columns {lower[key]!r} and {c!r} differ only in case; "
                            f"rename one")
        lower[key] = c
    cols: dict[str, str] = {}
    for c in labels:
        role = role_of(c)
        if role is None:
            continue
        if role in cols:
            raise DataError(f"{src.name}: columns {cols[role]!r} and {c!r} both read as the "
                            f"{role.replace('_', ' ')}; remove one, or name the one to use with "
                            f"data.columns={{{role}: ...}}")
        cols[role] = c
    return cols


READ_AS = {"long": "a long file", "wide": "a wide file of closes",
           "ohlcv": "one symbol's bars", "panel": "a wide panel under two header rows"}


def _layout(src: Source, cols: dict[str, str], declared: str) -> str:
    if src.panel is not None:
        if declared not in ("auto", "wide"):
            raise DataError(f"{src.name} has two header rows, field names and tickers (as "
                            f"yfinance writes several tickers): a wide panel, not "
                            f"data.layout={declared}; set data.layout=wide or auto")
        return "panel"
    if declared != "auto":
        return declared
    if "symbol" in cols:
        return "long"
    fields = [cols[r] for r in VALUES if r in cols]
    if not fields:
        return "wide"
    date = cols.get("date", src.table.columns[0])
    others = [c for c in src.table.columns
              if c != date and c not in cols.values() and _key(c) not in BESIDE_BARS]
    if others:
        raise DataError(f"{src.name}: the layout is ambiguous: not long (no symbol or ticker "
                        f"column), nor one symbol's ohlcv (not fields: {_names(others)}), nor "
                        f"wide (it would trade {_names(fields)} as symbols); {LAYOUTS}")
    return "ohlcv"


def _numbers(src: Source, column: str, text: Optional[str] = None) -> np.ndarray:
    """A column as floats; ``text``: what to tell the user when it holds no number at all."""
    values = src.table[column]
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=np.float64)
    parsed = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & values.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        if text is not None and parsed.isna().all():
            raise DataError(f"{src.name}: column {column!r} holds text ({values.iloc[i]!r} on "
                            f"{src.row(i)}), not prices; {text}")
        raise DataError(f"{src.name}: column {column!r} has {values.iloc[i]!r} on {src.row(i)}, "
                        f"which is not a number; fix it (leave the cell empty for no bar)")
    return parsed.to_numpy(dtype=np.float64)


# ---------------------------------------------------------------- layouts

# index, symbols, field -> bars x symbols, and role -> the header it was read from
Parsed = tuple[pd.DatetimeIndex, tuple[str, ...], dict[str, np.ndarray], dict[str, str]]


def _close_role(src: Source, have: dict[str, str]) -> str:
    """The role read as the close: the close; an adjusted close alone when there is nothing
    it would have to scale (open, high, low and volume need the raw close beside it)."""
    if "close" in have:
        return "close"
    if "adj_close" not in have:
        raise DataError(f"{src.name}: no close column (found {_names(src.table.columns)}); "
                        f"{LAYOUTS}")
    rest = [have[r] for r in ("open", "high", "low", "volume") if r in have]
    if rest:
        raise DataError(f"{src.name}: has {have['adj_close']!r} but no raw close, so "
                        f"{_names(rest)} cannot be adjusted; add the close, or remove them")
    return "adj_close"


def _as_close(have: dict, role: str) -> dict:
    return {("close" if r == role else r): v for r, v in have.items()}


def _long(src: Source, cols: dict[str, str], stamps: Callable, sort: bool) -> Parsed:
    missing = [c for c in ("date", "symbol") if c not in cols]
    if missing:
        raise DataError(f"{src.name}: a long file needs a date and a symbol (or ticker) column "
                        f"(missing {' and '.join(missing)}; found {_names(src.table.columns)}); "
                        f"{LAYOUTS}")
    have = {r: cols[r] for r in VALUES if r in cols}
    have = _as_close(have, _close_role(src, have))
    values = {f: _numbers(src, c) for f, c in have.items()}
    time = stamps(cols["date"])
    symbol = src.table[cols["symbol"]]
    blank = np.flatnonzero(symbol.isna().to_numpy())
    if blank.size:
        raise DataError(f"{src.name}: {src.row(int(blank[0]))} has no symbol; fill it in or "
                        f"remove the row")
    symbol = symbol.astype(str).str.strip().to_numpy()
    check_order(src, time, symbol, sort)
    rows = pd.DataFrame({"time": time, "symbol": symbol, **values})
    order = pd.unique(symbol)  # symbols in the order the file first mentions them
    wide = rows.pivot(index="time", columns="symbol", values=list(values))
    arrays = {f: wide[f].reindex(columns=order).to_numpy(dtype=np.float64) for f in values}
    return as_ns(pd.DatetimeIndex(wide.index)), tuple(order), arrays, have


def _ohlcv(src: Source, cols: dict[str, str], stamps: Callable, sort: bool,
           symbol: str) -> Parsed:
    have = {r: cols[r] for r in VALUES if r in cols}
    have = _as_close(have, _close_role(src, have))
    time = stamps(cols.get("date", src.table.columns[0]))
    check_order(src, time, None, sort)
    order = np.argsort(time.asi8, kind="stable")  # identity unless sort=True reordered
    arrays = {f: _numbers(src, c)[order, None] for f, c in have.items()}
    return time[order], (str(symbol).strip(),), arrays, have


def _wide(src: Source, cols: dict[str, str], stamps: Callable, sort: bool) -> Parsed:
    date = cols.get("date", src.table.columns[0])
    names = [c for c in src.table.columns if c != date]
    if not names:
        raise DataError(f"{src.name}: a wide file needs a date column then one column of closes "
                        f"per symbol, but it has only {date!r}")
    todo = (f"a wide file has a date column then one column of closes per symbol, so remove "
            f"it; or, if the file is not wide, {LAYOUTS}")
    for c in names:  # never a symbol: it would be traded as one
        if "volume" in _key(c):
            raise DataError(f"{src.name}: column {c!r} holds volume, not prices; {todo}")
    closes = np.column_stack([_numbers(src, c, text=todo) for c in names])
    time = stamps(date)
    check_order(src, time, None, sort)
    order = np.argsort(time.asi8, kind="stable")  # identity unless sort=True reordered
    return time[order], tuple(str(c).strip() for c in names), {"close": closes[order]}, {}


def _panel(src: Source, role_of: Callable, stamps: Callable, sort: bool) -> Parsed:
    grid: dict[str, dict[str, str]] = {}  # role -> ticker -> column
    have: dict[str, str] = {}  # role -> field name, as the header spells it
    for (field, ticker), column in zip(src.panel, src.table.columns[1:]):
        role = role_of(field)
        if role is None:  # dividends, splits, ... beside the bars
            continue
        if ticker in grid.setdefault(role, {}):
            raise DataError(f"{src.name}: two columns for {ticker} {field}; keep one")
        grid[role][ticker] = column
        have.setdefault(role, field)
    symbols = tuple(dict.fromkeys(t for _, by in grid.items() for t in by))
    for role, by in grid.items():
        lacking = [s for s in symbols if s not in by]
        if lacking:
            raise DataError(f"{src.name}: {lacking[0]} has no {have[role]!r} column but "
                            f"{next(iter(by))} has; give every ticker the same fields")
    role = _close_role(src, have)
    grid, have = _as_close(grid, role), _as_close(have, role)
    time = stamps(src.table.columns[0])
    check_order(src, time, None, sort)
    order = np.argsort(time.asi8, kind="stable")  # identity unless sort=True reordered
    arrays = {f: np.column_stack([_numbers(src, by[s]) for s in symbols])[order]
              for f, by in grid.items()}
    return time[order], symbols, arrays, have


def _note(src: Source, layout: str, symbols: tuple[str, ...], labels: dict[str, str],
          arrays: dict[str, np.ndarray]) -> str:
    """Which layout was read and which column gave the close, for the run's provenance."""
    read = (f"{READ_AS[layout]} ({symbols[0]})" if layout == "ohlcv" else
            f"{READ_AS[layout]} ({len(symbols)} symbol{'' if len(symbols) == 1 else 's'})")
    if "adj_close" in labels:
        adj, raw = labels["adj_close"], labels["close"]
        scaled = ", ".join(f for f in ("open", "high", "low") if f in arrays)
        how = (f"prices adjusted for splits and dividends by its {adj!r} column (the close is "
               f"{adj!r}" + (f"; {scaled} scaled by {adj}/{raw}" if scaled else "")
               + (f"; volume divided by {adj}/{raw}" if "volume" in arrays else "") + ")")
    elif ROLE_OF.get(_key(labels.get("close"))) == "adj_close":  # declared the close
        how = f"closes from its {labels['close']!r} column, already adjusted"
    elif "close" in labels:
        how = (f"closes from its {labels['close']!r} column as they are (no adjusted close "
               f"beside it): they must already be adjusted for splits and dividends")
    else:
        how = ("each column's closes as they are: they must already be adjusted for splits and "
               "dividends")
    return f"data: {src.name} read as {read}; {how}"
