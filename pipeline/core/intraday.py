"""A session's intraday market: bins of price and volume for the symbols being traded.

The simulated broker fills child orders against these bins; execution algorithms plan on
them (``pipeline.core.contracts.Bins``). They are built only for the symbols with orders, only in
sessions where an algorithm or the broker asks, so a run that trades in the auction builds
none.

**Daily bars only** (the default): each session is split into ``n_bins`` equal bins.

- Volume. The forecast is a profile (U-shaped by default: the first and last bins trade
  ``u_ratio`` times the midday bin; or flat) times the forecast daily volume, the trailing
  average daily volume known at the decision. The realised split is the same profile with
  seeded lognormal noise of dispersion ``volume_noise`` per bin, renormalised to the
  session's actual volume. Data without volume assumes ``adv_usd`` dollars a day at the
  arrival price, for the forecast and the session alike.
- Price, on a grid of ``STEPS`` points per bin, in log price:

  - open, high, low and close: a Brownian bridge from the open to the close whose maximum
    and minimum are pinned to the day's high and low, at the times where an unconstrained
    bridge (drifting with the day's net move) has its extremes, and clipped to
    ``[low, high]``. The path starts at the open, ends at the close, touches the high and the
    low and never leaves the day's range.
  - closes only (or no high and low): a Brownian bridge from the previous close (the open
    when there is one) to the session's close with the trailing daily volatility. This puts
    the whole close-to-close move inside the session, overnight gap included: an assumption
    the run's provenance records.

  A bin's price is the mean of its grid points (volume uniform within a bin), its low and
  high the extremes of those points and of the price it starts from.
- A halted symbol (no bar in the session) trades nothing: zero volume, price flat at the
  last close.

Randomness comes from the run's seed, the session's timestamp and the symbol's name through a
counter-based hash (SplitMix64), so a symbol's session is the same whichever other symbols
trade that day or are in the data, wherever the data starts, and in whatever order sessions
are built.

**Real intraday bars** (``load_bars``): used as they are, at any bar size: one bin per bar
time of the session, the bar's ``vwap`` when the file has one (else its typical price
``(high + low + close) / 3``, or its close), and its volume. The forecast for a bin is the
average volume the previous ``profile_days`` sessions of the file traded in the same span of
the day, so half days and changes of bar size are handled; a session with no such history
uses the profile above. A session the file does not cover is simulated from its daily bar.

**Intraday data** (the run's own bars are intraday, ``MarketData.intraday``): nothing is
simulated. A decision's orders work over the data's own bars from the next one to the
horizon the engine gives (``span``): one bin per bar, priced and limited like a file's bars
above, its forecast the average volume the previous ``profile_days`` sessions traded in the
same span of the session's clock (``clock_volume``; ``session_clock``: the time of day, past
24h across midnight in an overnight session), or without such history the trailing daily
volume spread evenly over a session's bars. Volatility and volume are daily, over sessions (``trailing_volatility``).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins
from pipeline.core.errors import DataError
from pipeline.core.market import MarketData, forward_filled, session_clock, session_ends

# Path points per bin: enough for a bin's range, cheap for the handful of orders of a day.
STEPS = 8
# E[range] of a Brownian path is about 1.6 sigma: the net move, in units of the day's range,
# is scaled by it so that the unconstrained bridge drifts like the day did.
RANGE_TO_SIGMA = 1.6
_MASK = (1 << 64) - 1


# ---------------------------------------------------------------- profiles, estimates

def volume_profile(n_bins: int, shape: str = "u_shape", u_ratio: float = 2.0) -> np.ndarray:
    """Share of the day's volume per bin: ``flat``, or ``u_shape`` with the first and last
    bins about ``u_ratio`` times the midday bin (a parabola in time of day)."""
    if shape == "flat":
        return np.full(n_bins, 1.0 / n_bins)
    x = (np.arange(n_bins) + 0.5) / n_bins
    w = 1.0 + (u_ratio - 1.0) * (2.0 * x - 1.0) ** 2
    return w / w.sum()


def _by_session(daily: np.ndarray, sessions: np.ndarray, ends: np.ndarray, before) -> np.ndarray:
    """Per-session rows as of each bar: the row of the last session completed at its close."""
    done = np.searchsorted(ends, np.arange(sessions.size), "right") - 1
    out = daily[np.maximum(done, 0)]
    out[done < 0] = before
    return out


def trailing_volatility(close: np.ndarray, window: int,
                        sessions: Optional[np.ndarray] = None) -> np.ndarray:
    """Row ``t``: the standard deviation of daily log returns over the ``window`` bars up to
    the close of ``t`` (0 before two returns exist). With ``sessions`` (intraday bars: the
    session number of each bar), of session-close to session-close log returns over the
    ``window`` sessions completed by the close of ``t``: a daily volatility whatever the bar."""
    import pandas as pd

    if sessions is not None:
        ends = session_ends(sessions)
        return _by_session(trailing_volatility(close[ends], window), sessions, ends, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        logret = np.log(close[1:] / close[:-1])
    sigma = pd.DataFrame(logret).rolling(window, min_periods=2).std().to_numpy()
    return np.nan_to_num(np.vstack([np.full((1, close.shape[1]), np.nan), sigma]), nan=0.0)


def trailing_volume(volume: np.ndarray, window: int,
                    sessions: Optional[np.ndarray] = None) -> np.ndarray:
    """Row ``t``: the average daily volume over the ``window`` bars up to the close of ``t``;
    with ``sessions`` (intraday bars), over the ``window`` sessions completed by then (NaN
    before the first ends)."""
    import pandas as pd

    if sessions is not None:
        ends = session_ends(sessions)
        starts = np.concatenate([[0], ends[:-1] + 1])
        daily = np.add.reduceat(np.nan_to_num(volume), starts, axis=0)
        return _by_session(trailing_volume(daily, window), sessions, ends, np.nan)
    return pd.DataFrame(volume).rolling(window, min_periods=1).mean().to_numpy()


def clock_volume(volume: np.ndarray, symbols: np.ndarray, clock: np.ndarray, ends: np.ndarray,
                 session: int, days: int, targets: np.ndarray, bar_ns: int) -> Optional[np.ndarray]:
    """The volume forecast of the bars closing at session-clock times ``targets`` (sorted, ns;
    ``pipeline.core.market.session_clock``) of session ``session``: per bar and symbol, the
    average volume the ``days`` sessions before it traded in that bar's span of the clock
    (``(previous target, target]``, the first ``(target - bar_ns, target]``), from their bars
    only (``ends``: each session's last bar). None when no session precedes it. The backtest's
    intraday bins and live's plan on intraday data both forecast with it."""
    first = max(session - days, 0)
    if session <= first:
        return None
    lo, hi = (0 if first == 0 else int(ends[first - 1]) + 1), int(ends[session - 1]) + 1
    past = clock[lo:hi]
    # a past bar counts toward the bin whose span of the clock holds it
    inside = (past > targets[0] - bar_ns) & (past <= targets[-1])
    rows = np.flatnonzero(inside) + lo
    forecast = np.zeros((targets.size, symbols.size))
    np.add.at(forecast, np.searchsorted(targets, past[inside]), np.nan_to_num(volume[rows[:, None], symbols]))
    return forecast / (session - first)


# ---------------------------------------------------------------- seeded draws

def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 arrays (Steele, Lea & Flood 2014); wraps by design."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def symbol_keys(names) -> np.ndarray:
    """A stable 64-bit key per symbol name (blake2b), for ``normals``."""
    import hashlib

    return np.array([int.from_bytes(hashlib.blake2b(str(n).encode(), digest_size=8).digest(), "little")
                     for n in names], dtype=np.uint64)


def normals(seed: int, stamp: int, keys: np.ndarray, n: int) -> np.ndarray:
    """``M x n`` standard normals that depend only on ``(seed, stamp, key)``: the run's seed,
    the session's timestamp and each symbol's key (``symbol_keys``).

    Each triple starts a SplitMix64 stream at its own 64-bit state (odd-constant products,
    XORed), so two sessions or symbols share draws only if their states land within ``n`` of
    each other: as likely as two random 64-bit numbers doing so.
    """
    state = ((seed & _MASK) * 0xD1B54A32D192ED03 ^ (stamp & _MASK) * 0x8CB92BA72F3D8DD7) & _MASK
    half = (n + 1) // 2
    start = keys ^ np.uint64(state)
    bits = _mix(start[:, None] + np.arange(2 * half, dtype=np.uint64))
    u = (bits >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 + 2.0 ** -54  # in (0, 1)
    radius = np.sqrt(-2.0 * np.log(u[:, :half]))  # Box-Muller
    angle = (2.0 * np.pi) * u[:, half:]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :n]


# ---------------------------------------------------------------- price paths

def _through(i: np.ndarray, t1: np.ndarray, t2: np.ndarray, last: int, a, b1, b2, c) -> np.ndarray:
    """The piecewise-linear path through (0, a), (t1, b1), (t2, b2), (last, c) at points i."""
    return np.where(i <= t1, a + (b1 - a) * (i / t1),
                    np.where(i <= t2, b1 + (b2 - b1) * ((i - t1) / (t2 - t1)),
                             b2 + (c - b2) * ((i - t2) / (last - t2))))


def pinned_bridge(bridge: np.ndarray, o, h, l, c) -> np.ndarray:
    """A log-price path from ``o`` to ``c`` that touches ``h`` and ``l`` and stays between.

    ``bridge`` is a unit Brownian bridge on ``S + 1`` points (columns) per row (symbol). The
    path drifts with the day's net move; its interior maximum and minimum mark when the day's
    high and low are reached; the path goes linearly through those four knots, plus the
    bridge's own wiggle around its knots scaled to the day's range, clipped to ``[l, h]``.
    """
    o, h, l, c = (v[:, None] for v in (o, h, l, c))
    last = bridge.shape[1] - 1
    rows = np.arange(bridge.shape[0])[:, None]
    span = h - l
    drift = np.where(span > 0, RANGE_TO_SIGMA * (c - o) / span, 0.0)
    i = np.arange(last + 1)
    y = drift * (i / last) + bridge
    i_hi = np.argmax(y[:, 1:-1], axis=1)[:, None] + 1
    i_lo = np.argmin(y[:, 1:-1], axis=1)[:, None] + 1
    y_hi, y_lo = y[rows, i_hi], y[rows, i_lo]
    high_first = i_hi < i_lo
    t1, t2 = np.minimum(i_hi, i_lo), np.maximum(i_hi, i_lo)
    knots = _through(i, t1, t2, last, o, np.where(high_first, h, l), np.where(high_first, l, h), c)
    own = _through(i, t1, t2, last, 0.0, np.where(high_first, y_hi, y_lo),
                   np.where(high_first, y_lo, y_hi), drift)
    scale = np.where(y_hi > y_lo, span / (y_hi - y_lo), 0.0)
    return np.clip(knots + scale * (y - own), l, h)


# ---------------------------------------------------------------- real intraday bars

@dataclasses.dataclass
class IntradayBars:
    """A file's intraday bars aligned to the daily sessions: daily bar ``t`` owns rows
    ``offsets[t]:offsets[t + 1]`` (one row per bar time, one column per data symbol)."""

    offsets: np.ndarray     # T + 1
    stamps: np.ndarray      # ns since the epoch, the bar's close
    time_of_day: np.ndarray  # ns since local midnight
    price: np.ndarray       # rows x N, NaN where a symbol has no bar
    low: np.ndarray
    high: np.ndarray
    volume: np.ndarray      # rows x N, 0 where a symbol has no bar


def load_bars(path: str, data: MarketData) -> IntradayBars:
    """Read intraday bars from a CSV or Parquet file in long layout: ``time`` (or
    ``timestamp``/``date``), ``symbol``, ``close``, ``volume`` and optionally ``open``, ``high``,
    ``low``, ``vwap``. Times are bar closes; naive ones are in the data's time zone. Bars on
    days without a daily bar, and symbols not in the data, are ignored."""
    import os

    import pandas as pd

    if not os.path.isfile(path):
        raise DataError(f"broker.intraday: {path} does not exist; give the path of a CSV or "
                        f"Parquet file of intraday bars, or null to simulate them from daily bars")
    frame = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    frame.columns = [str(c).lower() for c in frame.columns]
    when = next((c for c in ("time", "timestamp", "date") if c in frame.columns), None)
    missing = [c for c in ("symbol", "close", "volume") if c not in frame.columns]
    if when is None or missing:
        raise DataError(f"broker.intraday: {path} needs columns time, symbol, close, volume "
                        f"(missing: {', '.join(missing or ['time'])})")
    stamps = pd.DatetimeIndex(pd.to_datetime(frame[when]))
    tz = data.index.tz
    stamps = stamps.tz_localize(tz) if stamps.tz is None else stamps.tz_convert(tz)
    frame = frame.assign(_t=stamps.as_unit("ns")).loc[frame["symbol"].astype(str).isin(data.symbols)]
    frame["symbol"] = frame["symbol"].astype(str)
    if frame.duplicated(["_t", "symbol"]).any():
        raise DataError(f"broker.intraday: {path} has two bars for one symbol and time")
    if not (frame["volume"].fillna(0) >= 0).all() or not (frame["close"] > 0).all():
        raise DataError(f"broker.intraday: {path} has a negative volume or a non-positive close")

    def wide(column: str) -> np.ndarray:
        return (frame.pivot(index="_t", columns="symbol", values=column)
                .reindex(columns=list(data.symbols)).to_numpy(dtype=np.float64))

    close = wide("close")
    times = pd.DatetimeIndex(np.sort(frame["_t"].unique())).tz_convert(tz)
    has_range = "high" in frame.columns and "low" in frame.columns
    if "vwap" in frame.columns:
        price = wide("vwap")
    elif has_range:
        price = (wide("high") + wide("low") + close) / 3.0
    else:
        price = close
    days = times.normalize()
    daily = data.index.normalize()
    session = daily.get_indexer(days)
    keep = session >= 0
    session = session[keep]
    counts = np.bincount(session, minlength=data.n_bars)
    return IntradayBars(
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        stamps=times.asi8[keep],
        time_of_day=(times - days).asi8[keep],
        price=price[keep],
        low=(wide("low") if has_range else price)[keep],
        high=(wide("high") if has_range else price)[keep],
        volume=np.nan_to_num(wide("volume")[keep]),
    )


# ---------------------------------------------------------------- the market

class IntradayMarket:
    """Builds ``Bins`` for a session and a set of symbols (see the module's docstring).

    ``sigma`` and ``adv`` are the trailing daily volatility and volume per bar (row ``t``
    known at the close of ``t``; ``adv`` None when the data has no volume).
    """

    def __init__(self, data: MarketData, sigma: np.ndarray, adv: Optional[np.ndarray], *,
                 n_bins: int, profile: str, u_ratio: float, volume_noise: float, half_spread: float,
                 adv_usd: float, seed: int, bars: Optional[IntradayBars] = None,
                 profile_days: int = 20) -> None:
        self.data = data
        self.sigma = sigma
        self.adv = adv
        self.n_bins = n_bins
        self.shape = profile
        self.u_ratio = u_ratio
        self.profile = volume_profile(n_bins, profile, u_ratio)
        self.volume_noise = volume_noise
        self.half_spread = half_spread
        self.adv_usd = adv_usd
        self.seed = seed
        self.bars = bars
        self.profile_days = profile_days
        self.mark = forward_filled(data.close)
        self.ohlc = data.open is not None and data.high is not None and data.low is not None
        self.covered = None if bars is None else np.diff(bars.offsets) > 0
        self.stamps = data.index.asi8
        self.keys = symbol_keys(data.symbols)
        self.elapsed = np.arange(1, n_bins + 1) / n_bins
        self.grid = np.arange(n_bins * STEPS + 1) / (n_bins * STEPS)
        self.zero = np.zeros((data.n_symbols, 1))
        self.of_day = None  # intraday data: each bar's time of day, set by the first ``span``

    def span(self, bar: int, last: int, symbols: np.ndarray) -> Bins:
        """Bins of intraday data: its bars ``bar..last`` (see the module's docstring)."""
        data = self.data
        rows = slice(bar, last + 1)
        arrival = self.mark[bar - 1, symbols]
        close = data.close[rows, symbols]
        typical = close if data.high is None or data.low is None else \
            (data.high[rows, symbols] + data.low[rows, symbols] + close) / 3.0
        price = _fill_down(typical, arrival)
        low = price if data.low is None else np.where(np.isnan(close), price, data.low[rows, symbols])
        high = price if data.high is None else np.where(np.isnan(close), price, data.high[rows, symbols])
        stamps = self.stamps[rows]
        began = stamps[0] - data.bar_length.value
        elapsed = (stamps - began) / (stamps[-1] - began)
        if self.of_day is None:
            self.sessions = data.sessions
            self.ends = session_ends(self.sessions)
            self.of_day = session_clock(data.index, self.sessions)
            self.per_session = data.bars_per_session
        forecast = None if data.volume is None else clock_volume(
            data.volume, symbols, self.of_day, self.ends, int(self.sessions[bar]), self.profile_days,
            self.of_day[rows], data.bar_length.value)
        if forecast is None:
            forecast = np.repeat(self._daily_forecast(bar, symbols, arrival)[None, :] / self.per_session,
                                 stamps.size, axis=0)
        volume = forecast.copy() if data.volume is None else np.nan_to_num(data.volume[rows, symbols])
        volume[np.isnan(close)] = 0.0  # no bar: nothing traded
        return Bins(elapsed=elapsed, price=price, low=low, high=high, volume=volume,
                    forecast=forecast, sigma=self.sigma[bar - 1, symbols],
                    half_spread=np.full(symbols.size, self.half_spread),
                    days=(stamps[-1] - began) / (self.per_session * data.bar_length.value))

    def bins(self, bar: int, symbols: np.ndarray) -> Bins:
        if self.covered is not None and self.covered[bar]:
            return self._real(bar, symbols)
        return self._simulated(bar, symbols)

    def _daily_forecast(self, bar: int, symbols: np.ndarray, arrival: np.ndarray) -> np.ndarray:
        """Shares expected in session ``bar``, known at the decision (the close before)."""
        if self.adv is not None:
            return np.nan_to_num(self.adv[bar - 1, symbols])
        return self.adv_usd / arrival

    def _simulated(self, bar: int, symbols: np.ndarray) -> Bins:
        # symbols are rows while the path is built (reductions along contiguous memory), and
        # the bins are returned transposed, B x M
        data, n_bins = self.data, self.n_bins
        steps = n_bins * STEPS
        arrival = self.mark[bar - 1, symbols]
        sigma = self.sigma[bar - 1, symbols]
        close = data.close[bar, symbols]
        halted = np.isnan(close)
        stopped = halted.any()
        forecast_day = self._daily_forecast(bar, symbols, arrival)
        actual_day = forecast_day if data.volume is None else np.nan_to_num(data.volume[bar, symbols])
        if stopped:
            actual_day = np.where(halted, 0.0, actual_day)
        z = normals(self.seed, int(self.stamps[bar]), self.keys[symbols], steps + n_bins)
        split = self.profile * np.exp(self.volume_noise * z[:, steps:])
        volume = split * (actual_day / np.add.reduce(split, 1))[:, None]

        if self.ohlc:
            walk = z[:, :steps].cumsum(1) * (1.0 / np.sqrt(steps))
            bridge = np.concatenate([self.zero[:symbols.size], walk - self.grid[1:] * walk[:, -1:]], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):  # flat days, halted symbols
                path = pinned_bridge(bridge, *(np.log(getattr(data, f)[bar, symbols])
                                               for f in ("open", "high", "low", "close")))
        else:
            # begin + (end - begin) s + sigma (W_s - s W_1), with W a Brownian motion
            begin = np.log(arrival if data.open is None else data.open[bar, symbols])[:, None]
            walk = z[:, :steps].cumsum(1) * (sigma / np.sqrt(steps))[:, None]
            slope = np.log(close)[:, None] - begin - walk[:, -1:]
            path = np.concatenate([begin, begin + self.grid[1:] * slope + walk], axis=1)
        path = np.exp(path)
        if stopped:
            path = np.where(halted[:, None], arrival[:, None], path)
        points = path[:, 1:].reshape(-1, n_bins, STEPS)
        starts = path[:, :-1:STEPS]
        return Bins(elapsed=self.elapsed, price=(np.add.reduce(points, 2) * (1.0 / STEPS)).T,
                    low=np.minimum(np.minimum.reduce(points, 2), starts).T,
                    high=np.maximum(np.maximum.reduce(points, 2), starts).T,
                    volume=volume.T, forecast=self.profile[:, None] * forecast_day, sigma=sigma,
                    half_spread=np.full(symbols.size, self.half_spread))

    def _real(self, bar: int, symbols: np.ndarray) -> Bins:
        bars = self.bars
        lo, hi = bars.offsets[bar], bars.offsets[bar + 1]
        arrival = self.mark[bar - 1, symbols]
        price = _fill_down(bars.price[lo:hi, symbols], arrival)
        low = np.where(np.isnan(bars.low[lo:hi, symbols]), price, bars.low[lo:hi, symbols])
        high = np.where(np.isnan(bars.high[lo:hi, symbols]), price, bars.high[lo:hi, symbols])
        stamps = bars.stamps[lo:hi]
        length = np.median(np.diff(stamps)) if stamps.size > 1 else np.median(np.diff(bars.stamps))
        began = stamps[0] - length
        elapsed = (stamps - began) / (stamps[-1] - began)

        before = np.flatnonzero(self.covered[:bar])[-self.profile_days:]
        if before.size:
            rows = np.concatenate([np.arange(bars.offsets[s], bars.offsets[s + 1]) for s in before])
            # a past bar counts toward the bin of this session whose span of the day holds it
            target = np.minimum(np.searchsorted(bars.time_of_day[lo:hi], bars.time_of_day[rows]),
                                hi - lo - 1)
            forecast = np.zeros((hi - lo, symbols.size))
            np.add.at(forecast, target, bars.volume[rows][:, symbols])
            forecast /= before.size
        else:
            forecast = volume_profile(hi - lo, self.shape, self.u_ratio)[:, None] * \
                self._daily_forecast(bar, symbols, arrival)
        return Bins(elapsed=elapsed, price=price, low=low, high=high,
                    volume=bars.volume[lo:hi, symbols], forecast=forecast,
                    sigma=self.sigma[bar - 1, symbols],
                    half_spread=np.full(symbols.size, self.half_spread))


def _fill_down(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """NaN rows take the last value above them, or ``first`` before any value."""
    x = np.vstack([first[None, :], x])
    idx = np.where(np.isnan(x), 0, np.arange(x.shape[0])[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    return x[idx, np.arange(x.shape[1])][1:]
