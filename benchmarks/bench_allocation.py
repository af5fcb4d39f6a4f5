"""Allocator speed: the ERC solve against skfolio, and every allocator over the sp500 data.

    python benchmarks/bench_allocation.py                # everything (about a minute)
    python benchmarks/bench_allocation.py --quick        # skip skfolio's 200-asset solve and the adapter
    python benchmarks/bench_allocation.py --before main  # the allocator table, this tree and main's
    python benchmarks/bench_allocation.py --hrp          # only HRP's clustering and bisection

Prints the best of several runs in CPU time (the machine is shared: a neighbour's load inflates
wall times, and their median, by 2-3x); nothing is asserted. Targets: issue 3, ERC for 20
assets within 0.2 ms and for 200 within 20 ms, a monthly risk-parity backtest within 0.2 s,
daily 1.5 s; issue 17, min_variance and risk_parity under 60 us per decision for 20 assets,
HRP's work after the covariance within 100 us.

The allocator table times ``weigh`` on every monthly decision with all 20 symbols eligible, and
on momentum's picks (``lookback=30, top_k=15``: the eligible set changes, so warm starts
often cannot be used). ``--before REV`` exports REV's ``pipeline/``, ``plugins/`` and ``conf/``
(``git archive``) to a temporary folder, times the same table there in a child process, and
prints both with the speed-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from pipeline.core import estimators
from pipeline.core.contracts import Allocator
from pipeline.core.params import build
import pipeline
from pipeline.core.schedule import decision_bars
from plugins.allocation._solvers import risk_budget_weights, risk_contributions
from plugins.data.sp500 import SP500
from plugins.strategy.momentum import Momentum

# the tree being timed (a --before child imports another revision's)
ROOT = Path(pipeline.__file__).resolve().parent.parent
CONF = ROOT / "conf" / "allocation"


def best_time(fn, repeat: int, warmup: int = 2) -> float:
    """CPU seconds of one call: the fastest of ``repeat`` samples, each of enough calls to
    last about 2 ms (the clock's own cost stays out of a microsecond's figure)."""
    for _ in range(warmup):
        fn()
    t0 = time.process_time()
    fn()
    calls = max(1, int(0.002 / max(time.process_time() - t0, 1e-7)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - t0) / calls)
    return best


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms"


def erc_solve(returns: np.ndarray, quick: bool) -> None:
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting

    rng = np.random.default_rng(0)
    # 200 assets: a one-factor market with idiosyncratic noise, 504 daily bars
    factor = rng.standard_normal((504, 1)) * 0.01
    wide = factor * rng.uniform(0.3, 1.5, 200) + rng.standard_normal((504, 200)) * rng.uniform(0.005, 0.03, 200)
    cases = {20: returns[-252:], 200: wide}
    print("ERC solve (long-only, variance), CPU time of the best run")
    print(f"{'assets':>8} {'ours cold':>13} {'ours warm':>13} {'skfolio':>13} {'max |RC m - 1|':>16} {'max |w - skfolio|':>18}")
    for m, X in cases.items():
        cov = estimators.sample_covariance(X)
        b = np.full(m, 1.0 / m)
        yesterday = risk_budget_weights(estimators.sample_covariance(X[:-1]), b)
        repeat = 30 if m == 20 else 10
        cold = best_time(lambda: risk_budget_weights(cov, b), repeat)
        warm = best_time(lambda: risk_budget_weights(cov, b, x0=yesterday), repeat)
        w = risk_budget_weights(cov, b)
        err = np.abs(risk_contributions(cov, w) * m - 1).max()
        if quick and m == 200:
            sk_time, diff = float("nan"), float("nan")
        else:
            model = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE)
            sk_time = best_time(lambda: model.fit(X), 20 if m == 20 else 3, warmup=1)
            diff = np.abs(model.weights_ - w).max()
        print(f"{m:>8} {fmt(cold):>13} {fmt(warm):>13} {fmt(sk_time):>13} {err:>16.1e} {diff:>18.1e}")
    print()


def allocator_table(data, quick: bool, daily_walks: bool = True) -> dict[str, dict[str, float]]:
    """Per allocator: seconds for the monthly and (``daily_walks``) daily walks, all symbols
    eligible, and us per monthly decision, all eligible and on momentum's picks."""
    returns = data.returns
    monthly = decision_bars(data.index, "monthly", first=252)
    daily = decision_bars(data.index, "daily", first=252)
    picks = Momentum(lookback=30, top_k=15).signal(data, monthly)
    table = {}
    for path in sorted(CONF.glob("*.yaml")):
        name = path.stem
        if quick and name == "skfolio":
            continue
        node = OmegaConf.load(path)
        alloc = build(node, f"allocation({name})", Allocator)
        if "lookback" in alloc.param_names():
            alloc.lookback = 252
        signals_m = np.ones((monthly.size, data.n_symbols))
        repeat = 1 if name == "skfolio" else 15
        t_month = best_time(lambda: alloc.weigh(returns, signals_m, monthly), repeat, warmup=1)
        t_picks = best_time(lambda: alloc.weigh(returns, picks, monthly), repeat, warmup=1)
        t_day = float("nan")
        if daily_walks and name in ("equal_weight", "inverse_vol", "risk_parity", "risk_budgeting",
                                    "adaptive"):
            signals_d = np.ones((daily.size, data.n_symbols))
            t_day = best_time(lambda: alloc.weigh(returns, signals_d, daily), 3, warmup=1)
        table[name] = {"monthly_s": t_month, "per_decision_us": t_month / monthly.size * 1e6,
                       "picks_us": t_picks / monthly.size * 1e6, "daily_s": t_day,
                       "decisions": monthly.size, "daily_decisions": daily.size}
    return table


