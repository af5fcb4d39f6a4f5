"""report.html of an order-book run, from its folder: the figures, the equity marked at the mid,
the inventory, and the fills' markouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.report import charts
from pipeline.report.format import esc, money, num
from pipeline.report.page import html_table, page, section

ROWS = (("pnl", "P&L", money), ("spread_capture", "spread capture", money),
        ("inventory_pnl", "inventory P&L", money), ("fees", "fees (rebates negative)", money),
        ("fills", "fills", str), ("maker_fills", "of which resting (maker)", str),
        ("fill_ratio", "fill ratio of limit orders", num), ("volume", "shares traded", money),
        ("max_abs_inventory", "largest inventory (shares)", money),
        ("mean_abs_inventory", "mean |inventory| at decisions", money),
        ("adverse_selection_1s", "adverse selection at 1 s ($/share)", lambda x: num(x, 4)),
        ("adverse_selection_10s", "adverse selection at 10 s ($/share)", lambda x: num(x, 4)),
        ("mean_queue_ahead", "mean queue ahead at entry (shares)", money),
        ("events", "events replayed", str), ("decisions", "decisions", str))


def write(out: Path) -> Path:
    out = Path(out)
    m = json.loads((out / "metrics.json").read_text())
    equity = pd.read_csv(out / "equity.csv")
    date = json.loads((out / "provenance.json").read_text())["config"]["data"].get("date") or "1970-01-01"
    t = (pd.Timestamp(date).value + equity["time"].to_numpy() * 1e9).astype(np.int64)
    figures = html_table(["", "value"], [(label, fmt(m.get(key))) for key, label, fmt in ROWS])
    pnl = charts.line_chart("pnl", "P&L marked at the mid", t,
                            [("P&L", equity["equity"].to_numpy() - equity["equity"].iloc[0] + 0.0, charts.BLUE)],
                            kind="money", zero=True)
    inventory = charts.line_chart("inventory", "inventory (shares)", t,
                                  [("position", equity["position"].to_numpy(), charts.BLUE)], kind="money", zero=True)
    html = page("order-book run", esc(f"{m['events']:,} events, {m['decisions']:,} decisions"),
                [("figures", "Figures"), ("pnl", "P&L"), ("inventory", "Inventory")],
                [section("figures", "Figures", figures), section("pnl", "P&L", pnl),
                 section("inventory", "Inventory", inventory)])
    path = out / "report.html"
    path.write_text(html)
    return path
