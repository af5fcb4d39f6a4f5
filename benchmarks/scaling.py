"""How robo-trader's backtest grows with symbols and with bars (issue 9).

    python benchmarks/scaling.py                 # every size (~6 minutes; 2,000 symbols is most)
    python benchmarks/scaling.py --quick         # without the 2,000-symbol run
    python benchmarks/scaling.py --write         # also rewrite the table in benchmarks/README.md

A monthly risk-parity (ERC, Ledoit-Wolf, 252 bars) backtest of a long book of every symbol,
VWAP execution (``plugins.execution.vwap.VWAP``, 13 simulated intraday bins) and the simulated
broker with its default costs, on seeded synthetic OHLCV (``plugins.data.synthetic.Synthetic``,
seed 7): 20, 200 and 2,000 symbols x 8,000 bars, and 20 symbols x 2,000, 8,000 and 32,000
bars. If VWAP does not import or run, market execution is used and the table says so.

Each size runs in a fresh process, so that its peak resident memory (``ru_maxrss``) is its own:
the data are generated (timed apart: "data s"), one warm-up backtest runs on a small slice
(imports, first calls), then the full backtest runs ``--repeat`` times (median; 1 time from
1,000 symbols up). The allocator alone (``RiskParity.weigh`` over the same decisions) is timed
in the same process: the symbol growth of the whole backtest is to be compared with the
allocator's own growth (an ERC solve is cubic in the symbols, its covariance quadratic).
"without solver s" is the same backtest with equal weight instead of ERC (every symbol still
traded at every decision): the engine, VWAP and the broker without the solver.

BLAS threads: every size runs with ``OPENBLAS_NUM_THREADS=1`` (and the MKL/OpenMP equivalents)
unless ``--blas-threads`` says otherwise. On this shared 2-core machine OpenBLAS's default
(2 threads) makes the per-decision ERC solves 10-20 times slower whenever another process
holds a core (threads wait for each other on 200 x 200 products), which would make the growth
factors meaningless; ``--contention`` adds rows at 200 symbols with the default threads to
show it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

SIZES = ((20, 8000), (200, 8000), (2000, 8000), (20, 2000), (20, 32000))
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one(n_symbols: int, n_bars: int, repeat: int) -> dict:
    """Run one size in this process; returns the measurements (called in a child process)."""
    import numpy as np

    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars
    from plugins.allocation.risk_parity import RiskParity
    from plugins.broker.sim import SimBroker
    from plugins.data.synthetic import Synthetic
    from plugins.execution.market import Market
    from plugins.strategy.buy_and_hold import BuyAndHold

    from plugins.allocation.equal_weight import EqualWeight

    def run(data, algo, allocator=RiskParity):
        return backtest(data, BuyAndHold(), allocator(), [], algo, SimBroker(),
                        decision_bars(data.index, "monthly"), 1e6)

    execution, why = "vwap", ""
    try:
        from plugins.execution.vwap import VWAP
        run(Synthetic(n_symbols=3, n_bars=400, seed=7).load(), VWAP())
        make_algo = VWAP
    except Exception as exc:  # noqa: BLE001 -- any failure: fall back, and say why
        execution, why = "market", f"VWAP unavailable ({type(exc).__name__}: {exc})"
        make_algo = Market

    start = time.perf_counter()
    data = Synthetic(n_symbols=n_symbols, n_bars=n_bars, seed=7).load()
    load_s = time.perf_counter() - start
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    run(data.view(min(n_bars, 600)), make_algo())   # warm-up: first calls, lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        ledger = run(data, make_algo())
        times.append(time.perf_counter() - start)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # the same backtest with equal weight: every symbol traded at every decision as with
    # ERC, so it is the engine, execution and broker without the solver
    rest = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(data, make_algo(), EqualWeight)
        rest.append(time.perf_counter() - start)

    at = decision_bars(data.index, "monthly")
    at = at[at <= data.n_bars - 2]
    signals = np.ones((at.size, n_symbols))
    returns = data.returns
    alloc = []
    for _ in range(repeat):
        start = time.perf_counter()
        RiskParity().weigh(returns, signals, at)
        alloc.append(time.perf_counter() - start)
    return {"symbols": n_symbols, "bars": n_bars, "execution": execution, "why": why,
            "decisions": int(at.size), "fills": int(ledger.fills["bar"].size),
            "load_s": load_s, "backtest_s": statistics.median(times), "runs": repeat,
            "alloc_s": statistics.median(alloc), "rest_s": statistics.median(rest),
            "rss_data_mib": rss_data / 1024,
            "rss_peak_mib": rss_peak / 1024, "final_equity": float(ledger.equity[-1]),
            "data_mib": sum(a.nbytes for a in (data.open, data.high, data.low, data.close,
                                               data.volume) if a is not None) / 2**20}


def measure(n_symbols: int, n_bars: int, repeat: int, blas_threads: str) -> dict:
    env = dict(os.environ)
    for var in BLAS_VARS:
        if blas_threads == "default":
            env.pop(var, None)
        else:
            env[var] = blas_threads
    out = subprocess.run([sys.executable, __file__, "--one", str(n_symbols), str(n_bars),
                          "--repeat", str(repeat)], check=True, capture_output=True, text=True,
                         cwd=ROOT, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["blas_threads"] = blas_threads
    return result


def table(rows: list[dict]) -> str:
    """Rows in the order measured; growth is against the previous row of the same series."""
    lines = ["| series | symbols x bars | execution | BLAS threads | runs | data s | backtest s "
             "| growth | allocator alone s | allocator growth | without solver s | growth w/o solver | RSS after data MiB "
             "| peak RSS MiB | RSS growth |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    prev: dict[str, dict] = {}
    for r in rows:
        series = r["series"]
        p = prev.get(series)
        rest = r["rest_s"]
        if p is None:
            growth = agrowth = rgrowth = mgrowth = "-"
        else:
            step = (r["symbols"] / p["symbols"]) * (r["bars"] / p["bars"])
            growth = f"{r['backtest_s'] / p['backtest_s']:.1f} (size x{step:g})"
            agrowth = f"{r['alloc_s'] / p['alloc_s']:.1f}"
            rgrowth = f"{rest / p['rest_s']:.1f}"
            mgrowth = f"{r['rss_peak_mib'] / p['rss_peak_mib']:.1f}"
        execution = r["execution"] + (f" ({r['why']})" if r["why"] else "")
        lines.append(f"| {series} | {r['symbols']:,} x {r['bars']:,} | {execution} "
                     f"| {r['blas_threads']} | {r['runs']} | {r['load_s']:.2f} "
                     f"| {r['backtest_s']:.3f} | {growth} | {r['alloc_s']:.3f} | {agrowth} "
                     f"| {rest:.3f} | {rgrowth} | {r['rss_data_mib']:,.0f} | {r['rss_peak_mib']:,.0f} "
                     f"| {mgrowth} |")
        if series != "contention":
            prev[series] = r
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=2, type=int, metavar=("SYMBOLS", "BARS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per size (below 1,000 symbols)")
    parser.add_argument("--quick", action="store_true", help="skip 2,000 symbols")
    parser.add_argument("--blas-threads", default="1", help="OPENBLAS_NUM_THREADS for the runs, "
                        "or 'default' to leave it unset")
    parser.add_argument("--contention", action="store_true",
                        help="add 200 symbols x 8,000 bars with OpenBLAS's default threads")
    parser.add_argument("--write", action="store_true", help="rewrite the table in benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one, args.repeat)))
        return

    plan = [("symbols", s, b) for s, b in SIZES[:3]] + [("bars", s, b) for s, b in
                                                       (SIZES[3], SIZES[0], SIZES[4])]
    if args.quick:
        plan = [p for p in plan if p[1] < 1000]
    rows, cache = [], {}
    for series, n_sym, n_bars in plan:
        key = (n_sym, n_bars)
        if key not in cache:
            repeat = 1 if n_sym >= 1000 else args.repeat
            cache[key] = measure(n_sym, n_bars, repeat, args.blas_threads)
            r = cache[key]
            print(f"  {n_sym} x {n_bars}: backtest {r['backtest_s']:.3f} s, allocator "
                  f"{r['alloc_s']:.3f} s, peak RSS {r['rss_peak_mib']:.0f} MiB", flush=True)
        rows.append({**cache[key], "series": series})
    if args.contention:
        r = measure(200, 8000, args.repeat, "default")
        print(f"  200 x 8000, default BLAS threads: backtest {r['backtest_s']:.3f} s", flush=True)
        rows.append({**r, "series": "contention"})

    from peers import machine, write_section

    text = f"Machine: {machine()}\n\n{table(rows)}"
    print()
    print(text)
    if args.write:
        write_section("scaling", text)


if __name__ == "__main__":
    main()