def every_allocator(data, quick: bool) -> None:
    table = allocator_table(data, quick)
    first = next(iter(table.values()))
    print(f"weigh over the sp500 data ({data.n_symbols} symbols, lookback 252): "
          f"{first['decisions']} monthly and {first['daily_decisions']} daily decisions; "
          f"'picks': momentum's top 15 of 20, long")
    print(f"{'allocator':<16} {'monthly':>12} {'per decision':>14} {'picks':>11} {'daily':>12}")
    for name, row in table.items():
        print(f"{name:<16} {fmt(row['monthly_s']):>12} {row['per_decision_us']:>11.1f} us "
              f"{row['picks_us']:>8.1f} us {fmt(row['daily_s']):>12}")
    print()


def before_after(rev: str, data, quick: bool) -> None:
    """The allocator table of git revision ``rev`` (in a child process) beside this tree's."""
    here = Path(__file__).resolve()
    export = subprocess.run(["git", "archive", rev, "pipeline", "plugins", "conf"],
                            cwd=here.parent.parent, capture_output=True)
    if export.returncode:
        raise SystemExit(f"--before {rev}: git archive failed ({export.stderr.decode().strip()}); "
                         f"give a revision of this repository, e.g. main")
    archive = export.stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": tmp, "PYTHONDONTWRITEBYTECODE": "1"}
        child = subprocess.run([sys.executable, str(here), "--table"] + (["--quick"] if quick else []),
                               env=env, capture_output=True, text=True, check=True)
    before = json.loads(child.stdout)
    after = allocator_table(data, quick, daily_walks=False)
    print(f"us per monthly decision, {rev} -> this tree (20 symbols, lookback 252; CPU time, best run)")
    print(f"{'allocator':<16} {'all: before':>12} {'after':>9} {'x':>6} {'picks: before':>14} {'after':>9} {'x':>6}")
    for name, row in after.items():
        old = before.get(name)
        if old is None:
            continue
        print(f"{name:<16} {old['per_decision_us']:>12.1f} {row['per_decision_us']:>9.1f} "
              f"{old['per_decision_us'] / row['per_decision_us']:>6.1f} {old['picks_us']:>14.1f} "
              f"{row['picks_us']:>9.1f} {old['picks_us'] / row['picks_us']:>6.1f}")
    print()


