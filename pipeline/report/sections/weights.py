"""Target weights over time as stacked areas, longs above zero and shorts below."""

from __future__ import annotations

import numpy as np

from pipeline.report.analytics import utc_ns
from pipeline.report.charts import stacked_chart
from pipeline.report.format import pct
from pipeline.report.sections import Run

TITLE = "Weights over time"
MAX_LAYERS = 20            # stacked-area layers; smaller holdings are merged into "other"
MAX_TIMES = 400            # drawn on a grid of this many times: about two per pixel column


def body(run: Run) -> str | None:
    w = run.frames.get("weights")
    if w is None or not len(w):
        return None
    t = run.t
    wt = utc_ns(w.index)
    values = w.to_numpy(dtype=np.float64)
    names = list(w.columns)
    if run.equity.size and t.size and t[-1] > wt[-1]:
        wt = np.append(wt, t[-1])
        values = np.vstack([values, values[-1:]])
    size = np.nanmean(np.abs(values), axis=0)
    order = [j for j in np.argsort(-size, kind="stable") if size[j] > 0]
    if len(order) > MAX_LAYERS:
        keep, rest = order[:MAX_LAYERS - 1], order[MAX_LAYERS - 1:]
        layers = [(names[j], values[:, j]) for j in keep] + [(f"other ({len(rest)})", values[:, rest].sum(axis=1))]
    else:
        layers = [(names[j], values[:, j]) for j in sorted(order)]
    if wt.size > MAX_TIMES:
        grid = np.linspace(wt[0], wt[-1], MAX_TIMES).astype(np.int64)
        at = np.searchsorted(wt, grid, side="right") - 1
        layers = [(n, v[at]) for n, v in layers]
        wt = grid
    gross = np.nansum(np.abs(values), axis=1)
    return (stacked_chart("chart-weights", "Target weights at each rebalance", wt, layers) +
            f'<p class="note">Target weights after risk constraints, held until the next rebalance; '
            f'{len(w):,} rebalances, average gross {pct(float(np.mean(gross)), 0)}. Long weights stack above '
            f'zero, short weights below.</p>')
