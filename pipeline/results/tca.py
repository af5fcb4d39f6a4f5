"""Transaction-cost analysis: how well each parent order was executed, and over the run.

Signs: every cost and slippage is positive when it cost money (a buy paid more, a sell
received less than the benchmark). For a parent order of ``Q`` shares with ``side`` +1 (buy)
or -1 (sell), of which ``F`` filled at the average price ``p`` (spread and impact included,
commission apart), with arrival price ``a`` (the close at the decision), ``U = Q - F`` left
unfilled, and ``c`` the session's close (on intraday data, the close of the order's horizon
bar: its session is the bars from the one after the decision to the horizon):

- ``shortfall_bps``: implementation shortfall (Perold 1988), the cost of the whole order
  against a paper trade at the arrival price, in bps of ``Q a``:
  ``(side F (p - a) + commission + side U (c - a)) / (Q a) * 1e4``; the last term is the
  opportunity cost of what was not traded, marked at the session's close.
- ``vwap_slippage_bps``: ``side (p - vwap) / vwap * 1e4`` against the market's volume-weighted
  price over the order's interval (its first child's bin to its horizon; the reference
  price for an auction order); ``twap_slippage_bps`` likewise against the time-weighted price.
- ``participation``: ``F`` over the shares the market traded in the interval (for an auction
  order, the session's volume).
- ``fill_rate``: ``F / Q``.
- ``commission_bps``, ``spread_bps``, ``impact_bps``: each cost over the filled notional at
  arrival, ``F a``; ``spread_bps + impact_bps`` is the part of ``side (p - a) / a`` the broker
  charged, the rest is the market's move.

Aggregates weigh orders by notional: ``shortfall_bps`` is the sum of shortfalls over the sum
of ``Q a``; slippages and cost bps are over the filled notional; ``fill_rate`` is filled over
ordered notional at arrival. Orders with nothing filled have no average price and no
slippage (empty in ``execution.csv``) but count in the shortfall and the fill rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.backtest.engine import Ledger

BPS = 1e4


def fill_status(quantity: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """``filled``, ``partial`` or ``unfilled`` per order (quantities of either sign)."""
    remaining = np.abs(quantity) - np.abs(filled)
    return np.where(np.abs(filled) == 0, "unfilled",
                    np.where(remaining > 1e-9 * np.abs(quantity), "partial", "filled"))


def table(ledger: Ledger) -> pd.DataFrame:
    """One row per parent order (see the module's docstring for every column)."""
    data, o, f = ledger.data, ledger.orders, ledger.fills
    n = o["id"].size
    sym = o["symbol"].astype(np.int64)
    session = o["decision"].astype(np.int64) + 1
    qty = np.abs(o["quantity"])
    side = np.sign(o["quantity"])
    arrival = o["arrival"]
    filled = np.abs(o["filled"])
    order = f["order"].astype(np.int64)

    def per_order(values: np.ndarray) -> np.ndarray:
        return np.bincount(order, weights=values, minlength=n)

    commission, spread, impact = (per_order(f[k]) for k in ("commission", "spread_cost", "impact_cost"))
    # intraday data: an order's session runs over bars to its horizon, last_bin bars on
    horizon = session + np.maximum(o["last_bin"].astype(np.int64), 0) if data.intraday else session
    close = data.close[horizon, sym]
    close = np.where(np.isfinite(close), close, arrival)  # halted: no mark, no opportunity cost
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(filled > 0, o["filled_value"] / o["filled"], np.nan)
        paid = side * filled * (avg - arrival)
        missed = side * (qty - filled) * (close - arrival)
        shortfall = (np.nan_to_num(paid) + commission + missed) / (qty * arrival) * BPS
        filled_notional = filled * arrival
        out = pd.DataFrame({
            "order_id": o["id"].astype(np.int64),
            "session": data.labels[session],
            "symbol": np.array(data.symbols, dtype=object)[sym],
            "side": np.where(side > 0, "buy", "sell"),
            "quantity": qty,
            "filled_quantity": filled,
            "fill_rate": filled / qty,
            "cancelled_quantity": np.abs(o["cancelled"]),
            "swept_quantity": np.abs(o["swept"]),
            "first_bin": o["first_bin"].astype(np.int64),
            "last_bin": o["last_bin"].astype(np.int64),
            "arrival_price": arrival,
            "avg_fill_price": avg,
            "interval_vwap": o["market_vwap"],
            "interval_twap": o["market_twap"],
            "shortfall_bps": shortfall,
            "vwap_slippage_bps": side * (avg - o["market_vwap"]) / o["market_vwap"] * BPS,
            "twap_slippage_bps": side * (avg - o["market_twap"]) / o["market_twap"] * BPS,
            "participation": np.where(o["market_volume"] > 0, filled / o["market_volume"], np.nan),
            "commission": commission,
            "spread_cost": spread,
            "impact_cost": impact,
            "commission_bps": np.where(filled > 0, commission / filled_notional * BPS, np.nan),
            "spread_bps": np.where(filled > 0, spread / filled_notional * BPS, np.nan),
            "impact_bps": np.where(filled > 0, impact / filled_notional * BPS, np.nan),
        })
    return out


def summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Run-wide aggregates of ``table``, weighted by notional (see the module's docstring)."""
    ordered = (rows["quantity"] * rows["arrival_price"]).to_numpy()
    filled = (rows["filled_quantity"] * rows["arrival_price"]).to_numpy()
    total_filled = filled.sum()

    def weighted(column: str) -> float:
        x = rows[column].to_numpy()
        ok = np.isfinite(x) & (filled > 0)
        return float(x[ok] @ filled[ok] / filled[ok].sum()) if ok.any() else float("nan")

    part = rows["participation"].to_numpy()
    part = part[np.isfinite(part)]
    status = fill_status(rows["quantity"].to_numpy(), rows["filled_quantity"].to_numpy())
    return {
        "n_orders": int(len(rows)),
        "n_filled": int((status == "filled").sum()),
        "n_partial": int((status == "partial").sum()),
        "n_unfilled": int((status == "unfilled").sum()),
        "fill_rate": float(total_filled / ordered.sum()) if len(rows) else float("nan"),
        "shortfall_bps": (float(rows["shortfall_bps"].to_numpy() @ ordered / ordered.sum())
                          if len(rows) else float("nan")),
        "vwap_slippage_bps": weighted("vwap_slippage_bps"),
        "twap_slippage_bps": weighted("twap_slippage_bps"),
        "commission_bps": float(rows["commission"].sum() / total_filled * BPS) if total_filled else 0.0,
        "spread_bps": float(rows["spread_cost"].sum() / total_filled * BPS) if total_filled else 0.0,
        "impact_bps": float(rows["impact_cost"].sum() / total_filled * BPS) if total_filled else 0.0,
        "participation_mean": float(part.mean()) if part.size else float("nan"),
        "participation_max": float(part.max()) if part.size else float("nan"),
        "cancelled_notional": float((rows["cancelled_quantity"] * rows["arrival_price"]).sum()),
        "swept_notional": float((rows["swept_quantity"] * rows["arrival_price"]).sum()),
    }
