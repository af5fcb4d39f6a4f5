"""What the terminal shows: a progress bar on long runs, a counter line per sweep job, and a
summary table at the end of a run (its headline numbers) or of a sweep (its best jobs)."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import Any


class Progress:
    """A one-line bar on stderr; silent when stderr is not a terminal or the run is short."""

    def __init__(self, label: str, enabled: bool = True, delay: float = 0.5) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.perf_counter()
        self.delay = delay
        self.shown = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        if elapsed < self.delay and done < total:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        eta = elapsed / done * (total - done) if done else math.nan
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                         f"  {elapsed:5.1f}s  eta {eta:4.1f}s ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2%}"


def _num(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2f}"


def summary(metrics: dict[str, Any], cfg: Any, stages: Any, out: Path, elapsed: float) -> None:
    """Print the headline numbers: a two-column table, or one line per job in a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        overrides = " ".join(HydraConfig.get().overrides.task)
        print(f"{job_counter(HydraConfig.get().job.num)}job {HydraConfig.get().job.num}: sharpe "
              f"{_num(metrics['sharpe'])}  cagr {_pct(metrics['cagr'])}  max dd "
              f"{_pct(metrics['max_drawdown'])}  ({elapsed:.2f}s)  [{overrides}]", flush=True)
        return
    names = " | ".join([type(stages.data).__name__] +
                       [type(s).__name__ for s in stages.strategies.values()] +
                       [type(stages.allocator).__name__, type(stages.algo).__name__,
                        type(stages.broker).__name__])
    rows = [
        ("period", f"{metrics['start'][:10]} -> {metrics['end'][:10]}"),
        ("final equity", f"{metrics['final_equity']:,.0f}"),
        ("total return", _pct(metrics["total_return"])),
        ("CAGR", _pct(metrics["cagr"])),
        ("annual vol", _pct(metrics["annual_vol"])),
        ("Sharpe", _num(metrics["sharpe"])),
        ("Sortino", _num(metrics["sortino"])),
        ("max drawdown", _pct(metrics["max_drawdown"])),
        ("Calmar", _num(metrics["calmar"])),
        ("turnover / yr", f"{metrics['turnover']:.2f}x"),
        ("costs", f"{metrics['total_costs']:,.0f}"),
        ("trades", f"{metrics['n_trades']} in {metrics['n_rebalances']} rebalances"),
        ("exposure", _pct(metrics["exposure"])),
    ]
    rows += [("risk" if i == 0 else "", note) for i, note in enumerate(binding_notes(metrics))]
    width = max(len(k) for k, _ in rows)
    lines = [names, "-" * max(len(names), 40)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"{'backtest'.ljust(width)}  {elapsed:.3f}s", f"{'output'.ljust(width)}  {out}"]
    print("\n".join(lines))


BINDING_SHARE = 0.1  # a constraint binding at more decisions than this shapes the run: say so


def binding_notes(metrics: dict[str, Any]) -> list[str]:
    """A line per risk constraint that bound at more than a tenth of the decisions, then the
    cash the targets held on average after risk against what the allocation asked for (the
    book's, one figure for all the constraints); nothing when none did."""
    total = metrics.get("n_decisions") or 0
    bound = [(name, n) for name, n in (metrics.get("risk_binding") or {}).items() if total and n > BINDING_SHARE * total]
    if not bound:
        return []
    return [f"{name} bound at {n} of {total} decisions" for name, n in bound] + [
        f"the targets left {_pct(metrics.get('cash_after_risk'))} in cash on average "
        f"({_pct(metrics.get('cash_before_risk'))} before risk)"]


def job_counter(num: int) -> str:
    """``[3/12] `` for the job numbered 2 of a 12-job sweep (the sweep callback publishes the
    count); empty when the count is unknown."""
    total = os.environ.get("ROBO_TRADER_SWEEP_JOBS", "")
    width = len(total)
    return f"[{num + 1:>{width}}/{total}] " if total.isdigit() else ""


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """A plain text table with aligned columns (numbers right-aligned by column index)."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def sweep_summary(frame: Any, objective: str, stats: dict[str, Any], lower_is_better: tuple,
                  sweep_dir: Path, top: int = 10) -> None:
    """The end of a sweep: how many jobs ran, the best ones as a table, the overfitting figures."""
    done = frame[frame["status"] == "completed"]
    lines = [f"sweep: {len(frame)} jobs, {len(done)} completed, {len(frame) - len(done)} failed or incomplete"]
    if not done.empty and objective in done:
        ranked = done.sort_values(objective, ascending=objective in lower_is_better, kind="stable").head(top)
        cols = [c for c in dict.fromkeys([objective, "sharpe", "cagr", "max_drawdown", "turnover"]) if c in done]
        fmt = {"cagr": _pct, "max_drawdown": _pct, "annual_vol": _pct}
        rows = [[str(r["job"])] + [fmt.get(c, _num)(r[c]) for c in cols] + [str(r["overrides"])]
                for r in ranked.to_dict("records")]
        lines += ["", f"best {len(rows)} by {objective}:",
                  table(["job", *cols, "overrides"], rows, right=set(range(1, len(cols) + 1)))]
    if stats:
        lines += ["", f"overfitting across {stats.get('n_trials')} trials: best job {stats.get('best')} "
                      f"(the first above; Sharpe {_num(stats.get('sharpe_annual'))}), deflated Sharpe ratio {_num(stats.get('dsr'))}, "
                      f"PBO {_num(stats.get('pbo'))}"]
    failed = frame[frame["status"] != "completed"]
    for r in failed.to_dict("records"):
        lines.append(f"failed: job {r['job']} ({r['overrides']}): {r.get('error')}")
    lines += ["", f"summary  {sweep_dir / 'summary.html'}  (and summary.md, sweep.csv)"]
    print("\n".join(lines), flush=True)
