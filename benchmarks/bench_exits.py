"""What exits cost: the default run (``python run.py``: momentum on the bundled daily data,
monthly decisions) with ``exits=[stop_loss,trailing_stop]`` against the same run without exits.

    python benchmarks/bench_exits.py [--repeat N]

Prints, in-process (medians of N runs after a warm-up, data loaded once; wall-clock and the
process's CPU time, which a machine shared with other work inflates less), the whole run
(stages built, backtest, run folder written: ``pipeline.app.runner.run``) and the backtest
alone, each without and with exits, and their ratios. Target (issue 16.7): the run with exits
costs at most 1.5x the run without.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXITS = ["exits=[stop_loss,trailing_stop]"]
TARGET = 1.5


def _cfg(overrides):
    from hydra import compose, initialize_config_dir

    from pipeline.app import config

    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["progress=false", *overrides])


def _median(go, repeat: int) -> tuple[float, float]:
    go()  # warm-up: imports, the data cache, first calls
    wall, cpu = [], []
    for _ in range(repeat):
        start, used = time.perf_counter(), time.process_time()
        go()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - used)
    return statistics.median(wall), statistics.median(cpu)


def whole_run(overrides, repeat: int) -> tuple[float, float]:
    from pipeline.app.runner import run

    def go():
        with tempfile.TemporaryDirectory() as out:
            run(_cfg([*overrides, f"out_dir={out}"]))
    return _median(go, repeat)


def backtest_only(overrides, repeat: int) -> tuple[float, float]:
    from pipeline.app.runner import build_stages, load_data
    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars

    cfg = _cfg(overrides)

    def go():
        s = build_stages(cfg)
        data = load_data(s.data, cfg.data)
        backtest(data, s.strategies, s.allocator, s.constraints, s.algo, s.broker,
                 decision_bars(data.index, cfg.schedule.rebalance), float(cfg.capital),
                 portfolio=s.portfolio, exits=s.exits)
    return _median(go, repeat)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    rows = []
    for name, measure in (("python run.py, in-process", whole_run), ("backtest alone", backtest_only)):
        plain, with_exits = measure([], args.repeat), measure(EXITS, args.repeat)
        for clock, i in (("wall", 0), ("cpu", 1)):
            rows.append((f"{name} ({clock})", plain[i], with_exits[i], with_exits[i] / plain[i]))
    width = max(len(r[0]) for r in rows)
    print(f"{'case (default config)'.ljust(width)}  {'no exits s':>10}  {'exits s':>8}  {'ratio':>6}")
    for name, plain, with_exits, ratio in rows:
        print(f"{name.ljust(width)}  {plain:10.4f}  {with_exits:8.4f}  {ratio:6.2f}")
    print(f"target: the run with {EXITS[0]} at most {TARGET}x the run without")
    return 0


if __name__ == "__main__":
    sys.exit(main())
