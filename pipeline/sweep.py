"""What a multirun leaves behind: ``sweep.csv``, ``summary.md`` and the overfitting statistics.

Registered in ``conf/config.yaml`` as a Hydra callback. Each job writes ``status.json`` when it
ends (completed or failed, with the error), so a failing job is recorded and never costs the
others their results; at the end of the sweep the callback reads every job folder (whatever
launcher ran them: basic, joblib, submitit) and writes into the sweep folder:

- ``sweep.csv``: one row per job: its number, overrides, status, error and metrics;
- ``summary.md``: the best jobs by the configured objective, and across all completed jobs the
  number of trials, the Deflated Sharpe Ratio of the best one and the Probability of Backtest
  Overfitting (``pipeline.overfitting``), computed from the jobs' daily returns.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from pipeline.recorder import write_json

STATUS = "status.json"
LOWER_IS_BETTER = ("annual_vol", "turnover", "total_costs")


class SweepSummary(Callback):
    def __init__(self, top: int = 10) -> None:
        self.top = top

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        out = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        error_file = out / "error.txt"
        if job_return.status == JobStatus.FAILED:
            exc = job_return._return_value
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        else:
            error = error_file.read_text().splitlines()[0] if error_file.is_file() else None
        record = {"status": "failed" if error else "completed", "error": error,
                  "overrides": list(job_return.overrides or [])}
        if not error and isinstance(job_return._return_value, (int, float)):
            record["objective"] = float(job_return._return_value)
        out.mkdir(parents=True, exist_ok=True)
        write_json(record, out / STATUS)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            write_summary(sweep_dir, str(config.get("objective", "sharpe")), self.top)


def job_dirs(sweep_dir: Path) -> list[Path]:
    jobs = [p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")]
    return sorted(jobs, key=lambda p: (len(p.relative_to(sweep_dir).parts), _natural(p.name)))


def _natural(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def collect(sweep_dir: Path) -> "Any":
    """One row per job folder, completed or not."""
    import pandas as pd
    import yaml

    rows = []
    for job in job_dirs(sweep_dir):
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
        status = json.loads((job / STATUS).read_text()) if (job / STATUS).is_file() else {}
        row: dict[str, Any] = {"job": str(job.relative_to(sweep_dir)), "overrides": " ".join(overrides)}
        metrics_file = job / "metrics.json"
        if metrics_file.is_file():
            metrics = json.loads(metrics_file.read_text())
            row["status"] = "completed"
            row.update({k: v for k, v in metrics.items() if not isinstance(v, (dict, list))})
        else:
            error = status.get("error")
            if error is None and (job / "error.txt").is_file():
                error = (job / "error.txt").read_text().strip()
            row["status"] = status.get("status", "failed") if error or status else "incomplete"
            row["error"] = error
        rows.append(row)
    return pd.DataFrame(rows)


def returns_matrix(sweep_dir: Path, jobs: list[str]) -> "Any":
    """Daily returns of the given jobs, side by side on their common dates."""
    import pandas as pd

    columns = {job: pd.read_csv(sweep_dir / job / "returns.csv", index_col=0)["return"] for job in jobs}
    return pd.DataFrame(columns).dropna()


def write_summary(sweep_dir: Path, objective: str, top: int = 10) -> None:
    table = collect(sweep_dir)
    if table.empty:
        return
    table.to_csv(sweep_dir / "sweep.csv", index=False)
    done = table[table["status"] == "completed"]
    lines = [f"# Sweep summary: {sweep_dir.name}", "",
             f"{len(table)} jobs: {len(done)} completed, {len(table) - len(done)} failed or incomplete.", ""]
    if not done.empty and objective in done:
        ranked = done.sort_values(objective, ascending=objective in LOWER_IS_BETTER, kind="stable")
        cols = ["job", "overrides", objective] + [c for c in ("sharpe", "cagr", "max_drawdown", "turnover")
                                                   if c != objective and c in done]
        lines += [f"## Best {min(top, len(ranked))} by {objective}", "", _markdown(ranked[cols].head(top)), ""]
        stats = overfitting(sweep_dir, list(done["job"]))
        if stats:
            lines += ["## Overfitting statistics across the sweep", "",
                      f"- trials: {stats['n_trials']}",
                      f"- best by Sharpe: job {stats['best']} (annualised Sharpe {_fmt(stats['sharpe_annual'])})",
                      f"- Deflated Sharpe Ratio of the best (Bailey & Lopez de Prado 2014): {_fmt(stats['dsr'])}",
                      f"- Probability of Backtest Overfitting, CSCV with {stats['pbo_splits']} splits "
                      f"(Bailey et al. 2015): {_fmt(stats['pbo'])}", ""]
            write_json(stats, sweep_dir / "overfitting.json")
    failed = table[table["status"] != "completed"]
    if not failed.empty:
        lines += ["## Failed jobs", ""] + [f"- {r.job} ({r.overrides}): {r.error}" for r in failed.itertuples()] + [""]
    (sweep_dir / "summary.md").write_text("\n".join(lines))
    print("\n".join(lines))


def overfitting(sweep_dir: Path, jobs: list[str]) -> dict[str, Any]:
    from pipeline.overfitting import summary

    if len(jobs) < 2:
        return {}
    returns = returns_matrix(sweep_dir, jobs)
    return summary(returns.to_numpy(), list(returns.columns))


def _fmt(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _markdown(frame: Any) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
