"""The order-book engine on hand-built books: what a strategy sees, the queue models (hand
computed from their formulas), latency, partial fills, fees, order checks, chunked replay."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import UserError
from pipeline.core.lob import EventStrategy, OrderBook
from pipeline.lob.engine import replay
from plugins.broker.lob import LOBExchange
from plugins.data.lob_synthetic import synthetic_book
from plugins.data.lobster import LOBSTER, write_lobster
from plugins.strategy.market_maker import MarketMaker


def make_book(rows, levels=2):
    """rows: (time, [(bid px, qty)], [(ask px, qty)], trade (px, qty, aggressor sign) or None)."""
    n = len(rows)
    bp, bq = np.full((n, levels), np.nan), np.zeros((n, levels))
    ap, aq = np.full((n, levels), np.nan), np.zeros((n, levels))
    trades = []
    for k, (_, bids, asks, trade) in enumerate(rows):
        for i, (p, q) in enumerate(bids):
            bp[k, i], bq[k, i] = p, q
        for i, (p, q) in enumerate(asks):
            ap[k, i], aq[k, i] = p, q
        if trade:
            trades.append((k, *trade))
    tr = np.array(trades, dtype=float).reshape(-1, 4)
    return OrderBook(time=np.array([r[0] for r in rows], dtype=float) + 34_200.0, bid_price=bp, bid_size=bq,
                     ask_price=ap, ask_size=aq, trade_row=tr[:, 0].astype(np.int64), trade_price=tr[:, 1],
                     trade_size=tr[:, 2], trade_sign=tr[:, 3], symbol="X", date="2024-01-02")


class Script(EventStrategy):
    """Sends the orders of ``script[i]`` at its i-th decision; records what it saw."""

    def __init__(self, script: dict = None, interval: float = 1.0) -> None:
        self.script = script or {}
        self.interval = interval
        self.seen = []
        self.calls = 0

    def decide(self, ctx) -> None:
        self.seen.append((ctx.time, ctx.row, ctx.book.n_rows, float(ctx.book.time[-1]), ctx.position))
        for kind, *args in self.script.get(self.calls, []):
            getattr(ctx, kind)(*args)
        self.calls += 1


def exchange(**kw):
    base = dict(feed_latency=0.0, entry_latency=0.0, response_latency=0.0, maker_fee_bps=0.0, taker_fee_bps=0.0)
    return LOBExchange(**{**base, **kw})


# bid 100.00 with 300 ahead; 300 join behind; 300 cancel; trades of 200 and 150; the ask comes down
QUEUE = make_book([
    (0.5, [(100.00, 300), (99.99, 500)], [(100.01, 300), (100.02, 500)], None),
    (1.2, [(100.00, 600), (99.99, 500)], [(100.01, 300), (100.02, 500)], None),
    (1.5, [(100.00, 300), (99.99, 500)], [(100.01, 300), (100.02, 500)], None),
    (2.0, [(100.00, 100), (99.99, 500)], [(100.01, 300), (100.02, 500)], (100.00, 200, -1)),
    (2.5, [(99.99, 500), (99.98, 500)], [(100.01, 300), (100.02, 500)], (100.00, 150, -1)),
    (3.0, [(99.99, 500), (99.98, 500)], [(100.00, 100), (100.01, 300)], None),
    (4.0, [(99.99, 500), (99.98, 500)], [(100.00, 100), (100.01, 300)], None),
])


def fills(result):
    return list(zip(np.round(result.fills["time"], 6) - 34_200.0, result.fills["qty"], result.fills["price"]))


def test_19_2_risk_averse_queue_advances_on_trades_only_and_fills_partially():
    # joins behind 300 at 1.0; the 300 that join behind and cancel leave it 300 back; the trade
    # of 200 leaves 100 ahead; the trade of 150 fills 50; the ask at 100.00 crosses the rest
    r = replay(QUEUE, Script({0: [("buy", 100.00, 100)]}), exchange(queue="risk_averse"), capital=0.0)
    assert r.orders["queue_ahead"] == [300.0]
    assert fills(r) == [(2.5, 50.0, 100.0), (3.0, 50.0, 100.0)]
    assert r.fills["maker"] == [True, True]


def test_19_2_power_prob_queue_counts_cancels_ahead_with_its_probability():
    # hftbacktest's PowerProbQueueModel(2): at 1.5, 300 cancel with 300 ahead and 300 behind:
    # p = 300^2 / (300^2 + 300^2) = 1/2 of them behind -> 150 ahead; the trade of 200 fills 50
    # at 2.0; the next trade fills the last 50
    r = replay(QUEUE, Script({0: [("buy", 100.00, 100)]}), exchange(queue="power_prob", queue_power=2.0),
               capital=0.0)
    assert fills(r) == [(2.0, 50.0, 100.0), (2.5, 50.0, 100.0)]
    whole = replay(QUEUE, Script({0: [("buy", 100.00, 100)]}),
                   exchange(queue="power_prob", partial_fills=False), capital=0.0)
    assert fills(whole) == [(2.0, 100.0, 100.0)]


def test_19_2_a_strategy_sees_the_book_as_of_each_event_never_a_later_one():
    feed = 0.4
    s = Script(interval=0.25)
    replay(QUEUE, s, exchange(feed_latency=feed), capital=0.0)
    t = QUEUE.time
    assert len(s.seen) > 10
    for now, row, n_rows, last_time, _ in s.seen:
        assert n_rows == row + 1 and last_time == t[row]          # the view ends at the row
        assert t[row] <= now - feed + 1e-9                          # received, feed latency applied
        assert row == t.size - 1 or t[row + 1] > now - feed         # the latest one received


def test_19_2_latency_entry_response_and_feed():
    ex = exchange(feed_latency=0.1, entry_latency=0.3, response_latency=0.4)
    s = Script({0: [("buy", 100.00, 100)]})
    r = replay(QUEUE, s, ex, capital=0.0)
    # sent at 1.0, at the exchange at 1.3: the 300 behind had joined by 1.2 -> 600 ahead
    assert r.orders["arrival"][0] - 34_200.0 == pytest.approx(1.3)
    assert r.orders["queue_ahead"] == [600.0]
    assert r.fills["known_time"][0] == pytest.approx(r.fills["time"][0] + 0.4)
    # the strategy's position moves when it learns of the fill, the exchange's when it happens
    fill_at = r.fills["time"][0]
    for now, *_, position in s.seen:
        assert position == (0.0 if now < fill_at + 0.4 else position)
    lognormal = replay(QUEUE, Script({0: [("buy", 100.00, 100), ("sell", 100.02, 100)]}),
                       exchange(entry_latency=0.3, latency="lognormal", latency_sigma=0.5), capital=0.0, seed=3)
    drawn = lognormal.orders["entry_latency"]
    assert len(set(drawn)) == 2 and all(d > 0 for d in drawn)
    again = replay(QUEUE, Script({0: [("buy", 100.00, 100), ("sell", 100.02, 100)]}),
                   exchange(entry_latency=0.3, latency="lognormal", latency_sigma=0.5), capital=0.0, seed=3)
    assert again.orders["entry_latency"] == drawn


def test_19_2_market_order_walks_the_levels_and_pays_the_taker_fee():
    ex = exchange(taker_fee_bps=1.0, taker_fee_per_share=0.001)
    r = replay(QUEUE, Script({0: [("market", 400)]}), ex, capital=0.0)
    assert fills(r) == [(1.0, 300.0, 100.01), (1.0, 100.0, 100.02)]
    assert r.fills["maker"] == [False, False]
    fee = [100.01 * 300 * 1e-4 + 0.3, 100.02 * 100 * 1e-4 + 0.1]
    np.testing.assert_allclose(r.fills["fee"], fee)
    assert r.equity["cash"][-1] == pytest.approx(-(100.01 * 300 + 100.02 * 100) - sum(fee))


def test_19_2_a_market_order_walks_more_levels_than_the_venue_holds_orders():
    deep = make_book([(0.5, [(100.00, 100)], [(100.01 + i / 100, 10) for i in range(8)], None),
                      (2.0, [(100.00, 100)], [(100.01 + i / 100, 10) for i in range(8)], None)], levels=8)
    r = replay(deep, Script({0: [("market", 80)]}), exchange(max_orders=1), capital=0.0)
    assert [q for _, q, _ in fills(r)] == [10.0] * 8
    assert [p for *_, p in fills(r)] == pytest.approx([100.01 + i / 100 for i in range(8)])


def test_19_2_maker_rebate_and_cancel():
    ex = exchange(maker_fee_bps=-0.5)
    r = replay(QUEUE, Script({0: [("buy", 100.00, 100)]}), ex, capital=0.0)
    np.testing.assert_allclose(r.fills["fee"], [-100.0 * 50 * 0.5e-4] * 2)
    cancelled = replay(QUEUE, Script({0: [("buy", 100.00, 100)], 1: [("cancel", 0)]}), ex, capital=0.0)
    assert cancelled.fills["qty"] == [] and cancelled.orders["status"] == ["cancelled"]


@pytest.mark.parametrize("order, what", [(("buy", float("nan"), 100), "price nan"),
                                         (("buy", 100.00, 0), "size 0"), (("sell", -1.0, 100), "price -1.0"),
                                         (("buy", 100.00, -5), "size -5"), (("market", float("nan")), "size nan"),
                                         (("buy", 100.005, 100), "off the tick grid")])
def test_19_bad_input_no_order_with_a_nan_zero_or_negative_price_or_size(order, what):
    with pytest.raises(UserError, match=what) as err:
        replay(QUEUE, Script({0: [order]}), exchange(), capital=0.0)
    assert "strategy Script at 34201.000000" in str(err.value) and "\n" not in str(err.value)


def test_19_5_a_file_streamed_in_chunks_replays_like_the_whole_file(tmp_path):
    book, messages = synthetic_book(n_events=6_000, seed=5, messages=True)
    message, _ = write_lobster(tmp_path, messages, book)
    mm = dict(interval=0.5, vol_window=20.0, order_qty=100.0, max_inventory=300.0)
    ex = exchange(feed_latency=0.002, entry_latency=0.001, response_latency=0.001)
    whole = replay(LOBSTER(path=str(message)).chunks(), MarketMaker(**mm), ex)
    pieces = replay(LOBSTER(path=str(message), chunk_rows=700).chunks(), MarketMaker(**mm), ex)
    assert len(whole.fills["qty"]) > 20
    for table in ("fills", "orders", "equity"):      # NaN-aware: the last fills have no 10 s markout
        assert pd.DataFrame(getattr(pieces, table)).equals(pd.DataFrame(getattr(whole, table))), table
    assert pieces.events == whole.events == book.n_rows
