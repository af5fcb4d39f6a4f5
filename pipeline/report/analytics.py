"""The report's analytics over an equity curve: time stamps, rolling statistics, monthly
returns, drawdown periods and the summary statistics of a level series."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def utc_ns(index: Any) -> np.ndarray:
    """UTC nanoseconds of timestamps given as datetimes or as the text the recorder writes."""
    if isinstance(index, pd.DatetimeIndex):
        idx = index
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(index), utc=True, format="ISO8601"))
    idx = idx.tz_convert("UTC") if idx.tz is not None else idx.tz_localize("UTC")
    return idx.as_unit("ns").asi8


def bars_per_year(t: np.ndarray) -> float:
    if t.size < 2:
        return 252.0
    # 252 sessions x the median bars per (UTC) day: a half day or a partial first day aside
    counts = np.unique(t // 86_400_000_000_000, return_counts=True)[1]
    return 252.0 * float(np.median(counts))


def rolling_vol(r: np.ndarray, window: int, ppy: float) -> np.ndarray:
    s = pd.Series(r)
    return (s.rolling(window).std(ddof=1) * math.sqrt(ppy)).to_numpy()


def rolling_sharpe(r: np.ndarray, window: int, ppy: float) -> np.ndarray:
    s = pd.Series(r).rolling(window)
    sd = s.std(ddof=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, s.mean().to_numpy() / sd * math.sqrt(ppy), np.nan)


def monthly_returns(t: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Years x months of compounded returns, with the year's own return in ``Year``."""
    stamp = pd.DatetimeIndex(t, tz="UTC")
    key = stamp.year.to_numpy() * 100 + stamp.month.to_numpy()
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))
    ends = equity[last]
    monthly = ends / np.append(equity[0], ends[:-1]) - 1.0
    years, months = key[last] // 100, key[last] % 100
    rows = np.unique(years)
    grid = np.full((rows.size, 12), np.nan)
    grid[np.searchsorted(rows, years), months - 1] = monthly
    table = pd.DataFrame(grid, index=pd.Index(rows, name="year"), columns=list(range(1, 13)))
    ylast = np.flatnonzero(np.append(years[1:] != years[:-1], True))
    yends = ends[ylast]
    table["Year"] = yends / np.append(equity[0], yends[:-1]) - 1.0
    return table


def drawdown_periods(t: np.ndarray, equity: np.ndarray, top: int = 5) -> list[dict[str, Any]]:
    peak = np.maximum.accumulate(equity)
    dd = equity / peak - 1.0
    under = dd < 0
    periods = []
    i, n = 0, dd.size
    while i < n:
        if not under[i]:
            i += 1
            continue
        j = i
        while j < n and under[j]:
            j += 1
        trough = i + int(np.argmin(dd[i:j]))
        periods.append({"peak": i - 1 if i > 0 else 0, "trough": trough, "recovery": j if j < n else None,
                        "depth": float(dd[trough])})
        i = j
    periods.sort(key=lambda p: p["depth"])
    return periods[:top]



def series_stats(level: np.ndarray, t: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(level)
    level, t = level[ok], t[ok]
    if level.size < 2:
        return {}
    r = level[1:] / level[:-1] - 1.0
    ppy = bars_per_year(t)
    span = (t[-1] - t[0]) / (365.25 * 86_400e9)
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    return {"total_return": float(level[-1] / level[0] - 1.0),
            "cagr": float((level[-1] / level[0]) ** (1 / span) - 1.0) if span > 0 and level[-1] > 0 else math.nan,
            "annual_vol": sd * math.sqrt(ppy) if r.size > 1 else math.nan,
            "sharpe": float(np.mean(r)) / sd * math.sqrt(ppy) if sd > 0 else math.nan,
            "max_drawdown": float((level / np.maximum.accumulate(level) - 1.0).min())}
