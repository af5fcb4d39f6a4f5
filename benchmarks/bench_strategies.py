"""Speed of every strategy's signal() over the full default data (sp500: 20 stocks x 8,313 days).

    python benchmarks/bench_strategies.py            # the table below
    python benchmarks/bench_strategies.py --slow     # adds pairs with statsmodels' coint (AIC lags)
    python benchmarks/bench_strategies.py --expressions   # only the factor-expression figures

Factor expressions (issue 20.6): one evaluation of a five-operator formula over the whole
sp500 panel (target: 20 ms), and the eight ``alpha101_*`` presets together over the bundled
OHLCV data, ``data=stocks`` (target: 0.5 s); the median and the best of fifteen runs after one
warm-up run, and the median CPU time of the process (``time.process_time``: on a shared,
oversubscribed machine the wall time also counts the waits for a core, the CPU time does not;
these operators run on one thread).

One call of ``signal(data, at)`` with ``at`` every month-end from the strategy's warm-up, as the
engine makes it (schedule.rebalance=monthly). Strategies with a config file are built from it
(``conf/strategy/<name>.yaml``), so the figures are for the shipped defaults: ``ml`` refits a
ridge regression every month on an expanding window; ``ml_forest`` a 50-tree random forest every
quarter on ten years. Time is the median of three runs (one run when a run takes over 5 s), after
a warm-up on a short slice that pays the imports. The microstructure row is a synthetic order book
of 100,000 events (about 1.4 hours of trading) with a decision every second.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def from_yaml(name: str, **override):
    from hydra import compose, initialize_config_dir

    from pipeline.app import config
    from pipeline.core.contracts import Strategy
    from pipeline.core.params import build

    config.register()
    # composed as run.py does, so a file's defaults (shared features) are included
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        node = compose(config_name="config", overrides=[f"strategy={name}"]).strategy[name]
    for key, value in override.items():
        node[key] = value
    return build(node, f"strategy.{name}", Strategy, seed=7)


def cases(slow: bool):
    from plugins.strategy.momentum import Momentum
    from plugins.strategy.pairs import Pairs

    out = [
        ("momentum (12-1, top 5)", lambda: from_yaml("momentum")),
        ("momentum, time-series, long-short, vol target 40 %",
         lambda: Momentum(mode="time_series", top_k=None, long_short=True, vol_target=0.4)),
        ("fast_momentum (63-5, top 3)", lambda: from_yaml("fast_momentum")),
        ("mean_reversion, price z (20 bars)", lambda: from_yaml("mean_reversion")),
        ("mean_reversion, market residual z (60 bars)",
         lambda: from_yaml("mean_reversion", series="residual", lookback=60)),
        ("pairs, Engle-Granger + BH, OLS hedge, quarterly", lambda: from_yaml("pairs")),
        ("pairs, rolling hedge", lambda: from_yaml("pairs", hedge="rolling")),
        ("pairs, Kalman hedge", lambda: from_yaml("pairs", hedge="kalman")),
        ("pairs, no correction (trades more)", lambda: from_yaml("pairs", correction="none")),
        ("ml, ridge, monthly refit (expanding)", lambda: from_yaml("ml")),
        ("ml, logistic regression, monthly refit",
         lambda: from_yaml("ml", model={"_target_": "sklearn.linear_model.LogisticRegression"})),
        ("ml_forest, random forest, quarterly refit", lambda: from_yaml("ml_forest")),
        ("regime, volatility gate on momentum", lambda: from_yaml("regime")),
        ("regime, Markov switching (yearly refit)", lambda: from_yaml("regime", method="markov")),
        ("expression (12-1 momentum rank, vol filter)", lambda: from_yaml("expression")),
        ("meta_label on mean_reversion, ATR barriers", lambda: from_yaml("meta_label")),
        ("pca_residual, 3 components, monthly PCA", lambda: from_yaml("pca_residual")),
        ("johansen_basket, baskets of 3, quarterly", lambda: from_yaml("johansen_basket")),
    ]
    if slow:
        out.append(("pairs, statsmodels coint with AIC lags", lambda: Pairs(adf_lags=None)))
    return out


def timed(make, data, at) -> tuple[float, int]:
    strategy = make()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        strategy.signal(data, at)
        times.append(time.perf_counter() - start)
        if times[-1] > 5.0:
            break
    return statistics.median(times), len(times)


FIVE_OPERATORS = "rank(ts_mean(returns, 21) / ts_std(returns, 63))"  # returns ts_mean / ts_std rank


def run_times(fn, runs: int = 15) -> tuple[float, float, float]:
    """(median, best, median CPU) seconds of ``runs`` calls after a warm-up call."""
    fn()
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), min(times), statistics.median(cpu)


def expressions() -> list[tuple[str, tuple[float, float, float], float]]:
    """(what, (median, best, CPU) seconds, target seconds) for the factor-expression figures."""
    from plugins.data.sp500 import SP500
    from plugins.data.stocks import Stocks
    from plugins.strategy._expr import compile_formula

    sp500, stocks = SP500().load(), Stocks().load()
    five = compile_formula(FIVE_OPERATORS)
    alphas = sorted(p.stem for p in (ROOT / "conf" / "strategy").glob("alpha101_*.yaml"))
    built = [from_yaml(name) for name in alphas]
    return [(f"{FIVE_OPERATORS} on sp500 ({sp500.n_symbols} x {sp500.n_bars:,})",
             run_times(lambda: five.evaluate(sp500)), 0.020),
            (f"the {len(built)} alpha101 presets on stocks ({stocks.n_symbols} x {stocks.n_bars:,})",
             run_times(lambda: [s.scores(stocks) for s in built]), 0.5)]


def main() -> None:
    from pipeline.core.schedule import decision_bars
    from plugins.data.lob_synthetic import synthetic_book
    from plugins.data.sp500 import SP500
    from plugins.strategy.microstructure import Microstructure

    rows_expr = expressions()
    width = max(len(r[0]) for r in rows_expr)
    print(f"{'factor expression'.ljust(width)}  {'median s':>8}  {'best s':>8}  {'CPU s':>8}  target s")
    for name, (median, best, cpu), target in rows_expr:
        print(f"{name.ljust(width)}  {median:8.4f}  {best:8.4f}  {cpu:8.4f}  {target:g}")
    if "--expressions" in sys.argv:
        return
    print()
    slow = "--slow" in sys.argv
    data = SP500().load()
    rows = []
    for name, make in cases(slow):
        strategy = make()
        at = decision_bars(data.index, "monthly", first=strategy.warmup())
        at = at[at <= data.n_bars - 2]
        short = data.view(min(data.n_bars, strategy.warmup() + 300))
        strategy.signal(short, at[at < short.n_bars][:3])        # imports, caches
        seconds, runs = timed(make, data, at)
        rows.append((name, at.size, seconds, runs))

    book = synthetic_book(n_events=100_000, seed=7)
    decisions = book.decision_rows(every=1.0)
    Microstructure().signal(book.view(1000), decisions[decisions < 1000][:5])
    seconds, runs = timed(Microstructure, book, decisions)
    rows.append((f"microstructure, synthetic book ({book.n_rows:,} rows), every second",
                 decisions.size, seconds, runs))

    width = max(len(r[0]) for r in rows)
    print(f"sp500: {data.n_symbols} symbols x {data.n_bars:,} bars, monthly decisions")
    print(f"{'strategy'.ljust(width)}  {'decisions':>9}  {'signal() s':>10}  runs")
    for name, n, seconds, runs in rows:
        print(f"{name.ljust(width)}  {n:9d}  {seconds:10.3f}  {runs:4d}")


if __name__ == "__main__":
    main()
