"""Schedule: when the live loop ticks and what one tick does.

``mode.at`` daily in ``mode.tz`` on the sessions of the data's exchange (its ``calendar``:
holidays skipped; on a half day, a time after its early close moves as far before that close
as it is before the regular one), on weekdays when the data names no calendar; or every
``mode.every_seconds``; a tick missed by at most ``mode.grace_seconds`` is caught up at start.
One tick loads the data up to now, refuses data older than ``mode.max_data_age``, asks
``decision_due`` whether ``schedule.rebalance`` puts a decision on the last bar, and plans and
executes it (``Planner``, ``Executor``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from typing import Any, Optional

import numpy as np

from pipeline.core import calendars
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.schedule import decision_bars
from pipeline.live.messages import say
from pipeline.live.planning import changed, decision_config

MODES = ("backtest", "paper", "live")


def check_mode(mode: Any) -> None:
    if mode.name not in MODES:
        raise ConfigError(f"mode.name={mode.name!r} is not a mode; allowed: {', '.join(MODES)}")
    if mode.name == "backtest":
        return
    if not mode.bins >= 1:
        raise ConfigError(f"mode.bins={mode.bins} is not allowed: expected at least 1 bin")
    if not mode.bin_seconds > 0:
        raise ConfigError(f"mode.bin_seconds={mode.bin_seconds} is not allowed: expected seconds > 0")
    if mode.every_seconds is not None and not mode.every_seconds > 0:
        raise ConfigError(f"mode.every_seconds={mode.every_seconds} is not allowed: expected seconds > 0")
    if mode.every_seconds is None and mode.at is None and not mode.run_once:
        raise ConfigError("mode: no schedule: set mode.at (a daily time, e.g. '09:35'), "
                          "mode.every_seconds, or mode.run_once=true")
    if mode.at is not None:
        parse_at(mode.at)
    zone(mode.tz, "mode.tz")
    max_age(mode.max_data_age)




def parse_at(text: str) -> dt.time:
    try:
        hour, minute = str(text).split(":")[:2]
        return dt.time(int(hour), int(minute))
    except (ValueError, TypeError):
        raise ConfigError(f"mode.at={text!r} is not a time of day; write HH:MM, e.g. '09:35' "
                          f"(quoted: YAML reads 09:35 as a number)") from None


def max_age(text: Optional[str]):
    """``mode.max_data_age``: an int (business days), a ``pandas.Timedelta``, or None (no check)."""
    import pandas as pd

    if text is None:
        return None
    text = str(text).strip()
    try:
        days = int(text)
    except ValueError:
        pass
    else:
        if days >= 0:
            return days
    try:
        age = pd.Timedelta(text)
    except ValueError:
        age = None
    if age is None or age <= pd.Timedelta(0):
        raise ConfigError(f"mode.max_data_age={text!r} is not an age: give business days (e.g. 2) or a "
                          f"duration (e.g. 36h, 90min); null turns the check off")
    return age


def zone(name: str, key: str):
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(str(name))
    except Exception:
        raise ConfigError(f"{key}={name!r} is not a time zone; e.g. America/New_York") from None



def session_ticks(calendar: str, first: dt.date, last: dt.date, at: dt.time, tz) -> list[float]:
    """Epoch seconds of the daily tick at ``at`` (local to ``tz``) on each session of exchange
    ``calendar`` from ``first`` to ``last``; on a session that closes early, a tick at or after
    its close comes as long before the close as ``at`` is before the regular close."""
    table = calendars.schedule(calendar, first, last)
    if table.empty:
        return []
    closes = [c.tz_convert(tz) for c in table["close"]]
    regular = max(c.time() for c in closes)
    out = []
    for d, close in zip(table.index, closes):
        tick = dt.datetime.combine(d.date(), at, tz)
        if close.time() < regular and tick >= close:
            tick = close - (dt.datetime.combine(d.date(), regular, tz) - tick)
        out.append(tick.timestamp())
    return out


class Schedule:
    """The clock and the tick of ``LiveRunner`` (state: ``mode``, ``journal``, ``stages``)."""

    def _scheduled(self, now: float) -> tuple[Optional[float], float]:
        """The last scheduled tick at or before ``now`` (None if none) and the next one after."""
        mode = self.mode
        if mode.every_seconds is not None:
            every = float(mode.every_seconds)
            return math.floor(now / every) * every, (math.floor(now / every) + 1) * every
        tz = zone(mode.tz, "mode.tz")
        at = parse_at(mode.at)
        local = dt.datetime.fromtimestamp(now, tz)
        day = local.date() - dt.timedelta(days=7)
        calendar = getattr(self.stages.data, "calendar", None)
        times = (session_ticks(calendar, day, day + dt.timedelta(days=14), at, tz) if calendar else
                 [dt.datetime.combine(day + dt.timedelta(days=k), at, tz).timestamp() for k in range(15)
                  if (day + dt.timedelta(days=k)).weekday() < 5])
        past = [t for t in times if t <= now]
        future = [t for t in times if t > now]
        return (past[-1] if past else None), future[0]

    def _next_tick(self) -> float:
        return self._scheduled(time.time())[1]

    def _tick_missed(self) -> bool:
        last, _ = self._scheduled(time.time())
        return last is not None and time.time() - last <= float(self.mode.grace_seconds)

    async def _sleep_until(self, when: float) -> None:
        while True:
            left = when - time.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 30.0))
            self._raise_fatal()

    # ------------------------------------------------------------ one tick
    async def tick(self) -> None:
        await self._check_killswitch()
        await self._wait_ready()
        equity = self.broker.equity()
        if equity is not None:
            self._show("equity", {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                  "equity": equity})
            reason = self.killswitch.observe_equity(equity)
            if reason:
                await self._kill(reason)
        data = await self._load()
        bar = data.index[-1].isoformat()
        self._check_age(data)
        config, parts = decision_config(self.cfg, data)
        key = f"{bar}#{config}"
        earlier = self.journal.decisions_at(bar)
        # a decision from before decisions were keyed by config stands for this config too
        row = self.journal.decision(key) or next((r for r in earlier if r["config"] is None), None)
        if row is not None:
            if row["status"] == "planned":
                await self.execute(row["decision"])
            else:
                old = "" if row["config"] else " (journaled before decisions were keyed by their config)"
                say(f"decision {row['decision']} already {row['status']}{old}: nothing to do")
            return
        if earlier:
            due, why = True, (f"decision {earlier[-1]['decision']} on this bar had another config "
                              f"({changed(earlier[-1], parts)}): deciding again with this one")
            say(why)
        else:
            due, why = self._due(data)
        if not due:
            last = self.journal.last_decision()
            if last is not None and last["config"] and last["config"] != config:
                why += (f"; the config differs from decision {last['decision']}'s ({changed(last, parts)}): "
                        f"its targets trade at the next decision bar, or now with schedule.rebalance=daily")
            say(f"no decision due at {bar}: {why}")
            return
        await self.plan(data, key, config, parts)
        row = self.journal.decision(key)
        if row is not None and row["status"] == "planned":
            await self.execute(key)

    async def _load(self):
        source = self.stages.data
        loader = getattr(source, "load_async", None)
        if loader is not None:
            data = await loader()
        else:
            data = await asyncio.to_thread(source.load)
        if data.n_bars < 2:
            raise DataError(f"{data.name}: {data.n_bars} bar(s) loaded; the live loop needs history")
        return data

    def _check_age(self, data) -> None:
        """Refuse a data source whose last bar is older than ``mode.max_data_age``: a decision
        on it would trade old targets at old prices (the bundled sample ends in 2022)."""
        import pandas as pd

        limit = max_age(self.mode.max_data_age)
        if limit is None:
            return
        tz = zone(self.mode.tz, "mode.tz")
        stamp = data.index[-1].tz_convert(tz)
        now = pd.Timestamp(time.time(), unit="s", tz="UTC").tz_convert(tz)
        if isinstance(limit, int):
            # business days from the bar's day to today: yesterday's close is 1 day old on a
            # Tuesday and on a Monday
            age = len(pd.bdate_range(stamp.date(), now.date())) - 1
            old, how = age > limit, f"{age} business day(s) ago"
            name = f"mode.max_data_age={limit} (business days)"
        else:
            age = now - stamp
            old, how = age > limit, f"{age.total_seconds() / 3600:.1f} hours ago"
            name = f"mode.max_data_age={self.mode.max_data_age}"
        if old:
            raise DataError(f"data {data.name}: its last bar is {stamp:%Y-%m-%d %H:%M %Z}, {how}, older "
                            f"than {name}: mode={self.mode.name} would decide and size orders on old "
                            f"prices; use data=ib for current bars from the gateway (or set "
                            f"mode.max_data_age; null turns the check off)")

    def _due(self, data) -> tuple[bool, str]:
        import pandas as pd

        last = self.journal.last_decision()
        return decision_due(data.index, self.cfg.schedule.rebalance,
                            None if last is None else pd.Timestamp(last["bar"]),
                            getattr(self.stages.data, "calendar", None), data.intraday_sessions)


def decision_due(index, rule: Any, last, calendar: Optional[str] = None,
                 sessions: Any = None) -> tuple[bool, str]:
    """Is a decision due on the last bar of ``index`` under ``schedule.rebalance=rule``, given
    the last decision the journal handled (a timestamp, or None)? And why.

    Calendar rules (weekly, monthly, ...) look one session ahead: the last bar ends its period
    when the next session (of exchange ``calendar``; without one, the next business day)
    starts a new one. Intraday rules (``at 15:50``, ``every 30min``) read the bars as they
    are, in their ``sessions`` (``MarketData.sessions``; None: by local date). A decision bar missed while the runner was down is caught up on the next tick. The
    first decision is always due.
    """
    import pandas as pd

    rule = str(rule).strip().lower()
    if sessions is not None and rule in ("daily", "on close"):
        # a backtest decides on each session's last bar; live, the last bar is only known to
        # have been the last once the session has closed, so every new bar would look like it
        raise ConfigError(f"schedule.rebalance={rule} on intraday bars in paper/live trading: a session's last "
                          f"bar is known only after the close; decide at a clock time instead, e.g. "
                          f"schedule.rebalance='at 15:50' (or 'every 30min')")
    if last is None:
        return True, "first decision of this journal"
    if index[-1] <= last:
        return False, f"already decided at {last}"
    if rule == "once":
        return False, "schedule.rebalance=once and a decision was taken already"
    if rule.isdigit():
        since = int((index > last).sum())
        return since >= int(rule), f"{since} bar(s) since the last decision, schedule every {rule}"
    if rule == "daily":
        return True, "daily"
    if rule.startswith(("at ", "every ", "on ")):
        ahead = index
    else:
        ahead = index.append(pd.DatetimeIndex([_next_session(index[-1], calendar)]))
        if sessions is not None:  # the next session is a new one
            sessions = np.append(sessions, sessions[-1] + 1)
    bars = decision_bars(ahead, rule, sessions=sessions)
    bars = bars[bars <= len(index) - 1]
    if bars.size == 0:
        return False, f"no {rule} decision bar in the data yet"
    latest = index[int(bars[-1])]
    return latest > last, f"last {rule} decision bar is {latest}"


def _next_session(stamp, calendar: Optional[str]):
    """The same time of day on the next session after ``stamp``'s day."""
    import pandas as pd

    if calendar:
        day = stamp.tz_localize(None).normalize()
        following = calendars.schedule(calendar, day + pd.Timedelta(days=1), day + pd.Timedelta(days=10))
        if not following.empty:
            return stamp + (following.index[0] - day)
    return stamp + pd.offsets.BDay(1)
