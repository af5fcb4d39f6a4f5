"""robo-trader against bt and vectorbt on the same backtests (issue 9).

    pip install -e ".[bench]"                      # bt and vectorbt (see benchmarks/README.md)
    python benchmarks/peers.py                     # every case, whole-process times, ~5 minutes
    python benchmarks/peers.py --quick             # fewer repeats, no whole-process times
    python benchmarks/peers.py --write             # also rewrite the tables in benchmarks/README.md

Cases, on the bundled S&P 500 sample (20 stocks x 8,313 daily closes, 1990-2022), one
long-only book of 1,000,000, zero costs:

    equal weight monthly, equal weight daily, inverse volatility monthly (252 bars, sample
    standard deviation, equal weight while fewer than 60 returns), equal risk contribution
    (ERC) monthly.

The convention every tool is held to (robo-trader's): a decision at the close of bar ``t``
uses data up to ``t``, sizes each position to ``w * equity_t / close_t`` shares and trades in
session ``t + 1``; the data has no opens, so the fill is at ``close_{t+1}``. After the fill the
weights are therefore not exactly ``w``. Neither peer does this by default, so:

- bt: the schedule is bt's own (``RunMonthly`` / ``RunDaily``, which fire on the first bar of
  a new period, i.e. the session after the decision), the weights come from bt's algos
  (``SelectAll`` + ``WeighEqually``; inverse volatility from ``ffn.calc_inv_vol_weights`` on a
  252-bar window, since bt's ``WeighInvVol`` takes a calendar ``DateOffset`` that cannot give
  exactly 252 bars), and a 15-line ``LaggedRebalance`` algo replaces bt's ``Rebalance``: bt's
  ``Rebalance`` sizes and fills at the same bar's close (no lag), which is a different
  backtest. ``LaggedRebalance`` computes the shares from the previous close and the equity
  marked there and calls ``transact``; it also skips orders below 1e-7 of equity, as
  robo-trader does. bt lets cash go negative, as robo-trader does.
- vectorbt: ``Portfolio.from_orders`` with ``size_type="targetpercent"`` at the fill rows and
  ``val_price=-inf`` (value the book and convert weights to shares at the *previous* close),
  which is exactly ``w * equity_t / close_t`` shares, filled at the fill row's close. The
  weights are computed the vectorbt way (pandas: ``rolling(252, min_periods=60).std()``).
  vectorbt never lets cash go below zero (a buy it cannot pay is cut to what cash allows),
  while sizing on ``close_t`` and paying ``close_{t+1}`` overspends by
  ``equity_t * (r_target - r_held)`` on the fill day, a few basis points either way; so the
  vectorbt book gets a zero-interest credit line: a ``_credit`` column priced at a constant 1,
  held at -100% of equity (re-targeted at every fill row). Its value is always its cost, so it
  changes no equity, and no buy is ever cut.
- ERC: robo-trader's ``RiskParity`` weights (Ledoit-Wolf, 252 bars, Spinu's Newton) are fed
  to both peers (bt: ``WeighTarget``; vectorbt: the size matrix): the comparison is of the
  backtest engines, not of the solvers. For the same reason robo-trader's timed ERC run gets
  the same table through a ``FixedWeights`` allocator; the full run with the solver is shown
  on its own row.
- Both peers get the closes with a tz-naive index: vectorbt 1.2 on pandas 3 converts a
  tz-aware index to Python objects every time it wraps a result (``pf.value()`` costs ~4x
  more); robo-trader keeps its tz-aware index.

Times are in-process medians over ``--repeat`` runs after one warm-up run (vectorbt's warm-up
also compiles its Numba kernels, or loads them from Numba's on-disk cache); what is timed is
everything from the loaded closes to the equity curve (schedule, weights, simulation). The
machine is shared with other jobs: medians, not means, and the spread is printed.

Unless ``--quick`` or ``--no-whole``, whole processes are timed too: ``python run.py`` with
the equal-weight monthly zero-cost config against a bt script and a vectorbt script that read
the same file, run the same backtest and write the equity curve (``whole_process_scripts``;
their curves are checked against run.py's ``equity.csv``). vectorbt is also timed with an
empty Numba cache (its first run on a machine, or after an upgrade).

Everything runs in one Python environment: bt 1.4.1 and vectorbt 1.2.0 install on Python 3.11
with numpy 2.4 and pandas 3.1 (``--peer-python`` runs only the peer side of the whole-process
comparison with another interpreter, e.g. a separate venv, if that ever stops being true).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.core.contracts import Allocator  # noqa: E402
from pipeline.backtest.engine import backtest  # noqa: E402
from pipeline.core.market import MarketData  # noqa: E402
from pipeline.core.schedule import decision_bars  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
CAPITAL = 1_000_000.0
LOOKBACK, MIN_HISTORY = 252, 60        # inverse volatility's window, as InverseVol's defaults
MIN_ORDER_FRACTION = 1e-7              # robo-trader skips orders below this share of equity
TOLERANCE = 1e-6                       # equity curves "agree" below this relative difference
ZERO_COSTS = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    weighting: str      # equal | inverse_vol | erc
    rule: str           # monthly | daily


CASES = (Case("equal weight, monthly", "equal", "monthly"),
         Case("equal weight, daily", "equal", "daily"),
         Case("inverse volatility, monthly", "inverse_vol", "monthly"),
         Case("equal risk contribution, monthly", "erc", "monthly"))


@dataclasses.dataclass
class Row:
    case: str
    tool: str
    seconds: float
    spread: tuple[float, float]          # min and max of the timed runs
    ratio: float                         # seconds / robo-trader's seconds
    max_rel_diff: float                  # max |equity / robo-trader's equity - 1|
    note: str = ""


# ----------------------------------------------------------------------------- data

def load_sp500(start: Optional[str] = None, end: Optional[str] = None) -> MarketData:
    from plugins.data.sp500 import SP500

    return SP500(start=start, end=end).load()


def naive_closes(data: MarketData) -> pd.DataFrame:
    """The closes as the peers get them: a DataFrame with a tz-naive index."""
    frame = data.frame("close")
    frame.index = frame.index.tz_localize(None)
    return frame


def decisions(data: MarketData, rule: str) -> np.ndarray:
    """robo-trader's decision bars that can trade (the last bar has no next session)."""
    at = decision_bars(data.index, rule)
    return at[at <= data.n_bars - 2]


