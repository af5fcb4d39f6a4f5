"""Exits in the backtest: hand-computed cases on a few bars, the two walks held equal with exits,
sleeves and cooldowns, and what must never be sent (``pipeline/backtest/exits.py``)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline.backtest.engine import backtest
from pipeline.core.contracts import ExitRule
from pipeline.core.exits import ExitLevels
from pipeline.core.errors import ConfigError
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderError, OrderType
from pipeline.core.schedule import decision_bars
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.exits.stop_loss import StopLoss
from plugins.exits.take_profit import TakeProfit
from plugins.exits.time_stop import TimeStop
from plugins.exits.trailing_stop import TrailingStop
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum

FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0,
            margin_rate_bps=0.0, borrow_fee_bps=0.0)
CAPITAL = 1e6


def bars(*ohlc) -> MarketData:
    """One symbol from (open, high, low, close) rows; bar 0 is the decision, bar 1 the entry
    session (filled at its open)."""
    a = np.array(ohlc, dtype=float)
    index = pd.date_range("2024-01-01", periods=len(a), freq="B", tz="UTC")
    return MarketData(index=index, symbols=("A",), open=a[:, :1], high=a[:, 1:2], low=a[:, 2:3],
                      close=a[:, 3:4], volume=np.full((len(a), 1), 1e9))


def once(data, exits, broker=None, algo=None, strategies=None, portfolio=None, rule="once"):
    return backtest(data, strategies or BuyAndHold(), EqualWeight(), [], algo or Market(),
                    broker or SimBroker(**FREE), decision_bars(data.index, rule), CAPITAL,
                    portfolio=portfolio, exits=exits)


FLAT = (100, 100, 100, 100)


def test_16_2_gap_through_stop_fills_at_open():
    data = bars(FLAT, (100, 101, 99, 100), (85, 87, 84, 86), (86, 90, 85, 88))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1)})
    x = ledger.exits
    assert (x.bar.tolist(), x.level.tolist(), x.trigger.tolist(), x.gap.tolist()) == ([2], [85.0], [90.0], [True])
    shares = CAPITAL / 100
    np.testing.assert_allclose(ledger.equity[2:], shares * 85)  # flat from the exit on
    assert ledger.positions[2:, 0].tolist() == [0.0, 0.0]


def test_16_2_stop_touched_inside_the_bar_fills_at_its_level():
    data = bars(FLAT, (100, 101, 99, 100), (95, 96, 88, 92), (92, 93, 91, 92))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1)})
    assert ledger.exits.level.tolist() == [90.0] and not ledger.exits.gap[0]
    np.testing.assert_allclose(ledger.equity[-1], CAPITAL / 100 * 90)


def test_16_2_stop_and_take_profit_in_one_bar_resolve_to_the_stop():
    data = bars(FLAT, (100, 101, 99, 100), (100, 112, 88, 105))
    ledger = once(data, {"take_profit": TakeProfit(pct=0.1), "stop_loss": StopLoss(pct=0.1)})
    assert [ledger.exits.rules[r] for r in ledger.exits.rule] == ["stop_loss"]
    np.testing.assert_allclose(ledger.equity[-1], CAPITAL / 100 * 90)


def test_16_6_trailing_stop_ratchets_across_bars_in_the_engine():
    # the stop trails 10% under the best high of the previous bars: 90, 94.5, then 108
    data = bars(FLAT, (100, 105, 99, 104), (104, 120, 100, 118), (115, 116, 107, 110), (110, 111, 100, 101))
    ledger = once(data, {"trailing_stop": TrailingStop(pct=0.1)})
    assert (ledger.exits.bar.tolist(), ledger.exits.level.tolist()) == ([3], [108.0])
    np.testing.assert_allclose(ledger.equity[-1], CAPITAL / 100 * 108)


def test_16_6_time_stop_sells_in_the_closing_auction_of_its_bar():
    data = bars(FLAT, (100, 101, 99, 100), (100, 103, 99, 102), (102, 104, 101, 103), (103, 104, 100, 101))
    ledger = once(data, {"time_stop": TimeStop(bars=3)})  # the entry's session is the first bar
    assert (ledger.exits.bar.tolist(), ledger.exits.level.tolist()) == ([3], [103.0])
    assert ledger.exits.order_type().tolist() == ["market_on_close"]


def test_16_2_an_exit_pays_the_brokers_spread_impact_and_commission():
    broker = dict(FREE, half_spread_bps=10.0, commission_bps=5.0)
    data = bars(FLAT, (100, 101, 99, 100), (95, 96, 88, 92))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1)}, broker=SimBroker(**broker))
    x = ledger.exits
    q = -x.quantity[0]
    np.testing.assert_allclose(x.price[0], 90 * (1 - 10e-4))
    np.testing.assert_allclose(x.commission[0], q * 90 * 5e-4)
    np.testing.assert_allclose(x.spread_cost[0], q * 90 * 10e-4)
    cash = ledger.cash[-1]
    np.testing.assert_allclose(cash, ledger.cash[1] + q * x.price[0] - x.commission[0])


def test_16_2_exits_none_takes_todays_path(sp500):
    at = decision_bars(sp500.index, "monthly")
    args = (sp500, Momentum(lookback=126, top_k=4), EqualWeight(), [], Market(), SimBroker(), at, CAPITAL)
    plain, none = backtest(*args), backtest(*args, exits={})
    assert none.exits is None
    np.testing.assert_array_equal(plain.equity, none.equity)
    for key in plain.fills:
        np.testing.assert_array_equal(plain.fills[key], none.fills[key])


class _MarketBySession(Market):
    whole_in_auction = False


def _with_ohlc(sp500):
    rng = np.random.default_rng(16)
    close = sp500.close
    opens = close * (1 + 0.01 * rng.standard_normal(close.shape))
    high = np.fmax(opens, close) * (1 + 0.01 * rng.random(close.shape))
    low = np.fmin(opens, close) * (1 - 0.01 * rng.random(close.shape))
    volume = np.where(np.isfinite(close), rng.uniform(1e5, 1e6, close.shape), np.nan)
    return dataclasses.replace(sp500, open=opens, high=high, low=low, volume=volume)


@pytest.mark.parametrize("ohlc, long_short", [(False, False), (True, False), (True, True)])
def test_16_2_both_walks_agree_with_exits(sp500, ohlc, long_short):
    data = _with_ohlc(sp500) if ohlc else sp500
    at = decision_bars(data.index, "monthly")

    def go(algo):
        rules = {"stop_loss": StopLoss(pct=0.07), "trailing_stop": TrailingStop(atr=3.0),
                 "take_profit": TakeProfit(pct=0.15)}
        return backtest(data, Momentum(lookback=126, top_k=5, long_short=long_short), EqualWeight(), [],
                        algo, SimBroker(), at, CAPITAL, exits=rules)
    lean, slow = go(Market()), go(_MarketBySession())
    assert lean.exits.bar.size > 100
    if long_short:  # shorts are covered by buys, above their entry for a stop
        covers = (lean.exits.side < 0) & (lean.exits.rule == 0)
        assert covers.sum() > 10 and (lean.exits.quantity[covers] > 0).all()
        assert (lean.exits.trigger[covers] > lean.exits.entry[covers]).all()
    np.testing.assert_array_equal(lean.exits.bar, slow.exits.bar)
    np.testing.assert_array_equal(lean.exits.rule, slow.exits.rule)
    np.testing.assert_allclose(lean.exits.price, slow.exits.price, rtol=1e-12)
    np.testing.assert_allclose(lean.equity, slow.equity, rtol=1e-10)
    np.testing.assert_allclose(lean.positions, slow.positions, rtol=1e-10, atol=1e-6)


def test_16_2_positions_after_an_exit_are_what_the_ledger_records(sp500):
    at = decision_bars(sp500.index, "monthly")
    ledger = backtest(sp500, Momentum(lookback=126, top_k=5), EqualWeight(), [], Market(), SimBroker(),
                      at, CAPITAL, exits={"stop_loss": StopLoss(pct=0.05)})
    x = ledger.exits
    row = x.bar - ledger.start
    # an exit closes the whole position in its bar: flat there, and until the next decision's session
    assert (ledger.positions[row, x.symbol] == 0).all()
    # what it closed: the position before, plus what a rebalance filled in the same session
    # (close-only data: the session's auction at the close comes first, then the exits check it)
    f = ledger.fills
    rebalanced = np.array([f["quantity"][(f["bar"] == b) & (f["symbol"] == s)].sum()
                           for b, s in zip(x.bar, x.symbol)])
    np.testing.assert_allclose(-x.quantity, ledger.positions[row - 1, x.symbol] + rebalanced, rtol=1e-9)
    assert (rebalanced == 0).mean() > 0.9


def test_16_1_cooldown_keeps_the_symbol_out_then_restores_it():
    data = bars(FLAT, (100, 101, 99, 100), (85, 87, 84, 86), *[(86, 88, 85, 87)] * 3, (87, 89, 86, 88))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1, cooldown=2)})
    x = ledger.exits
    assert x.bar.tolist() == [2, 5] and x.reason().tolist() == ["stop_loss (gap)", "reentry"]
    np.testing.assert_allclose(x.quantity[1], -x.quantity[0])  # the last target back
    assert x.level[1] == 86.0  # at the open of the bar after the cooldown
    assert ledger.positions[2:5, 0].tolist() == [0.0] * 3 and ledger.positions[5, 0] == -x.quantity[0]


def test_16_1_cooldown_holds_the_symbol_out_of_a_decision():
    data = bars(FLAT, (100, 101, 99, 100), (85, 87, 84, 86), *[(86, 88, 85, 87)] * 6)
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1, cooldown=4)}, rule=2)  # decisions at 0, 2, 4, ...
    x = ledger.exits
    assert x.bar.tolist() == [2, 7]
    assert ledger.positions[2:7, 0].tolist() == [0.0] * 5  # the decisions at 2 and 4 did not buy it back


def test_16_1_an_exit_on_a_sleeve_closes_that_sleeves_share():
    data = bars(FLAT, (100, 101, 99, 100), (95, 96, 88, 92), (92, 93, 91, 92))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1, sleeves=["fast"])},
                  strategies={"fast": BuyAndHold(), "slow": BuyAndHold()}, portfolio=EqualWeight())
    held = ledger.positions[1, 0]
    np.testing.assert_allclose(ledger.exits.quantity, [-held / 2])
    np.testing.assert_allclose(ledger.positions[-1, 0], held / 2)


def test_16_bad_input_an_exit_on_a_sleeve_that_does_not_exist():
    data = bars(FLAT, (100, 101, 99, 100), (95, 96, 88, 92))
    with pytest.raises(ConfigError, match=r"^exits.stop_loss.sleeves names \['fats'\], which are not sleeves"):
        once(data, {"stop_loss": StopLoss(pct=0.1, sleeves=["fats"])})


class _Fixed(ExitRule):
    """A third-party rule at a fixed price: what the built-in rules' checks cannot produce."""

    def __init__(self, kind: str = "stop", price: float = 105.0) -> None:
        self.kind, self.price = kind, price

    def levels(self, side, entry, bar, columns):
        value = np.full(np.shape(entry), self.price)
        if self.kind == "stop":
            return ExitLevels(rule="fixed", type=OrderType.STOP, stop=value)
        return ExitLevels(rule="fixed", type=OrderType.LIMIT, limit=value)


