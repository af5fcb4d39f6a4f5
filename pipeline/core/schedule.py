"""When decisions are taken: a calendar, intraday or bar-count rule over the data's index.

Sessions are the data's (``MarketData.sessions``: by its exchange calendar, else local
calendar dates, ``pipeline.core.market.session_numbers``, when none is given): on daily bars
every bar is a session, so ``daily`` decides on every bar; on intraday bars ``daily`` (and
``on close``) decides on the last bar of each session, ``on open`` on the first, ``at HH:MM``
on the last bar stamped at or before that local time in each session (in a session that
crosses midnight, the first such time after its first bar), and ``every 30min`` (any pandas
duration: ``90s``, ``1h``) on the last bar of each span of that length counted from local
midnight (10:00, 10:30, ... for 30min). Weeks, months, ... are those of each session's last
bar, so an overnight session that opens on Sunday evening is Monday's.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd

from pipeline.core.errors import ConfigError
from pipeline.core.market import session_clock, session_ends, session_numbers, session_starts

CALENDAR = ("daily", "weekly", "monthly", "quarterly", "yearly")
INTRADAY = ("on open", "on close", "at HH:MM", "every <duration> (every 30min)")
DAY_NS = 86_400 * 10**9
RULES = CALENDAR + ("once", "every N bars as an integer N") + INTRADAY


def decision_bars(index: pd.DatetimeIndex, rule: str | int, first: int = 0,
                  sessions: np.ndarray | None = None) -> np.ndarray:
    """Bars at whose close a decision is taken, from bar ``first`` on; ``sessions`` the
    session number of each bar (``MarketData.sessions``; None: by local date).

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
    if rule in ("daily", "on close", "on open") or rule.startswith(("at ", "every ")):
        bars = _intraday(index, rule, session_numbers(index) if sessions is None else np.asarray(sessions))
    elif rule in CALENDAR:
        # the period of each session's last bar; without sessions, of each bar (daily bars)
        key = period_key(index, rule) if sessions is None else \
            period_key(index[session_ends(np.asarray(sessions))], rule)[sessions]
        bars = np.flatnonzero(np.append(key[1:] != key[:-1], True)).astype(np.int64)
    else:
        raise ConfigError(f"schedule.rebalance={rule!r} is not a schedule; allowed: {', '.join(RULES)}")
    return bars[bars >= first]


def _intraday(index: pd.DatetimeIndex, rule: str, session: np.ndarray) -> np.ndarray:
    last = session_ends(session).astype(np.int64)
    if rule in ("daily", "on close"):
        return last
    if len(index) and last.size == len(index):
        raise ConfigError(f"schedule.rebalance={rule!r} needs intraday bars, but every bar of the "
                          f"data is its own day; use daily, weekly, monthly, ... or intraday data")
    if rule == "on open":
        return session_starts(session).astype(np.int64)
    of_day = session_clock(index, session)
    text = rule.split(" ", 1)[1].strip()
    if rule.startswith("at "):
        try:
            clock = datetime.time.fromisoformat(text)
            when = pd.Timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second).value
        except ValueError:
            raise ConfigError(f"schedule.rebalance={rule!r}: {text!r} is not a time of day; "
                              f"write at HH:MM, e.g. 'at 15:50'") from None
        # an overnight session meets the time on its second day when its first bar is later
        crosses = of_day[last] >= DAY_NS
        opens = session_starts(session)
        when = when + DAY_NS * (crosses & (of_day[opens] > when))[session]
        before = of_day <= when
        # the last bar at or before the time in each session that has one
        ends = np.flatnonzero(before & np.append(~before[1:] | (session[1:] != session[:-1]), True))
        return ends.astype(np.int64)
    try:
        every = pd.Timedelta(text).value
    except ValueError:
        every = 0
    if every <= 0:
        raise ConfigError(f"schedule.rebalance={rule!r}: {text!r} is not a duration; write e.g. "
                          f"'every 30min', 'every 1h' or 'every 90s'")
    span = -(-of_day // every)  # bar closes in (k - 1) * every, k * every] share span k
    key = session * (2 * DAY_NS // every + 2) + span
    return np.flatnonzero(np.append(key[1:] != key[:-1], True)).astype(np.int64)


def period_key(index: pd.DatetimeIndex, rule: str) -> np.ndarray:
    """One integer per bar naming its calendar period (weekly, monthly, quarterly, yearly)."""
    if rule == "weekly":
        # local calendar days since 1970-01-01 (a Thursday); +3 starts each week on Monday
        local = index.tz_localize(None) if index.tz is not None else index
        days = local.values.astype("datetime64[D]").astype(np.int64)
        return (days + 3) // 7
    months = np.asarray(index.year) * 12 + np.asarray(index.month) - 1
    return {"monthly": months, "quarterly": months // 3, "yearly": months // 12}[rule]
