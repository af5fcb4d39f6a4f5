"""What an order-book run is: its tables and figures (``metrics``), written to the run folder.

P&L is split the way market makers read it: ``spread_capture`` is what each fill earned
against the mid just before it (``side * (mid - price) * qty``; positive when buying below
the mid), ``inventory_pnl`` what the position earned as the mid moved while it was held, and
``fees`` (rebates negative); ``pnl = spread_capture + inventory_pnl - fees``. Adverse selection
at ``h`` seconds is how far the mid moved against a fill within ``h`` (``-side * (mid(t + h) -
mid(t))``, per share, volume-weighted): the part of the captured spread given back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.results.recorder import code_version, overrides, package_versions, write_csv, write_json


def tables(result) -> dict[str, pd.DataFrame]:
    return {"orders": pd.DataFrame(result.orders), "fills": pd.DataFrame(result.fills),
            "equity": pd.DataFrame(result.equity)}


def metrics(result) -> dict[str, Any]:
    f = {k: np.asarray(v, dtype=float) for k, v in result.fills.items()}
    o = result.orders
    e = {k: np.asarray(v, dtype=float) for k, v in result.equity.items()}
    side, qty, px, mid = f["side"], f["qty"], f["price"], f["mid"]
    equity = e["equity"]
    pnl = float(equity[-1] - result.capital) if equity.size else 0.0
    fees = float(f["fee"].sum())
    spread = float(np.nansum(side * (mid - px) * qty))
    limit = np.asarray(o["kind"]) == "limit"
    sent = float(np.asarray(o["qty"], float)[limit].sum()) if limit.any() else 0.0
    filled = float(np.asarray(o["filled"], float)[limit].sum()) if limit.any() else 0.0
    out: dict[str, Any] = {
        "events": int(result.events), "decisions": int(equity.size),
        "start": float(e["time"][0]) if equity.size else None,
        "end": float(e["time"][-1]) if equity.size else None,
        "final_equity": float(equity[-1]) if equity.size else result.capital,
        "pnl": pnl, "spread_capture": spread, "inventory_pnl": pnl - spread + fees, "fees": fees,
        "orders": int(len(o["order_id"])), "limit_orders": int(limit.sum()), "fills": int(qty.size),
        "maker_fills": int(f["maker"].sum()) if qty.size else 0,
        "volume": float(qty.sum()),
        "fill_ratio": filled / sent if sent else float("nan"),
        "final_inventory": float(e["position"][-1]) if equity.size else 0.0,
        "max_abs_inventory": float(np.abs(e["position"]).max()) if equity.size else 0.0,
        "mean_abs_inventory": float(np.abs(e["position"]).mean()) if equity.size else 0.0,
        "mean_queue_ahead": float(np.nanmean(f["queue_ahead"][f["maker"] > 0])) if (f["maker"] > 0).any() else float("nan"),
    }
    for h in ("1s", "10s"):
        later = f[f"mid_{h}"]
        ok = np.isfinite(later) & np.isfinite(mid)
        out[f"adverse_selection_{h}"] = (float(np.sum(-side[ok] * (later[ok] - mid[ok]) * qty[ok]) / qty[ok].sum())
                                         if ok.any() else float("nan"))
    return out


def provenance(cfg: Any, stages: Any, exchange: Any, result) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return {"code_version": code_version(), "packages": package_versions(),
            "python": ".".join(map(str, __import__("sys").version_info[:3])),
            "data": {"name": type(stages.data).__name__, "events": int(result.events),
                     "caveats": list(getattr(stages.data, "caveats", ()))},
            "exchange": {"target": f"{type(exchange).__module__}.{type(exchange).__qualname__}",
                         **exchange.get_params()},
            "seed": int(cfg.seed), "overrides": overrides(),
            "config": {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                       if k not in ("out_dir", "hydra")}}


def record(result, out: Path, cfg: Any, stages: Any, exchange: Any) -> dict[str, Any]:
    """orders.csv, fills.csv, equity.csv, provenance.json, metrics.json (last: a folder with
    metrics.json is a finished run)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in tables(result).items():
        write_csv(frame, out / f"{name}.csv", index=False)
    write_json(provenance(cfg, stages, exchange, result), out / "provenance.json")
    figures = metrics(result)
    (out / "error.txt").unlink(missing_ok=True)
    write_json(figures, out / "metrics.json")
    return figures
