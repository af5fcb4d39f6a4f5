"""Equity against the benchmark, on a log scale when it grew more than fivefold."""

from __future__ import annotations

import numpy as np

from pipeline.report.charts import BLUE, GREY, line_chart
from pipeline.report.sections import Run

TITLE = "Equity against the benchmark"


def body(run: Run) -> str:
    equity = run.equity
    series = [("strategy", equity, BLUE)]
    if run.bench_level is not None:
        series.append((f"benchmark: {run.bench_name}", run.bench_level, GREY))
    log = bool(equity.size and np.nanmin(equity) > 0 and np.nanmax(equity) / np.nanmin(equity) > 5)
    return (line_chart("chart-equity", "Equity against the benchmark", run.t, series, kind="money", log=log) +
            f'<p class="note">Account equity marked at each close{", log scale" if log else ""}; the benchmark is '
            f'scaled to the same starting capital.</p>')
