"""What the data loaders share: finding bundled files, reading a Parquet dataset folder,
stamping bars at their close, and slicing a loaded market by symbols and dates with errors
that say what to change."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import warnings
from typing import Optional

import numpy as np
import pandas as pd

from pipeline.core import calendars
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.market import MarketData, bar_label, bar_length, calendar_sessions

US_TZ = "America/New_York"
US_CLOSE = pd.Timedelta(hours=16)


def bundled_file(package: str, relative: str, what: str) -> str:
    """Path of a data file shipped inside ``package``, found without importing the package
    (importing skfolio or bokeh costs seconds; the file is all we need)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{what} ships with the Python package {package}, which is not installed; "
                        f"run `pip install {package}` or pick another source (data=synthetic)")
    path = os.path.join(spec.submodule_search_locations[0], relative)
    if not os.path.isfile(path):
        raise DataError(f"{what}: {path} is missing from the installed {package}; reinstall it "
                        f"(`pip install --force-reinstall {package}`)")
    return path


def parquet_dataset(path: str, full: str) -> pd.DataFrame:
    """A folder's Parquet files (``full``; ``path`` as the user wrote it) as one table, in name
    order: folders named key=value (hive partitions: ``symbol=AAPL/``, ``date=2024-01-02/``)
    give a column each; without them, several files are one symbol each, named by the file's
    stem (``AAPL.parquet``) in a ``symbol`` column."""
    import pyarrow.dataset as ds  # only for a folder: pyarrow's dataset module is slow to import

    files = sorted(os.path.join(d, f) for d, _, names in os.walk(full) for f in names
                   if f.lower().endswith((".parquet", ".pq")))
    if not files:
        raise DataError(f"data.path={path!r}: the folder {full} holds no .parquet or .pq file; "
                        f"point data.path at a Parquet dataset or a file")
    hive = any("=" in part for f in files for part in os.path.relpath(f, full).split(os.sep)[:-1])
    try:
        if hive or len(files) == 1:
            table = ds.dataset(files, format="parquet", partitioning="hive",
                               partition_base_dir=full).to_table().to_pandas()
        else:
            parts = [pd.read_parquet(f) for f in files]
            table = pd.concat([(t if isinstance(t.index, pd.RangeIndex) else t.reset_index())
                               .assign(symbol=os.path.basename(f).split(".")[0])
                               for f, t in zip(files, parts)], ignore_index=True)
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: cannot be read as a Parquet dataset ({exc}); give its files "
                        f"the same columns") from None
    for c in table.columns:  # a partition's values arrive as categories
        if isinstance(table[c].dtype, pd.CategoricalDtype):
            table[c] = table[c].astype(table[c].cat.categories.dtype)
    return table


def at_close(days: pd.DatetimeIndex, tz: str = US_TZ,
             close: pd.Timedelta = US_CLOSE) -> pd.DatetimeIndex:
    """Naive midnight dates -> tz-aware stamps at the session's close (bars are stamped at their
    close, so a daily bar is not visible before the market has closed)."""
    return as_ns(pd.DatetimeIndex(days + close).tz_localize(tz))


def adjusted(raw: dict, adj_close):
    """Raw open/high/low/close/volume adjusted for splits and dividends by an adjusted close:
    prices are multiplied by ``adj_close / close`` and volume divided by it, so dollar volume
    (price x shares) is unchanged and participation limits stay meaningful. The close too is
    ``close * factor`` (the adjusted close to within an ulp): one factor for all four prices
    keeps low <= open, close <= high exact. Works on arrays and on aligned frames alike."""
    factor = adj_close / raw["close"]
    out = {f: raw[f] * factor for f in ("open", "high", "low", "close") if f in raw}
    if "volume" in raw:
        out["volume"] = raw["volume"] / factor
    return out


