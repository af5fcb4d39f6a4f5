"""What a multirun leaves behind: ``sweep.csv``, ``summary.md`` and the overfitting statistics.

Registered in ``conf/config.yaml`` as a Hydra callback. Each job writes ``status.json`` when it
ends (completed or failed, with the error), so a failing job is recorded and never costs the
others their results; at the end of the sweep the callback reads every job folder (whatever
launcher ran them: basic, joblib, submitit) and writes into the sweep folder:

- ``sweep.csv``: one row per job: its number, overrides, status, error and metrics;
- ``summary.md``: the best jobs by the configured objective, and across all completed jobs the
  number of trials, the Deflated Sharpe Ratio of the best one (the table's first, ``BEST``) and
  the Probability of Backtest Overfitting (``pipeline.research.overfitting``), computed from the jobs'
  ``returns.csv``;
- ``summary.html``: the same as a page (self-contained, like each job's ``report.html``, which
  it links): the table of jobs, a heatmap of the objective over the two swept parameters that
  take the most values, and the overfitting statistics.

A batched sweep (``hydra/launcher=batch``) has no folder per job: the same outputs are built
from its store (``pipeline.research.store``), the overfitting statistics streamed from it.

The terminal gets a counter line per finished job (``[3/12] job 2: sharpe ...``) and, at the
end, the best jobs as a table.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from pipeline.report import console
from pipeline.report.charts import figure, heatmap
from pipeline.report.format import esc, money, num, pct
from pipeline.report.page import html_table, page, section
from pipeline.research import store
from pipeline.research.overfitting import summary
from pipeline.results.metrics import periods_per_year
from pipeline.results.recorder import write_json

STATUS = "status.json"
TOTAL_ENV = "ROBO_TRADER_SWEEP_JOBS"
LOWER_IS_BETTER = ("annual_vol", "turnover", "total_costs")
# what "best" means in every output of a sweep (the table, summary.md, overfitting.json, the terminal)
BEST = ("The best job is the first of the table ranked by {objective} (each job's metrics.json, over its "
        "own bars); the Deflated Sharpe Ratio deflates its Sharpe ratio over those bars, the same figure as "
        "its metrics.json. CSCV, for the PBO, ranks the jobs by Sharpe ratio on the {common} bars they all have.")


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

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        # the job count, for the per-job counter lines (read by jobs in this process or, through
        # the environment, in launcher workers started after this)
        total = planned_jobs(config)
        if total:
            os.environ[TOTAL_ENV] = str(total)
        else:
            os.environ.pop(TOTAL_ENV, None)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            write_summary(sweep_dir, str(config.get("objective", "sharpe")), self.top)


def planned_jobs(config: Any) -> int | None:
    """How many jobs the sweep will run, when the sweeper says it in advance: the product of
    the swept values' counts for Hydra's basic sweeper, ``n_trials`` for Optuna."""
    try:
        sweeper = config.hydra.sweeper
        target = str(sweeper.get("_target_", ""))
        if target.endswith("BatchSweeper") and sweeper.get("n_trials"):
            return int(sweeper.n_trials)
        if target.endswith(("BasicSweeper", "BatchSweeper")):
            from hydra.core.override_parser.overrides_parser import OverridesParser

            args = list(config.hydra.overrides.task)
            args += [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
            total = 1
            for override in OverridesParser.create().parse_overrides(args):
                if override.is_sweep_override():
                    total *= len(list(override.sweep_string_iterator()))
            return total
        if "optuna" in target.lower() and sweeper.get("n_trials"):
            return int(sweeper.n_trials)
    except Exception:  # a count is a nicety: never stop a sweep over it
        return None
    return None


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
    """The given jobs' bar returns side by side on a DatetimeIndex, NaN where a job has none
    (before its first decision)."""
    import pandas as pd

    columns = {job: pd.read_csv(sweep_dir / job / "returns.csv", index_col=0, parse_dates=True)["return"]
               for job in jobs}
    return pd.DataFrame(columns)


def write_summary(sweep_dir: Path, objective: str, top: int = 10) -> None:
    batched = store.has_store(sweep_dir)  # a batched sweep (hydra/launcher=batch): its store, not job folders
    table = store.sweep_table(sweep_dir) if batched else collect(sweep_dir)
    if table.empty:
        return
    table.to_csv(sweep_dir / "sweep.csv", index=False)
    done = table[table["status"] == "completed"]
    stats: dict[str, Any] = {}
    lines = [f"# Sweep summary: {sweep_dir.name}", "",
             f"{len(table)} jobs: {len(done)} completed, {len(table) - len(done)} failed or incomplete.", ""]
    if not done.empty and objective in done:
        ranked = done.sort_values(objective, ascending=objective in LOWER_IS_BETTER, kind="stable")
        cols = ["job", "overrides", objective] + [c for c in ("sharpe", "cagr", "max_drawdown", "turnover")
                                                   if c != objective and c in done]
        lines += [f"## Best {min(top, len(ranked))} by {objective}", "", _markdown(ranked[cols].head(top)), ""]
        stats = (store.overfitting if batched else overfitting)(sweep_dir, list(done["job"]),
                                                                 best_job(ranked, objective))
        if stats:
            lines += ["## Overfitting statistics across the sweep", "",
                      BEST.format(objective=objective, common=stats["pbo_n_obs"]), "",
                      f"- trials: {stats['n_trials']}",
                      f"- best: job {stats['best']} (annualised Sharpe {_fmt(stats['sharpe_annual'])} over its "
                      f"{stats['n_obs']} bars)",
                      f"- Deflated Sharpe Ratio of the best (Bailey & Lopez de Prado 2014): {_fmt(stats['dsr'])}",
                      f"- Probability of Backtest Overfitting, CSCV with {stats['pbo_splits']} splits "
                      f"(Bailey et al. 2015): {_fmt(stats['pbo'])}", ""]
            write_json(stats, sweep_dir / "overfitting.json")
    failed = table[table["status"] != "completed"]
    if not failed.empty:
        lines += ["## Failed jobs", ""] + [f"- {r.job} ({r.overrides}): {r.error}" for r in failed.itertuples()] + [""]
    (sweep_dir / "summary.md").write_text("\n".join(lines))
    html = summary_page(sweep_dir, table, objective, stats if not done.empty and objective in done else {}, top)
    tmp = sweep_dir / "summary.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, sweep_dir / "summary.html")
    console.sweep_summary(table, objective, stats if not done.empty and objective in done else {},
                          LOWER_IS_BETTER, sweep_dir, top)


def best_job(ranked: Any, objective: str) -> str | None:
    """The job a sweep selects: the first of the table ranked by the objective with a value."""
    import pandas as pd

    finite = ranked[pd.to_numeric(ranked[objective], errors="coerce").notna()]
    return None if finite.empty else str(finite["job"].iloc[0])


def overfitting(sweep_dir: Path, jobs: list[str], best: str | None = None) -> dict[str, Any]:
    """The overfitting statistics of the sweep's ``best`` job among ``jobs`` (None: the
    highest Sharpe ratio), each job's returns over its own bars (those of its metrics.json)."""
    if not jobs:
        return {}
    returns = returns_matrix(sweep_dir, jobs)
    return summary(returns.to_numpy(), list(returns.columns), best=best,
                   periods_per_year=periods_per_year(returns.index))


