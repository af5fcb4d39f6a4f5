"""Financing (issue 13 point 4): interest on cash and the short borrow fee, accrued every bar on
calendar days (actual/360), in both walks and in the run folder."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.core.contracts import Allocator
from pipeline.backtest.engine import backtest
from pipeline.core.errors import ConfigError
from pipeline.core.market import MarketData
from pipeline.app.runner import run
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.strategy.buy_and_hold import BuyAndHold

CONF = str(Path(__file__).resolve().parents[3] / "conf")
FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)
# Thu, Fri, Mon (a weekend), Tue, Wed, Thu, Fri, Tue (a weekend and Martin Luther King day)
DAYS = ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11",
        "2024-01-12", "2024-01-16"]
CALENDAR_DAYS = [0, 1, 3, 1, 1, 1, 1, 4]


class _Fixed(Allocator):
    """The same weights at every decision, whatever the signal (leverage and shorts on demand)."""

    def __init__(self, weights: tuple = (0.75, 0.75)) -> None:
        self.weights = weights

    def weigh(self, returns, signals, at):
        return np.tile(np.asarray(self.weights, dtype=np.float64), (at.size, 1))


class _BySession(Market):
    whole_in_auction = False  # the session-by-session walk, as a live broker goes


def _tiny() -> MarketData:
    index = pd.DatetimeIndex(pd.to_datetime(DAYS) + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    close = np.array([[100.0, 50.0], [101.0, 49.0], [103.0, 48.5], [102.0, 50.5], [104.0, 51.0],
                      [105.5, 50.0], [104.0, 52.0], [106.0, 53.0]])
    return MarketData(index=index, symbols=("A", "B"), close=close, name="tiny")


def _both_walks(data, weights, broker_args):
    return [backtest(data, BuyAndHold(), _Fixed(weights), [], algo, SimBroker(**broker_args),
                     np.array([0]), 1e6) for algo in (Market(), _BySession())]


def test_13_4_interest_on_a_known_cash_path_is_hand_computed():
    """Cash earns 2 %/yr until the fill, then the book is levered 1.5x and pays 5 %/yr on the
    negative cash, compounded bar by bar on calendar days over 360."""
    data = _tiny()
    rates = dict(FREE, margin_rate_bps=500.0, cash_rate_bps=200.0)
    for ledger in _both_walks(data, (0.75, 0.75), rates):
        np.testing.assert_array_equal(ledger.days, CALENDAR_DAYS)
        # by hand: the night before the fill earns on the capital; the fill spends 1.5x the funds
        earned = 1e6 * 0.02 * 1 / 360
        cash = (1e6 + earned) * (1 - 1.5)
        paid = []
        for days in CALENDAR_DAYS[2:]:
            paid.append(-cash * 0.05 * days / 360)
            cash -= paid[-1]
        np.testing.assert_allclose(ledger.financing["cash_interest"], [0, -earned, 0, 0, 0, 0, 0, 0],
                                   rtol=1e-12, atol=0)
        np.testing.assert_allclose(ledger.financing["margin_interest"], [0, 0] + paid, rtol=1e-12, atol=0)
        assert not ledger.financing["borrow_fee"].any()
        assert ledger.cash[-1] == pytest.approx(cash, rel=1e-12)
        assert paid[-1] == pytest.approx(-(1e6 + earned) * -0.5 * 0.05 * 4 / 360 * np.prod(
            [1 + 0.05 * d / 360 for d in CALENDAR_DAYS[2:-1]]), rel=1e-12)


def test_13_4_short_borrow_fee_with_a_per_symbol_override():
    """Short both symbols: A pays the default 25 bp a year of its market value, B its 1000 bp
    override, each on the previous close's value times the days since over 360."""
    data = _tiny()
    rates = dict(FREE, margin_rate_bps=500.0, borrow_fee_bps=25.0, borrow_fee_overrides={"B": 1000.0})
    ledgers = _both_walks(data, (-0.5, -0.5), rates)
    for ledger in ledgers:
        short = -ledger.positions[1]  # shares short from the fill on
        assert (short > 0).all()
        expected = [0.0, 0.0] + [(0.0025 * short[0] * data.close[s - 1, 0] + 0.10 * short[1] * data.close[s - 1, 1])
                                 * CALENDAR_DAYS[s] / 360 for s in range(2, 8)]
        np.testing.assert_allclose(ledger.financing["borrow_fee"], expected, rtol=1e-12, atol=0)
        assert not ledger.financing["margin_interest"].any()  # the shorts' proceeds sit in cash
        equity = ledger.cash + ledger.positions @ data.close[-1]
        assert equity[-1] == pytest.approx(ledger.equity[-1], rel=1e-12)
    np.testing.assert_allclose(ledgers[0].financing["borrow_fee"], ledgers[1].financing["borrow_fee"], rtol=1e-12)


