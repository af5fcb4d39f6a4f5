"""Issue 16.3: order types on execution children, filled by the simulated broker over a
session's bins, hand-computed on four tiny bins; and execution=market's order_type option."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.app.runner import run
from pipeline.core.contracts import (AUCTION, AuctionCosts, Bins, ChildOrders, Commission, Orders,
                                     Session)
from pipeline.core.orders import CODE, TIFS, OrderError, OrderType, TimeInForce
from pipeline.decision.step import check_children
from plugins.broker.sim import SimBroker
from plugins.data.stocks import Stocks

# one symbol, arrival 100; bin 1 touches 97 from 98, bin 2 gaps down to 93, bin 3 recovers
PRICE = np.array([100.0, 98.0, 93.0, 97.0])
LOW = np.array([99.0, 96.0, 92.0, 95.0])
HIGH = np.array([101.0, 99.0, 94.0, 99.0])
CLOSE = 100.5


def _session() -> Session:
    col = (lambda a: a[:, None])
    bins = Bins(elapsed=np.array([0.25, 0.5, 0.75, 1.0]), price=col(PRICE), low=col(LOW),
                high=col(HIGH), volume=np.full((4, 1), 1000.0), forecast=np.full((4, 1), 1000.0),
                sigma=np.array([0.02]), half_spread=np.array([0.0]))
    return Session(bar=1, reference=np.array([100.0]), close=np.array([CLOSE]), volume=None,
                   symbols=np.array([0]), source=lambda bar, symbols: bins)


def _broker() -> SimBroker:
    # no costs: the fills are the rule's prices
    broker = SimBroker(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)
    broker.auction_ = AuctionCosts(impact_scale=np.zeros((2, 1)), half_spread=0.0,
                                   impact_in_shares=True, commission=Commission(0.0, 0.0, 0.0),
                                   volume=None, assumed_dollar_volume=1e9)
    return broker


def _fill(qty: float, kinds, expire: int = 3, **terms):
    n = len(kinds)
    orders = Orders(symbol=np.array([0]), quantity=np.array([qty]), arrival=np.array([100.0]))
    arrays = {k: np.asarray(v, dtype=float) for k, v in terms.items() if k != "oca"}
    children = ChildOrders(parent=np.zeros(n, dtype=np.int64), bin=np.zeros(n, dtype=np.int64),
                           quantity=np.full(n, qty), limit=arrays.pop("limit", np.full(n, np.nan)),
                           expire=np.full(n, expire), type=np.array([CODE[k] for k in kinds]),
                           oca=None if "oca" not in terms else np.asarray(terms["oca"]), **arrays)
    check_children(children, orders)
    return _broker().execute(orders, children, _session())


def test_16_3_stop_triggers_on_touch_and_fills_at_the_trigger():
    f = _fill(-100.0, [OrderType.STOP], stop=[97.0])
    assert f.bin.tolist() == [1] and f.price.tolist() == [97.0] and f.quantity.tolist() == [-100.0]
    assert f.report.trigger.tolist() == [97.0] and f.order_type.tolist() == [CODE[OrderType.STOP]]


def test_16_3_stop_gapped_through_fills_at_the_bins_price():
    f = _fill(-100.0, [OrderType.STOP], stop=[95.0])
    assert f.bin.tolist() == [2] and f.price.tolist() == [93.0]  # worse than the 95 trigger
    buy = _fill(100.0, [OrderType.STOP], stop=[100.5])  # a buy stop: the high reaches it
    assert buy.bin.tolist() == [0] and buy.price.tolist() == [100.5]


def test_16_3_stop_limit_not_filled_after_a_gap_through_its_limit():
    # triggered in bin 2 (a gap to 93), its 94.5 limit is above bin 2's high: nothing there
    f = _fill(-100.0, [OrderType.STOP_LIMIT], expire=2, stop=[95.0], limit=[94.5])
    assert len(f) == 0 and f.report.cancelled.tolist() == [-100.0]
    assert f.report.trigger.tolist() == [95.0]
    # given bin 3, it rests as a limit and fills when the price comes back (at 97, aggressive)
    later = _fill(-100.0, [OrderType.STOP_LIMIT], expire=3, stop=[95.0], limit=[94.5])
    assert later.bin.tolist() == [3] and later.price.tolist() == [97.0]


def test_16_3_trailing_stop_ratchets_on_previous_bins_best_price():
    # from 100 by 2: 98 in bin 0; bin 0's high of 101 ratchets it to 99 for bin 1, which
    # trades at 98, through it: filled at 98 with trigger 99 (without the ratchet, 98)
    f = _fill(-100.0, [OrderType.TRAILING_STOP], trail_amount=[2.0])
    assert f.bin.tolist() == [1] and f.report.trigger.tolist() == [99.0] and f.price.tolist() == [98.0]
    pct = _fill(-100.0, [OrderType.TRAILING_STOP], trail_percent=[0.03], trail_amount=[np.nan])
    # 101 * 0.97 = 97.97 touched in bin 1 (low 96, price 98 above it)
    assert pct.bin.tolist() == [1] and pct.price[0] == pytest.approx(97.97)


def test_16_3_limit_on_close_filled_or_not():
    f = _fill(100.0, [OrderType.LIMIT_ON_CLOSE], limit=[101.0])
    assert f.price.tolist() == [CLOSE] and f.bin.tolist() == [AUCTION]
    none = _fill(100.0, [OrderType.LIMIT_ON_CLOSE], limit=[100.0])  # the close is above it
    assert len(none) == 0 and none.report.cancelled.tolist() == [100.0]


def test_16_3_market_on_close_at_the_close_and_on_open_at_the_reference():
    assert _fill(-100.0, [OrderType.MARKET_ON_CLOSE]).price.tolist() == [CLOSE]
    assert _fill(-100.0, [OrderType.MARKET_ON_OPEN]).price.tolist() == [100.0]


def test_16_3_oco_first_fill_cancels_the_rest():
    # a bracket on a sale: take-profit at 100.5 (reached in bin 0) and stop at 97 (bin 1)
    f = _fill(-100.0, [OrderType.LIMIT, OrderType.STOP], limit=[100.5, np.nan],
              stop=[np.nan, 97.0], oca=[0, 0])
    # the limit fills passively at 100.5 in bin 0, on the cap's 25% of the bin's 1000 shares
    # that traded at or above it, (101 - 100.5) / (101 - 99); the stop never fills after it
    assert f.bin.tolist() == [0] and f.price.tolist() == [100.5]
    assert f.quantity.tolist() == [-0.25 * 1000 * 0.5 / 2.0]
    # a take-profit never reached: the stop fills, the limit is cancelled
    g = _fill(-100.0, [OrderType.LIMIT, OrderType.STOP], limit=[102.0, np.nan],
              stop=[np.nan, 97.0], oca=[0, 0])
    assert g.quantity.tolist() == [-100.0] and g.price.tolist() == [97.0] and g.bin.tolist() == [1]


@pytest.mark.parametrize("stop", [np.nan, np.inf, 0.0, -1.0])
def test_16_3_check_children_rejects_a_bad_trigger(stop):
    with pytest.raises(OrderError, match="stop"):
        _fill(-100.0, [OrderType.STOP], stop=[stop])


def test_16_3_gtc_children_refused():
    orders = Orders(symbol=np.array([0]), quantity=np.array([10.0]), arrival=np.array([100.0]))
    children = ChildOrders.whole_orders(orders)
    children.type = np.array([CODE[OrderType.MARKET]])
    children.tif = np.array([TIFS.index(TimeInForce.GTC)])
    with pytest.raises(OrderError, match="GTC is for exits"):
        check_children(children, orders)


CONF = str(Path(__file__).resolve().parents[3] / "conf")
config.register()


def _run(out: Path, *overrides) -> None:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, f"out_dir={out}", "progress=false",
                                                       "data=stocks", "strategy=buy_and_hold"])
    run(cfg)


def test_16_3_execution_market_order_type_on_close(tmp_path):
    _run(tmp_path / "moc", "+execution.order_type=market_on_close")
    tables = [pd.read_csv(tmp_path / "moc" / f"{n}.csv") for n in ("orders", "fills", "execution")]
    for frame in tables:
        assert (frame["order_type"] == "market_on_close").all() and frame["trigger"].isna().all()
        assert (frame["reason"] == "rebalance").all()
    orders, fills, _ = tables
    assert (orders["status"] == "filled").all() and len(fills) == len(orders)
    # each fill is its session's close plus the half spread and impact, against the order
    data = Stocks().load()
    close = pd.DataFrame(data.close, index=pd.Index(data.labels).astype(str), columns=data.symbols)
    sign = fills["side"].map({"buy": 1.0, "sell": -1.0})
    base = fills["price"] - sign * (fills["spread_cost"] + fills["impact_cost"]) / fills["quantity"]
    met = [close.at[t, s] for t, s in zip(fills["time"].astype(str), fills["symbol"])]
    np.testing.assert_allclose(base, met, rtol=1e-12)
    _run(tmp_path / "loc", "+execution.order_type=limit_on_close", "+execution.limit_offset_bps=-500")
    loc = pd.read_csv(tmp_path / "loc" / "orders.csv")
    assert (loc["order_type"] == "limit_on_close").all() and (loc["status"] != "filled").any()


@pytest.mark.parametrize("amount, percent", [(np.nan, np.nan), (2.0, 0.03), (np.nan, 1.5), (-2.0, np.nan)])
def test_16_3_check_children_rejects_a_bad_trail(amount, percent):
    with pytest.raises(OrderError, match="trail_amount or trail_percent"):
        _fill(-100.0, [OrderType.TRAILING_STOP], trail_amount=[amount], trail_percent=[percent])
