"""Live's decision at bar t equals the backtest's, given the same book.

The backtest runs over the bundled data with a free simulated broker; at every one of its
decisions the live runner's decision code (``LiveRunner._targets``) gets the data up to that
bar and the book the backtest held there: its positions, the net liquidation (cash plus the
positions at the quotes) and the peak equity. Quotes are the decision's close, and the data's
opens are made equal to the previous close, so the backtest's fill reference (the next open)
is the price live sizes at: both then size on the same prices and the same funds. (What the
orders then fill at is the broker's business, not the decision's: with twap the backtest's
fills differ from the auction's, and so do the books it hands on.)
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.backtest.engine import backtest
from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from pipeline.decision.targets import first_decision
from pipeline.live.runner import LiveRunner
from plugins.allocation.equal_weight import EqualWeight
from plugins.allocation.inverse_vol import InverseVol
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.execution.twap import TWAP
from plugins.risk.drawdown_control import DrawdownControl
from plugins.risk.max_turnover import MaxTurnover
from plugins.risk.max_weight import MaxWeight
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum

FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0,
            margin_rate_bps=0.0, cash_rate_bps=0.0, borrow_fee_bps=0.0)
CAPITAL = 1e6

STRATEGIES = {
    "buy_and_hold": lambda: {"buy_and_hold": BuyAndHold()},                    # no warm-up
    "momentum": lambda: {"momentum": Momentum(lookback=60, skip=5, top_k=5)},  # 60 bars of it
    "sleeves": lambda: {"momentum": Momentum(lookback=60, skip=5, top_k=5),
                        "buy_and_hold": BuyAndHold()},
}
RISK = {
    "none": lambda: [],
    "max_weight": lambda: [("max_weight", MaxWeight(0.15))],
    "drawdown_control": lambda: [("drawdown_control", DrawdownControl(threshold=0.05, reduced=0.5,
                                                                      reentry=0.02))],
    "max_turnover": lambda: [("max_weight", MaxWeight(0.3)), ("max_turnover", MaxTurnover(0.3))],
}
# market orders take the vectorised auction walk; twap the general one (sessions sliced)
GRID = [dict(strategy=s, drift=d, lot=lot, risk=r, portfolio=p, algo="market")
        for s, d, lot, r in itertools.product(STRATEGIES, (None, 0.02, 0.25), (None, 100.0), RISK)
        for p in (("equal_weight", "inverse_vol") if s == "sleeves" else ("equal_weight",))]
GRID += [dict(strategy=s, drift=d, lot=100.0, risk="drawdown_control", portfolio="inverse_vol",
              algo="twap") for s, d in itertools.product(STRATEGIES, (None, 0.25))]


@pytest.fixture(scope="module")
def gapless(sp500):
    """Two years of the bundled data whose opens are the previous closes."""
    close = sp500.close[-560:]
    opens = np.vstack([close[:1], close[:-1]])
    return MarketData(index=sp500.index[-560:], symbols=sp500.symbols, close=close, open=opens, name="gapless")


def _live(stages, drift, lot) -> LiveRunner:
    """The live runner's decision code without a journal or a gateway (``_targets`` touches neither)."""
    runner = LiveRunner.__new__(LiveRunner)
    runner.stages = stages
    runner.cfg = SimpleNamespace(schedule=SimpleNamespace(rebalance="monthly", drift=drift))
    runner.broker = SimpleNamespace(lot_size=lot)
    runner.mode = SimpleNamespace(bins=13)
    return runner


def _portfolio(name):
    return InverseVol(lookback=60, min_history=20) if name == "inverse_vol" else EqualWeight()


@pytest.mark.parametrize("case", GRID, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_15_2_live_decision_at_bar_t_equals_the_backtest(gapless, case):
    data = gapless
    strategies = STRATEGIES[case["strategy"]]()
    constraints = RISK[case["risk"]]()
    portfolio = _portfolio(case["portfolio"]) if len(strategies) > 1 else None
    decisions = decision_bars(data.index, "monthly")
    ledger = backtest(data, strategies, EqualWeight(), constraints,
                      TWAP() if case["algo"] == "twap" else Market(),
                      SimBroker(**FREE, lot_size=case["lot"]), decisions, CAPITAL,
                      drift=case["drift"], portfolio=portfolio)
    first = first_decision(strategies)
    at = decisions[(decisions >= first) & (decisions <= data.n_bars - 2)]
    # fresh stages for live: the path-dependent constraints keep no state between decisions
    live = _live(SimpleNamespace(strategies=STRATEGIES[case["strategy"]](), allocator=EqualWeight(),
                                 portfolio=_portfolio(case["portfolio"]) if len(strategies) > 1 else None,
                                 constraints=RISK[case["risk"]](), algo=Market()),
                 case["drift"], case["lot"])
    start = ledger.start
    traded = dict(zip(ledger.decisions.tolist(), ledger.weights))
    held_back = 0
    for k, t in enumerate(at.tolist()):
        held = ledger.positions[t - start]
        quote = data.close[t]
        equity = float(ledger.cash[t - start] + held @ quote)
        peak = max(CAPITAL, float(ledger.equity[: t - start + 1].max()))
        result = live._targets(data.view(t + 1), equity, held, peak, k == 0, quote)
        backtest_qty = np.zeros(data.n_symbols)
        mine = ledger.orders["decision"] == t
        backtest_qty[ledger.orders["symbol"][mine]] = ledger.orders["quantity"][mine]
        live_qty = np.zeros(data.n_symbols)
        if result is None:
            held_back += 1
            assert t not in traded, f"decision {k} (bar {t}): live held it within drift, the backtest traded"
        else:
            weights, _, qty, _, orders, _ = result
            live_qty[orders.symbol] = orders.quantity
            if t in traded:
                np.testing.assert_allclose(weights, traded[t], rtol=0, atol=1e-12,
                                           err_msg=f"target weights at decision {k} (bar {t})")
        np.testing.assert_allclose(live_qty, backtest_qty, rtol=0, atol=1e-9,
                                   err_msg=f"parent quantities at decision {k} (bar {t}): {case}")
    if case["drift"] == 0.25:  # the gate did hold somewhere: the comparison covers it
        assert held_back > 0