@pytest.mark.parametrize("kind, price, says", [
    ("stop", 105.0, "the stop order's stop price 105 for A must be positive and below the long's entry 100"),
    ("limit", 95.0, "the limit order's limit price 95 for A must be positive and above the long's entry 100"),
    ("stop", -5.0, "the stop order's stop price -5 for A must be positive and below"),
])
def test_16_bad_input_a_level_on_the_wrong_side_of_the_entry_is_never_sent(kind, price, says):
    data = bars(FLAT, (100, 101, 99, 100), (95, 96, 88, 92))
    with pytest.raises(OrderError) as err:
        once(data, {"fixed": _Fixed(kind, price)})
    assert says in str(err.value) and "\n" not in str(err.value)


def test_16_3_no_exit_order_with_a_nan_or_zero_quantity_or_trigger():
    # a NaN close (a halt) never triggers and never becomes an order's price
    data = bars(FLAT, (100, 101, 99, 100), (np.nan, np.nan, np.nan, np.nan), (85, 87, 84, 86))
    ledger = once(data, {"stop_loss": StopLoss(pct=0.1), "trailing_stop": TrailingStop(pct=0.05)})
    x = ledger.exits
    assert x.bar.tolist() == [3]
    assert np.isfinite(x.trigger).all() and (x.trigger > 0).all() and (x.quantity != 0).all()


