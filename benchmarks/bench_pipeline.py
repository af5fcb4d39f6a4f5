"""Speed of the pipeline spine on the default data (20 stocks x 8,313 days).

    python benchmarks/bench_pipeline.py

Prints the in-process backtest time (median of several runs after a warm-up) for
equal-weight monthly and daily rebalancing with market execution and costs on, and the
wall time of the whole ``python run.py`` process. Targets (issue 2): 0.05 s, 0.25 s, 3 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def in_process(rule: str, repeat: int = 7) -> float:
    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars
    from plugins.allocation.equal_weight import EqualWeight
    from plugins.broker.sim import SimBroker
    from plugins.data.sp500 import SP500
    from plugins.execution.market import Market
    from plugins.risk.max_gross_leverage import MaxGrossLeverage
    from plugins.risk.max_weight import MaxWeight
    from plugins.strategy.buy_and_hold import BuyAndHold

    data = SP500().load()
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        backtest(data, BuyAndHold(), EqualWeight(),
                 [("max_weight", MaxWeight()), ("max_gross_leverage", MaxGrossLeverage())],
                 Market(), SimBroker(), decision_bars(data.index, rule), 1e6)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def whole_process(repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "run.py"), f"out_dir={out}"], check=True,
                           capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rows = [("backtest, equal weight, monthly (in-process)", in_process("monthly"), 0.05),
            ("backtest, equal weight, daily (in-process)", in_process("daily"), 0.25),
            ("python run.py (whole process, default config)", whole_process(), 3.0)]
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'median s':>9}  {'target s':>8}")
    for name, seconds, target in rows:
        print(f"{name.ljust(width)}  {seconds:9.4f}  {target:8.2f}")


if __name__ == "__main__":
    main()
