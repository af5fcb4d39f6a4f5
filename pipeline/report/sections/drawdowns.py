"""Drawdown from the running peak, against the benchmark's, and the worst drawdowns."""

from __future__ import annotations

import numpy as np

from pipeline.report.analytics import drawdown_periods
from pipeline.report.charts import GREY, RED, line_chart
from pipeline.report.format import day, esc, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Drawdowns"


def body(run: Run) -> str:
    t, equity = run.t, run.equity
    dd = equity / np.maximum.accumulate(equity) - 1.0 if equity.size else equity
    dseries = [("strategy", dd, RED)]
    if run.bench_level is not None:
        bl = run.bench_level.copy()
        ok = np.isfinite(bl)
        bdd = np.full_like(bl, np.nan)
        bdd[ok] = bl[ok] / np.maximum.accumulate(bl[ok]) - 1.0
        dseries.append(("benchmark", bdd, GREY))
    rows = []
    for p in drawdown_periods(t, equity):
        rec = p["recovery"]
        rows.append([esc(day(t[p["peak"]])), esc(day(t[p["trough"]])),
                     esc(day(t[rec])) if rec is not None else "not recovered", pct(p["depth"]),
                     f"{(rec if rec is not None else t.size - 1) - p['peak']:,}"])
    return (line_chart("chart-drawdown", "Drawdown from the running peak", t, dseries, kind="pct", zero=True, fill=True) +
            "<h3>Worst drawdowns</h3>" + html_table(["peak", "trough", "recovered", "depth", "bars"], rows, left=3))
