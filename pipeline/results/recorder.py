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

from pipeline.results import exits as exit_results
from pipeline.results import tca
from pipeline.report import tearsheet as report
from pipeline.report.benchmark import benchmark, benchmark_choice
from pipeline.results.attribution import attribution, sleeves
from pipeline.backtest.engine import Ledger
from pipeline.core.errors import ConfigError
from pipeline.core.market import bar_label, forward_filled
from pipeline.results.metrics import bar_returns, periods_per_year, summarize
from pipeline.results.stats import statistics

# settings that say where and how a run reports, not what it computes: kept out of provenance
# so that the same run written to two folders has identical files
# (and the live dashboard's address and token: a secret never goes into a run's files)
# (and how a sweep stores and resumes its jobs: sweep.keep, sweep.resume)
WHERE_NOT_WHAT = ("out_dir", "progress", "dashboard", "record", "sweep", "hydra.run.", "hydra.sweep.")
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
    fills = fills_table(ledger)
    execution = tca.table(ledger)
    if "order_type" in o:  # children with order types: the columns a run with exits has
        orders, execution = (exit_results.typed(frame, o) for frame in (orders, execution))
        fills = exit_results.typed(fills, ledger.fills)
    positions, shares = holdings(ledger, times)
    frames = {"equity": equity, "returns": returns, "weights": weights, "orders": orders, "fills": fills,
              "execution": execution, "attribution": attribution(ledger),
              "sleeves": sleeves(ledger), "financing": financing_table(ledger),
              "positions": positions, "shares": shares}
    return frames if ledger.exits is None else exit_results.extend(frames, ledger)


