"""The simulated broker's fills: against each bin's volume under the participation cap, limit
orders only when reached, first in first out, partial fills, cancel or sweep at the horizon
(always reported), costs as documented, and no NaN from tiny orders, quiet bins or halts."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core.contracts import AUCTION, Bins, ChildOrders, Orders, Session
from pipeline.backtest.engine import backtest
from pipeline.core.schedule import decision_bars
from plugins.allocation.equal_weight import EqualWeight
from plugins.broker.sim import SimBroker
from plugins.data.synthetic import Synthetic
from plugins.execution.iceberg import Iceberg
from plugins.execution.market import Market
from plugins.execution.pov import POV
from plugins.execution.twap import TWAP
from plugins.execution.vwap import VWAP
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum

FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)


def bins_of(price, volume, low=None, high=None, sigma=0.02, half_spread=0.0):
    price = np.asarray(price, dtype=float).reshape(len(price), -1)
    volume = np.broadcast_to(np.asarray(volume, dtype=float).reshape(len(volume), -1), price.shape)
    n_bins, m = price.shape
    return Bins(elapsed=np.arange(1, n_bins + 1) / n_bins, price=price,
                low=price if low is None else np.asarray(low, float).reshape(price.shape),
                high=price if high is None else np.asarray(high, float).reshape(price.shape),
                volume=volume.copy(), forecast=volume.copy(), sigma=np.full(m, sigma),
                half_spread=np.full(m, half_spread))


def session_of(bins):
    m = bins.price.shape[1]
    return Session(bar=1, reference=bins.price[0], close=bins.price[-1], volume=None,
                   symbols=np.arange(m), source=lambda bar, symbols: bins)


def children(parent, bin_, quantity, limit=None, participation=None, expire=None):
    n = len(parent)
    arr = (lambda x, fill: np.full(n, fill, dtype=float) if x is None else np.asarray(x, dtype=float))
    return ChildOrders(parent=np.asarray(parent), bin=np.asarray(bin_), quantity=arr(quantity, 0),
                       limit=arr(limit, np.nan),
                       participation=None if participation is None else arr(participation, np.nan),
                       expire=None if expire is None else np.asarray(expire))


def orders_of(quantity, arrival=100.0):
    q = np.asarray(quantity, dtype=float)
    return Orders(symbol=np.arange(q.size), quantity=q, arrival=np.full(q.size, arrival))


def per_bin(fills, n_bins, m):
    out = np.zeros((n_bins, m))
    np.add.at(out, (fills.bin, fills.parent), fills.quantity)
    return out


def test_fills_take_at_most_the_cap_of_each_bin_and_carry_the_rest():
    bins = bins_of([100, 101, 102, 103], [1000, 1000, 4000, 0])
    fills = SimBroker(**FREE, participation_cap=0.1).execute(
        orders_of([500.0]), children([0, 0, 0, 0], [0, 1, 2, 3], [125, 125, 125, 125]), session_of(bins))
    # 100 + 100 fill in the first two bins; the 25 each left roll into bin 2 (room for 400);
    # bin 3 trades nothing, so its child is left at the horizon
    np.testing.assert_allclose(per_bin(fills, 4, 1)[:, 0], [100, 100, 175, 0])
    np.testing.assert_allclose(fills.price, [100, 101, 102])
    assert fills.report.cancelled[0] == pytest.approx(125.0)  # reported, never silently dropped
    assert fills.report.first_bin[0] == 0 and fills.report.last_bin[0] == 3


def test_a_childs_own_participation_binds_below_the_brokers_cap():
    bins = bins_of([100, 100, 100], [1000, 1000, 1000])
    fills = SimBroker(**FREE, participation_cap=0.5).execute(
        orders_of([900.0]), children([0, 0, 0], [0, 1, 2], [300, 300, 300], participation=[0.2] * 3),
        session_of(bins))
    np.testing.assert_allclose(per_bin(fills, 3, 1)[:, 0], [200, 200, 200])


def test_limit_orders_fill_only_where_the_price_reaches_them():
    price = [100.0, 99.0, 98.0, 101.0]
    bins = bins_of(price, [1000] * 4, low=[99.5, 98.0, 97.0, 100.5], high=[100.5, 99.5, 99.0, 101.5])
    broker = SimBroker(**FREE, participation_cap=1.0)
    # a buy limit at 98.5: bin 0 never trades that low, bin 1 reaches it (a third of its range
    # is at or below it), bin 2's price beats it (three quarters of its range), bin 3 is above
    fills = broker.execute(orders_of([5000.0]), children([0] * 4, [0, 1, 2, 3], [1250] * 4, limit=[98.5] * 4),
                           session_of(bins))
    np.testing.assert_allclose(per_bin(fills, 4, 1)[:, 0], [0.0, 1000 / 3, 750.0, 0.0])
    np.testing.assert_allclose(fills.price[fills.bin == 1], 98.5)  # resting: filled at the limit
    np.testing.assert_allclose(fills.price[fills.bin == 2], 98.0)  # marketable: the bin's price
    # a sell limit at 101: only the last bin, half of whose range is at or above it
    fills = broker.execute(orders_of([-5000.0]), children([0], [0], [-5000.0], limit=[101.0], expire=[3]),
                           session_of(bins))
    np.testing.assert_array_equal(fills.bin, [3])
    np.testing.assert_allclose(fills.quantity, [-500.0])
    np.testing.assert_allclose(fills.price, [101.0])


def test_passive_fills_pay_no_spread_or_impact_and_aggressive_ones_do():
    bins = bins_of([[100.0, 100.0]] * 2, [[1e4, 1e4]] * 2, low=[[99.0, 99.0]] * 2,
                   high=[[101.0, 101.0]] * 2, half_spread=5e-4)
    broker = SimBroker(commission_bps=0.0, commission_min=0.0, impact_coef=0.5, participation_cap=1.0)
    fills = broker.execute(orders_of([100.0, 100.0]),
                           children([0, 1], [0, 0], [100.0, 100.0], limit=[99.5, np.nan], expire=[1, 1]),
                           session_of(bins))
    passive, aggressive = fills.parent == 0, fills.parent == 1
    np.testing.assert_allclose(fills.price[passive], 99.5)
    assert fills.spread_cost[passive].sum() == 0 and fills.impact_cost[passive].sum() == 0
    q = fills.quantity[aggressive]
    impact = 0.5 * 0.02 * np.sqrt(q / 1e4)  # the square-root law on the bin's volume
    np.testing.assert_allclose(fills.price[aggressive], 100.0 * (1 + 5e-4 + impact))
    np.testing.assert_allclose(fills.spread_cost[aggressive], q * 100.0 * 5e-4)
    np.testing.assert_allclose(fills.impact_cost[aggressive], q * 100.0 * impact)


@pytest.mark.parametrize("unfilled", ["cancel", "sweep"])
def test_the_remainder_at_the_horizon_is_cancelled_or_swept_and_reported(unfilled):
    bins = bins_of([[100.0, 100.0], [100.0, 100.0], [102.0, 102.0]], [[1e3, 1e3]] * 3)
    broker = SimBroker(**FREE, participation_cap=0.1, unfilled=unfilled)
    orders = orders_of([1000.0, -50.0])
    kids = children([0, 0, 1], [0, 1, 0], [500.0, 500.0, -50.0])
    fills = broker.execute(orders, kids, session_of(bins))
    filled = np.bincount(fills.parent, fills.quantity, 2)
    if unfilled == "cancel":
        np.testing.assert_allclose(filled, [200.0, -50.0])
        np.testing.assert_allclose(fills.report.cancelled, [800.0, 0.0])
    else:  # one market order for the rest in the horizon bin (bin 1), above the cap
        np.testing.assert_allclose(filled, [1000.0, -50.0])
        np.testing.assert_allclose(fills.report.swept, [800.0, 0.0])
        np.testing.assert_allclose(fills.report.cancelled, [0.0, 0.0])
        assert (fills.bin[fills.parent == 0] <= 1).all()
    np.testing.assert_allclose(filled + fills.report.cancelled, orders.quantity)


def test_iceberg_slices_are_worked_one_after_another():
    bins = bins_of([100.0] * 4, [300.0, 0.0, 300.0, 300.0])
    orders = orders_of([250.0])
    kids = Iceberg(display=0.2).slice(orders, session_of(bins))  # 5 slices of 50
    fills = SimBroker(**FREE, participation_cap=0.5).execute(orders, kids, session_of(bins))
    # 150 a bin where the market trades: three slices, none in the quiet bin, the rest next
    np.testing.assert_allclose(per_bin(fills, 4, 1)[:, 0], [150.0, 0.0, 100.0, 0.0])


def test_commission_minimum_is_per_parent_order_not_per_child():
    bins = bins_of([100.0] * 5, [1e6] * 5)
    broker = SimBroker(commission_bps=1.0, commission_min=1.0, half_spread_bps=0.0, impact_coef=0.0)
    fills = broker.execute(orders_of([50.0]), children([0] * 5, range(5), [10.0] * 5), session_of(bins))
    # 5,000 USD at 1 bp is 0.50: topped up once to the minimum, not five times
    assert fills.commission.sum() == pytest.approx(1.0)


def test_lots_fill_whole():
    bins = bins_of([100.0] * 3, [1234.0, 987.0, 5555.0])
    fills = SimBroker(**FREE, participation_cap=0.1, lot_size=100.0).execute(
        orders_of([1000.0]), children([0, 0, 0], [0, 1, 2], [300.0, 300.0, 400.0]), session_of(bins))
    np.testing.assert_allclose(fills.quantity % 100, 0.0)
    np.testing.assert_allclose(per_bin(fills, 3, 1)[:, 0], [100.0, 0.0, 500.0])


def test_tiny_orders_quiet_bins_and_halted_symbols_give_no_nan():
    price = np.array([[100.0, 50.0, 20.0]] * 3)
    volume = np.array([[0.0, 1e5, 0.0], [0.0, 0.0, 0.0], [0.0, 1e5, 0.0]])
    bins = Bins(elapsed=np.arange(1, 4) / 3, price=price, low=price, high=price, volume=volume,
                forecast=np.zeros((3, 3)), sigma=np.array([0.0, 0.02, 0.01]), half_spread=np.full(3, 2e-4))
    orders = orders_of([1e-12, -3.0, 500.0])
    for algo in (TWAP(), VWAP(), POV(rate=0.1), Iceberg()):
        kids = algo.slice(orders, session_of(bins))
        fills = SimBroker().execute(orders, kids, session_of(bins))
        for name in ("quantity", "price", "commission", "spread_cost", "impact_cost"):
            assert np.isfinite(getattr(fills, name)).all()
        assert not np.isnan(fills.report.cancelled).any()
        assert (fills.parent != 2).all()  # never any volume: nothing fills, all reported
        assert fills.report.cancelled[2] == pytest.approx(500.0)


def test_an_auction_child_fills_whole_at_the_reference_and_builds_no_bins():
    data = Synthetic(n_symbols=3, n_bars=60, seed=3).load()
    broker = SimBroker(**FREE)
    broker.prepare(data)

    def no_bins(bar, symbols):
        raise AssertionError("the auction needs no intraday bins")

    session = Session(bar=30, reference=data.open[30], close=data.close[30], volume=data.volume[30],
                      symbols=np.arange(3), source=no_bins)
    orders = Orders(symbol=np.arange(3), quantity=np.array([10.0, -20.0, 30.0]), arrival=data.close[29])
    fills = broker.execute(orders, Market().slice(orders, session), session)
    np.testing.assert_array_equal(fills.bin, [AUCTION] * 3)
    np.testing.assert_allclose(fills.price, data.open[30])


# ---------------------------------------------------------------- through the engine

@pytest.fixture(scope="module")
def ohlcv():
    return Synthetic(n_symbols=6, n_bars=400, seed=11).load()


ALGOS = [Market(), TWAP(), VWAP(max_participation=0.05), POV(rate=0.02), Iceberg(display=0.1, limit_bps=10.0)]


@pytest.mark.parametrize("algo", ALGOS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("unfilled", ["cancel", "sweep"])
def test_child_fills_sum_to_each_parents_filled_quantity(ohlcv, algo, unfilled):
    # a huge book against ~1e6 shares a day: caps bind, orders fill partly
    broker = SimBroker(participation_cap=0.1, unfilled=unfilled, lot_size=1.0)
    ledger = backtest(ohlcv, Momentum(lookback=60, skip=5, top_k=3), EqualWeight(), [], algo, broker,
                      decision_bars(ohlcv.index, "weekly"), 5e9)
    o, f = ledger.orders, ledger.fills
    n = o["id"].size
    np.testing.assert_allclose(np.bincount(f["order"], f["quantity"], n), o["filled"])
    np.testing.assert_allclose(o["filled"] + o["cancelled"], o["quantity"], rtol=1e-9, atol=1e-6)
    assert (np.sign(f["quantity"]) == np.sign(o["quantity"][f["order"]])).all()
    assert np.isfinite(f["price"]).all() and np.isfinite(ledger.equity).all()
    if unfilled == "sweep" and type(algo).__name__ in ("TWAP", "VWAP", "POV"):
        assert np.abs(o["swept"]).sum() > 0
    if type(algo).__name__ != "Market" and unfilled == "cancel":
        assert (np.abs(o["filled"]) < np.abs(o["quantity"]) - 1).any()  # some partial fills


def test_every_session_is_the_same_whichever_algorithm_asked(ohlcv):
    """Seeded bins: the same run twice gives the same fills; another seed another market."""
    def run(seed):
        return backtest(ohlcv, BuyAndHold(), EqualWeight(), [], VWAP(), SimBroker(seed=seed),
                        decision_bars(ohlcv.index, "monthly"), 1e6).fills["price"]

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_vwap_tracks_the_interval_vwap_within_1bp_over_a_run(ohlcv):
    """Impact and spread off, realised profile = the forecast one (no volume noise)."""
    broker = SimBroker(**FREE, volume_noise=0.0)
    ledger = backtest(ohlcv, Momentum(lookback=60, skip=5, top_k=3), EqualWeight(), [], VWAP(), broker,
                      decision_bars(ohlcv.index, "weekly"), 1e6)
    o = ledger.orders
    avg = o["filled_value"] / o["filled"]
    assert np.abs(avg / o["market_vwap"] - 1).max() < 1e-4


def test_a_run_on_real_intraday_bars(tmp_path, ohlcv):
    """Five-minute bars for part of the run: those sessions fill in them, the rest simulated."""
    rng = np.random.default_rng(0)
    times = [f"{h:02d}:{m:02d}" for h in range(9, 16) for m in range(0, 60, 5) if (h, m) >= (9, 35)]
    times.append("16:00")
    rows = []
    for day in ohlcv.index[200:260]:
        for s, sym in enumerate(ohlcv.symbols):
            close = ohlcv.close[ohlcv.index.get_loc(day), s] * np.exp(rng.normal(0, 1e-3, len(times)))
            rows.append(pd.DataFrame({"time": [f"{day:%Y-%m-%d} {t}" for t in times], "symbol": sym,
                                      "close": close, "volume": rng.uniform(1e3, 1e4, len(times))}))
    path = tmp_path / "bars.parquet"
    pd.concat(rows).to_parquet(path)
    ledger = backtest(ohlcv, BuyAndHold(), EqualWeight(), [], TWAP(), SimBroker(intraday=str(path)),
                      decision_bars(ohlcv.index, "weekly"), 1e6)
    f = ledger.fills
    covered = (f["bar"] >= 200) & (f["bar"] < 260)
    assert covered.any() and (~covered).any()
    assert f["bin"][covered].max() > 13 and f["bin"][~covered].max() <= 12  # 78 bars a day vs 13
    assert np.isfinite(f["price"]).all()
