"""What the strategies share: the causal view, refit schedules, rolling moments, and the z-score
band state machine.

Every helper here is causal: its value at bar ``t`` depends on rows ``[0, t]`` only, and it is
computed by a forward recursion or a trailing window, so the same prefix of the data always
gives bit-identical results (the truncation-invariance contract).
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.market import MarketData
from pipeline.core.schedule import period_key

CALENDAR = ("weekly", "monthly", "quarterly", "yearly")


def causal_view(data: MarketData, at: np.ndarray) -> MarketData:
    """The bars up to the last decision in ``at`` (a non-empty array of bar positions): a
    signal computed from it reads nothing after that decision, so it is truncation-invariant
    by construction. Its ``n_bars`` is that end. The full data comes back as it is when the
    last decision is the last bar, keeping what it has cached (sessions)."""
    end = int(np.max(at)) + 1
    return data.view(end) if end < data.n_bars else data


def refit_bars(index: pd.DatetimeIndex, rule: Union[str, int], first: int) -> np.ndarray:
    """Bars at which a model is (re)fitted, from bar ``first`` on.

    ``first`` is always a refit bar. A calendar rule (weekly, monthly, quarterly, yearly) adds
    the *first* bar of every later period: whether bar ``b`` opens a new period is known at
    ``b`` (it compares ``b`` with ``b - 1``), whereas whether it closes one would need bar
    ``b + 1``. An integer ``N`` (or a digit string) refits every ``N`` bars from ``first``.
    """
    n = len(index)
    if first >= n:
        return np.zeros(0, dtype=np.int64)
    first = max(int(first), 0)
    text = str(rule).strip().lower()
    if text.isdigit():
        step = int(text)
        if step < 1:
            raise ValueError(f"refit every {step} bars: expected at least 1")
        return np.arange(first, n, step, dtype=np.int64)
    if text not in CALENDAR:
        raise ValueError(f"refit rule {rule!r}: expected one of {', '.join(CALENDAR)} or a "
                         f"number of bars")
    key = period_key(index, text)
    starts = np.flatnonzero(key[1:] != key[:-1]) + 1
    return np.concatenate([[first], starts[starts > first]]).astype(np.int64)


def check_rule(value: Union[str, int], name: str) -> None:
    """Raise ValueError naming ``name`` when ``value`` is not a refit schedule."""
    text = str(value).strip().lower()
    if text.isdigit() and int(text) >= 1:
        return
    if text not in CALENDAR:
        raise ValueError(f"{name}={value!r} is not a schedule: expected one of "
                         f"{', '.join(CALENDAR)} or a positive number of bars")


def latest(refits: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each decision bar, the position in ``refits`` of the last refit at or before it
    (-1 when there is none yet)."""
    return np.searchsorted(refits, at, side="right") - 1


def rolling_mean_std(x: np.ndarray, window: int, min_periods: Optional[int] = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample standard deviation over ``window`` rows (NaN until full)."""
    frame = pd.DataFrame(x)
    roll = frame.rolling(window, min_periods=min_periods or window)
    return roll.mean().to_numpy(), roll.std().to_numpy()


def forward_fill(values: np.ndarray) -> np.ndarray:
    """Carry the last non-NaN value down each column (NaN before the first one)."""
    mask = ~np.isnan(values)
    idx = np.where(mask, np.arange(values.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(values, idx, axis=0)
    out[~np.maximum.accumulate(mask, axis=0)] = np.nan
    return out


def band_positions(z: np.ndarray, entry: float, exit: float,
                   stop: Optional[float] = None) -> np.ndarray:
    """The classic entry / exit / stop rule on a z-score path, vectorised along axis 0.

    Per column, starting flat at row 0: open a position of side ``-sign(z)`` (sell what is
    rich, buy what is cheap) when ``entry <= |z| < stop``; close it when ``|z| <= exit``; in
    between keep the previous position (hysteresis). When ``|z| >= stop`` the position is
    closed and *locked*: no new entry until ``|z|`` has come back to ``exit`` (a stopped-out
    trade is not re-opened on the same divergence). A NaN z-score closes and unlocks.
    Returns -1, 0 or +1 per row and column.
    """
    z = np.asarray(z, dtype=np.float64)
    a = np.abs(z)
    nan = np.isnan(z)
    stop = np.inf if stop is None else float(stop)
    with np.errstate(invalid="ignore"):
        flat = nan | (a <= exit)
        stopped = ~nan & (a >= stop)
        enter = ~nan & (a >= entry) & (a < stop)
    # lock state: 1 after a stop until the next flat (exit band or NaN) row
    lock_events = np.where(stopped, 1.0, np.where(flat, 0.0, np.nan))
    locked = np.nan_to_num(forward_fill(lock_events), nan=0.0) > 0.5
    events = np.full(z.shape, np.nan)
    events[flat | stopped] = 0.0
    opening = enter & ~locked
    events[opening] = -np.sign(z[opening])
    pos = np.nan_to_num(forward_fill(events), nan=0.0)
    pos[locked] = 0.0
    return pos


def cross_sectional_top(score: np.ndarray, k: int, largest: bool = True) -> np.ndarray:
    """Boolean mask of the ``k`` largest (or smallest) finite scores per row; ties go to the
    earlier column."""
    s = np.where(np.isfinite(score), score if largest else -score, -np.inf)
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    mask = np.zeros(score.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return mask & np.isfinite(score)