def test_13_4_an_override_for_a_symbol_not_in_the_data_is_a_config_error():
    with pytest.raises(ConfigError, match="borrow_fee_overrides.ZZZ"):
        _both_walks(_tiny(), (-0.5, -0.5), dict(borrow_fee_overrides={"ZZZ": 300.0}))


@pytest.mark.parametrize("weights, rates", [
    ((0.9, 0.9), dict(margin_rate_bps=700.0)),                                          # levered long
    ((0.6, -0.6), dict(cash_rate_bps=300.0, borrow_fee_overrides={"MSFT": 400.0})),  # long/short
])
def test_13_4_both_walks_finance_alike(sp500, weights, rates):
    data = _two(sp500)
    at = np.arange(300, data.n_bars - 1, 21)
    lean, slow = [backtest(data, BuyAndHold(), _Fixed(weights), [], algo, SimBroker(**rates), at, 1e6)
                  for algo in (Market(), _BySession())]
    np.testing.assert_allclose(lean.equity, slow.equity, rtol=1e-12)
    np.testing.assert_allclose(lean.cash, slow.cash, rtol=1e-12, atol=1e-9)
    for kind in lean.financing:
        np.testing.assert_allclose(lean.financing[kind], slow.financing[kind], rtol=1e-12, atol=1e-12,
                                   err_msg=kind)
    assert sum(abs(v).sum() for v in lean.financing.values()) > 1000  # it charged something real


def _two(sp500) -> MarketData:
    import dataclasses

    cols = [sp500.symbols.index("AAPL"), sp500.symbols.index("MSFT")]
    return dataclasses.replace(sp500, symbols=("AAPL", "MSFT"), close=sp500.close[:, cols],
                               **{f: None for f in ("open", "high", "low", "volume")})


def _run_default(out: Path, *overrides: str) -> Path:
    """``python run.py`` with ``overrides``, run in this process into ``out``."""
    config.register()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"out_dir={out}", "progress=false", *overrides])
    run(cfg)
    return out