def estimator_costs(returns: np.ndarray) -> None:
    X = np.asfortranarray(returns[-252:])
    print("estimators on one 252 x 20 window, CPU time of the best run")
    for label, fn in [("sample", lambda: estimators.sample_covariance(X)),
                      ("ledoit_wolf", lambda: estimators.ledoit_wolf_covariance(X)),
                      ("ewma", lambda: estimators.ewma_covariance(X, 63.0)),
                      ("james_stein mean", lambda: estimators.james_stein_mean(X))]:
        print(f"  {label:<18} {best_time(fn, 30) * 1e6:8.1f} us")
    print()


def hrp_after_covariance(data) -> None:
    """HRP's clustering, leaf order and bisection per decision, before and after the numba
    kernel: scipy's public linkage + optimal_leaf_ordering + leaves_list and the numpy
    bisection (the path tests/plugins/allocation/test_hrp.py holds the kernel equal to,
    loaded from there) against ``_hrp_kernel.hrp_weights``, on the same covariances."""
    from plugins.allocation import _hrp_kernel as kernel
    from plugins.allocation.hrp import HRP

    path = Path(__file__).resolve().parent.parent / "tests" / "plugins" / "allocation" / "test_hrp.py"
    spec = importlib.util.spec_from_file_location("test_hrp", path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)

    monthly = decision_bars(data.index, "monthly", first=252)
    windows = [data.returns[t - 251: t + 1] for t in monthly]
    samples = [estimators.sample_covariance(X) for X in windows]
    covs = [estimators.positive_definite(estimators.ledoit_wolf_covariance(X)) for X in windows]
    print(f"HRP after the covariance, per decision over {len(windows)} monthly windows of "
          f"{data.n_symbols} assets (Ledoit-Wolf bisection), median wall time")
    print(f"{'linkage':<10} {'ordering':<9} {'scipy + numpy':>15} {'numba kernel':>14} {'speed-up':>9}")
    for linkage in kernel.METHODS:
        code = kernel.METHODS[linkage]
        for optimal in (True, False):
            def before():
                for X, cov in zip(windows, covs):
                    order = reference.scipy_order(reference.scipy_condensed(X), linkage, optimal)
                    reference.python_bisection(cov, order)

            def after():
                for S, cov in zip(samples, covs):
                    kernel.hrp_weights(S, cov, code, optimal)

            t_before = best_time(before, 3, warmup=1) / len(windows)
            t_after = best_time(after, 5, warmup=1) / len(windows)
            print(f"{linkage:<10} {'optimal' if optimal else 'tree':<9} {t_before * 1e6:>12.1f} us "
                  f"{t_after * 1e6:>11.1f} us {t_before / t_after:>8.1f}x")
    signals = np.ones((monthly.size, data.n_symbols))
    alloc = HRP()
    cpu = best_time(lambda: alloc.weigh(data.returns, signals, monthly), 5, warmup=1)
    print(f"whole decision, HRP() as configured (window, Ledoit-Wolf, kernel): "
          f"{cpu / monthly.size * 1e6:.1f} us CPU")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow skfolio runs")
    parser.add_argument("--before", metavar="REV", help="the allocator table only, REV's (a git "
                        "revision, e.g. main) beside this tree's")
    parser.add_argument("--table", action="store_true", help=argparse.SUPPRESS)  # --before's child
    parser.add_argument("--hrp", action="store_true", help="only HRP after the covariance")
    args = parser.parse_args()
    data = SP500().load()
    if args.hrp:
        hrp_after_covariance(data)
        return
    if args.table:
        print(json.dumps(allocator_table(data, args.quick, daily_walks=False)))
        return
    if args.before:
        before_after(args.before, data, args.quick)
        return
    clean = data.returns[1:]
    erc_solve(clean, args.quick)
    estimator_costs(clean)
    every_allocator(data, args.quick)
    hrp_after_covariance(data)


if __name__ == "__main__":
    main()
