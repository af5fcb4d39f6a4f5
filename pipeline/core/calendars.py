"""Exchange calendars (the ``exchange_calendars`` package): which days an exchange trades, and
when each session opens and closes, half days included.

``exchange_calendars`` takes most of a second to import, so it is imported on first use: a
run that names no calendar never pays for it.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from pipeline.core.errors import ConfigError


def _unknown(name: str) -> ConfigError:
    return ConfigError(f"calendar {name!r} is not an exchange calendar; use an ISO MIC such as "
                       f"XNYS (NYSE), XNAS, XLON, XTKS, or null for none")


@functools.lru_cache(maxsize=16)
def _calendar(name: str, start: str, end: str):
    import exchange_calendars as xc

    try:
        with warnings.catch_warnings():  # the package's own use of pandas' deprecated APIs
            warnings.simplefilter("ignore")
            return xc.get_calendar(name, start=start, end=end)
    except xc.errors.InvalidCalendarName:
        raise _unknown(name) from None
    except ValueError as exc:  # outside the package's bounds
        raise ConfigError(f"calendar {name}: {exc}") from None


def zone(name: str) -> str:
    """The exchange's time zone (``America/New_York`` for XNYS)."""
    return str(_calendar(str(name), "2020-01-01", "2020-12-31").tz)


def schedule(name: str, start, end) -> pd.DataFrame:
    """Sessions from ``start`` to ``end`` (dates, inclusive): one row per session, indexed by
    its date (naive), with its ``open`` and ``close`` as UTC timestamps; a half day closes early."""
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    # built by whole years, so that the ticks of a live loop share one calendar object
    cal = _calendar(str(name), f"{first.year}-01-01", f"{last.year}-12-31")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cal.schedule.loc[first:last, ["open", "close"]]


def missing_sessions(index: pd.DatetimeIndex, name: str,
                     intraday: bool = False) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """The sessions of exchange ``name`` from the first to the last bar of ``index`` on which
    it has no bar, and the dates of ``index`` that are no session (dates in the exchange's zone).
    ``intraday``: bars count for the session whose open..close holds them (``session_of``), so
    an overnight session's evening bars count for the next day's session."""
    if intraday:
        position, table = session_of(index, name)
        held = pd.DatetimeIndex(table.index[np.unique(position[position >= 0])])
        if held.empty:
            return held, held
        span = pd.DatetimeIndex(table.loc[held[0]:held[-1]].index)
        return span.difference(held), pd.DatetimeIndex([])
    local = pd.DatetimeIndex(index.tz_convert(zone(name)).tz_localize(None).normalize().unique())
    sessions = pd.DatetimeIndex(schedule(name, local[0], local[-1]).index)
    return sessions.difference(local), local.difference(sessions)


def session_of(index: pd.DatetimeIndex, name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Per bar of ``index`` (stamped at its close), the row of the session table whose
    ``open < stamp <= close`` (-1 for a bar outside every session), and that table
    (``schedule``, from the day before the first bar to the day after the last: an overnight
    session, CME's, opens the evening before the date that names it)."""
    local = index.tz_convert(zone(name))
    first = local[0].tz_localize(None).normalize() - pd.Timedelta(days=1)
    last = local[-1].tz_localize(None).normalize() + pd.Timedelta(days=1)
    table = schedule(name, first, last)
    opens = pd.DatetimeIndex(table["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(table["close"]).as_unit("ns").asi8
    stamps = index.as_unit("ns").asi8
    row = np.searchsorted(closes, stamps, "left")  # the first session closing at or after
    clipped = np.minimum(row, max(len(closes) - 1, 0))
    inside = (row < len(closes)) & (opens[clipped] < stamps) if len(closes) else np.zeros(len(stamps), bool)
    return np.where(inside, row, -1).astype(np.int64), table


def session_bounds(name: str, day) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The UTC open and close of ``day``'s session on exchange ``name``; None on a holiday or
    a weekend."""
    table = schedule(name, day, day)
    if table.empty:
        return None
    return pd.Timestamp(table["open"].iloc[0]), pd.Timestamp(table["close"].iloc[0])


def short_list(days: pd.DatetimeIndex, most: int = 3) -> str:
    """``2020-01-03, 2020-02-11, 2020-03-02 and 4 more``: dates for a one-line message."""
    text = ", ".join(d.strftime("%Y-%m-%d") for d in days[:most])
    return text + (f" and {len(days) - most} more" if len(days) > most else "")


def bins_to_close(name: str | None, start: float, bin_seconds: float, bins: int) -> float:
    """The length of each of ``bins`` bins from ``start`` (epoch seconds): ``bin_seconds``, or
    shorter so that the last ends at the session's real close (a half day's early one) when
    ``start`` is inside a session of exchange ``name`` that closes before they would end."""
    if not name:
        return bin_seconds
    now = pd.Timestamp(start, unit="s", tz="UTC")
    bounds = session_bounds(name, now.tz_convert(zone(name)).normalize().tz_localize(None))
    if bounds is None or not bounds[0] <= now < bounds[1]:
        return bin_seconds
    left = (bounds[1] - now).total_seconds()
    return min(bin_seconds, left / bins)
