"""Issue 19.1 (intraday bars are first class) and 18.7 (exchange calendars) on the backtest:
seeded 1-minute and 1-second bars of XNYS sessions, a half day (2024-11-29) among them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.engine import backtest
from pipeline.core import calendars
from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from pipeline.results import tca
from pipeline.results.metrics import periods_per_year
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.execution.twap import TWAP
from plugins.execution.vwap import VWAP
from plugins.strategy.buy_and_hold import BuyAndHold

NY = "America/New_York"


def session_bars(start: str, end: str, freq: str = "1min", symbols=("AAA", "BBB"), seed: int = 3,
                 minutes: int | None = None) -> MarketData:
    """OHLCV bars stamped at their close over the XNYS sessions (the first ``minutes`` of each
    when given), a seeded random walk per symbol."""
    rng = np.random.default_rng(seed)
    table = calendars.schedule("XNYS", start, end)
    closes = table["close"] if minutes is None else table["open"] + pd.Timedelta(minutes=minutes)
    index = pd.DatetimeIndex(np.concatenate([
        pd.date_range(o, c, freq=freq, inclusive="right").as_unit("ns").asi8
        for o, c in zip(table["open"], closes)]), tz="UTC").tz_convert(NY)
    n, m = len(index), len(symbols)
    close = 100.0 * np.arange(1, m + 1) * np.exp(np.cumsum(rng.normal(0, 8e-4, (n, m)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 4e-4, (n, m)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 4e-4, (n, m)))
    volume = rng.integers(1_000, 5_000, (n, m)).astype(float)
    return MarketData(index=index, symbols=tuple(symbols), close=close, open=open_, high=high,
                      low=low, volume=volume, name="minutes")


@pytest.fixture(scope="module")
def minutes() -> MarketData:
    return session_bars("2024-11-25", "2024-12-03")  # Thanksgiving closed, 11-29 a half day


@pytest.fixture(scope="module")
def vwap_run(minutes):
    broker = SimBroker(seed=1)
    at = decision_bars(minutes.index, "daily")
    ledger = backtest(minutes, BuyAndHold(), EqualWeight(), [], VWAP(), broker, at, 1e6)
    return ledger, broker, at


def test_19_1_bar_size_and_sessions_of_minute_bars(minutes):
    assert minutes.intraday and minutes.bar_length == pd.Timedelta(minutes=1)
    days = pd.DatetimeIndex(minutes.index.tz_localize(None).normalize()).unique()
    assert minutes.sessions.max() + 1 == len(days) == 6  # 11-28 is a holiday
    daily = session_bars("2024-11-25", "2024-12-03")
    assert not MarketData(index=daily.index[389::390], symbols=("A",),
                          close=np.ones((len(daily.index[389::390]), 1))).intraday


def test_19_1_daily_on_minute_bars_decides_at_each_session_close(minutes, vwap_run):
    ledger, _, at = vwap_run
    stamps = minutes.index[at]
    # before: every minute bar was a decision
    assert [str(t.time()) for t in stamps] == ["16:00:00"] * 3 + ["13:00:00"] + ["16:00:00"] * 2


def test_19_1_orders_work_over_the_real_bars_of_their_horizon(minutes, vwap_run):
    ledger, broker, at = vwap_run
    f, o = ledger.fills, ledger.orders
    # every fill is at a real bar: the bar after the decision plus its bin, in the next session
    decision = o["decision"][f["order"]]
    nxt = np.searchsorted(at, decision, "right")
    horizon = np.where(nxt < at.size, at[np.minimum(nxt, at.size - 1)], minutes.n_bars - 1)
    assert (f["bar"] == decision + 1 + f["bin"]).all() and (f["bar"] <= horizon).all()
    assert (minutes.sessions[f["bar"]] == minutes.sessions[decision + 1]).all()
    # before: 13 simulated bins in one minute bar; now one bin per minute of the session
    per_order = np.bincount(f["order"])
    assert per_order.max() == 390
    # the broker's interval VWAP is the bars' own, computed here from the data
    for k in range(o["id"].size):
        rows = np.arange(o["decision"][k] + 1, o["decision"][k] + 2 + int(o["last_bin"][k]))
        j = o["symbol"][k]
        typical = (minutes.high[rows, j] + minutes.low[rows, j] + minutes.close[rows, j]) / 3
        vol = minutes.volume[rows, j]
        assert o["market_vwap"][k] == pytest.approx((typical * vol).sum() / vol.sum(), rel=1e-12)


def test_19_1_fills_post_at_their_own_bars(minutes, vwap_run):
    ledger, _, _ = vwap_run
    f = ledger.fills
    shares = np.zeros((minutes.n_bars, minutes.n_symbols))
    np.add.at(shares, (f["bar"], f["symbol"]), f["quantity"])
    assert np.allclose(ledger.positions, np.cumsum(shares, 0)[ledger.start:])


def test_19_1_volume_and_volatility_windows_count_sessions(minutes, vwap_run):
    _, broker, _ = vwap_run
    ends = np.flatnonzero(np.diff(np.append(minutes.sessions, -1)) != 0)
    session_close = pd.DataFrame(minutes.close[ends])
    session_volume = pd.DataFrame(minutes.volume).groupby(minutes.sessions).sum()
    sigma = np.log(session_close).diff().rolling(20, min_periods=2).std().to_numpy()
    adv = session_volume.rolling(20, min_periods=1).mean().to_numpy()
    # at any bar of session s only sessions < s are complete (and s itself at its last bar)
    t = ends[3] - 100  # inside session 3: sessions 0..2 are known
    assert np.allclose(broker.sigma_[t], sigma[2]) and np.allclose(broker.adv_[t], adv[2])
    assert np.allclose(broker.sigma_[ends[3]], sigma[3])
    # a daily volatility: about the per-minute 8e-4 times sqrt(390 minutes), not a 20-bar one
    assert 0.005 < sigma[3].mean() < 0.05


def test_19_1_tca_opportunity_cost_at_the_horizon_close(minutes):
    broker = SimBroker(seed=1, participation_cap=2e-3)  # too little volume to finish
    at = decision_bars(minutes.index, "daily")
    ledger = backtest(minutes, BuyAndHold(), EqualWeight(), [], TWAP(), broker, at, 1e6)
    rows, o = tca.table(ledger), ledger.orders
    k = int(np.flatnonzero(np.abs(o["filled"]) < np.abs(o["quantity"]))[0])
    end = o["decision"][k] + 1 + int(o["last_bin"][k])
    j, side = o["symbol"][k], np.sign(o["quantity"][k])
    q, filled, a = abs(o["quantity"][k]), abs(o["filled"][k]), o["arrival"][k]
    paid = side * filled * (o["filled_value"][k] / o["filled"][k] - a)
    fee = ledger.fills["commission"][ledger.fills["order"] == k].sum()
    missed = side * (q - filled) * (minutes.close[end, j] - a)
    assert minutes.index[end].strftime("%H:%M") in ("16:00", "13:00")
    assert rows["shortfall_bps"][k] == pytest.approx((paid + fee + missed) / (q * a) * 1e4, rel=1e-9)


def test_18_7_intraday_bins_end_at_the_real_close_on_a_half_day(minutes, vwap_run):
    ledger, _, _ = vwap_run
    f = ledger.fills
    half = minutes.index[f["bar"]].strftime("%Y-%m-%d") == "2024-11-29"
    assert half.any()
    assert minutes.index[f["bar"][half]].max().strftime("%H:%M") == "13:00"
    assert minutes.index[f["bar"][half]].min().strftime("%H:%M") == "09:31"


def test_19_1_annualisation_and_windows_of_one_second_bars():
    seconds = session_bars("2024-12-02", "2024-12-04", freq="1s", minutes=30)
    assert seconds.bar_length == pd.Timedelta(seconds=1)
    assert periods_per_year(seconds.index) == pytest.approx(252 * 1800)
    at = decision_bars(seconds.index, "every 10min")
    assert len(at) == 9 and {t.strftime("%M:%S") for t in seconds.index[at]} == {"40:00", "50:00", "00:00"}
    ledger = backtest(seconds, BuyAndHold(), EqualWeight(), [], VWAP(), SimBroker(seed=1), at, 1e6)
    f = ledger.fills
    # a decision's orders work over the next 10 minutes of seconds, not 13 invented bins
    first = ledger.orders["decision"] == at[0]
    assert np.bincount(f["order"])[np.flatnonzero(first)].max() == 600
    assert (np.diff(seconds.index[f["bar"][f["order"] == 0]].asi8) == 10**9).all()


@pytest.mark.slow
def test_19_1_run_py_on_a_csv_of_minute_bars(tmp_path, minutes):
    import json
    import subprocess
    import sys
    from pathlib import Path

    long = pd.concat([pd.DataFrame({"time": minutes.index.tz_localize(None), "symbol": s,
                                    **{f: getattr(minutes, f)[:, j] for f in ("open", "high", "low", "close", "volume")}})
                      for j, s in enumerate(minutes.symbols)])
    path = tmp_path / "minutes.csv"
    long.to_csv(path, index=False)
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, str(root / "run.py"), "data=csv", f"data.path={path}",
                           "strategy=buy_and_hold", "allocation=equal_weight", "execution=vwap",
                           "schedule.rebalance=daily", f"out_dir={out}", f"hydra.run.dir={out}", "progress=false"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # before: 2,339 rebalances (every minute bar but the last), 13 simulated slices each
    assert metrics["n_rebalances"] == 5 and metrics["n_trades"] == 5 * 2 * 390 - 2 * 180
    fills = pd.read_csv(out / "fills.csv")
    assert fills["time"].str[11:16].isin(["14:31", "20:59", "21:00", "18:00"]).any()
    assert fills["bin"].max() == 389
    notes = json.loads((out / "provenance.json").read_text())["assumptions"]
    assert any(n.startswith("intraday bars of 1min: orders work over the data's own bars") for n in notes)
    assert not any(n.startswith("no intraday bars") for n in notes)
    report = (out / "report.html").read_text()
    assert "Rolling volatility (63 sessions, annualised)" in report and "annualised with 98280 bars a year." in report


@pytest.mark.parametrize("name", ["market", "twap", "vwap", "pov", "iceberg", "adaptive",
                                  "implementation_shortfall", "smart"])
def test_19_1_every_execution_algorithm_slices_over_the_real_bars(minutes, name):
    import importlib

    module = importlib.import_module(f"plugins.execution.{name}")
    algo = next(v for v in vars(module).values()
                if isinstance(v, type) and v.__module__ == module.__name__ and hasattr(v, "slice"))()
    at = decision_bars(minutes.index, "every 2h")
    ledger = backtest(minutes, BuyAndHold(), EqualWeight(), [], algo, SimBroker(seed=1), at, 1e6)
    f, o = ledger.fills, ledger.orders
    decision = o["decision"][f["order"]]
    nxt = at[np.minimum(np.searchsorted(at, decision, "right"), at.size - 1)]
    assert f["bar"].size and (f["bar"] > decision).all() and (f["bar"] <= nxt).all()
    assert np.isfinite(f["price"]).all() and (f["price"] > 0).all()
    first = f["bar"][o["decision"][f["order"]] == at[0]]
    if name == "market":  # whole at the next bar's open
        assert (first == at[0] + 1).all()
    else:  # the first build, sliced over the bars up to the next decision, one bin a bar
        assert np.unique(first).size > 5


def test_19_1_an_intraday_horizon_is_its_share_of_a_day_for_adv_and_time(minutes):
    from pipeline.core.contracts import Orders, Session
    from plugins.execution.smart import Smart

    broker = SimBroker(seed=1)
    broker.prepare(minutes)
    bar = 2 * 390 + 30  # 10:01 of the third session; a horizon to 10:30
    bins = broker.session_bins(bar, np.array([0]), last=bar + 29)
    assert bins.elapsed.size == 30 and bins.days == pytest.approx(30 / 390)
    # the day's volume forecast from the horizon's: the same minutes of the sessions before
    past = [minutes.volume[s * 390 + 30: s * 390 + 60, 0].sum() for s in (0, 1)]
    assert bins.forecast.sum() / bins.days == pytest.approx(np.mean(past) * 13)
    # Smart routes by the order's share of a day's volume (before: of the 30 minutes' alone)
    adv = float(bins.forecast.sum() / bins.days)
    orders = Orders(symbol=np.array([0]), quantity=np.array([0.01 * adv]), arrival=np.array([100.0]))
    session = Session(bar=bar, reference=minutes.open[bar], close=minutes.close[bar], volume=None,
                      symbols=np.array([0]), source=broker.session_bins, last=bar + 29)
    assert Smart().route(orders, session).tolist() == [1]  # 1 % of a day: vwap, not pov