# ----------------------------------------------------------------------------- robo-trader

class FixedWeights(Allocator):
    """Returns a precomputed ``K x N`` table for exactly the decisions it was computed for:
    robo-trader's engine without the solver, fed what the peers are fed."""

    def __init__(self, at: np.ndarray, weights: np.ndarray) -> None:
        self.at = at
        self.weights = weights

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray) -> np.ndarray:
        if not np.array_equal(at, self.at):
            raise ValueError("FixedWeights: decisions differ from the ones the table was made for")
        return self.weights


def robo_allocator(weighting: str):
    from plugins.allocation.equal_weight import EqualWeight
    from plugins.allocation.inverse_vol import InverseVol
    from plugins.allocation.risk_parity import RiskParity

    return {"equal": lambda: EqualWeight(),
            "inverse_vol": lambda: InverseVol(lookback=LOOKBACK, min_history=MIN_HISTORY),
            "erc": lambda: RiskParity()}[weighting]()


def robo_runner(data: MarketData, rule: str, allocator_factory: Callable[[], Allocator]):
    """A no-argument callable running robo-trader's backtest as benchmarks/bench_pipeline.py
    does (data loaded, components built outside; no recording), returning the equity curve
    from the first decision on and the first decision bar."""
    from plugins.broker.sim import SimBroker
    from plugins.execution.market import Market
    from plugins.strategy.buy_and_hold import BuyAndHold

    bars = decision_bars(data.index, rule)

    def run() -> tuple[np.ndarray, int]:
        ledger = backtest(data, BuyAndHold(), allocator_factory(), [], Market(),
                          SimBroker(**ZERO_COSTS), bars, CAPITAL)
        return ledger.equity, ledger.start
    return run