def fills_table(ledger: Ledger) -> pd.DataFrame:
    """fills.csv's rows: one per execution."""
    data = ledger.data
    symbols = np.array(data.symbols, dtype=object)
    f = ledger.fills
    return pd.DataFrame({
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


def holdings(ledger: Ledger, times: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per bar: the value of each symbol's holding at the price the equity marks it at (the last
    close) and the cash, which sum to ``equity`` (the shape pyfolio's ``positions`` takes); and
    the shares held."""
    symbols = list(ledger.data.symbols)
    value = ledger.positions * forward_filled(ledger.data.close)[ledger.start:]
    positions = pd.DataFrame(value, columns=symbols, index=times)
    positions["cash"] = ledger.cash
    return positions, pd.DataFrame(ledger.positions, columns=symbols, index=times)


# the time each table without an index is keyed by, for the tables on a DatetimeIndex
TIME_OF = {"orders": "decision_time", "fills": "time", "execution": "session"}


def timed(frames: dict[str, pd.DataFrame], tz: Any) -> dict[str, pd.DataFrame]:
    """The tables on a tz-aware DatetimeIndex in the data's zone (the files hold UTC text):
    what the Python API returns and the Parquet files hold."""
    out = {}
    for name, frame in frames.items():
        column = TIME_OF.get(name)
        frame = frame.set_index(column) if column else frame.copy()
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True, format="ISO8601"),
                                       name=frame.index.name).tz_convert(tz)
        out[name] = frame
    return out


def financing_table(ledger: Ledger) -> pd.DataFrame:
    """Per bar: the calendar days it accrued and what financing cost the book (a cost: negative
    cash interest is interest earned); ``equity.cash`` is net of it."""
    return pd.DataFrame({"days": ledger.days, **ledger.financing},
                        index=pd.Index(ledger.data.labels[ledger.start:], name="time"))


def metrics_of(ledger: Ledger) -> dict[str, Any]:
    f = ledger.fills
    costs = {"commission": float(f["commission"].sum()), "spread": float(f["spread_cost"].sum()),
             "impact": float(f["impact_cost"].sum())}
    n_trades = len(f["symbol"])
    if ledger.exits is not None:  # the exits' fills cost as every fill does
        x = ledger.exits
        for key, paid in (("commission", x.commission), ("spread", x.spread_cost), ("impact", x.impact_cost)):
            costs[key] += float(paid.sum())
        n_trades += x.bar.size
    costs.update({kind: float(v.sum()) for kind, v in ledger.financing.items()})
    out = summarize(ledger.equity, ledger.data.index[ledger.start:], rebalance_turnover=rebalance_turnover(ledger),
                    gross_exposure=ledger.gross_exposure, costs=costs,
                    n_trades=n_trades, n_rebalances=len(ledger.decisions),
                    sessions=None if not ledger.data.intraday else ledger.data.sessions[ledger.start:])
    out["cost_financing"] = float(sum(ledger.financing[kind].sum() for kind in ledger.financing))
    out["risk_binding"] = dict(ledger.binding)
    # what the constraints left uninvested (1 - gross target weight) at the traded decisions,
    # beside what the allocation asked for: the terminal names constraints that shape the run
    out["n_decisions"] = int(ledger.plan.weights.shape[0])
    out["cash_before_risk"] = _mean_or_nan(1.0 - np.abs(ledger.plan.weights[ledger.traded]).sum(axis=1))
    out["cash_after_risk"] = _mean_or_nan(1.0 - np.abs(ledger.weights).sum(axis=1))
    out["execution"] = tca.summary(tca.table(ledger))
    if ledger.exits is not None:
        out["exits"] = exit_results.metrics(ledger)
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


def provenance(ledger: Ledger, cfg: Any, stages: Any, task_overrides: list[str] | None = None) -> dict[str, Any]:
    """``task_overrides``: the run's command line (default: Hydra's, when Hydra runs it)."""
    from omegaconf import OmegaConf

    given = overrides() if task_overrides is None else task_overrides

    return {
        "code_version": code_version(),
        "packages": package_versions(),
        "python": ".".join(map(str, __import__("sys").version_info[:3])),
        "data": {"name": ledger.data.name, "sha256": ledger.data.digest(),
                 "caveats": list(getattr(stages.data, "caveats", ())),
                 "bars": ledger.data.n_bars, "symbols": list(ledger.data.symbols),
                 "first": str(ledger.data.index[0]), "last": str(ledger.data.index[-1])},
        "seed": int(cfg.seed),
        "overrides": [o for o in given if not o.lstrip("+~").startswith(WHERE_NOT_WHAT)],
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
    if ledger.data.intraday:
        notes.append(f"intraday bars of {bar_label(ledger.data.bar_length)}: orders work over the data's own bars "
                     f"from the one after the decision to the next decision or the end of that trading "
                     f"day; volume and volatility windows count sessions; annualised with "
                     f"{periods_per_year(ledger.data.index, ledger.data.intraday_sessions):.0f} bars a year (252 sessions)")
    elif (ledger.fills["bin"] >= 0).any() and not getattr(stages.broker, "intraday", None):
        notes.append("no intraday bars: each session's bins are simulated from its daily bar "
                     "(pipeline/core/intraday.py)" + ("" if ledger.data.open is not None else
                     ", bridging the previous close to the close (the overnight gap falls "
                     "inside the session)"))
    if ledger.exits is not None:
        notes.append(exit_results.assumption(ledger))
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


FORMATS = ("csv", "parquet")


def formats(cfg: Any) -> tuple[str, ...]:
    """``record.format``: csv, parquet, or a list of both; the tables are written in each."""
    chosen = (cfg.get("record") or {}).get("format", "csv")
    chosen = [chosen] if isinstance(chosen, str) else list(chosen or ())
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ConfigError(f"record.format={bad[0] if bad else chosen!r} is not allowed: expected csv, "
                          f"parquet or [csv,parquet]")
    return tuple(f for f in FORMATS if f in chosen)


def outputs(ledger: Ledger, cfg: Any, stages: Any, task_overrides: list[str] | None = None
            ) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any], Any]:
    """What a run folder holds, in memory: the tables, metrics, provenance and the benchmark's
    levels (a benchmark the config gets wrong fails here, before any file is written)."""
    bench = benchmark(ledger.data, ledger.start, benchmark_choice(cfg, stages.data))
    frames = tables(ledger)
    metrics = run_metrics(ledger, bench, frames["fills"])
    return frames, metrics, provenance(ledger, cfg, stages, task_overrides), bench


def run_metrics(ledger: Ledger, bench: Any, fills: pd.DataFrame | None = None) -> dict[str, Any]:
    """metrics.json: the summary and the statistics against ``bench`` (``benchmark``'s levels,
    or None), from the fills table (built here when not given)."""
    metrics = metrics_of(ledger)
    metrics["statistics"] = statistics(pd.Series(ledger.equity, index=ledger.data.index[ledger.start:]),
                                       bench[1] if bench is not None else None,
                                       fills_table(ledger) if fills is None else fills)
    return metrics


def report_html(ledger: Ledger, cfg: Any, stages: Any, task_overrides: list[str] | None = None) -> str:
    """report.html's text, as ``record`` writes it."""
    frames, metrics, prov, bench = outputs(ledger, cfg, stages, task_overrides)
    return report.build(frames, _jsonable(metrics), _jsonable(prov), bench)


def record(ledger: Ledger, out: Path, cfg: Any, stages: Any, task_overrides: list[str] | None = None
           ) -> dict[str, Any]:
    kinds = formats(cfg)
    frames, metrics, prov, bench = outputs(ledger, cfg, stages, task_overrides)
    out.mkdir(parents=True, exist_ok=True)
    if "csv" in kinds:
        for name, frame in frames.items():
            _atomic(out / f"{name}.csv", lambda p, fr=frame, n=name:
                    write_csv(fr, p, index=n not in TIME_OF))
    if "parquet" in kinds:
        for name, frame in timed(frames, ledger.data.index.tz).items():
            _atomic(out / f"{name}.parquet", lambda p, fr=frame: write_parquet(fr, p))
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


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with the time index as a timestamp column pandas reads back as the index."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=True), str(path))


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
