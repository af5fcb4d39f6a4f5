"""Issue 19.1 point 3: windows in sessions or calendar time (``pipeline.core.params.Window``):
``20d`` / ``20 sessions`` / ``90min`` / ``2h`` as well as a number of bars, checked when the
config is built and turned into bars once the data are known, in one place for every stage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.engine import backtest
from pipeline.core.errors import ConfigError
from pipeline.core.market import MarketData
from pipeline.core.params import build, window_params
from pipeline.core.windows import in_bars
from pipeline.core.schedule import decision_bars
from pipeline.decision.targets import Capped, in_data_bars
from plugins.allocation.hrp import HRP
from plugins.allocation.risk_parity import RiskParity
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.risk.vol_target import VolTarget
from plugins.strategy.momentum import Momentum
from plugins.strategy.regime import Regime

MOMENTUM = "plugins.strategy.momentum.Momentum"


def minute_data(sessions: int = 3) -> MarketData:
    days = pd.bdate_range("2024-03-04", periods=sessions)
    index = pd.DatetimeIndex(np.concatenate([
        pd.date_range(d + pd.Timedelta(hours=9, minutes=31), d + pd.Timedelta(hours=16), freq="1min",
                      tz="America/New_York").as_unit("ns").asi8 for d in days]), tz="UTC").tz_convert("America/New_York")
    close = 100.0 + np.cumsum(np.random.default_rng(1).normal(0, 0.01, (len(index), 3)), axis=0)
    return MarketData(index=index, symbols=("A", "B", "C"), close=close, name="minutes")


def test_19_1_windows_are_declared_once_on_the_stages():
    assert window_params(Momentum) == ["lookback", "skip", "vol_window"]
    assert window_params(RiskParity) == ["lookback", "min_history"]


def test_19_1_a_duration_is_checked_when_built_and_a_bad_one_names_the_key():
    built = build({"_target_": MOMENTUM, "lookback": "20 sessions", "skip": "1d"}, "strategy.momentum")
    assert (built.lookback, built.skip) == ("20 sessions", "1d")  # as written, until the data are known
    for bad in ("20x", "soon", "0min", "36h", True):
        with pytest.raises(ConfigError) as err:
            build({"_target_": MOMENTUM, "lookback": bad}, "strategy.momentum")
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"strategy.momentum.lookback={bad!r} is not")
    with pytest.raises(ConfigError, match=r"strategy.momentum.lookback=0 is not allowed"):
        build({"_target_": MOMENTUM, "lookback": 0}, "strategy.momentum")  # an int keeps its rule


def test_19_1_on_daily_data_20d_is_20_bars(sp500):
    m = in_bars(Momentum(lookback="20d", skip="1 session", vol_window=63), sp500, "strategy.momentum")
    assert (m.lookback, m.skip, m.vol_window) == (20, 1, 63)
    same = Momentum(lookback=20, skip=1)
    assert in_bars(same, sp500, "strategy.momentum") is same  # nothing to turn: the same object
    with pytest.raises(ConfigError, match=r"strategy.momentum.lookback='2h' is not a whole number of the data's 1d bars"):
        in_bars(Momentum(lookback="2h", skip=0), sp500, "strategy.momentum")


def test_19_1_on_minute_data_sessions_and_time_become_bars():
    data = minute_data()
    m = in_bars(Momentum(lookback="2d", skip="90min", vol_window="2h"), data, "strategy.momentum")
    assert (m.lookback, m.skip, m.vol_window) == (2 * 390, 90, 120)
    with pytest.raises(ConfigError, match=r"'90s' is not a whole number of the data's 1min bars"):
        in_bars(Momentum(lookback="90s", skip=0), data, "strategy.momentum")
    # the class's own checks and rules hold for the bars
    with pytest.raises(ConfigError, match=r"^strategy.momentum: skip \(390\) must be smaller than lookback \(120\)"):
        in_bars(Momentum(lookback="2h", skip="1d"), data, "strategy.momentum")
    with pytest.raises(ConfigError, match=r"^allocation.lookback='1min' is 1 bars of minutes, not allowed: "
                                          r"expected a number of bars in \[2, inf\)"):
        in_bars(RiskParity(lookback="1min", min_history=1), data, "allocation")


def test_19_1_the_backtest_turns_durations_into_bars_for_every_sleeve_and_allocator(sp500):
    data = sp500.select(start="2015-01-01")
    at = decision_bars(data.index, "monthly")

    def run(strategy, allocator, portfolio=None):
        return backtest(data, {"m": strategy}, allocator, [], Market(), SimBroker(), at, 1e6,
                        portfolio=portfolio).equity

    bars = run(Momentum(lookback=126, skip=21, top_k=3), RiskParity(lookback=63, min_history=21))
    durations = run(Momentum(lookback="126d", skip="21 sessions", top_k=3),
                    RiskParity(lookback="63d", min_history="21d"))
    np.testing.assert_array_equal(bars, durations)
    # the sleeves' allocator too, under its caps; a risk constraint; a regime filter's base
    regime = Regime(base=Momentum(lookback="2d", skip=0), vol_window="5d", min_history="100d")
    strategies, allocator, portfolio, constraints = in_data_bars(
        data, {"m": Momentum(lookback="5d", skip=0), "r": regime}, HRP(lookback="10d", min_history="5d"),
        Capped(HRP(lookback="30d", min_history="10d"), {"m": 1.0}),
        [("vol_target", VolTarget(lookback="21d", min_history="10d"))])
    assert strategies["m"].lookback == 5 and (allocator.lookback, allocator.min_history) == (10, 5)
    assert isinstance(portfolio, Capped) and (portfolio.inner.lookback, portfolio.caps) == (30, {"m": 1.0})
    assert (constraints[0][0], constraints[0][1].lookback, constraints[0][1].min_history) == ("vol_target", 21, 10)
    r = strategies["r"]
    assert (r.vol_window, r.min_history, r.base.lookback) == (5, 100, 2) and r.warmup() >= 100
    with pytest.raises(ConfigError, match=r"^strategy.r.base.lookback='x' is not a window"):
        in_data_bars(data, {"r": Regime(base=Momentum(lookback="x", skip=0))}, HRP(), None, [])


def test_19_1_the_config_machinery_does_not_load_numpy_before_the_cli_sets_one_blas_thread():
    """``pipeline.app.cli.one_blas_thread`` must run before numpy loads: windows' parsing lives
    in ``pipeline.core.params`` (imported by the CLI), their conversion in ``pipeline.core.windows``."""
    import subprocess
    import sys

    code = "import sys, pipeline.app.cli, pipeline.core.params; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
