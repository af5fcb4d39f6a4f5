"""Exits against an independent engine: vectorbt's ``Portfolio.from_signals`` with ``sl_stop``,
``tp_stop`` and ``sl_trail`` on the bundled data, costs off, one fixed entry per symbol.

Semantics matched: the decision at bar 0 fills at the next session's close (close-only data)
and vectorbt enters there at the close (``price=close``, ``stop_entry_price=close``); both check
the stops from the next bar, fill a close through a level at that close (vectorbt's open, as the
open is NaN), a stop before a take-profit, and trail on the previous bars' highs. vectorbt is in
the ``bench`` extra: the test is skipped where it is not installed.
"""

import numpy as np
import pytest

from pipeline.backtest.engine import backtest
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.exits.stop_loss import StopLoss
from plugins.exits.take_profit import TakeProfit
from plugins.exits.trailing_stop import TrailingStop
from plugins.execution.market import Market
from plugins.strategy.buy_and_hold import BuyAndHold

vbt = pytest.importorskip("vectorbt")

FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0,
            margin_rate_bps=0.0, borrow_fee_bps=0.0)
RULES = {
    "stop_loss": ({"stop_loss": StopLoss(pct=0.1)}, dict(sl_stop=0.1)),
    "take_profit": ({"take_profit": TakeProfit(pct=0.25)}, dict(tp_stop=0.25)),
    "both": ({"stop_loss": StopLoss(pct=0.15), "take_profit": TakeProfit(pct=0.3)},
             dict(sl_stop=0.15, tp_stop=0.3)),
    "trailing": ({"trailing_stop": TrailingStop(pct=0.2)}, dict(sl_stop=0.2, sl_trail=True)),
}


@pytest.fixture(scope="module")
def sample(sp500):
    return sp500.select(start="2000-01-01", end="2012-12-31")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RULES))
def test_16_6_equity_equals_vectorbt_from_signals_with_stops(sample, case):
    ours, theirs = RULES[case]
    close = sample.frame("close")
    entries = np.zeros(close.shape, dtype=bool)
    entries[1] = True  # the decision at bar 0 trades in the session of bar 1
    # one column per symbol, each its own portfolio (no cash sharing): one engine run each
    pf = vbt.Portfolio.from_signals(close, entries=entries, exits=np.zeros_like(entries),
                                    init_cash=1e6, size=np.inf, fees=0.0, slippage=0.0,
                                    freq="1D", **theirs)
    value = pf.value().to_numpy()
    trades = pf.trades.records_arr
    fired = 0
    for j, symbol in enumerate(sample.symbols):
        ledger = backtest(sample.select(symbols=[symbol]), BuyAndHold(), EqualWeight(), [], Market(),
                          SimBroker(**FREE), np.array([0]), 1e6, exits=ours)
        np.testing.assert_allclose(ledger.equity, value[ledger.start:, j], rtol=1e-8, atol=0,
                                   err_msg=f"{case} {symbol}")
        closed = int(((trades["col"] == j) & (trades["status"] == 1)).sum())
        assert ledger.exits.bar.size == closed, symbol
        fired += closed
    assert fired >= 3  # the rules fired on several symbols: the equality is not vacuous
