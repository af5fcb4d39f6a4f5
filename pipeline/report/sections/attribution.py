"""Each bar's P&L split by sleeve and by asset: cumulative lines, the sleeves' weights, bars per asset."""

from __future__ import annotations

import math

import numpy as np

from pipeline.report.analytics import utc_ns
from pipeline.report.charts import MAX_POINTS, PALETTE, RED, bar_chart, line_chart, reduce_indices, stacked_chart
from pipeline.report.format import esc, money, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Attribution"


def body(run: Run) -> str | None:
    attr, t, equity = run.frames.get("attribution"), run.t, run.equity
    if attr is None or len(attr) != equity.size or not equity.size:
        return None
    before = np.append(equity[0], equity[:-1])
    sleeves = [c for c in attr.columns if c.startswith("sleeve:")]
    assets = [c for c in attr.columns if c.startswith("asset:")]
    apart = ["commission"] + (["financing"] if "financing" in attr.columns else [])
    pnl = {c: np.cumsum(attr[c].to_numpy(dtype=np.float64) * before) for c in sleeves + assets + apart}
    lines = [(c.removeprefix("sleeve:"), pnl[c], PALETTE[i % len(PALETTE)]) for i, c in enumerate(sleeves)]
    lines.append(("commission", pnl["commission"], RED))
    total = equity[-1] - equity[0]
    srows = [[esc(c.removeprefix("sleeve:")), money(pnl[c][-1]), pct(pnl[c][-1] / total if total else math.nan, 1)]
             for c in sleeves + apart]
    finals = sorted(((c.removeprefix("asset:"), float(pnl[c][-1])) for c in assets), key=lambda kv: -kv[1])
    out = (line_chart("chart-sleeves", "Cumulative P&L by sleeve", t, lines, kind="money", zero=True) +
           html_table(["sleeve", "P&L", "share of total"], srows))
    sl = run.frames.get("sleeves")
    if sl is not None and len(sleeves) > 1:
        wcols = [c for c in sl.columns if c.startswith("weight:")]
        stl = utc_ns(sl.index)
        idx = reduce_indices(np.arange(stl.size, dtype=np.float64), MAX_POINTS // 4)
        out += stacked_chart("chart-sleeve-weights", "Sleeve weights", stl[idx],
                             [(c.removeprefix("weight:"), sl[c].to_numpy(dtype=np.float64)[idx]) for c in wcols],
                             step=False)
    out += ("<h3>P&amp;L by asset</h3>" +
            bar_chart("chart-assets", "Total P&L by asset", [k for k, _ in finals], [v for _, v in finals]))
    return (out + '<p class="note">Each bar\'s P&amp;L split by sleeve and by asset (spread and impact sit in '
            'the fill prices, so in the asset\'s P&amp;L; commission and financing apart); the parts add up to the '
            f'change in equity, {money(total)}.</p>')
