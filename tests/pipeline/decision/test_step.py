"""The one decision step (pipeline.decision.step) on hand-made books, and who calls it."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.backtest.engine import backtest
from pipeline.core.schedule import decision_bars
from pipeline.decision import step as step_module
from pipeline.decision.step import MIN_ORDER_FRACTION, Step
from pipeline.live.runner import LiveRunner
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.execution.twap import TWAP
from plugins.risk.drawdown_control import DrawdownControl
from plugins.strategy.buy_and_hold import BuyAndHold


def test_15_1_first_decision_always_trades_then_the_drift_gate_holds():
    step = Step([], drift=0.1, lot=None)
    target = np.array([0.5, 0.5])
    price = np.array([10.0, 20.0])
    flat = np.zeros(2)
    # the first decision trades even from a book within drift (here: flat against 5 % targets)
    assert step.target(5, True, np.array([0.05, 0.05]), flat, price, 1000.0, 1000.0) is not None
    near = np.array([45.0, 27.5])  # 45 %, 55 % of 1,000: within 0.1 of the targets
    assert step.target(6, False, target, near, price, 1000.0, 1000.0) is None
    far = np.array([30.0, 35.0])   # 30 %, 70 %: 0.2 away
    np.testing.assert_array_equal(step.target(6, False, target, far, price, 1000.0, 1000.0), target)
    assert Step([], drift=None, lot=None).target(6, False, target, near, price, 1000.0, 1000.0) is not None


def test_15_1_path_risk_sees_the_book_and_counts_where_it_binds():
    binding = {"drawdown_control": 0}
    step = Step([("drawdown_control", DrawdownControl(threshold=0.1, reduced=0.5, reentry=0.05))],
                drift=None, lot=None, binding=binding)
    target = np.array([0.5, 0.5])
    price = np.array([10.0, 20.0])
    pos = np.array([40.0, 20.0])  # 800 at these prices
    np.testing.assert_allclose(step.target(3, False, target, pos, price, 800.0, 1000.0), target * 0.5)
    assert binding == {"drawdown_control": 1}
    np.testing.assert_allclose(step.target(4, False, target, pos, price, 1000.0, 1000.0), target)


def test_15_1_orders_are_sized_at_the_fill_reference_in_lots_without_dust():
    fill = np.array([10.0, 20.0, 50.0])
    per_unit = 1.0 / fill
    pos = np.array([0.0, 10.0, 0.0])
    price = np.array([11.0, 19.0, 50.0])  # the decision's prices: the dust filter values at them
    qty, sym = Step([], None, lot=None).orders(np.array([0.5, 0.5, 0.0]), pos, 1000.0, per_unit,
                                               price, 1000.0)
    np.testing.assert_allclose(qty, [50.0, 15.0, 0.0])
    np.testing.assert_array_equal(sym, [0, 1])
    qty, sym = Step([], None, lot=10.0).orders(np.array([0.5, 0.5, 0.0]), pos, 1000.0, per_unit,
                                               price, 1000.0)
    np.testing.assert_allclose(qty, [50.0, 20.0, 0.0])  # 15 shares -> 2 lots (half to even)
    # an order under MIN_ORDER_FRACTION of equity is dust: not sent
    tiny = np.array([0.0, 0.0, 0.5 * MIN_ORDER_FRACTION])
    qty, sym = Step([], None, lot=None).orders(tiny, np.zeros(3), 1000.0, per_unit, price, 1000.0)
    assert sym.size == 0


def test_15_1_a_symbol_without_a_fill_price_keeps_its_position():
    per_unit = np.array([0.1, 0.0])  # no price for the second: live's missing quote
    qty, sym = Step([], None, lot=None).orders(np.array([0.5, 0.0]), np.array([0.0, 30.0]), 1000.0,
                                               per_unit, np.array([10.0, 20.0]), 1000.0)
    np.testing.assert_allclose(qty, [50.0, 0.0])
    np.testing.assert_array_equal(sym, [0])


def test_15_1_the_session_costs_are_reserved_out_of_the_funds():
    fill = np.array([10.0])

    def cost(qty, sym):  # 1 % of the traded value
        return 0.01 * float(np.abs(qty[sym]) @ fill[sym])

    qty, sym = Step([], None, lot=None).orders(np.array([1.0]), np.zeros(1), 1000.0, 1.0 / fill,
                                               fill, 1000.0, cost)
    np.testing.assert_allclose(qty, [99.0])  # 1,000 less the first sizing's 10 of costs
    assert 1000.0 - float(qty @ fill) - cost(qty, sym) >= 0.0  # the book ends with no debt


def test_15_1_the_backtest_walks_and_live_call_the_one_step(sp500, monkeypatch):
    calls = []
    real_target, real_orders = Step.target, Step.orders

    def target(self, t, *args):
        calls.append(("target", t))
        return real_target(self, t, *args)

    def orders(self, *args):
        calls.append(("orders",))
        return real_orders(self, *args)

    monkeypatch.setattr(Step, "target", target)
    monkeypatch.setattr(Step, "orders", orders)
    data = sp500.view(300)
    decisions = decision_bars(data.index, "monthly")
    for algo, walk in ((Market(), "auction"), (TWAP(), "sessions")):
        calls.clear()
        ledger = backtest(data, BuyAndHold(), EqualWeight(), [], algo, SimBroker(), decisions, 1e6)
        assert [c[1] for c in calls if c[0] == "target"] == decisions[decisions <= data.n_bars - 2].tolist(), walk
        # the vectorised auction walk sizes on its own (held equal by tests/pipeline/backtest)
        assert sum(c[0] == "orders" for c in calls) == (0 if walk == "auction" else ledger.decisions.size)
    calls.clear()
    runner = LiveRunner.__new__(LiveRunner)
    runner.stages = SimpleNamespace(strategies={"buy_and_hold": BuyAndHold()}, allocator=EqualWeight(),
                                    portfolio=None, constraints=[], algo=Market())
    runner.cfg = SimpleNamespace(schedule=SimpleNamespace(rebalance="monthly", drift=None))
    runner.broker = SimpleNamespace(lot_size=None)
    quote = data.close[-1]
    result = runner._targets(data, 1e6, np.zeros(data.n_symbols), 1e6, True, quote)
    assert calls == [("target", data.n_bars - 1), ("orders",)]
    np.testing.assert_allclose(result[2] * quote, 1e6 / data.n_symbols)
    # live takes nothing from the backtest's package
    assert "from pipeline.backtest" not in inspect.getsource(LiveRunner._targets)
    assert "from pipeline.backtest" not in inspect.getsource(step_module)
