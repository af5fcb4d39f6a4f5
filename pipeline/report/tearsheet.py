"""``report.html``: the run's tearsheet, one self-contained file written into every run folder.

The page is its sections (``pipeline/report/sections/``, one module each), in the order
``report.sections`` gives (conf/report/default.yaml), drawn as inline SVG by the chart
primitives (``charts``) with the stylesheet (``assets/report.css``) and a few kilobytes of
script (``assets/report.js``: hover read-outs, zoom and range selection, legend toggles,
crosshairs linked across the time charts) inlined: no library, no CDN, no font or image to
fetch, so the file opens offline and its bytes depend only on the run (same inputs -> same
file). Every number in the tables comes from the full series.

The benchmark is ``report.benchmark`` (``benchmark``): by default the data source's own
(``universe``, the equal-weight buy-and-hold of the data's symbols on the same adjusted prices),
or a symbol of the data, or a CSV file of levels. The data source's caveats head the caveats.

``python -m pipeline.report <run folder>`` rebuilds a folder's report from its files (the
same bytes the run wrote).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.report import sections as registry
from pipeline.report.analytics import bars_per_year, series_stats, utc_ns
from pipeline.report.benchmark import folder_benchmark
from pipeline.report.format import esc
from pipeline.report.page import page, section


def run_of(frames: dict[str, pd.DataFrame], metrics: dict[str, Any], prov: dict[str, Any],
           bench: tuple[str, np.ndarray] | None = None) -> registry.Run:
    """What the sections draw from; the benchmark's levels scaled to the starting capital (and
    left out when they do not cover the equity's bars)."""
    t = utc_ns(frames["equity"].index)
    equity = frames["equity"]["equity"].to_numpy(dtype=np.float64)
    r = np.append(0.0, equity[1:] / equity[:-1] - 1.0) if equity.size else np.array([])
    bench_name, bench_level = (bench if bench is not None else (None, None))
    if bench_level is not None:
        bench_level = np.asarray(bench_level, dtype=np.float64)
        first = np.flatnonzero(np.isfinite(bench_level))
        if first.size == 0 or bench_level.size != equity.size:
            bench_name, bench_level = None, None
        else:
            bench_level = bench_level / bench_level[first[0]] * float(equity[0])
            bench_level[: first[0]] = np.nan
    bstats = series_stats(bench_level, t) if bench_level is not None else {}
    return registry.Run(frames=frames, metrics=metrics, prov=prov, t=t, equity=equity, r=r, ppy=bars_per_year(t),
                        bench_name=bench_name, bench_level=bench_level, bstats=bstats)


def build(frames: dict[str, pd.DataFrame], metrics: dict[str, Any], prov: dict[str, Any],
          bench: tuple[str, np.ndarray] | None = None) -> str:
    """The report's HTML from a run's tables (as ``recorder.tables`` returns them or as read
    back from the CSV files), its metrics, its provenance and the benchmark's levels on the
    equity's bars (``benchmark``); the sections are the config's ``report.sections``."""
    run = run_of(frames, metrics, prov, bench)
    config = run.config
    nav, parts = [], []
    for name, module in registry.chosen((config.get("report") or {}).get("sections")):
        body = module.body(run)
        if body is None:
            continue
        anchor = name.rpartition(".")[2]
        nav.append((anchor, module.TITLE))
        parts.append(section(anchor, module.TITLE, body, getattr(module, "CLASS", "")))
    data = prov.get("data", {})
    strategies = ", ".join(str(k) for k in (config.get("strategy") or {}))
    code = prov.get("code_version", {})
    commit = (code.get("git_commit") or "unknown")[:10] + (" (uncommitted changes)" if code.get("dirty") else "")
    subtitle = esc(f"{data.get('name', '?')} data, {strategies or '?'} | "
                   f"{str(metrics.get('start', ''))[:10]} to {str(metrics.get('end', ''))[:10]} | "
                   f"seed {prov.get('seed', '?')} | code {commit}")
    return page("robo-trader run report", subtitle, nav, parts, interactive=True)


# ---------------------------------------------------------------------------------------------
# writing


def write(out: Path, frames: dict[str, pd.DataFrame], metrics: dict[str, Any], prov: dict[str, Any],
          bench: tuple[str, np.ndarray] | None = None) -> Path:
    """Write ``out/report.html`` atomically; returns its path."""
    text = build(frames, metrics, prov, bench)
    path = Path(out) / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """A finished run folder's tables (time-indexed where ``record`` wrote an index), metrics
    and provenance."""
    folder = Path(folder)
    frames = {}
    for name in ("equity", "returns", "weights", "attribution", "sleeves", "financing"):
        path = folder / f"{name}.csv"
        if path.is_file():
            frames[name] = pd.read_csv(path, index_col=0)
        elif path.with_suffix(".parquet").is_file():
            frames[name] = _as_written(pd.read_parquet(path.with_suffix(".parquet")))
    for name in ("orders", "fills", "execution"):
        path = folder / f"{name}.csv"
        if path.is_file():
            frames[name] = pd.read_csv(path)
        elif path.with_suffix(".parquet").is_file():
            frames[name] = _as_written(pd.read_parquet(path.with_suffix(".parquet"))).reset_index()
    metrics = json.loads((folder / "metrics.json").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    return frames, metrics, prov


def _as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """A Parquet table (record.format=parquet: on a DatetimeIndex) as its CSV reads: the
    stamps as UTC text, so the report is the same from either file."""
    frame.index = pd.Index(frame.index.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S+00:00"), name=frame.index.name)
    return frame


def from_folder(folder: Path) -> Path:
    """Rebuild ``report.html`` for a finished run folder."""
    frames, metrics, prov = read_folder(folder)
    return write(folder, frames, metrics, prov, folder_benchmark(prov, frames["equity"].index))


def _not_a_run(folder: Path) -> str | None:
    """Why ``folder`` has no report to rebuild, and what to run instead; None for a finished run."""
    if (folder / "walkforward.csv").is_file() and (folder / "metrics.json").is_file():
        summary = json.loads((folder / "metrics.json").read_text())
        best = summary.get("in_sample_best_over_whole_history", {}).get("params", {})
        rerun = " ".join(f"{k}={v}" for k, v in best.items())
        return (f"{folder} is a walk-forward folder ({summary.get('folds')} folds, "
                f"{summary.get('candidates')} candidates), not a run folder: its record is "
                f"metrics.json, walkforward.csv and oos_returns.csv, and it has no report.html. "
                f"For the tearsheet of one candidate, run it without walkforward=..., e.g. the best "
                f"with hindsight: python run.py {rerun}")
    if (folder / "sweep.csv").is_file():
        return (f"{folder} is a sweep folder: its page is {folder / 'summary.html'}; rebuild one "
                f"job's report with python -m pipeline.report {folder / '<job number>'}")
    if (folder / "error.txt").is_file():
        first = (folder / "error.txt").read_text(errors="replace").splitlines()[:1]
        return f"{folder} is a failed run ({' '.join(first)}): there is no report to rebuild"
    for name in ("metrics.json", "provenance.json"):
        if not (folder / name).is_file():
            return f"{folder}: not a finished run folder (no {name})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Rebuild report.html for finished run folders.")
    parser.add_argument("folders", nargs="+", type=Path, help="run folders (each holding metrics.json)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        why = _not_a_run(folder)
        if why is not None:
            print(f"robo-trader: error: {why}", file=sys.stderr)
            return 2
        print(from_folder(folder))
    return 0

