"""Market data as the stages see it: numpy arrays by field, one column per symbol.

Time is a tz-aware ``DatetimeIndex`` and a bar is stamped at its close. Prices are adjusted
for splits and dividends. A bar is a day (the default) or an intraday bar of ``bar_size``:
intraday bars are grouped into sessions (``sessions``), and windows, schedules and
annualisation count sessions, not bars. With an exchange ``calendar`` (``XNYS``, ``CMES``,
``24/7``) a bar belongs to the session whose open..close holds it, so an overnight session
(CME futures open the evening before) is one session across midnight, and a bar outside every
session is an error; without one, a session is the bars of one local date. A NaN price means
the symbol has no bar then (not yet listed, delisted or halted); loaders reject NaN inside a
series unless a fill policy says otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Callable, Optional

import numpy as np
import pandas as pd

from pipeline.core import calendars
from pipeline.core.errors import DataError

FIELDS = ("open", "high", "low", "close", "volume")


TRADING_DAYS = 252


def periods_per_year(index: pd.DatetimeIndex, sessions: np.ndarray | None = None) -> float:
    """252 for daily bars; 252 sessions x the median bars per session for intraday bars, so
    that a half day or a record starting at a session's last bar does not lower it. Sessions
    are ``sessions`` (``MarketData.sessions``: by the exchange calendar), else local dates."""
    if len(index) < 2:
        return float(TRADING_DAYS)
    if sessions is not None:
        return TRADING_DAYS * float(np.median(np.bincount(sessions - sessions[0])))
    local = index.tz_localize(None) if index.tz is not None else index  # wall time: its dates are the sessions
    counts = np.unique(local.values.astype("datetime64[D]"), return_counts=True)[1]  # 50x faster than normalize()
    return TRADING_DAYS * float(np.median(counts))


@dataclasses.dataclass(frozen=True, eq=False)
class MarketData:
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    close: np.ndarray
    open: Optional[np.ndarray] = None
    high: Optional[np.ndarray] = None
    low: Optional[np.ndarray] = None
    volume: Optional[np.ndarray] = None
    name: str = "data"
    # What the loader had to decide about the source (which column gave the close, ...), for
    # the run's provenance: said where the data was read, since only the loader knows it.
    notes: tuple[str, ...] = ()
    # The source's bar length; None: inferred from the stamps (``bar_length``).
    bar_size: Optional[pd.Timedelta] = None
    # The exchange whose sessions group intraday bars (an ISO MIC, ``CMES``, ``24/7``); None:
    # sessions are local dates. Daily bars are one session each either way.
    calendar: Optional[str] = None

    def __post_init__(self) -> None:
        if self.index.tz is None:
            raise ValueError("MarketData.index must be tz-aware (bars are stamped at their close)")
        shape = (len(self.index), len(self.symbols))
        for field in FIELDS:
            arr = getattr(self, field)
            if arr is not None and arr.shape != shape:
                raise ValueError(f"MarketData.{field} has shape {arr.shape}, expected {shape}")

    @classmethod
    def from_frames(cls, frames: dict[str, pd.DataFrame], name: str = "data") -> "MarketData":
        """Build from per-field frames sharing the index and columns of ``frames['close']``."""
        close = frames["close"]
        arrays = {f: np.ascontiguousarray(frames[f].reindex(index=close.index, columns=close.columns)
                                          .to_numpy(dtype=np.float64))
                  for f in FIELDS if f in frames}
        return cls(index=close.index, symbols=tuple(map(str, close.columns)), name=name, **arrays)

    # -- shape -----------------------------------------------------------------------------
    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def has(self, field: str) -> bool:
        return getattr(self, field) is not None

    def frame(self, field: str = "close") -> pd.DataFrame:
        return pd.DataFrame(getattr(self, field), index=self.index, columns=list(self.symbols))

    @functools.cached_property
    def bar_length(self) -> pd.Timedelta:
        """The bar size as declared, else the median spacing of bars within a session (a day
        for daily bars: one bar per session)."""
        if self.bar_size is not None:
            return pd.Timedelta(self.bar_size)
        return bar_length(self.index)

    @functools.cached_property
    def bars_per_year(self) -> float:
        """The annualisation factor of a bar (``periods_per_year`` over the sessions): 252 for
        daily bars, 252 x the bars in a session for intraday ones."""
        return periods_per_year(self.index, self.sessions)

    @property
    def bars_per_session(self) -> float:
        """The median number of bars in a session (1 for daily bars): what a window of sessions
        or a day's volume spread over a session's bars counts."""
        return self.bars_per_year / TRADING_DAYS

    @property
    def intraday(self) -> bool:
        return self.bar_length < DAY

    @functools.cached_property
    def sessions(self) -> np.ndarray:
        """Session number of each bar (0, 1, ...): every daily bar is its own session; intraday
        bars share the session of ``calendar`` that holds them (``calendar_sessions``), or,
        without a calendar, their local date."""
        if self.calendar and self.intraday:
            return calendar_sessions(self, self.name)
        return session_numbers(self.index)

    @property
    def intraday_sessions(self) -> Optional[np.ndarray]:
        """``sessions`` of intraday bars, for the windows, schedules and annualisation that count
        them; None for daily bars, each its own session, which keep their bar-count paths."""
        return self.sessions if self.intraday else None

    # -- views -----------------------------------------------------------------------------
    def view(self, end: int) -> "MarketData":
        """The first ``end`` bars: what a decision at bar ``end - 1`` may see (arrays are views)."""
        return self._rows(slice(0, end))

    def _rows(self, rows: slice) -> "MarketData":
        fields = {f: (getattr(self, f)[rows] if getattr(self, f) is not None else None) for f in FIELDS}
        return dataclasses.replace(self, index=self.index[rows], **fields)

    def select(self, symbols: Optional[list[str]] = None, start=None, end=None) -> "MarketData":
        """A slice by symbols and by [start, end] dates (inclusive)."""
        data = self
        if symbols is not None:
            cols = [self.symbols.index(s) for s in symbols]
            fields = {f: (getattr(self, f)[:, cols] if getattr(self, f) is not None else None)
                      for f in FIELDS}
            data = dataclasses.replace(self, symbols=tuple(symbols), **fields)
        lo = 0 if start is None else int(data.index.searchsorted(_stamp(start, data.index), "left"))
        hi = data.n_bars if end is None else _end_position(data.index, end)
        return data._rows(slice(lo, hi))

    # -- derived ---------------------------------------------------------------------------
    def derived(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` once per data object and ``key``, read-only: what every run on these
        data derives alike (the broker's trailing volume and volatility). A process keeps its
        loaded data (``runner.load_data``), so a batched sweep's jobs compute it once."""
        memo = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            value = compute()
            value.flags.writeable = False
            memo[key] = value
        return memo[key]

    @property
    def returns(self) -> np.ndarray:
        """Simple close-to-close returns; row 0 and bars without both prices are NaN (read-only,
        computed once)."""
        def compute() -> np.ndarray:
            out = np.full_like(self.close, np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[1:] = self.close[1:] / self.close[:-1] - 1.0
            return out
        return self.derived(("returns",), compute)

    @functools.cached_property
    def labels(self) -> np.ndarray:
        """The bar stamps as UTC text (``1990-01-02 21:00:00+00:00``), formatted once: every
        output table labels its rows with them. One offset for every row, so that
        ``pd.read_csv(..., index_col=0, parse_dates=True)`` gives a DatetimeIndex (a local
        zone's text mixes -05:00 and -04:00 and reads back as strings); pandas' own tz-aware
        formatting costs more than the whole backtest."""
        utc = self.index.tz_convert("UTC")
        naive = utc.tz_localize(None).values
        if (naive.astype("datetime64[s]") != naive).any():  # sub-second stamps: pandas' format
            return np.asarray(utc.astype(str), dtype=object)
        body = np.char.replace(np.datetime_as_string(naive, unit="s"), "T", " ").astype(object)
        return body + "+00:00"

    def digest(self) -> str:
        """sha256 of the index, symbols and every field: the data's identity in provenance."""
        h = hashlib.sha256()
        h.update(self.index.asi8.tobytes())
        h.update("\x00".join(self.symbols).encode())
        for f in FIELDS:
            arr = getattr(self, f)
            h.update(f.encode())
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


DAY = pd.Timedelta(days=1)


def session_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Session number of each bar of a sorted index: bars of one local date share one."""
    local = index.tz_localize(None) if index.tz is not None else index
    days = local.values.astype("datetime64[D]").astype(np.int64)
    if days.size == 0:
        return days
    return np.concatenate([[0], np.cumsum(days[1:] != days[:-1])]).astype(np.int64)


def calendar_sessions(data: MarketData, where: str) -> np.ndarray:
    """Session number of each bar of ``data`` by its exchange calendar: the bars of the session
    whose open < stamp <= close share one. A bar outside every session is a ``DataError``
    naming ``where`` (the file), the symbol, the time and what to declare."""
    if data.n_bars == 0:
        return np.zeros(0, dtype=np.int64)
    position, _ = calendars.session_of(data.index, str(data.calendar))
    outside = np.flatnonzero(position < 0)
    if outside.size:
        bar = int(outside[0])
        priced = np.flatnonzero(np.isfinite(data.close[bar]))
        symbol = data.symbols[int(priced[0])] if priced.size else data.symbols[0]
        more = f" (and {outside.size - 1} more bars)" if outside.size > 1 else ""
        raise DataError(f"{where}: {symbol} has a bar at {data.index[bar]} outside every "
                        f"{data.calendar} session{more} (a bar is stamped at its close, within "
                        f"open..close); drop extended-hours bars, name the data's exchange with "
                        f"data.calendar=... (CMES for CME futures, 24/7 for crypto), or set "
                        f"data.calendar=null to group bars by local date")
    return np.concatenate([[0], np.cumsum(position[1:] != position[:-1])]).astype(np.int64)


def session_clock(index: pd.DatetimeIndex, sessions: np.ndarray) -> np.ndarray:
    """Each bar's local wall time (ns) since the midnight before its session's first bar: its
    time of day, or past 24h on the far side of midnight in an overnight session, so that bars
    of one time in the session compare equal across sessions."""
    local = index.tz_localize(None) if index.tz is not None else index
    stamps = local.values.astype("datetime64[ns]").astype(np.int64)
    if stamps.size == 0:
        return stamps
    opens = session_starts(sessions)
    midnight = stamps[opens] - np.mod(stamps[opens], 86_400 * 10**9)
    return stamps - np.repeat(midnight, np.diff(np.append(opens, stamps.size)))


def session_starts(sessions: np.ndarray) -> np.ndarray:
    """The first bar of each session, from the session number of each bar."""
    return np.flatnonzero(np.append(True, sessions[1:] != sessions[:-1]))


def session_ends(sessions: np.ndarray) -> np.ndarray:
    """The last bar of each session, from the session number of each bar."""
    return np.flatnonzero(np.append(sessions[1:] != sessions[:-1], True))


def bar_length(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The median spacing of consecutive bars of one session; a day when no session holds two."""
    sessions = session_numbers(index)
    same = sessions[1:] == sessions[:-1]
    if not same.any():
        return DAY
    return pd.Timedelta(int(np.median(np.diff(index.asi8)[same])), unit="ns")


def bar_label(size: pd.Timedelta) -> str:
    """A bar size as a user writes it: ``1d``, ``30min``, ``1s``, ``500ms``."""
    ns = int(pd.Timedelta(size).value)
    for unit, length in (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9),
                         ("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns >= length and ns % length == 0:
            return f"{ns // length}{unit}"
    return f"{ns}ns"


def _stamp(value, index: pd.DatetimeIndex) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize(index.tz) if ts.tzinfo is None else ts


def _end_position(index: pd.DatetimeIndex, end) -> int:
    """One past the last bar at or before ``end``; a bare date includes that whole day."""
    ts = _stamp(end, index)
    if ts == ts.normalize():
        return int(index.searchsorted(ts + pd.Timedelta(days=1), "left"))
    return int(index.searchsorted(ts, "right"))


def forward_filled(close: np.ndarray) -> np.ndarray:
    """Last known price per symbol for marking; 0 before a symbol's first price (no holding)."""
    valid = np.isfinite(close)
    if valid.all():
        return close
    idx = np.where(valid, np.arange(close.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = close[idx, np.arange(close.shape[1])]
    return np.where(np.isfinite(filled), filled, 0.0)