def erc_table(data: MarketData, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """robo-trader's RiskParity weights at every decision (what the peers are fed)."""
    from plugins.strategy.buy_and_hold import BuyAndHold

    at = decisions(data, rule)
    signals = BuyAndHold().signal(data, at)
    return at, robo_allocator("erc").weigh(data.returns, signals, at)


# ----------------------------------------------------------------------------- bt

def bt_runner(closes: pd.DataFrame, case: Case, erc: Optional[tuple[np.ndarray, np.ndarray]]):
    import bt
    import ffn

    class LaggedRebalance(bt.Algo):
        """Trade, in today's session, to ``w * equity / close`` shares with the equity and
        closes of the previous bar (the decision bar): robo-trader's sizing and lag. bt's own
        ``Rebalance`` would size and fill on today's close."""

        def __init__(self, prices: pd.DataFrame) -> None:
            super().__init__()
            self.prices = prices

        def __call__(self, target) -> bool:
            weights = target.temp.get("weights")
            if weights is None or len(weights) == 0:
                return True
            weights = dict(weights)
            t = self.prices.index.get_loc(target.now) - 1        # the decision bar
            close = self.prices.iloc[t]
            held = {name: c.position for name, c in target.children.items() if c.position}
            equity = target.capital + sum(q * close[name] for name, q in held.items())
            for name in sorted(set(held) | set(weights)):
                q = weights.get(name, 0.0) * equity / close[name] - held.get(name, 0.0)
                if abs(q) * close[name] > MIN_ORDER_FRACTION * equity:
                    target.transact(q, name)
            return True

    class WeighInvVolBars(bt.Algo):
        """bt's inverse-volatility weights (``ffn.calc_inv_vol_weights``: 1 / sample std) on
        the last ``lookback`` returns up to the decision bar; equal weight with fewer than
        ``min_history`` returns (robo-trader's InverseVol defaults)."""

        def __init__(self, prices: pd.DataFrame, lookback: int, min_history: int) -> None:
            super().__init__()
            self.prices, self.lookback, self.min_history = prices, lookback, min_history

        def __call__(self, target) -> bool:
            t = self.prices.index.get_loc(target.now) - 1
            window = self.prices.iloc[max(0, t - self.lookback): t + 1][target.temp["selected"]]
            returns = window.pct_change().iloc[1:]
            if len(returns) < self.min_history:
                target.temp["weights"] = {c: 1.0 / window.shape[1] for c in window.columns}
            else:
                target.temp["weights"] = ffn.calc_inv_vol_weights(returns).dropna().to_dict()
            return True

    def build():
        if case.rule == "monthly":
            when = bt.algos.RunMonthly(run_on_first_date=False)
        else:   # the first bar has no decision before it; the last bar is a fill session
            when = bt.algos.RunDaily(run_on_first_date=False, run_on_last_date=True)
        if case.weighting == "equal":
            algos = [when, bt.algos.SelectAll(), bt.algos.WeighEqually()]
        elif case.weighting == "inverse_vol":
            algos = [when, bt.algos.SelectAll(), WeighInvVolBars(closes, LOOKBACK, MIN_HISTORY)]
        else:
            at, table = erc
            # indexed by the fill session: WeighTarget fires only on those dates
            algos = [bt.algos.WeighTarget(pd.DataFrame(table, index=closes.index[at + 1],
                                                       columns=closes.columns))]
        strategy = bt.Strategy("s", algos + [LaggedRebalance(closes)])
        return bt.Backtest(strategy, closes, initial_capital=CAPITAL, integer_positions=False,
                           progress_bar=False)

    def run() -> np.ndarray:
        result = bt.run(build())
        return result.backtests["s"].strategy.values.to_numpy()[1:]  # bt prepends a day
    return run


# ----------------------------------------------------------------------------- vectorbt

def vbt_runner(closes: pd.DataFrame, case: Case, erc: Optional[tuple[np.ndarray, np.ndarray]]):
    import vectorbt as vbt

    n_bars, n_sym = closes.shape

    def fill_rows() -> np.ndarray:
        """Sessions that follow a decision: the first bar of each month, or every bar."""
        if case.rule == "daily":
            return np.arange(1, n_bars)
        month = closes.index.year * 12 + closes.index.month
        return np.flatnonzero(month[1:] != month[:-1]) + 1

    def target_weights(rows: np.ndarray) -> np.ndarray:
        """Weights decided at the close before each fill row, ``len(rows) x N``."""
        if case.weighting == "equal":
            return np.full((rows.size, n_sym), 1.0 / n_sym)
        if case.weighting == "inverse_vol":
            vol = closes.pct_change().rolling(LOOKBACK, min_periods=MIN_HISTORY).std()
            vol = vol.to_numpy()[rows - 1]
            # a constant column (zero volatility) gets weight 0, as in ffn and robo-trader
            inv = np.divide(1.0, vol, out=np.zeros_like(vol), where=vol > 0)
            total = inv.sum(axis=1, keepdims=True)
            w = np.divide(inv, total, out=np.full_like(inv, 1.0 / n_sym), where=total > 0)
            # too little history (NaN: fewer than MIN_HISTORY returns): equal weight
            return np.where(np.isnan(vol).any(axis=1, keepdims=True), 1.0 / n_sym, w)
        at, table = erc
        if not np.array_equal(at + 1, rows):
            raise RuntimeError("ERC table and vectorbt's schedule disagree")
        return table

    def run() -> np.ndarray:
        rows = fill_rows()
        size = np.full((n_bars, n_sym + 1), np.nan)
        size[rows, :n_sym] = target_weights(rows)
        size[rows, n_sym] = -1.0           # the credit line: short 100% of equity at price 1
        pf = vbt.Portfolio.from_orders(
            closes.assign(_credit=1.0), size=size, size_type="targetpercent",
            val_price=-np.inf,             # value and size at the previous close
            init_cash=CAPITAL, cash_sharing=True, group_by=True, call_seq="auto", fees=0.0,
            freq="1D")
        return pf.value().to_numpy()
    return run


# ----------------------------------------------------------------------------- timing

def timed(fn: Callable, repeat: int, warmup: int = 1):
    """(median, min, max) seconds over ``repeat`` runs after ``warmup`` runs, and the last
    result."""
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), (min(times), max(times)), out


