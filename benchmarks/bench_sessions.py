"""What sessions by the exchange calendar cost (issue 19.1): a year of XNYS 1-minute bars.

    python benchmarks/bench_sessions.py [--repeat N]

Prints the median of N timings (after a warm-up) of: grouping the bars into sessions by the
calendar (``MarketData.sessions`` with ``calendar=XNYS``: the schedule lookup and one
``searchsorted``) against the local-date rule; ``decision_bars`` for ``at 15:50`` on those
sessions; and live's plan of one intraday decision's bins (``bar_grid`` and the trailing
20 sessions' forecast per bar, ``clock_volume``) for 10 symbols over the next 30 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core import calendars  # noqa: E402
from pipeline.core.intraday import clock_volume  # noqa: E402
from pipeline.core.market import MarketData, session_clock, session_ends, session_numbers  # noqa: E402
from pipeline.core.schedule import decision_bars  # noqa: E402
from pipeline.live.planning import bar_grid  # noqa: E402


def year_of_minutes(symbols: int = 10) -> MarketData:
    table = calendars.schedule("XNYS", "2023-01-01", "2023-12-31")
    index = pd.DatetimeIndex(np.concatenate([
        pd.date_range(o, c, freq="1min", inclusive="right").as_unit("ns").asi8
        for o, c in zip(table["open"], table["close"])]), tz="UTC").tz_convert("America/New_York")
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, (len(index), symbols)), axis=0))
    volume = rng.integers(100, 1_000, close.shape).astype(float)
    return MarketData(index=index, symbols=tuple(f"S{i}" for i in range(symbols)), close=close,
                      volume=volume, calendar="XNYS")


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    repeat = p.parse_args().repeat
    data = year_of_minutes()
    sessions = data.sessions
    by_calendar = timed(lambda: MarketData(index=data.index, symbols=data.symbols, close=data.close,
                                           calendar="XNYS").sessions, repeat)
    by_date = timed(lambda: session_numbers(data.index), repeat)
    at = timed(lambda: decision_bars(data.index, "at 15:50", sessions=sessions), repeat)
    t = int(data.index.get_loc(pd.Timestamp("2023-12-28 10:00", tz="America/New_York")))
    view = data.view(t + 1)
    now = pd.Timestamp("2023-12-28 10:00:30", tz="America/New_York").timestamp()
    symbols = np.arange(data.n_symbols)

    def plan():
        closes, session, clock = bar_grid(view, now, 1800.0)
        clock_volume(view.volume, symbols, session_clock(view.index, view.sessions),
                     session_ends(view.sessions), session, 20, clock, view.bar_length.value)

    planned = timed(plan, repeat)
    print(f"{data.n_bars:,} 1-minute bars x {data.n_symbols} symbols, {sessions[-1] + 1} XNYS sessions "
          f"(median of {repeat})")
    print(f"  sessions by the calendar   {by_calendar * 1e3:8.2f} ms")
    print(f"  sessions by local date     {by_date * 1e3:8.2f} ms")
    print(f"  decision_bars 'at 15:50'   {at * 1e3:8.2f} ms")
    print(f"  live plan's bins (30 bars) {planned * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
