"""What the terminal shows: a progress bar on long runs and a summary table at the end."""

from __future__ import annotations

import math
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
        print(f"job {HydraConfig.get().job.num}: sharpe {_num(metrics['sharpe'])}  cagr "
              f"{_pct(metrics['cagr'])}  max dd {_pct(metrics['max_drawdown'])}  [{overrides}]")
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
    width = max(len(k) for k, _ in rows)
    lines = [names, "-" * max(len(names), 40)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"{'backtest'.ljust(width)}  {elapsed:.3f}s", f"{'output'.ljust(width)}  {out}"]
    print("\n".join(lines))