def max_rel_diff(curve: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(curve / reference - 1.0)))


def differences(data: MarketData, case: Case, tools=("bt", "vectorbt")) -> dict[str, float]:
    """Each peer's largest relative equity difference to robo-trader's, untimed (the test)."""
    closes = naive_closes(data)
    erc = erc_table(data, case.rule) if case.weighting == "erc" else None
    weights = (lambda: FixedWeights(*erc)) if erc else (lambda: robo_allocator(case.weighting))
    robo, start = robo_runner(data, case.rule, weights)()
    runners = {"bt": bt_runner, "vectorbt": vbt_runner}
    return {tool: max_rel_diff(runners[tool](closes, case, erc)()[start:], robo) for tool in tools}


def run_case(data: MarketData, closes: pd.DataFrame, case: Case, repeat: int,
             tools=("bt", "vectorbt"), log=print) -> list[Row]:
    erc = erc_table(data, case.rule) if case.weighting == "erc" else None
    rows: list[Row] = []
    if erc is None:
        seconds, spread, (robo, start) = timed(
            robo_runner(data, case.rule, lambda: robo_allocator(case.weighting)), repeat)
        rows.append(Row(case.name, "robo-trader", seconds, spread, 1.0, 0.0))
    else:
        seconds, spread, (robo, start) = timed(
            robo_runner(data, case.rule, lambda: FixedWeights(*erc)), repeat)
        rows.append(Row(case.name, "robo-trader", seconds, spread, 1.0, 0.0,
                        "engine only: the ERC weights the peers get"))
        full, full_spread, (robo_full, _) = timed(
            robo_runner(data, case.rule, lambda: robo_allocator("erc")), repeat)
        rows.append(Row(case.name, "robo-trader + ERC solver", full, full_spread, full / seconds,
                        max_rel_diff(robo_full, robo), "RiskParity solves every decision"))
    log(f"  {case.name}: robo-trader {seconds:.4f} s")
    base = seconds
    for tool in tools:
        runner = {"bt": bt_runner, "vectorbt": vbt_runner}[tool](closes, case, erc)
        # bt takes ~4 s a run daily: at most 3 repeats there keep the script quick
        reps = repeat if tool != "bt" or case.rule != "daily" else max(1, min(repeat, 3))
        seconds, spread, curve = timed(runner, reps)
        diff = max_rel_diff(curve[start:], robo)
        rows.append(Row(case.name, tool, seconds, spread, seconds / base, diff,
                        "" if diff <= TOLERANCE else f"differs by more than {TOLERANCE:g}"))
        log(f"  {case.name}: {tool} {seconds:.4f} s, max rel diff {diff:.1e}")
    return rows


# ----------------------------------------------------------------------------- whole process

