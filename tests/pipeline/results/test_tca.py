"""Transaction-cost analysis: every column of execution.csv by its documented formula, the
sign convention (positive = cost), and the aggregates in metrics.json."""

import types

import numpy as np
import pandas as pd
import pytest

from pipeline.results import recorder
from pipeline.results import tca
from pipeline.backtest.engine import backtest
from pipeline.core.market import MarketData
from pipeline.core.schedule import decision_bars
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.data.synthetic import Synthetic
from plugins.execution.market import Market
from plugins.execution.vwap import VWAP
from plugins.strategy.momentum import Momentum


def hand_made():
    """Two parents: a buy that paid up and half filled, a sell fully filled below arrival."""
    index = pd.date_range("2020-01-01 16:00", periods=3, freq="D", tz="America/New_York")
    close = np.array([[100.0, 50.0], [100.0, 50.0], [104.0, 49.0]])
    data = MarketData(index=index, symbols=("A", "B"), close=close)
    orders = {"id": np.arange(2), "decision": np.array([1, 1]), "symbol": np.array([0, 1]),
              "quantity": np.array([1000.0, -400.0]), "arrival": np.array([100.0, 50.0]),
              "filled": np.array([500.0, -400.0]),
              "filled_value": np.array([500.0 * 101.0, -400.0 * 49.5]),
              "first_bin": np.array([0, 2]), "last_bin": np.array([12, 5]),
              "market_vwap": np.array([100.5, 49.6]), "market_twap": np.array([100.4, 49.7]),
              "market_volume": np.array([1e5, 4e3]), "cancelled": np.array([500.0, 0.0]),
              "swept": np.array([0.0, -100.0])}
    fills = {"order": np.array([0, 1, 1]), "bar": np.array([2, 2, 2]), "symbol": np.array([0, 1, 1]),
             "quantity": np.array([500.0, -300.0, -100.0]), "price": np.array([101.0, 49.5, 49.5]),
             "commission": np.array([5.0, 1.0, 1.0]), "spread_cost": np.array([10.0, 3.0, 1.0]),
             "impact_cost": np.array([20.0, 2.0, 1.0]), "bin": np.array([3, 2, 5])}
    return types.SimpleNamespace(data=data, orders=orders, fills=fills)


def test_every_column_follows_its_definition():
    rows = tca.table(hand_made()).set_index("order_id")
    buy, sell = rows.loc[0], rows.loc[1]
    assert (buy["side"], sell["side"]) == ("buy", "sell")
    assert buy["fill_rate"] == 0.5 and sell["fill_rate"] == 1.0
    assert buy["avg_fill_price"] == 101.0 and sell["avg_fill_price"] == 49.5
    # shortfall: paid 1 over arrival on 500, commission 5, missed the move to 104 on 500 unfilled
    assert buy["shortfall_bps"] == pytest.approx((500 * 1.0 + 5.0 + 500 * 4.0) / (1000 * 100.0) * 1e4)
    # a sell receiving 0.5 below arrival is a cost: positive
    assert sell["shortfall_bps"] == pytest.approx((400 * 0.5 + 2.0) / (400 * 50.0) * 1e4)
    assert buy["vwap_slippage_bps"] == pytest.approx((101.0 - 100.5) / 100.5 * 1e4)
    assert sell["vwap_slippage_bps"] == pytest.approx(-(49.5 - 49.6) / 49.6 * 1e4)
    assert sell["vwap_slippage_bps"] > 0  # sold below the interval's VWAP: a cost
    assert buy["twap_slippage_bps"] == pytest.approx((101.0 - 100.4) / 100.4 * 1e4)
    assert buy["participation"] == pytest.approx(500 / 1e5) and sell["participation"] == pytest.approx(0.1)
    assert (sell["commission"], sell["spread_cost"], sell["impact_cost"]) == (2.0, 4.0, 3.0)
    assert sell["spread_bps"] == pytest.approx(4.0 / (400 * 50.0) * 1e4)
    assert buy["impact_bps"] == pytest.approx(20.0 / (500 * 100.0) * 1e4)
    assert buy["cancelled_quantity"] == 500.0 and sell["swept_quantity"] == 100.0
    assert (buy["first_bin"], buy["last_bin"]) == (0, 12)


def test_aggregates_weigh_orders_by_notional():
    rows = tca.table(hand_made())
    agg = tca.summary(rows)
    assert agg["n_orders"] == 2 and agg["n_filled"] == 1 and agg["n_partial"] == 1 and agg["n_unfilled"] == 0
    assert agg["fill_rate"] == pytest.approx((500 * 100 + 400 * 50) / (1000 * 100 + 400 * 50))
    expected = (rows["shortfall_bps"] * [1e5, 2e4]).sum() / 1.2e5
    assert agg["shortfall_bps"] == pytest.approx(expected)
    assert agg["commission_bps"] == pytest.approx(7.0 / (500 * 100 + 400 * 50) * 1e4)
    assert agg["participation_max"] == pytest.approx(0.1)
    assert agg["cancelled_notional"] == pytest.approx(500 * 100.0)
    assert agg["swept_notional"] == pytest.approx(100 * 50.0)


@pytest.fixture(scope="module")
def ohlcv():
    return Synthetic(n_symbols=6, n_bars=500, seed=2).load()


@pytest.mark.parametrize("algo", [Market(), VWAP()], ids=["market", "vwap"])
def test_a_run_records_one_row_per_parent_and_its_aggregates(ohlcv, algo):
    ledger = backtest(ohlcv, Momentum(lookback=60, skip=5, top_k=3), EqualWeight(), [], algo, SimBroker(),
                      decision_bars(ohlcv.index, "weekly"), 1e6)
    frames = recorder.tables(ledger)
    rows = frames["execution"]
    assert len(rows) == len(frames["orders"]) == ledger.orders["id"].size
    filled = rows[rows["filled_quantity"] > 0]
    for column in ("arrival_price", "avg_fill_price", "interval_vwap", "interval_twap", "shortfall_bps",
                   "vwap_slippage_bps", "twap_slippage_bps", "participation", "fill_rate",
                   "commission", "spread_cost", "impact_cost"):
        assert np.isfinite(filled[column]).all(), column
    if isinstance(algo, Market):  # in the auction, slippage to the reference is what was charged
        charged = (filled["spread_cost"] + filled["impact_cost"]) / (
            filled["filled_quantity"] * filled["interval_vwap"]) * 1e4
        np.testing.assert_allclose(filled["vwap_slippage_bps"], charged, rtol=1e-9)
    metrics = recorder.metrics_of(ledger)
    for key in ("shortfall_bps", "vwap_slippage_bps", "twap_slippage_bps", "fill_rate",
                "participation_mean", "commission_bps", "spread_bps", "impact_bps", "n_orders"):
        assert key in metrics["execution"], key
    assert metrics["execution"]["n_orders"] == len(rows)
    assert metrics["execution"]["commission_bps"] > 0
    assert set(frames["fills"]["bin"]) <= set(range(-1, 13))