def test_16_close_only_an_added_position_is_not_exited_at_the_close_it_was_bought_at():
    # close-only: 5000 shares of each at 100 (bar 1); the decision at bar 2 rebalances at bar
    # 3's close, where A (115) lags B (150): it buys 760.87 more A at 115, and the average
    # cost (500000 + 87500) / 5760.87 = 101.97 puts A's take-profit at 112.17, under that
    # close. A is sold at the next close (bar 4), not right after buying at the same price;
    # B, which the rebalance only reduced, is checked on bar 3's close as before.
    close = np.array([[100, 100], [100, 100], [80, 100], [115, 150], [115, 150]], dtype=float)
    index = pd.date_range("2024-01-01", periods=5, freq="B", tz="UTC")
    data = MarketData(index=index, symbols=("A", "B"), close=close, volume=np.full(close.shape, 1e9))
    ledger = backtest(data, BuyAndHold(), EqualWeight(), [], Market(), SimBroker(**FREE),
                      np.array([0, 2]), CAPITAL, exits={"take_profit": TakeProfit(pct=0.1)})
    x = ledger.exits
    assert dict(zip(x.symbol.tolist(), x.bar.tolist())) == {0: 4, 1: 3}
    a = x.symbol == 0
    np.testing.assert_allclose(x.entry[a], (5000 * 100 + 87500) / (662500 / 115))
    np.testing.assert_allclose(x.quantity[a], -662500 / 115)


def test_16_close_only_a_new_positions_time_stop_counts_from_the_bar_after_its_entry():
    # entry at bar 1's close: a one-bar time stop sells at bar 2's close, not at bar 1's
    close = np.array([[100.0], [100.0], [103.0], [104.0]])
    index = pd.date_range("2024-01-01", periods=4, freq="B", tz="UTC")
    data = MarketData(index=index, symbols=("A",), close=close, volume=np.full(close.shape, 1e9))
    ledger = once(data, {"time_stop": TimeStop(bars=1)})
    assert ledger.exits.bar.tolist() == [2] and ledger.exits.level.tolist() == [103.0]