BT_SCRIPT = '''
import bt, pandas as pd, sys
closes = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)

class LaggedRebalance(bt.Algo):
    def __call__(self, target):
        weights = target.temp.get("weights")
        if not weights:
            return True
        close = closes.iloc[closes.index.get_loc(target.now) - 1]
        held = {n: c.position for n, c in target.children.items() if c.position}
        equity = target.capital + sum(q * close[n] for n, q in held.items())
        for n in sorted(set(held) | set(weights)):
            q = weights.get(n, 0.0) * equity / close[n] - held.get(n, 0.0)
            if abs(q) * close[n] > 1e-7 * equity:
                target.transact(q, n)
        return True

s = bt.Strategy("ew", [bt.algos.RunMonthly(run_on_first_date=False), bt.algos.SelectAll(),
                       bt.algos.WeighEqually(), LaggedRebalance()])
res = bt.run(bt.Backtest(s, closes, initial_capital=1e6, integer_positions=False,
                         progress_bar=False))
res.backtests["ew"].strategy.values.iloc[1:].to_csv(sys.argv[2])
'''

VBT_SCRIPT = '''
import numpy as np, pandas as pd, sys, vectorbt as vbt
closes = pd.read_csv(sys.argv[1], index_col=0, parse_dates=True)
month = closes.index.year * 12 + closes.index.month
rows = np.flatnonzero(month[1:] != month[:-1]) + 1
n = closes.shape[1]
size = np.full((len(closes), n + 1), np.nan)
size[rows, :n] = 1.0 / n
size[rows, n] = -1.0
pf = vbt.Portfolio.from_orders(closes.assign(_credit=1.0), size=size, size_type="targetpercent",
                               val_price=-np.inf, init_cash=1e6, cash_sharing=True, group_by=True,
                               call_seq="auto", freq="1D")
pf.value().to_csv(sys.argv[2])
'''

ROBO_ARGS = ["strategy=buy_and_hold", "allocation=equal_weight", "risk=none",
             "schedule.rebalance=monthly", "broker.commission_bps=0", "broker.commission_min=0",
             "broker.half_spread_bps=0", "broker.impact_coef=0", "progress=false"]


def whole_process_scripts() -> dict[str, str]:
    return {"bt": BT_SCRIPT, "vectorbt": VBT_SCRIPT}


def whole_process(repeat: int, peer_python: str = sys.executable, log=print) -> list[tuple]:
    """(name, median s, (min, max), note) for whole processes doing equal weight monthly."""
    from plugins.data._frames import bundled_file

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = bundled_file("skfolio", "datasets/data/sp500_dataset.csv.gz", "the sp500 data")
        scripts = {}
        for name, text in whole_process_scripts().items():
            scripts[name] = tmp / f"{name}_job.py"
            scripts[name].write_text(text)

        def timed_process(cmd, env=None, warmup=1, reps=repeat, keep=None):
            """Median and spread of ``reps`` processes after ``warmup``; the last one's output
            folder is ``keep`` (kept) when given."""
            times = []
            for i in range(warmup + reps):
                last = i == warmup + reps - 1 and keep is not None
                run_dir = keep if last else tempfile.mkdtemp(dir=tmp)
                Path(run_dir).mkdir(exist_ok=True)
                start = time.perf_counter()
                subprocess.run([c.replace("{out}", str(run_dir)) for c in cmd], check=True,
                               capture_output=True, cwd=ROOT, env=env)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
            return statistics.median(times), (min(times), max(times))

        robo = timed_process([sys.executable, str(ROOT / "run.py"), *ROBO_ARGS, "out_dir={out}"],
                             keep=tmp / "robo")
        reference = pd.read_csv(tmp / "robo" / "equity.csv", index_col=0)["equity"].to_numpy()
        out.append(("python run.py (equal weight monthly, zero costs; writes the full run "
                    "folder)", *robo, ""))
        default = timed_process([sys.executable, str(ROOT / "run.py"), "out_dir={out}"])
        out.append(("python run.py (default config: momentum, costs on)", *default, ""))
        for name, script in scripts.items():
            cmd = [peer_python, str(script), str(src), "{out}/equity.csv"]
            seconds, spread = timed_process(cmd, keep=tmp / name)
            curve = pd.read_csv(tmp / name / "equity.csv", index_col=0).iloc[:, 0].to_numpy()
            diff = max_rel_diff(curve[-reference.size:], reference)
            out.append((f"python {name}_job.py (same job; writes equity.csv)", seconds, spread,
                        f"{seconds / robo[0]:.1f}x run.py; equity vs run.py's: {diff:.0e}"))
            if name == "vectorbt":
                cold = [timed_process(cmd, env={**os.environ, "NUMBA_CACHE_DIR": str(tmp / f"nc{i}")},
                                      warmup=0, reps=1)[0] for i in range(max(1, min(repeat, 3)))]
                cold_s = statistics.median(cold)
                out.append(("python vectorbt_job.py, empty Numba cache (first run, compiles)",
                            cold_s, (min(cold), max(cold)), f"{cold_s / robo[0]:.1f}x run.py"))
        for row in out:
            log(f"  {row[0]}: {row[1]:.2f} s")
    return out


