"""Sweep speed and memory: the batched launcher, its summary at scale, and the joblib baseline.

    python benchmarks/bench_sweep.py                      # 1,000 jobs, hydra/launcher=batch, 2 workers
    python benchmarks/bench_sweep.py --jobs 10000         # 10,000 jobs (targets: 5 min, 2 GB)
    python benchmarks/bench_sweep.py --summary 10000      # the summary alone, on a store of N synthetic jobs
    python benchmarks/bench_sweep.py --joblib             # the 100-job joblib sweep and its per-job overhead

Batched sweep: momentum lookback x top_k x 5 allocations (equal_weight, inverse_vol,
risk_parity, min_variance, hrp), monthly rebalancing, default data and costs; prints the wall
time, the summary's time (the end-of-sweep callback, timed again in this process on the same
folder), the peak memory of the whole sweep (the summed RSS of the driver and its workers,
sampled every 0.2 s) and the store's bytes per job. Targets (issue 17): 1,000 jobs within 30 s,
10,000 within 5 minutes with the summary within 10 s, 2 GB, 50 KB a job.

``--summary N``: N jobs of random returns on the bundled data's calendar, written to a store
as a sweep's workers write it (metrics computed from those returns), then the summary
(sweep.csv, summary.md/.html, overfitting.json with DSR and PBO over all N) timed.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ALLOCATIONS = "equal_weight,inverse_vol,risk_parity,min_variance,hrp"


def grid(jobs: int) -> list[str]:
    """lookback x top_k x 5 allocations with about ``jobs`` combinations."""
    per_alloc = jobs // 5
    top_ks = [k for k in range(1, 21)][:max(1, min(20, per_alloc // 10))]
    n_lookbacks = max(1, per_alloc // len(top_ks))
    lookbacks = [24 + 3 * i for i in range(n_lookbacks)]  # above the default skip of 21
    return [f"strategy.momentum.lookback={','.join(map(str, lookbacks))}",
            f"strategy.momentum.top_k={','.join(map(str, top_ks))}", f"allocation={ALLOCATIONS}"]


def tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


def batched(jobs: int, workers: int) -> None:
    out = Path(tempfile.mkdtemp(prefix="bench_sweep_")) / "sweep"
    args = [sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=batch", f"hydra.launcher.workers={workers}",
            *grid(jobs), "progress=false", f"hydra.sweep.dir={out}"]
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=out.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    watcher.join()
    if proc.returncode:
        sys.exit(err[-3000:])
    from pipeline.research import store
    from pipeline.research.sweep import write_summary

    start = time.perf_counter()
    write_summary(out, "sharpe")
    summary = time.perf_counter() - start
    rows = store.read_table(out)
    size = sum(p.stat().st_size for p in (out / "store").glob("*.parquet"))
    print(f"{len(rows)}-job batched sweep, {workers} workers: {wall:.1f} s wall "
          f"({(rows['status'] == 'completed').sum()} completed); summary {summary:.1f} s; "
          f"peak memory {peak[0] / 2**30:.2f} GB; store {size / len(rows) / 1024:.1f} KB per job  ({out})")


def synthetic_summary(n: int) -> None:
    import numpy as np

    from pipeline.research import store
    from pipeline.research.sweep import write_summary
    from pipeline.results import metrics as m
    from pipeline.results.recorder import to_json
    from plugins.data.sp500 import SP500

    out = Path(tempfile.mkdtemp(prefix="bench_summary_"))
    times = SP500().load().index.tz_convert("UTC")
    cal = store.write_calendar(out, times)
    rng = np.random.default_rng(17)
    ppy = m.periods_per_year(times)
    for b in range(0, n, 100):
        rows = []
        for job in range(b, min(n, b + 100)):
            first = int(rng.integers(22, 300))
            r = rng.normal(0.0004, 0.012, size=len(times) - first)
            equity = 1e6 * np.cumprod(np.concatenate([[1.0], 1 + r]))
            metrics = {"sharpe": m.sharpe(r, ppy), "cagr": m.cagr(equity, times[first - 1:]),
                       "max_drawdown": m.max_drawdown(equity), "annual_vol": m.annual_vol(r, ppy)}
            rows.append({"job": job, "overrides": [f"strategy.momentum.lookback={job}"], "status": "completed",
                         "objective": metrics["sharpe"], "metrics": to_json(metrics), "calendar": cal,
                         "first": first, **store.returns_fields(r)})
        store.write_batch(out, f"batch-{b:07d}", rows)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    write_summary(out, "sharpe")
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = sum(p.stat().st_size for p in (out / "store").glob("*.parquet"))
    print(f"summary of {n} synthetic jobs of {len(times)} bars: {wall:.1f} s; peak RSS {peak / 2**20:.2f} GB "
          f"(before the summary {before / 2**20:.2f} GB); store {size / n / 1024:.1f} KB per job  ({out})")


def joblib_baseline() -> None:
    lookbacks = ",".join(str(n) for n in range(42, 42 + 20 * 12, 12))
    out = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    f"strategy.momentum.lookback={lookbacks}", f"allocation={ALLOCATIONS}", f"hydra.sweep.dir={out}"],
                   cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start
    print(f"100-job sweep, joblib, 2 workers: {wall:.1f} s wall ({len(list(out.glob('*/metrics.json')))} jobs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--summary", type=int, metavar="N", help="time the summary on N synthetic jobs")
    parser.add_argument("--joblib", action="store_true", help="the 100-job joblib sweep instead")
    args = parser.parse_args()
    if args.summary:
        synthetic_summary(args.summary)
    elif args.joblib:
        joblib_baseline()
    else:
        batched(args.jobs, args.workers)


if __name__ == "__main__":
    main()
