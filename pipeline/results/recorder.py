"""Write a run folder: tables, metrics and provenance, so the run can be checked and repeated.

``report.html`` (``pipeline.report.tearsheet``) is the run's tearsheet, drawn from the same tables.
Files are written to a temporary name and renamed into place, ``metrics.json`` last: a folder
with ``metrics.json`` is a finished run. A run stopped by a user error leaves ``error.txt``
instead. Same config + same seed -> byte-identical files (no clock time, no absolute paths).
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.results import tca
from pipeline.report import tearsheet as report
from pipeline.results.attribution import attribution, sleeves
from pipeline.backtest.engine import Ledger
from pipeline.results.metrics import bar_returns, summarize

# settings that say where and how a run reports, not what it computes: kept out of provenance
# so that the same run written to two folders has identical files
# (and the live dashboard's address and token: a secret never goes into a run's files)
# (and how a sweep stores and resumes its jobs: sweep.keep, sweep.resume)
WHERE_NOT_WHAT = ("out_dir", "progress", "dashboard", "sweep", "hydra.run.", "hydra.sweep.")
PACKAGES = ("robo-trader", "numpy", "pandas", "scipy", "scikit-learn", "statsmodels",
            "hydra-core", "omegaconf", "skfolio", "ib_async")


def tables(ledger: Ledger) -> dict[str, pd.DataFrame]:
    data = ledger.data
    symbols = np.array(data.symbols, dtype=object)
    times = pd.Index(data.labels[ledger.start:], name="time")
    equity = pd.DataFrame({"equity": ledger.equity, "cash": ledger.cash,
                           "gross_exposure": ledger.gross_exposure}, index=times)
    # from the bar after the start: the start bar has no return, and a zero there would be
    # one more observation for whoever reads the file (metrics use the same series)
    returns = pd.DataFrame({"return": bar_returns(ledger.equity)}, index=equity.index[1:])
    weights = pd.DataFrame(ledger.weights, columns=list(data.symbols),
                           index=pd.Index(data.labels[ledger.decisions], name="time"))
    o = ledger.orders
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(o["filled"] != 0, o["filled_value"] / o["filled"], np.nan)
    status = tca.fill_status(o["quantity"], o["filled"])
    orders = pd.DataFrame({
        "order_id": o["id"].astype(np.int64),
        "decision_time": data.labels[o["decision"].astype(np.int64)],
        "symbol": symbols[o["symbol"].astype(np.int64)],
        "side": np.where(o["quantity"] > 0, "buy", "sell"),
        "quantity": np.abs(o["quantity"]),
        "arrival_price": o["arrival"],
        "filled_quantity": np.abs(o["filled"]),
        "avg_fill_price": avg,
        "status": status,
    })
    f = ledger.fills
    fills = pd.DataFrame({
        "order_id": f["order"].astype(np.int64),
        "time": data.labels[f["bar"].astype(np.int64)],
        "symbol": symbols[f["symbol"].astype(np.int64)],
        "side": np.where(f["quantity"] > 0, "buy", "sell"),
        "quantity": np.abs(f["quantity"]),
        "price": f["price"],
        "notional": np.abs(f["quantity"]) * f["price"],
        "commission": f["commission"],
        "spread_cost": f["spread_cost"],
        "impact_cost": f["impact_cost"],
        "bin": f["bin"].astype(np.int64),
    })
    return {"equity": equity, "returns": returns, "weights": weights, "orders": orders, "fills": fills,
            "execution": tca.table(ledger), "attribution": attribution(ledger),
            "sleeves": sleeves(ledger), "financing": financing_table(ledger)}


def financing_table(ledger: Ledger) -> pd.DataFrame:
    """Per bar: the calendar days it accrued and what financing cost the book (a cost: negative
    cash interest is interest earned); ``equity.cash`` is net of it."""
    return pd.DataFrame({"days": ledger.days, **ledger.financing},
                        index=pd.Index(ledger.data.labels[ledger.start:], name="time"))


def metrics_of(ledger: Ledger) -> dict[str, Any]:
    f = ledger.fills
    costs = {"commission": float(f["commission"].sum()), "spread": float(f["spread_cost"].sum()),
             "impact": float(f["impact_cost"].sum())}
    costs.update({kind: float(v.sum()) for kind, v in ledger.financing.items()})
    out = summarize(ledger.equity, ledger.data.index[ledger.start:], rebalance_turnover=rebalance_turnover(ledger),
                    gross_exposure=ledger.gross_exposure, costs=costs,
                    n_trades=len(f["symbol"]), n_rebalances=len(ledger.decisions))
    out["cost_financing"] = float(sum(ledger.financing[kind].sum() for kind in ledger.financing))
    out["risk_binding"] = dict(ledger.binding)
    # what the constraints left uninvested (1 - gross target weight) at the traded decisions,
    # beside what the allocation asked for: the terminal names constraints that shape the run
    out["n_decisions"] = int(ledger.plan.weights.shape[0])
    out["cash_before_risk"] = _mean_or_nan(1.0 - np.abs(ledger.plan.weights[ledger.traded]).sum(axis=1))
    out["cash_after_risk"] = _mean_or_nan(1.0 - np.abs(ledger.weights).sum(axis=1))
    out["execution"] = tca.summary(tca.table(ledger))
    return out


def _mean_or_nan(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else math.nan


def rebalance_turnover(ledger: Ledger) -> np.ndarray:
    """Traded notional over the equity at the decision, one value per rebalance (its fills
    may span the sessions its execution took)."""
    f = ledger.fills
    decided = ledger.orders["decision"][f["order"].astype(np.int64)]
    k = np.searchsorted(ledger.decisions, decided)
    traded = np.bincount(k, weights=np.abs(f["quantity"] * f["price"]), minlength=ledger.decisions.size)
    return traded / ledger.equity[ledger.decisions - ledger.start]


def provenance(ledger: Ledger, cfg: Any, stages: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return {
        "code_version": code_version(),
        "packages": package_versions(),
        "python": ".".join(map(str, __import__("sys").version_info[:3])),
        "data": {"name": ledger.data.name, "sha256": ledger.data.digest(),
                 "caveats": list(getattr(stages.data, "caveats", ())),
                 "bars": ledger.data.n_bars, "symbols": list(ledger.data.symbols),
                 "first": str(ledger.data.index[0]), "last": str(ledger.data.index[-1])},
        "seed": int(cfg.seed),
        "overrides": [o for o in overrides() if not o.lstrip("+~").startswith(WHERE_NOT_WHAT)],
        "config": {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                   if k not in WHERE_NOT_WHAT},
        "assumptions": assumptions(ledger, stages),
    }


def assumptions(ledger: Ledger, stages: Any) -> list[str]:
    """What the simulation had to assume about the data, said plainly."""
    notes = list(ledger.data.notes)
    if ledger.data.open is None:
        notes.append("no open prices: market orders fill at the next session's close")
    if ledger.data.volume is None and hasattr(stages.broker, "adv_usd"):
        notes.append(f"no volume: market impact assumes {stages.broker.adv_usd:,.0f} USD of "
                     f"average daily volume per symbol")
    if (ledger.fills["bin"] >= 0).any() and not getattr(stages.broker, "intraday", None):
        notes.append("no intraday bars: each session's bins are simulated from its daily bar "
                     "(pipeline/core/intraday.py)" + ("" if ledger.data.open is not None else
                     ", bridging the previous close to the close (the overnight gap falls "
                     "inside the session)"))
    terms = stages.broker.financing()
    if terms is not None:
        fee = np.asarray(terms.borrow_fee)
        notes.append(
            f"financing accrued every bar on calendar days, actual/{terms.day_count:g}: margin interest "
            f"{terms.margin_rate:.2%} a year on negative cash, {terms.cash_rate:.2%} earned on positive "
            f"cash, short borrow fee {fee.min():.2%}" + (f" to {fee.max():.2%}" if fee.max() > fee.min() else "")
            + " a year of short market value")
    notes.append("orders are sized on the equity at the session's reference price, less the session's "
                 "expected costs: a long-only book at gross exposure 1 ends each session with cash of "
                 "about zero (lot rounding and sliced execution's intraday prices aside)")
    return notes


@functools.cache
def package_versions() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache  # once per process: a sweep's jobs share the code they run
def code_version() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"git_commit": commit, "dirty": dirty}


def overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def record(ledger: Ledger, out: Path, cfg: Any, stages: Any) -> dict[str, Any]:
    # first: a benchmark the config gets wrong fails before any file is written
    bench = report.benchmark(ledger.data, ledger.start, report.benchmark_choice(cfg, stages.data))
    out.mkdir(parents=True, exist_ok=True)
    frames = tables(ledger)
    for name, frame in frames.items():
        _atomic(out / f"{name}.csv", lambda p, fr=frame, n=name:
                write_csv(fr, p, index=n not in ("orders", "fills", "execution")))
    metrics = metrics_of(ledger)
    prov = provenance(ledger, cfg, stages)
    _atomic(out / "provenance.json", lambda p: write_json(prov, p))
    # the tearsheet sees what the files hold (JSON's null for NaN), so a rebuild from the
    # folder (python -m pipeline.report) gives the same bytes
    report.write(out, frames, _jsonable(metrics), _jsonable(prov), bench)
    (out / "error.txt").unlink(missing_ok=True)
    _atomic(out / "metrics.json", lambda p: write_json(metrics, p))
    return metrics


def record_failure(out: Path, exc: Exception) -> None:
    """Leave a note, never a folder that looks finished."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)
    (out / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n")


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_csv(frame: pd.DataFrame, path: Path, index: bool = True) -> None:
    """CSV through Arrow's writer: shortest round-trip floats, NaN as an empty field, text
    quoted; about ten times faster than pandas' writer, which dominated a run's cost."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.Table.from_pandas(frame.reset_index() if index else frame, preserve_index=False)
    pacsv.write_csv(table, str(path), pacsv.WriteOptions(quoting_style="needed"))


def write_json(obj: Any, path: Path) -> None:
    path.write_text(to_json(obj))


def to_json(obj: Any) -> str:
    """Sorted, indented JSON with NaN and infinities as null (valid JSON, stable bytes)."""
    return json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj
