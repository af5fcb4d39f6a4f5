"""Checks of a loaded panel of bars (bars x symbols per field) that name the first bad bar:
every price positive, open and close inside the bar's range, no field without a close, and
what to do with a missing bar after a symbol's first price."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from plugins.data._frames import day

PRICES = ("open", "high", "low", "close", "adj_close")


def first_hit(mask: np.ndarray) -> tuple[int, int, str]:
    """The earliest offending (bar, symbol), and how many more there are, for the message."""
    hits = np.argwhere(mask)
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    return int(hits[0, 0]), int(hits[0, 1]), more


def check_bars(name: str, index: pd.DatetimeIndex, symbols: tuple[str, ...],
                arrays: dict[str, np.ndarray], daily: bool) -> None:
    def fail(mask: np.ndarray, what, todo: str) -> None:
        if mask.any():
            t, j, more = first_hit(mask)
            raise DataError(f"{name}: {symbols[j]} on {day(index[t], daily)} {what(t, j)}"
                            f"{more}; {todo}")

    has_close = ~np.isnan(arrays["close"])
    for j, s in enumerate(symbols):
        if not has_close[:, j].any():
            raise DataError(f"{name}: {s} has no close price anywhere in the file; add its "
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


def fill_gaps(name: str, index: pd.DatetimeIndex, symbols: tuple[str, ...],
               arrays: dict[str, np.ndarray], daily: bool,
               fill: str) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    has_close = ~np.isnan(arrays["close"])
    gap = np.maximum.accumulate(has_close, axis=0) & ~has_close  # missing after the first price
    if not gap.any():
        return index, arrays
    if fill == "error":
        t, j, more = first_hit(gap)
        first = day(index[int(np.argmax(has_close[:, j]))], daily)
        raise DataError(f"{name}: {symbols[j]} has no price on {day(index[t], daily)}, after "
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