@pytest.fixture(scope="module")
def default_folder(tmp_path_factory):
    return _run_default(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def financed_folder(tmp_path_factory):
    """A long/short book levered to a vol target: it pays borrow fees and earns on its cash."""
    return _run_default(tmp_path_factory.mktemp("long_short"), "+strategy.momentum.long_short=true",
                        "risk=long_short", "broker.cash_rate_bps=150", "broker.borrow_fee_overrides={AAPL: 800}")


@pytest.mark.slow
def test_13_4_default_long_only_run_never_has_negative_cash(default_folder):
    """Long only, max_gross_leverage=1: orders sized at the fill's price less the session's
    costs leave cash of about zero, never below (before: below zero on 56 % of bars, to -4 %)."""
    equity = pd.read_csv(default_folder / "equity.csv")
    assert (equity["cash"] >= 0).all()
    assert (equity["gross_exposure"] <= 1.0).all()
    assert (equity["cash"] / equity["equity"]).median() < 1e-6  # invested, not a cash buffer
    metrics = json.loads((default_folder / "metrics.json").read_text())
    assert metrics["cost_margin_interest"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["default_folder", "financed_folder"])
def test_13_4_equity_rebuilt_from_the_files_with_financing(folder, request):
    """equity.csv from fills.csv, financing.csv and the closes alone, to 1e-9."""
    from pipeline.core.market import forward_filled
    from plugins.data.sp500 import SP500

    folder = request.getfixturevalue(folder)
    data = SP500().load()
    equity = pd.read_csv(folder / "equity.csv")
    fills = pd.read_csv(folder / "fills.csv")
    financing = pd.read_csv(folder / "financing.csv")
    times = equity["time"].to_numpy(dtype=object)
    row = np.searchsorted(times, fills["time"].to_numpy(dtype=object))
    assert (times[row] == fills["time"].to_numpy(dtype=object)).all()
    qty = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["quantity"].to_numpy()
    sym = np.array([data.symbols.index(s) for s in fills["symbol"]])
    shares = np.zeros((times.size, data.n_symbols))
    np.add.at(shares, (row, sym), qty)
    flow = np.bincount(row, weights=qty * fills["price"] + fills["commission"], minlength=times.size)
    charged = financing[["margin_interest", "cash_interest", "borrow_fee"]].to_numpy().sum(axis=1)
    cash = 1e6 - np.cumsum(flow) - np.cumsum(charged)
    close = forward_filled(data.close)[data.n_bars - times.size:]
    rebuilt = cash + (np.cumsum(shares, axis=0) * close).sum(axis=1)
    np.testing.assert_allclose(rebuilt, equity["equity"], rtol=1e-9)
    np.testing.assert_allclose(cash, equity["cash"], rtol=1e-9, atol=1e-3)


@pytest.mark.slow
def test_13_4_metrics_carry_financing_totals_by_kind(financed_folder):
    metrics = json.loads((financed_folder / "metrics.json").read_text())
    financing = pd.read_csv(financed_folder / "financing.csv")
    kinds = ("margin_interest", "cash_interest", "borrow_fee")
    for kind in kinds:
        assert metrics[f"cost_{kind}"] == pytest.approx(financing[kind].sum(), rel=1e-12, abs=1e-9)
    assert metrics["cost_borrow_fee"] > 0 and metrics["cost_cash_interest"] < 0  # paid; earned
    assert metrics["cost_financing"] == pytest.approx(sum(metrics[f"cost_{k}"] for k in kinds), rel=1e-12)
    fill_costs = sum(metrics[f"cost_{k}"] for k in ("commission", "spread", "impact"))
    assert metrics["total_costs"] == pytest.approx(fill_costs + metrics["cost_financing"], rel=1e-12)
    assert (financing["days"].iloc[1:] >= 1).all() and financing["days"].max() >= 3  # weekends accrue
    report = (financed_folder / "report.html").read_text()
    assert "borrow fee" in report and "cash interest" in report
    assumptions = json.loads((financed_folder / "provenance.json").read_text())["assumptions"]
    assert any("actual/360" in note and "8.00%" in note for note in assumptions)


def test_13_4_speed_a_long_only_book_is_not_scanned_for_shorts_every_session(sp500):
    """Daily, long only, the default broker (a borrow fee, no cash rate): the whole-auction walk
    knows its book holds no short, so financing accrues nothing without a numpy reduction over
    the positions (before: one per session, 8,312 in the run)."""
    import sys

    from pipeline.core.schedule import decision_bars
    from plugins.allocation.equal_weight import EqualWeight

    reductions = 0

    def count(frame, event, arg):
        nonlocal reductions
        reductions += event == "c_call" and getattr(arg, "__qualname__", "") == "ufunc.reduce"
    at = decision_bars(sp500.index, "daily")
    sys.setprofile(count)
    try:
        ledger = backtest(sp500, BuyAndHold(), EqualWeight(), [], Market(), SimBroker(), at, 1e6)
    finally:
        sys.setprofile(None)
    assert ledger.decisions.size > 8000 and SimBroker().borrow_fee_bps > 0
    assert reductions < 200, f"{reductions} reductions"
    assert not ledger.financing["borrow_fee"].any()
