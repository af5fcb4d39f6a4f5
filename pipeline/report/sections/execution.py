"""Execution quality: implementation shortfall against participation, one point per parent
order, and the aggregates weighted by notional."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.report import exits as exit_section
from pipeline.report.charts import PALETTE, scatter_chart
from pipeline.report.format import esc, finite, money, num, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Execution quality"
MAX_SCATTER = 2000         # points in the execution scatter


def body(run: Run) -> str | None:
    ex = run.frames.get("execution")
    if ex is None:
        return None
    # the exits' table joins execution (a run without exit rules has none)
    exits = exit_section.body(run)
    return _execution(ex, run.metrics.get("execution", {})) + (
        "" if exits is None else f"<h3>{esc(exit_section.TITLE)}</h3>{exits}")


def _execution(ex: pd.DataFrame, agg: dict[str, Any]) -> str:
    x = ex["participation"].to_numpy(dtype=np.float64)
    y = ex["shortfall_bps"].to_numpy(dtype=np.float64)
    side = ex["side"].astype(str).to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    idx = np.flatnonzero(ok)
    if idx.size > MAX_SCATTER:
        idx = idx[np.linspace(0, idx.size - 1, MAX_SCATTER).astype(np.int64)]
    groups = [(s, x[idx][side[idx] == s], y[idx][side[idx] == s], c) for s, c in (("buy", PALETTE[0]), ("sell", PALETTE[1]))]
    trend = None
    if ok.sum() >= 20:
        xs, ys = x[ok], y[ok]
        edges = np.unique(np.quantile(xs, np.linspace(0, 1, 11)))
        which = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, edges.size - 2)
        mids = np.array([np.median(xs[which == k]) for k in range(edges.size - 1) if (which == k).any()])
        meds = np.array([np.median(ys[which == k]) for k in range(edges.size - 1) if (which == k).any()])
        trend = (mids, meds)
    chart = scatter_chart("chart-execution", "Implementation shortfall against participation", groups,
                          "participation (share of the interval's volume, log scale)", "shortfall (bps)", trend=trend)
    labels = [("orders", "n_orders", "int"), ("filled", "n_filled", "int"), ("partially filled", "n_partial", "int"),
              ("unfilled", "n_unfilled", "int"), ("fill rate", "fill_rate", "pct"),
              ("implementation shortfall (bps)", "shortfall_bps", "num"), ("slippage vs interval VWAP (bps)", "vwap_slippage_bps", "num"),
              ("slippage vs interval TWAP (bps)", "twap_slippage_bps", "num"), ("commission (bps)", "commission_bps", "num"),
              ("spread (bps)", "spread_bps", "num"), ("impact (bps)", "impact_bps", "num"),
              ("mean participation", "participation_mean", "pct"), ("max participation", "participation_max", "pct"),
              ("cancelled notional", "cancelled_notional", "money"), ("swept notional", "swept_notional", "money")]
    fmt = {"int": lambda v: f"{v:,}" if finite(v) else "n/a", "pct": pct, "num": num, "money": money}
    rows = [[esc(label), fmt[kind](agg.get(key))] for label, key, kind in labels if key in agg]
    shown = int(sum(g[1].size for g in groups))
    return (chart + f'<p class="note">One point per parent order ({shown:,} of {len(ex):,} drawn'
            f'{", evenly sampled" if ok.sum() > shown else ""}; orders with no participation figure left out). '
            'Shortfall is against the arrival price (the close at the decision), so it holds the market\'s '
            'move as well as the costs; positive is a cost.</p>' + html_table(["aggregate (weighted by notional)", "value"], rows))
