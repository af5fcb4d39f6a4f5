"""When decisions are taken: a calendar or bar-count rule over the data's index."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.errors import ConfigError

CALENDAR = ("daily", "weekly", "monthly", "quarterly", "yearly")
RULES = CALENDAR + ("once", "every N bars as an integer N")


def decision_bars(index: pd.DatetimeIndex, rule: str | int, first: int = 0) -> np.ndarray:
    """Bars at whose close a decision is taken, from bar ``first`` on.

    Calendar rules decide on the last bar of each period (week, month, ...) in the index's
    own time zone, so a monthly decision on the last close of a month trades in the first
    session of the next. ``once`` decides only at ``first``; an integer ``N`` every ``N`` bars
    starting at ``first``.
    """
    rule = str(rule).strip().lower()
    n = len(index)
    if rule == "once":
        return np.array([first] if first < n else [], dtype=np.int64)
    if rule.isdigit():
        step = int(rule)
        if step < 1:
            raise ConfigError(f"schedule.rebalance={rule}: every N bars needs N >= 1")
        return np.arange(first, n, step, dtype=np.int64)
    if rule == "daily":
        bars = np.arange(n, dtype=np.int64)
    elif rule in CALENDAR:
        key = period_key(index, rule)
        bars = np.flatnonzero(np.append(key[1:] != key[:-1], True)).astype(np.int64)
    else:
        raise ConfigError(f"schedule.rebalance={rule!r} is not a schedule; allowed: {', '.join(RULES)}")
    return bars[bars >= first]


def period_key(index: pd.DatetimeIndex, rule: str) -> np.ndarray:
    """One integer per bar naming its calendar period (weekly, monthly, quarterly, yearly)."""
    if rule == "weekly":
        # local calendar days since 1970-01-01 (a Thursday); +3 starts each week on Monday
        local = index.tz_localize(None) if index.tz is not None else index
        days = local.values.astype("datetime64[D]").astype(np.int64)
        return (days + 3) // 7
    months = np.asarray(index.year) * 12 + np.asarray(index.month) - 1
    return {"monthly": months, "quarterly": months // 3, "yearly": months // 12}[rule]
