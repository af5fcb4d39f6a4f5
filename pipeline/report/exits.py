"""Exits between decisions, as the execution section shows them: per rule how many fired, their
average return and P&L, the P&L of exits against rebalances, and the latest exit orders with
their type, trigger and reason. Nothing for a run without exit rules (``metrics.json`` has no
``exits``)."""

from __future__ import annotations

import numpy as np

from pipeline.report.format import esc, money, num, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Exits between decisions"
LATEST = 20   # exit orders listed


def body(run: Run) -> str | None:
    agg = run.metrics.get("exits")
    if not agg:
        return None
    rules = [[esc(name), f"{m['count']:,}", f"{m['gaps']:,}", pct(m["avg_return"]), money(m["pnl"])]
             for name, m in agg["rules"].items()]
    split = [["exits", money(agg["pnl_exits"])], ["rebalances (the rest)", money(agg["pnl_rebalances"])]]
    html = (html_table(["rule", "exits", "gapped through", "average return", "P&L"], rules)
            + html_table(["P&L attributed to", "value"], split))
    orders = run.frames.get("orders")
    if orders is not None and "reason" in orders:
        mine = orders[orders["reason"].astype(str) != "rebalance"].tail(LATEST)
        rows = [[esc(r.symbol), esc(str(r.decision_time)[:10]), esc(r.side), esc(r.order_type),
                 num(r.trigger, 4) if np.isfinite(r.trigger) else "", num(r.avg_fill_price, 4), esc(r.reason)]
                for r in mine.itertuples()]
        if rows:
            html += html_table(["symbol", "last decision", "side", "order type", "trigger", "fill", "why"], rows)
    return html + ('<p class="note">Average return and P&amp;L of an exit are from the position\'s average '
                   'cost to the fill, net of spread, impact and commission; the rebalances\' P&amp;L is the '
                   'rest of the run\'s. orders.csv, fills.csv and execution.csv carry order_type, trigger '
                   'and reason for every order.</p>')