def _fmt(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _markdown(frame: Any) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------------------------
# summary.html


def job_overrides(sweep_dir: Path, jobs: list[str]) -> dict[str, dict[str, str]]:
    """Each job's command-line overrides as key -> value (text as written)."""
    import yaml

    items = {}
    for job in jobs:
        path = sweep_dir / job / ".hydra" / "overrides.yaml"
        items[job] = (yaml.safe_load(path.read_text()) or []) if path.is_file() else []
    return override_pairs(items)


def override_pairs(items: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Each job's override lines as key -> value (text as written)."""
    out = {}
    for job, lines in items.items():
        pairs = {}
        for item in lines:
            key, sep, value = str(item).partition("=")
            if sep:
                pairs[key.lstrip("+~")] = value
        out[job] = pairs
    return out


def heatmap_axes(params: dict[str, dict[str, str]]) -> list[str]:
    """The (at most two) swept keys that take the most distinct values, in first-seen order
    among equals; keys with a single value are not swept."""
    order: list[str] = []
    values: dict[str, dict[str, None]] = {}  # ordered sets: a 10,000-job sweep checks them 10,000 times
    for pairs in params.values():
        for key, value in pairs.items():
            if key not in values:
                order.append(key)
                values[key] = {}
            values[key][value] = None
    swept = [k for k in order if len(values[k]) > 1]
    return sorted(swept, key=lambda k: -len(values[k]))[:2]


def _sorted_values(values: list[str]) -> list[str]:
    def number(v: str) -> float | None:
        try:
            return float(v)
        except ValueError:
            return None

    nums = [number(v) for v in values]
    if all(n is not None for n in nums):
        return [v for _, v in sorted(zip(nums, values))]
    return values


def heatmap_grid(table: Any, params: dict[str, dict[str, str]], axes: list[str], objective: str):
    """Rows (second axis, or one row), columns (first axis), mean objective and job count per cell."""
    import numpy as np

    done = table[table["status"] == "completed"]
    xkey = axes[0]
    ykey = axes[1] if len(axes) > 1 else None
    seen_x: dict[str, None] = {}
    seen_y: dict[str, None] = {}
    for job in table["job"]:
        p = params.get(job, {})
        if xkey in p:
            seen_x[p[xkey]] = None
        if ykey and ykey in p:
            seen_y[p[ykey]] = None
    xs, ys = _sorted_values(list(seen_x)), (_sorted_values(list(seen_y)) if ykey else ["all"])
    col, row = {v: j for j, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    total = np.zeros((len(ys), len(xs)))
    count = np.zeros((len(ys), len(xs)))
    for job, value in zip(done["job"], done[objective]):
        p = params.get(job, {})
        if xkey not in p or (ykey and ykey not in p) or value is None or not math.isfinite(float(value)):
            continue
        i, j = (row[p[ykey]] if ykey else 0), col[p[xkey]]
        total[i, j] += float(value)
        count[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return xs, ys, mean, count


def summary_page(sweep_dir: Path, table: Any, objective: str, stats: dict[str, Any], top: int = 10) -> str:
    """``summary.html``: the jobs, a heatmap over two swept parameters, the overfitting stats."""
    jobs = list(table["job"])
    params = (override_pairs(dict(zip(jobs, table["overrides"].str.split(" "))))
              if store.has_store(sweep_dir) else job_overrides(sweep_dir, jobs))
    done = table[table["status"] == "completed"]
    sections, nav = [], []

    def add(anchor: str, title: str, body: str) -> None:
        nav.append((anchor, title))
        sections.append(section(anchor, title, body))

    # heatmap
    axes = heatmap_axes(params)
    if axes and objective in table and not done.empty:
        xs, ys, mean, count = heatmap_grid(table, params, axes, objective)
        ykey = axes[1] if len(axes) > 1 else "(one row)"
        several = bool((count > 1).any())
        chart = heatmap("chart-heatmap", f"{objective} by {' and '.join(axes)}", xs, ys, mean, axes[0], ykey,
                          counts=count, higher_is_better=objective not in LOWER_IS_BETTER)
        note = (f"Cells hold the {'mean ' if several else ''}{objective} of the completed jobs with those values"
                f"{' (other swept parameters vary inside a cell; hover for the job count)' if several else ''}; "
                f"blank cells have no completed job. {'Greener is better.' if objective not in LOWER_IS_BETTER else 'Greener is better (lower).'}")
        add("heatmap", f"Heatmap of {objective}", figure(f"{objective} by {' and '.join(axes)}", [], chart) +
            f'<p class="note">{esc(note)}</p>')
    else:
        add("heatmap", f"Heatmap of {objective}", '<p class="note">No parameter took more than one value '
            'across the jobs (or no job completed): nothing to map.</p>')

    # overfitting
    if stats:
        rows = [["trials", esc(stats.get("n_trials"))], [f"best job (the table's first by {objective})", esc(stats.get("best"))],
                ["its bars", esc(stats.get("n_obs"))], ["its annualised Sharpe", num(stats.get("sharpe_annual"), 3)],
                ["bars every job has (for PBO)", esc(stats.get("pbo_n_obs"))],
                ["Deflated Sharpe Ratio (Bailey & López de Prado 2014)", num(stats.get("dsr"), 3)],
                ["expected maximum Sharpe under the null (per bar)", num(stats.get("sr0"), 4)],
                [f"Probability of Backtest Overfitting, CSCV with {stats.get('pbo_splits')} splits (Bailey et al. 2015)",
                 num(stats.get("pbo"), 3)],
                ["PBO: median logit", num(stats.get("pbo_logit_median"), 3)],
                ["PBO: probability of an out-of-sample loss", num(stats.get("pbo_prob_oos_loss"), 3)],
                ["PBO: degradation slope (out- on in-sample Sharpe)", num(stats.get("pbo_degradation_slope"), 3)]]
        reasons = [stats[k] for k in ("dsr_reason", "pbo_reason") if stats.get(k)]
        body = html_table(["statistic", "value"], rows) + "".join(f'<p class="note">{esc(x)}</p>' for x in reasons)
        body += ('<p class="note">DSR is the probability that the best job\'s true Sharpe ratio is above zero '
                 'after allowing for the number of trials; PBO is the probability that the configuration best '
                 'in sample ranks below the median out of sample. From a single sweep, treat PBO as a rough '
                 f'figure.</p><p class="note">{esc(BEST.format(objective=objective, common=stats.get("pbo_n_obs")))}</p>')
    else:
        body = '<p class="note">Needs a completed job.</p>'
    add("overfitting", "Overfitting statistics", body)

    # jobs
    metric_cols = [c for c in (objective, "sharpe", "cagr", "annual_vol", "max_drawdown", "turnover", "total_costs")
                   if c in table]
    metric_cols = list(dict.fromkeys(metric_cols))
    ranked = table
    if objective in done and not done.empty:
        order = done.sort_values(objective, ascending=objective in LOWER_IS_BETTER, kind="stable")
        import pandas as pd

        ranked = pd.concat([order, table[table["status"] != "completed"]])
    fmt = {"cagr": pct, "annual_vol": pct, "max_drawdown": pct, "total_costs": money}
    rows = []
    for row in ranked.to_dict("records"):
        job = str(row["job"])
        link = (f'<a href="{esc(job)}/report.html">{esc(job)}</a>'
                if (sweep_dir / job / "report.html").is_file() else esc(job))
        cells = [link, f"<code>{esc(row.get('overrides', ''))}</code>", esc(row.get("status"))]
        for c in metric_cols:
            v = row.get(c)
            cells.append((fmt.get(c, lambda x: num(x, 3)))(v) if row.get("status") == "completed" else "")
        err = row.get("error")
        cells.append(f'<span style="white-space:normal">{esc(err)}</span>' if isinstance(err, str) else "")
        rows.append(cells)
    add("jobs", "Jobs", html_table(["job", "overrides", "status", *metric_cols, "error"], rows, left=3) +
        f'<p class="note">Ranked by {esc(objective)} ({"lower" if objective in LOWER_IS_BETTER else "higher"} '
        'is better); failed and incomplete jobs last. Each job links to its report.</p>')

    n_done = len(done)
    subtitle = esc(f"{len(table)} jobs: {n_done} completed, {len(table) - n_done} failed or incomplete | "
                     f"ranked by {objective}")
    return page(f"robo-trader sweep: {sweep_dir.name}", subtitle, nav, sections)