def as_ns(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Nanosecond stamps without a name: pandas 3 parses to microseconds, and
    ``MarketData.select`` compares an inclusive end with a nanosecond offset."""
    return index.as_unit("ns").rename(None)


def day(ts: pd.Timestamp, daily: bool = True) -> str:
    """A stamp as the user would look it up in their file: the date for daily bars."""
    return ts.strftime("%Y-%m-%d") if daily else str(ts.tz_localize(None))


def is_daily(index: pd.DatetimeIndex) -> bool:
    # Median spacing rather than the time of day: robust to DST and to a few odd stamps.
    return len(index) < 2 or np.median(np.diff(index.asi8)) >= pd.Timedelta(hours=20).value


def parse_date(value: str, key: str) -> pd.Timestamp:
    """A config value as a timestamp; ``key`` names it under ``data.`` in the error."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise ConfigError(f"data.{key}={value!r} is not a date; write YYYY-MM-DD")
    return ts


def select(data: MarketData, source: str, start: Optional[str], end: Optional[str],
           symbols: Optional[list[str]], min_history: int) -> MarketData:
    """``data`` restricted to ``symbols`` and ``[start, end]``, starting at the first bar where
    one of the chosen symbols has a price, and holding at least ``min_history`` bars."""
    daily = is_daily(data.index)
    span = (f"it covers {day(data.index[0], daily)}..{day(data.index[-1], daily)}"
            if data.n_bars else "it has no bars")
    if symbols is not None:
        symbols = [str(s) for s in symbols]
        for s in symbols:
            if s not in data.symbols:
                raise DataError(f"data.symbols: {s!r} is not in {source}; available: "
                                f"{', '.join(data.symbols)}")
        if len(set(symbols)) < len(symbols):
            twice = next(s for s in symbols if symbols.count(s) > 1)
            raise DataError(f"data.symbols lists {twice!r} more than once; list each symbol once")
    lo = None if start is None else parse_date(start, "start")
    hi = None if end is None else parse_date(end, "end")
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"data.start={start!r} is after data.end={end!r}; swap them")
    out = data.select(symbols, start, end)

    # A symbol listed late would otherwise drag years of empty rows into the slice.
    priced = ~np.isnan(out.close).all(axis=1)
    if priced.any() and not priced[0]:
        out = out.select(start=out.index[int(np.argmax(priced))])
    if symbols is not None:
        for j, s in enumerate(out.symbols):
            if np.isnan(out.close[:, j]).all():
                raise DataError(f"data.symbols: {s!r} has no prices in {source} between "
                                f"{start or 'the start'} and {end or 'the end'} ({span}); "
                                f"move data.start/data.end or drop {s!r}")
    if out.n_bars < min_history:
        bars = f"{out.n_bars} bar" + ("" if out.n_bars == 1 else "s")
        raise DataError(f"{source} has {bars} between {start or 'the start'} and "
                        f"{end or 'the end'}, fewer than data.min_history={min_history} ({span}); "
                        f"widen data.start/data.end or lower data.min_history")
    return out


def declared_bars(data: MarketData, source: str, bar_size: Optional[str]) -> MarketData:
    """``data`` with its bar size: ``bar_size`` as declared (``1min``, ``1s``, ``1d``), checked
    against the spacing of the bars within a session; null keeps the spacing inferred."""
    if bar_size is None:
        return data
    try:
        size = pd.Timedelta(str(bar_size))
    except ValueError:
        size = pd.NaT
    if size is pd.NaT or size <= pd.Timedelta(0):
        raise ConfigError(f"data.bar_size={bar_size!r} is not a bar size; write e.g. 1d, 1h, "
                          f"30min, 1min, 1s or 500ms (null: read it from the timestamps)")
    seen = bar_length(data.index)
    if (seen < pd.Timedelta(days=1)) != (size < pd.Timedelta(days=1)) or \
            (seen < pd.Timedelta(days=1) and seen != size):
        raise DataError(f"{source}: data.bar_size={bar_size} but its bars are {bar_label(seen)} apart "
                        f"within a day; fix data.bar_size (null reads it from the timestamps)")
    return dataclasses.replace(data, bar_size=size)


def check_sessions(data: MarketData, source: str, calendar: Optional[str], policy: str) -> MarketData:
    """The exchange's sessions the data misses, and its dates that are no session, per
    ``policy``: ``error`` rejects the file, ``warn`` warns and notes it in the run's
    provenance (the report's data caveats), ``ignore`` says nothing. The bars are unchanged;
    the data take the calendar, whose sessions group intraday bars (``MarketData.sessions``):
    an intraday bar outside every session is an error naming the file, whatever ``policy``."""
    if calendar is None or data.n_bars == 0:
        return data
    data = dataclasses.replace(data, calendar=str(calendar))
    if data.intraday:
        calendar_sessions(data, source)
    if policy == "ignore":
        return data
    missing, extra = calendars.missing_sessions(data.index, str(calendar), data.intraday)
    if missing.empty and extra.empty:
        return data
    said = []
    if not missing.empty:
        said.append(f"{len(missing)} {calendar} session(s) have no bar ({calendars.short_list(missing)})")
    if not extra.empty:
        said.append(f"{len(extra)} date(s) are no {calendar} session ({calendars.short_list(extra)})")
    text = f"{source}: " + "; ".join(said)
    if policy == "error":
        raise DataError(f"{text}; add the missing bars, set data.missing_sessions=warn or ignore, or "
                        f"name the data's exchange with data.calendar (null: no calendar)")
    warnings.warn(text, stacklevel=2)
    return dataclasses.replace(data, notes=data.notes + (text + ": returns across them span "
                                                         "several sessions",))
