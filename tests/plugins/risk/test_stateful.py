"""Path-dependent constraints: drawdown control, turnover cap, minimum trade size."""

import numpy as np
import pytest

from pipeline.core.contracts import Book
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.risk.drawdown_control import DrawdownControl
from plugins.risk.max_turnover import MaxTurnover
from plugins.risk.min_trade import MinTrade
from plugins.strategy.momentum import Momentum


def book(bar=0, equity=1.0, peak=1.0, weights=np.zeros(4)):
    return Book(bar=bar, equity=equity, peak_equity=peak, weights=np.asarray(weights, float),
                prices=np.ones(len(weights)))


def test_drawdown_control_de_risks_and_re_enters_as_documented():
    dd = DrawdownControl(threshold=0.10, reduced=0.5, reentry=0.05)
    target = np.array([0.5, 0.5, 0.0, 0.0])
    path = [(100, 100, False), (91, 100, False),   # -9 %: within the threshold
            (89, 100, True),                       # -11 %: de-risked
            (93, 100, True),                       # -7 %: not yet back above -5 %
            (95, 100, False),                      # -5 %: re-entered
            (94, 100, False),                      # -6 %: still full (hysteresis)
            (80, 100, True), (120, 120, False)]    # a new high re-enters too
    for bar, (equity, peak, derisked) in enumerate(path):
        out, bound = dd.apply_step(target, book(bar, equity, peak))
        np.testing.assert_array_equal(out, target * (0.5 if derisked else 1.0))
        assert bound == derisked and dd.derisked == derisked, bar
    out, bound = dd.apply_step(np.zeros(4), book(len(path), 50, 120))
    assert dd.derisked and not bound  # nothing to scale: not binding
    dd.apply_step(target, book(0, 100, 100))  # bar went back: a new run starts at full
    assert not dd.derisked


def test_drawdown_control_to_cash_and_at_new_highs_only():
    dd = DrawdownControl(threshold=0.2, reduced=0.0, reentry=0.0)
    target = np.array([0.25] * 4)
    assert dd.apply_step(target, book(0, 79, 100))[0].sum() == 0.0
    assert dd.apply_step(target, book(1, 99.9, 100))[0].sum() == 0.0
    np.testing.assert_array_equal(dd.apply_step(target, book(2, 100, 100))[0], target)


def test_turnover_cap_moves_partway_along_the_line():
    cap = MaxTurnover(limit=0.5)
    current = np.array([0.5, 0.5, 0.0, 0.0])
    out, bound = cap.apply_step(np.array([0.0, 0.0, 0.5, 0.5]), book(weights=current))
    np.testing.assert_allclose(out, [0.375, 0.375, 0.125, 0.125])
    assert np.abs(out - current).sum() == pytest.approx(0.5) and bound
    target = np.array([0.4, 0.6, 0.0, 0.0])
    out, bound = cap.apply_step(target, book(weights=current))
    assert out is target and not bound


def test_min_trade_keeps_current_weights_for_small_trades():
    current = np.array([0.2, 0.3, 0.003, 0.0])
    target = np.array([0.203, 0.25, 0.0, 0.004])
    out, bound = MinTrade(threshold=0.005).apply_step(target, book(weights=current))
    np.testing.assert_allclose(out, [0.2, 0.25, 0.0, 0.0])  # the dust is closed out
    assert bound
    out, _ = MinTrade(threshold=0.005, close_out=False).apply_step(target, book(weights=current))
    np.testing.assert_allclose(out, [0.2, 0.25, 0.003, 0.0])
    big = np.array([0.1, 0.4, 0.1, 0.4])
    out, bound = MinTrade(threshold=0.005).apply_step(big, book(weights=current))
    assert out is big and not bound


def test_in_the_engine_the_trade_of_every_rebalance_is_capped(sp500):
    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars

    free = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)
    cap, floor = MaxTurnover(limit=0.3), MinTrade(threshold=0.01)
    ledger = backtest(sp500, Momentum(), EqualWeight(), [("max_turnover", cap), ("min_trade", floor)],
                      Market(), SimBroker(**free), decision_bars(sp500.index, "monthly"), 1e6)
    assert ledger.binding["max_turnover"] > 0 and ledger.binding["min_trade"] > 0
    for t, target in zip(ledger.decisions, ledger.weights):
        i = t - ledger.start
        before = ledger.positions[i] * sp500.close[t] / ledger.equity[i]
        trade = np.abs(target - before)
        assert trade.sum() <= 0.3 + 1e-9
        assert ((trade < 1e-12) | (trade >= 0.01 - 1e-12) | (target == 0)).all()
