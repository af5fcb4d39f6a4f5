"""The backtest loop against a hand-written numpy reference and accounting identities."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.core.contracts import ChildOrders, ExecutionAlgo
from pipeline.backtest.engine import backtest
from pipeline.core.errors import DataError
from pipeline.core.schedule import decision_bars
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.risk.drawdown_control import DrawdownControl
from plugins.risk.max_turnover import MaxTurnover
from plugins.risk.max_weight import MaxWeight
from plugins.risk.min_trade import MinTrade
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum

FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0,
            margin_rate_bps=0.0, borrow_fee_bps=0.0)


def reference_equal_weight(close: np.ndarray, index: pd.DatetimeIndex, capital: float) -> np.ndarray:
    """Equal weight, rebalanced on each month's last close, traded at the next close (sized on
    that close: the price it fills at), no costs.

    Written bar by bar without the engine's machinery: month ends from pandas' groupby.
    """
    month_end = pd.Series(np.arange(len(index)), index=index).groupby(
        [index.year, index.month]).last().to_numpy()
    decide = set(int(t) for t in month_end if t < len(index) - 1)
    first = min(decide)
    n = close.shape[1]
    cash, shares, pending = capital, np.zeros(n), False
    equity = []
    for t in range(first, len(index)):
        if pending:  # fill yesterday's decision at today's price
            target = (cash + float(shares @ close[t])) / n / close[t]
            cash -= float((target - shares) @ close[t])
            shares, pending = target, False
        value = cash + float(shares @ close[t])
        equity.append(value)
        pending = t in decide
    return np.array(equity)


def run(data, strategy=None, broker=None, rule="monthly", constraints=(), drift=None, algo=None):
    return backtest(data, strategy or BuyAndHold(), EqualWeight(), list(constraints), algo or Market(),
                    broker or SimBroker(**FREE), decision_bars(data.index, rule), 1e6, drift=drift)


def test_equal_weight_monthly_matches_numpy_reference(sp500):
    ledger = run(sp500)
    expected = reference_equal_weight(sp500.close, sp500.index, 1e6)
    np.testing.assert_allclose(ledger.equity, expected, rtol=1e-10, atol=0)


def test_costs_strictly_lower_returns(sp500):
    free = run(sp500).equity[-1]
    costly = run(sp500, broker=SimBroker()).equity[-1]
    assert costly < free
    for key in ("commission_bps", "half_spread_bps", "impact_coef"):
        one = dict(FREE, **{key: SimBroker().get_params()[key]})
        assert run(sp500, broker=SimBroker(**one)).equity[-1] < free, key


def test_equity_recomputed_from_fills(sp500):
    ledger = run(sp500, strategy=Momentum(), broker=SimBroker(), rule="weekly")
    f = ledger.fills
    bars = np.arange(ledger.start, sp500.n_bars)
    shares = np.zeros((bars.size, sp500.n_symbols))
    cash = np.full(bars.size, 1e6)
    for bar, sym, qty, price, fee in zip(f["bar"], f["symbol"], f["quantity"], f["price"], f["commission"]):
        shares[bar - ledger.start:, sym] += qty
        cash[bar - ledger.start:] -= qty * price + fee
    cash -= np.cumsum(sum(ledger.financing.values()))
    equity = cash + (shares * sp500.close[bars]).sum(axis=1)
    np.testing.assert_allclose(equity, ledger.equity, rtol=1e-9)


def test_fills_follow_the_convention(sp500):
    """Decided on the close of t, filled in session t+1 at its close (this data has no opens)."""
    ledger = run(sp500)
    f, o = ledger.fills, ledger.orders
    np.testing.assert_array_equal(f["bar"], o["decision"][f["order"]] + 1)
    np.testing.assert_allclose(f["price"], sp500.close[f["bar"], f["symbol"]], rtol=1e-15)


def test_costs_are_charged_as_documented(sp500):
    broker = SimBroker(commission_bps=1.0, commission_min=1.0, half_spread_bps=2.0, impact_coef=0.5)
    f = run(sp500, broker=broker).fills
    ref = sp500.close[f["bar"], f["symbol"]]
    notional = np.abs(f["quantity"]) * ref
    np.testing.assert_allclose(f["spread_cost"], notional * 2e-4, rtol=1e-12)
    np.testing.assert_allclose(f["commission"], np.maximum(notional * 1e-4, 1.0), rtol=1e-12)
    # buys pay above the reference, sells receive below it
    assert (np.sign(f["quantity"]) * (f["price"] - ref) > 0).all()
    # impact is the square-root law on 20-day log-return volatility known at the decision
    logret = np.diff(np.log(sp500.close), axis=0)
    bar, sym = f["bar"][-1], f["symbol"][-1]
    sigma = np.std(logret[bar - 1 - 20: bar - 1, sym], ddof=1)
    expected = 0.5 * sigma * np.sqrt(notional[-1] / 5e8)
    assert f["impact_cost"][-1] == pytest.approx(notional[-1] * expected, rel=1e-9)


def test_drift_band_trades_less(sp500):
    daily = run(sp500, rule="daily")
    banded = run(sp500, rule="daily", drift=0.05)
    assert 0 < len(banded.decisions) < len(daily.decisions) / 10
    weights = banded.weights
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_lot_size_rounds_orders(sp500):
    ledger = run(sp500, broker=SimBroker(**FREE, lot_size=100))
    np.testing.assert_allclose(ledger.fills["quantity"] % 100, 0.0, atol=1e-6)


def test_binding_constraints_are_counted(sp500):
    ledger = run(sp500, constraints=[("max_weight", MaxWeight(limit=0.04))])
    assert ledger.binding["max_weight"] == len(ledger.decisions)
    assert np.abs(ledger.weights).max() <= 0.04 + 1e-12


def test_too_little_history_is_a_data_error(sp500):
    with pytest.raises(DataError, match="warm-up"):
        run(sp500.view(100), strategy=Momentum(lookback=252))


class _Broken(ExecutionAlgo):
    def __init__(self, bad: float = np.nan):
        self.bad = bad

    def slice(self, orders, session):
        q = orders.quantity.copy()
        q[0] = self.bad
        return ChildOrders(parent=np.arange(len(orders)), bin=np.zeros(len(orders), dtype=int),
                           quantity=q, limit=np.full(len(orders), np.nan))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -1e9, 1e12])
def test_no_child_order_with_a_bad_quantity_reaches_the_broker(sp500, bad):
    with pytest.raises(RuntimeError, match="plugin bug"):
        run(sp500, algo=_Broken(bad))


class _MarketBySession(Market):
    """``execution=market`` without the whole-auction declaration: every session goes through
    ``slice`` and ``SimBroker.execute``, the path a live broker takes."""

    whole_in_auction = False


def _awkward(sp500, with_opens: bool):
    """The sample with a symbol listed late, each symbol halted for a month in turn, and (with
    opens) a window without volume: orders that cannot fill and must be reported so."""
    close = sp500.close.copy()
    close[:2000, 5] = np.nan
    for j in range(close.shape[1]):
        close[3000 + 100 * j: 3020 + 100 * j, j] = np.nan
    if not with_opens:
        return dataclasses.replace(sp500, close=close)
    rng = np.random.default_rng(7)
    opens = close * (1 + 0.003 * rng.standard_normal(close.shape))
    volume = np.where(np.isfinite(close), rng.uniform(1e5, 1e6, close.shape), np.nan)
    volume[5000:5030, 8] = 0.0
    return dataclasses.replace(sp500, close=close, open=opens, volume=volume)


def _risk(path_dependent: bool) -> list:
    risk = [("max_weight", MaxWeight(limit=0.3))]
    if path_dependent:
        risk += [("drawdown_control", DrawdownControl(threshold=0.08, reentry=0.04)),
                 ("max_turnover", MaxTurnover(limit=0.3)), ("min_trade", MinTrade())]
    return risk


@pytest.mark.parametrize("with_opens", [False, True])
@pytest.mark.parametrize("rule, drift, broker, path_dependent", [
    ("weekly", None, dict(), False),
    ("daily", 0.02, dict(commission_min=0.0, commission_per_share=0.005), False),
    ("monthly", None, dict(lot_size=10.0), False),
    ("weekly", None, FREE, False),
    ("weekly", None, dict(), True),
    ("daily", 0.01, dict(lot_size=5.0), True),
])
def test_whole_auction_walk_equals_the_session_by_session_walk(sp500, with_opens, rule, drift, broker,
                                                               path_dependent):
    data = _awkward(sp500, with_opens)
    at = decision_bars(data.index, rule)
    lean = backtest(data, Momentum(lookback=126, top_k=6), EqualWeight(), _risk(path_dependent), Market(),
                    SimBroker(**broker), at, 1e6, drift=drift)
    slow = backtest(data, Momentum(lookback=126, top_k=6), EqualWeight(), _risk(path_dependent),
                    _MarketBySession(), SimBroker(**broker), at, 1e6, drift=drift)
    np.testing.assert_array_equal(lean.decisions, slow.decisions)
    assert lean.binding == slow.binding
    if path_dependent:  # each of them changed some targets
        assert all(lean.binding[name] for name, _ in _risk(True)[1:])
    np.testing.assert_allclose(lean.weights, slow.weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lean.equity, slow.equity, rtol=1e-12)
    np.testing.assert_allclose(lean.positions, slow.positions, rtol=1e-12, atol=1e-9)
    for table, other in ((lean.orders, slow.orders), (lean.fills, slow.fills)):
        assert list(table) == list(other)
        for key in table:
            assert table[key].dtype == other[key].dtype, key
            # the walks round the cash in different orders: a trade, being a difference of
            # positions, differs by a few ulps of the book, not of itself
            scale = np.nanmax(np.abs(other[key]), initial=0.0)
            np.testing.assert_allclose(table[key], other[key], rtol=1e-12, atol=1e-12 * scale,
                                       err_msg=key)
    assert (lean.orders["cancelled"] != 0).any()  # some orders could not fill


def test_market_execution_takes_the_whole_auction_walk(sp500, monkeypatch):
    import pipeline.backtest.engine as engine

    def refuse(*args, **kwargs):
        raise AssertionError("execution=market went session by session")
    monkeypatch.setattr(engine, "_walk_sessions", refuse)
    run(sp500, rule="daily")
    with pytest.raises(AssertionError, match="session by session"):
        run(sp500, algo=_MarketBySession())


def _python_calls(go) -> tuple[int, int]:
    """Python function calls (frames entered) while ``go()`` runs, and the decisions its
    ledger traded."""
    import sys

    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"
    sys.setprofile(count)
    try:
        ledger = go()
    finally:
        sys.setprofile(None)
    return calls, ledger.decisions.size


def test_13_4_speed_whole_auction_walk_makes_few_python_calls_per_decision(sp500):
    """Daily equal weight with costs and financing on: sizing and costing a decision (up to
    three times) is one Python call each, the rest ndarray methods and ufuncs on buffers,
    financing two calls and the shared decision step's ``target`` one (before: 25.6 a decision, size and cost 2.45 times each, np.dot's and
    np.putmask's Python wrappers 17.7 times and a scan of the book for shorts; the daily run
    took 0.41-0.46 s against 0.20 s before financing and fill-day sizing). Not a timing: the
    interpreted work per decision, which sets the speed of a run over 8,312 decisions."""
    calls, decisions = _python_calls(lambda: run(sp500, broker=SimBroker(), rule="daily"))
    assert decisions > 8000
    assert calls / decisions < 9.0, f"{calls / decisions:.1f} Python calls a decision"


@pytest.mark.parametrize("rule", ["weekly", "daily"])
def test_13_4_speed_a_minimum_commission_without_a_rate_costs_the_minimum_per_order(sp500, rule):
    """No commission rate, a minimum of 1: every order pays exactly the minimum, in the fills
    and in the cash the whole-auction walk reserved (its exact path for fees that are not
    positive), as the session-by-session walk charges it."""
    broker = dict(commission_bps=0.0, commission_min=1.0)
    lean = run(sp500, broker=SimBroker(**broker), rule=rule)
    slow = run(sp500, broker=SimBroker(**broker), rule=rule, algo=_MarketBySession())
    np.testing.assert_array_equal(lean.fills["commission"], 1.0)
    np.testing.assert_allclose(lean.equity, slow.equity, rtol=1e-12)
    np.testing.assert_allclose(lean.positions, slow.positions, rtol=1e-12, atol=1e-9)
