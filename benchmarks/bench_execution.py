"""What smart execution costs in speed: the default run with ``execution=vwap`` against the same
run with ``execution=market`` (issue 4: at most twice), monthly (the default) and daily.

    python benchmarks/bench_execution.py [--repeat N]

Prints, for each schedule, the wall time of the whole ``python run.py`` process (what a user
waits for, and what the target is about; median of N runs) and the in-process backtest time
(median of N after a warm-up; no imports, no data, no files), for market and vwap, and their
ratio. A vwap session builds the intraday bins of its ordered symbols, slices every parent
over them and fills the children bin by bin: about 0.15 ms of numpy calls a session, which
is three times what the whole market backtest spends per decision, so the in-process ratio
is about 3 while the run's is about 1.05 (monthly). Daily rebalancing also writes 13 fills a
parent instead of one, and fills.csv's float formatting shows in its whole-run time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 2.0


def in_process(overrides: list[str], repeat: int) -> float:
    from hydra import compose, initialize_config_dir

    from pipeline.app import config
    from pipeline.backtest.engine import backtest
    from pipeline.app.runner import build_stages
    from pipeline.core.schedule import decision_bars

    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    stages = build_stages(cfg)
    data = stages.data.load()
    decisions = decision_bars(data.index, cfg.schedule.rebalance)
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        backtest(data, stages.strategies, stages.allocator, stages.constraints, stages.algo,
                 stages.broker, decisions, float(cfg.capital), drift=cfg.schedule.drift)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def whole_process(overrides: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides, f"out_dir={out}",
                            "progress=false"], check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for rule in ("monthly", "daily"):
        for kind, measure in (("python run.py", whole_process), ("backtest in-process", in_process)):
            market = measure([f"schedule.rebalance={rule}", "execution=market"], args.repeat)
            vwap = measure([f"schedule.rebalance={rule}", "execution=vwap"], args.repeat)
            default = rule == "monthly" and measure is whole_process  # the target
            rows.append((f"{kind}, {rule}" + (" (default)" if rule == "monthly" else ""),
                         market, vwap, f"<= {TARGET:.0f}" if default else "-"))
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'market s':>9}  {'vwap s':>9}  {'ratio':>6}  target")
    for name, market, vwap, target in rows:
        print(f"{name.ljust(width)}  {market:9.3f}  {vwap:9.3f}  {vwap / market:6.2f}  {target}")


if __name__ == "__main__":
    main()
