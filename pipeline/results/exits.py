"""What the exit rules did in a run: their rows in orders.csv, fills.csv and execution.csv,
and ``metrics.json``'s ``exits``. Only a run with exit rules has them (``Ledger.exits``), so a
run without leaves every file as it was.

Every order of such a run says its ``order_type`` (a rebalance's order is ``market``, in the
session's auction), its ``trigger`` (the level in force when an exit fired; empty for a time
stop and a re-entry) and its ``reason`` (``rebalance``, the rule's name, ``(gap)`` when the bar
opened through the level, or ``reentry`` after a cooldown).

The metrics, per rule: how many exits fired (``count``, ``gaps``), their average return
``side (p - e) / e`` net of costs (``p`` the fill with spread and impact, ``e`` the
position's average cost, the commission taken from it), and the P&L they realised,
``sum(side |q| (p - e)) - commission``. ``pnl_exits`` is that over every rule;
``pnl_rebalances`` is the rest of the run's P&L (final equity less capital, less
``pnl_exits``): what the positions earned while the decisions held them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.backtest.engine import Ledger
from pipeline.core.contracts import AUCTION
from pipeline.core.orders import TYPES
from pipeline.results.tca import BPS

REBALANCE = "rebalance"


def extend(frames: dict[str, pd.DataFrame], ledger: Ledger) -> dict[str, pd.DataFrame]:
    """``frames`` with the exits' orders, fills and execution rows appended (ids after the
    rebalances') and the three columns every order of the run then carries."""
    x = ledger.exits
    data = ledger.data
    first_id = len(frames["orders"])
    ids = first_id + np.arange(x.bar.size)
    symbols = np.array(data.symbols, dtype=object)[x.symbol]
    side = np.where(x.quantity > 0, "buy", "sell")
    qty = np.abs(x.quantity)
    kind, reason = x.order_type(), x.reason()
    trigger = x.trigger
    times = data.labels[x.bar]
    out = dict(frames)

    def tagged(frame: pd.DataFrame) -> pd.DataFrame:
        if "order_type" in frame:  # the execution's children had order types
            return frame
        frame = frame.copy()
        frame["order_type"] = "market"
        frame["trigger"] = np.nan
        frame["reason"] = REBALANCE
        return frame

    orders = pd.DataFrame({
        "order_id": ids, "decision_time": data.labels[x.decision], "symbol": symbols, "side": side,
        "quantity": qty, "arrival_price": x.level, "filled_quantity": qty, "avg_fill_price": x.price,
        "status": "filled", "order_type": kind, "trigger": trigger, "reason": reason})
    out["orders"] = pd.concat([tagged(frames["orders"]), orders], ignore_index=True)
    fills = pd.DataFrame({
        "order_id": ids, "time": times, "symbol": symbols, "side": side, "quantity": qty,
        "price": x.price, "notional": qty * x.price, "commission": x.commission,
        "spread_cost": x.spread_cost, "impact_cost": x.impact_cost,
        "bin": np.full(ids.size, AUCTION, dtype=np.int64), "order_type": kind, "trigger": trigger,
        "reason": reason})
    merged = pd.concat([tagged(frames["fills"]), fills], ignore_index=True)
    out["fills"] = merged.iloc[np.argsort(merged["time"].to_numpy(), kind="stable")].reset_index(drop=True)
    out["execution"] = pd.concat([tagged(frames["execution"]),
                                  execution_rows(ledger, ids)], ignore_index=True)
    return out


def typed(frame: pd.DataFrame, rows: dict[str, np.ndarray]) -> pd.DataFrame:
    """``frame`` (orders or fills of the rebalances) with the order type and trigger of the
    execution's children (``ChildOrders.type``) in the exits' columns."""
    frame = frame.copy()
    frame["order_type"] = np.array([t.value for t in TYPES], dtype=object)[rows["order_type"]]
    frame["trigger"] = rows["trigger"]
    frame["reason"] = REBALANCE
    return frame


def execution_rows(ledger: Ledger, ids: np.ndarray) -> pd.DataFrame:
    """TCA of each exit against its trigger (a stop's gap shows as shortfall) or, for a time
    stop and a re-entry, against the price it was sent to meet (the close, the open)."""
    x = ledger.exits
    sign = np.sign(x.quantity)
    qty = np.abs(x.quantity)
    arrival = np.where(np.isfinite(x.trigger), x.trigger, x.level)
    notional = qty * arrival
    shortfall = (sign * qty * (x.price - arrival) + x.commission) / notional * BPS
    nan = np.full(ids.size, np.nan)
    return pd.DataFrame({
        "order_id": ids, "session": ledger.data.labels[x.bar],
        "symbol": np.array(ledger.data.symbols, dtype=object)[x.symbol],
        "side": np.where(sign > 0, "buy", "sell"), "quantity": qty, "filled_quantity": qty,
        "fill_rate": np.ones(ids.size), "cancelled_quantity": np.zeros(ids.size),
        "swept_quantity": np.zeros(ids.size), "first_bin": np.full(ids.size, AUCTION),
        "last_bin": np.full(ids.size, AUCTION), "arrival_price": arrival, "avg_fill_price": x.price,
        "interval_vwap": nan, "interval_twap": nan, "shortfall_bps": shortfall,
        "vwap_slippage_bps": nan, "twap_slippage_bps": nan, "participation": nan,
        "commission": x.commission, "spread_cost": x.spread_cost, "impact_cost": x.impact_cost,
        "commission_bps": x.commission / notional * BPS, "spread_bps": x.spread_cost / notional * BPS,
        "impact_bps": x.impact_cost / notional * BPS, "order_type": x.order_type(),
        "trigger": x.trigger, "reason": x.reason()})


def metrics(ledger: Ledger) -> dict[str, Any]:
    """``metrics.json``'s ``exits`` (see the module's docstring)."""
    x = ledger.exits
    exits = x.rule >= 0
    qty = np.abs(x.quantity)
    pnl = x.side * qty * (x.price - x.entry) - x.commission
    ret = pnl / (qty * x.entry)
    rules = {}
    for r, name in enumerate(x.rules):
        mine = x.rule == r
        rules[name] = {"count": int(mine.sum()), "gaps": int((mine & x.gap).sum()),
                       "avg_return": float(ret[mine].mean()) if mine.any() else float("nan"),
                       "pnl": float(pnl[mine].sum())}
    total = float(ledger.equity[-1] - ledger.capital)
    pnl_exits = float(pnl[exits].sum())
    return {"rules": rules, "count": int(exits.sum()), "reentries": int((~exits).sum()),
            "pnl_exits": pnl_exits, "pnl_rebalances": total - pnl_exits,
            "close_only": bool(x.close_only)}


def assumption(ledger: Ledger) -> str:
    """How the exits were filled, for provenance's assumptions and the report's caveats."""
    if ledger.exits.close_only:
        return ("exits on close-only data: each close stands for the bar's open, high and low, so a "
                "level is checked once a bar and a close through it fills at that close (the gap "
                "rule), never at the level itself; a stop therefore fills at or beyond its level")
    return ("exits are checked every bar on its open, high and low (pipeline/core/exits.py): a bar "
            "opening through a level fills at the open, one touching it at the level; a bar touching "
            "a stop and a take-profit fills the stop (no path inside the bar); trailing stops "
            "ratchet on the previous bars' best price")
