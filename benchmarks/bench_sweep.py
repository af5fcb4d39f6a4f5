"""A 100-job sweep with the joblib launcher on this machine's cores, and the per-job overhead.

    python benchmarks/bench_sweep.py

Sweep: 20 momentum lookbacks x 5 allocations, monthly rebalancing, default data (target: within
60 s on 2 cores). Overhead per job: a 10-job sweep with the basic launcher (one process, so
start-up is paid once) minus the in-process backtests, divided by the jobs. Also counts how
often a job loaded the data rather than reusing it in its worker (``data: loaded`` in run.log).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOOKBACKS = ",".join(str(n) for n in range(42, 42 + 20 * 12, 12))
ALLOCATIONS = "equal_weight,inverse_vol,risk_parity,min_variance,hrp"


def sweep(*args: str) -> tuple[float, Path]:
    out = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", *args, f"hydra.sweep.dir={out}"],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start, out


def startup() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run.py"), "--cfg", "job"], cwd=ROOT, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    wall, out = sweep("hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"strategy.momentum.lookback={LOOKBACKS}", f"allocation={ALLOCATIONS}")
    jobs = sorted(out.glob("*/metrics.json"))
    logs = [p.read_text() for p in out.glob("*/run.log")]
    loads = sum("data: loaded" in text for text in logs)
    print(f"100-job sweep, joblib, 2 workers: {wall:.1f} s wall ({len(jobs)} jobs finished, "
          f"data loaded {loads} times, reused {len(logs) - loads} times); target 60 s")

    boot = startup()
    ten, _ = sweep(f"strategy.momentum.lookback={','.join(LOOKBACKS.split(',')[:10])}")
    sys.path.insert(0, str(ROOT))
    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars
    from plugins.allocation.equal_weight import EqualWeight
    from plugins.broker.sim import SimBroker
    from plugins.data.sp500 import SP500
    from plugins.execution.market import Market
    from plugins.risk.max_gross_leverage import MaxGrossLeverage
    from plugins.risk.max_weight import MaxWeight
    from plugins.strategy.momentum import Momentum

    data = SP500().load()
    start = time.perf_counter()
    for lookback in LOOKBACKS.split(",")[:10]:
        backtest(data, Momentum(lookback=int(lookback)), EqualWeight(),
                 [("max_weight", MaxWeight()), ("max_gross_leverage", MaxGrossLeverage())], Market(),
                 SimBroker(), decision_bars(data.index, "monthly"), 1e6)
    engine = time.perf_counter() - start
    per_job = (ten - boot - engine) / 10
    print(f"process start-up (imports, Hydra, schemas): {boot:.2f} s, paid once per worker")
    print(f"10 jobs in one process: {ten:.2f} s, of which backtests {engine:.2f} s; "
          f"overhead per job (compose, folders, recording, summary): {per_job:.3f} s")


if __name__ == "__main__":
    main()
