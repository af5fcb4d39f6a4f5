"""Turnover per rebalance and the costs by kind (commission, spread, impact, financing)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline.report.analytics import utc_ns
from pipeline.report.charts import PALETTE, RED, line_chart, spikes_chart
from pipeline.report.format import money, num, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Turnover and costs"


def body(run: Run) -> str | None:
    fills = run.frames.get("fills")
    if fills is None:
        return None
    return _costs(fills, run.frames.get("orders"), run.t, run.equity, run.metrics, run.frames.get("financing"))


def _costs(fills: pd.DataFrame, orders: pd.DataFrame | None, t: np.ndarray, equity: np.ndarray,
           metrics: dict[str, Any], financing: pd.DataFrame | None = None) -> str:
    if len(fills) == 0 or equity.size == 0:
        return '<p class="note">No fills.</p>'
    ft = utc_ns(fills["time"])
    where = np.clip(np.searchsorted(t, ft), 0, t.size - 1)
    n = t.size
    traded = np.bincount(where, weights=fills["notional"].to_numpy(dtype=np.float64), minlength=n)
    kinds = [("commission", "commission"), ("spread", "spread_cost"), ("impact", "impact_cost")]
    cum = {k: np.cumsum(np.bincount(where, weights=fills[c].to_numpy(dtype=np.float64), minlength=n)) for k, c in kinds}
    colors = [PALETTE[0], PALETTE[1], RED]
    # per rebalance, as metrics.json's turnover: each fill counted at its order's decision,
    # over the equity marked there (the equity the orders were sized from)
    if orders is not None and len(orders):
        decided = pd.Series(utc_ns(orders["decision_time"]), index=orders["order_id"].to_numpy())
        at = np.clip(np.searchsorted(t, decided.reindex(fills["order_id"].to_numpy()).to_numpy()), 0, t.size - 1)
    else:
        at = where
    if financing is not None and len(financing) == n:  # per bar, on the equity's rows
        for i, kind in enumerate(c for c in financing.columns if c != "days"):
            cum[kind.replace("_", " ")] = np.cumsum(financing[kind].to_numpy(dtype=np.float64))
            kinds.append((kind.replace("_", " "), kind))
            colors.append(PALETTE[(2 + i) % len(PALETTE)])
    per = np.bincount(at, weights=fills["notional"].to_numpy(dtype=np.float64), minlength=n)
    hit = per > 0
    turnover = per[hit] / equity[hit]
    total_traded = float(traded.sum())
    rows = [[k, money(cum[k][-1]), num(cum[k][-1] / total_traded * 1e4 if total_traded else math.nan, 2)]
            for k, _ in kinds]
    all_costs = sum(cum[k][-1] for k, _ in kinds)
    rows.append(["<b>total</b>", f"<b>{money(all_costs)}</b>",
                 f"<b>{num(all_costs / total_traded * 1e4 if total_traded else math.nan, 2)}</b>"])
    return (spikes_chart("chart-turnover", "Turnover per rebalance (traded notional / equity at the decision)",
                         t[hit], turnover) +
            f'<p class="note">Annualised two-way turnover {num(metrics.get("turnover"))}x: the mean over '
            f'{int(hit.sum()):,} rebalances with trades of the notional traded (buys plus sells) over the equity '
            f'at the decision, {pct(float(np.mean(turnover)), 1)}, times the rebalances a year; '
            f'{money(total_traded)} traded in all.</p>' +
            line_chart("chart-costs", "Cumulative costs by kind", t,
                       [(k, cum[k], c) for i, ((k, _), c) in enumerate(zip(kinds, colors))
                        if i < 3 or cum[k].any()], kind="money") +
            html_table(["cost", "total", "bps of traded notional"], rows) +
            ('<p class="note">Financing (margin interest on negative cash, interest on positive cash, '
             'negative when earned, and the short borrow fee) accrues every bar on calendar days, '
             'actual/360; financing.csv has it per bar.</p>' if financing is not None else ""))