# ----------------------------------------------------------------------------- reporting

def machine() -> str:
    """A few lines describing the machine and the versions measured."""
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass

    def version(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "absent"
    pkgs = ", ".join(f"{p} {version(p)}" for p in ("numpy", "pandas", "scipy", "bt", "ffn",
                                                   "vectorbt", "numba"))
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {pkgs}; OpenBLAS from numpy's wheel. "
            f"The machine is shared with other jobs, so times are medians after a warm-up.")


def peers_table(rows: list[Row]) -> str:
    lines = ["| case | tool | median s | min-max s | x robo-trader | max rel. equity diff | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.case} | {r.tool} | {r.seconds:.4f} | {r.spread[0]:.4f}-{r.spread[1]:.4f} "
                     f"| {r.ratio:.2f} | {r.max_rel_diff:.1e} | {r.note} |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> str:
    """The issue's targets per case: >= 10x faster than bt, no slower than vectorbt (warm)."""
    lines = ["| case | bt / robo-trader (target >= 10) | vectorbt / robo-trader (target >= 1) "
             "| curves agree to 1e-6 |", "|---|---:|---:|---|"]
    for case in dict.fromkeys(r.case for r in rows):
        by = {r.tool: r for r in rows if r.case == case}
        bt_r, vbt_r = by.get("bt"), by.get("vectorbt")
        agree = all(r.max_rel_diff <= TOLERANCE for r in (bt_r, vbt_r) if r is not None)

        def cell(r, goal):
            if r is None:
                return "-"
            return f"{r.ratio:.1f} ({'met' if r.ratio >= goal else 'NOT met'})"
        lines.append(f"| {case} | {cell(bt_r, 10)} | {cell(vbt_r, 1)} | {'yes' if agree else 'NO'} |")
    return "\n".join(lines)


def whole_table(rows: list[tuple]) -> str:
    lines = ["| process | median s | min-max s | note |", "|---|---:|---:|---|"]
    for name, seconds, spread, note in rows:
        lines.append(f"| {name} | {seconds:.2f} | {spread[0]:.2f}-{spread[1]:.2f} | {note} |")
    return "\n".join(lines)


def write_section(name: str, text: str, path: Path = README) -> None:
    """Replace what lies between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the
    README (the tables are generated; the prose around them is not)."""
    body = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in body or end not in body:
        raise SystemExit(f"{path}: markers {start} ... {end} not found")
    head, rest = body.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per tool (after 1 warm-up)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, no whole-process times")
    parser.add_argument("--cases", default="", help="substring filter on case names")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-process times")
    parser.add_argument("--whole-repeat", type=int, default=5)
    parser.add_argument("--peer-python", default=sys.executable,
                        help="interpreter for the bt/vectorbt whole-process scripts (e.g. a venv's)")
    parser.add_argument("--write", action="store_true", help="rewrite the tables in benchmarks/README.md")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else args.repeat

    data = load_sp500()
    closes = naive_closes(data)
    print(f"sp500: {data.n_symbols} symbols x {data.n_bars} bars; {repeat} timed runs after a warm-up")
    rows: list[Row] = []
    for case in CASES:
        if args.cases.lower() in case.name.lower():
            rows += run_case(data, closes, case, repeat)
    text = (f"Machine: {machine()}\n\n{peers_table(rows)}\n\nTargets (robo-trader's time is "
            f"the engine-only one for ERC):\n\n{targets(rows)}")
    print()
    print(text)
    if args.write:
        write_section("peers", text)
    if not (args.quick or args.no_whole):
        print("\nwhole processes:")
        whole = whole_table(whole_process(args.whole_repeat, args.peer_python))
        print(whole)
        if args.write:
            write_section("whole", whole)


if __name__ == "__main__":
    main()
