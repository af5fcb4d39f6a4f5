"""Reading a file's dates: time zone, close time, formats and order, each refused in one line
when it cannot be read unambiguously (used by ``csv.py``'s readers)."""

from __future__ import annotations

import datetime
import re
import warnings
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from pipeline.core.errors import ConfigError, DataError
from plugins.data._frames import as_ns, at_close, day, is_daily

if TYPE_CHECKING:
    from plugins.data.csv import Source

# d/m/y or m/d/y with one separator (/ . -); the rest of the value, if any, is the time.
NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[\sT]|$)")


def time_of_day(text: str) -> pd.Timedelta:
    try:
        t = datetime.time.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"data.close_time={text!r} is not a time of day; write HH:MM, "
                          f"e.g. 16:00") from None
    return pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def check_zone(tz: str) -> None:
    try:
        pd.Timestamp(0).tz_localize(tz)
    except (KeyError, ValueError, TypeError):
        raise ConfigError(f"data.tz={tz!r} is not a time zone; use an IANA name such as "
                          f"America/New_York or UTC") from None


def read_stamps(src: "Source", column: str, tz: str, close: pd.Timedelta,
            date_format: Optional[str]) -> pd.DatetimeIndex:
    raw = src.table[column]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{src.name}: {src.row(int(missing[0]))} has no {column!r}; give every "
                        f"row a date")
    if pd.api.types.is_numeric_dtype(raw):  # YYYYMMDD integers, not nanoseconds since 1970
        raw = raw.astype(np.int64).astype(str)
    how: dict = {"format": date_format}
    if date_format is None and not pd.api.types.is_datetime64_any_dtype(raw):
        how = numeric_order(src, column, raw.astype(str))
    parsed = None
    # pandas warns when it cannot infer one format and reads value by value; every value is
    # still read or named below, and the warning would only reach the user as noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for utc in (False, True):  # utc=True only to accept offsets that change with DST
            try:
                parsed = pd.DatetimeIndex(pd.to_datetime(raw, utc=utc, **how))
                break
            except (ValueError, TypeError):
                continue
        if parsed is None:
            i = int(np.flatnonzero(pd.to_datetime(raw, utc=True, errors="coerce",
                                                  **how).isna())[0])
    if parsed is None:
        expected = (f"data.date_format={date_format!r}" if date_format is not None
                    else f"the format of {raw.iloc[0]!r}")
        raise DataError(f"{src.name}: column {column!r} has {raw.iloc[i]!r} on {src.row(i)}, "
                        f"which is not a date in {expected}; write every date the same way, "
                        f"e.g. 2020-01-31")
    if parsed.tz is not None:
        return as_ns(parsed.tz_convert(tz))
    try:
        if (parsed == parsed.normalize()).all():
            return at_close(parsed, tz, close)
        return as_ns(parsed.tz_localize(tz))
    except ValueError as exc:  # a local time skipped or repeated by a DST change
        raise DataError(f"{src.name}: {exc}; give times with a UTC offset, or set data.tz "
                        f"to the zone they were recorded in") from None


def numeric_order(src: "Source", column: str, text: pd.Series) -> dict:
    """How to read dates written with day and month as numbers (03/04/2020): in the order a
    row proves (a number above 12), never a silent pick between the two."""
    if not NUMERIC_DATE.match(text.iloc[0]):
        return {}
    parts = text.str.extract(NUMERIC_DATE)
    if parts[0].isna().any():  # not all written so: the parse names the odd one
        return {}
    a, b = parts[0].astype(int).to_numpy(), parts[2].astype(int).to_numpy()
    month_first, day_first = bool((a <= 12).all()), bool((b <= 12).all())
    if month_first and day_first:
        differ = np.flatnonzero(a != b)
        if differ.size:
            i = int(differ[0])
            value = text.iloc[i].strip()
            sep, year = parts[1].iloc[i], "%Y" if len(parts[3].iloc[i]) == 4 else "%y"
            md, dm = (guess_datetime_format(value, dayfirst=first)
                      or sep.join(order + (year,))
                      for first, order in ((False, ("%m", "%d")), (True, ("%d", "%m"))))
            raise DataError(f"{src.name}: column {column!r} has {value!r} on {src.row(i)}, "
                            f"which reads as month/day or as day/month, and so does every date "
                            f"in it; declare the order: data.date_format='{md}' (month first) "
                            f"or data.date_format='{dm}' (day first)")
    first = day_first and not month_first
    return {"format": guess_datetime_format(text.iloc[0].strip(), dayfirst=first),
            "dayfirst": first}


def check_order(src: "Source", stamps: pd.DatetimeIndex, symbol: Optional[np.ndarray],
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
