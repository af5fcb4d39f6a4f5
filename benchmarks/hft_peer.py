"""hftbacktest (the bench extra) beside robo-trader's order-book engine, on the same events.

    python benchmarks/hft_peer.py             # fills, P&L and events/s of both, side by side

The same synthetic book is fed to both: robo-trader replays the ``OrderBook``; hftbacktest
gets its market-by-price events (``to_hftbacktest``: per row, the trade first, then every
level whose size changed, a vanished level as size 0), with the feed latency in the local
timestamps. The settings that must match, and do:

- latency: ``constant_order_latency(entry, response)`` and local = exchange + feed;
- queue: ``risk_adverse_queue_model()`` <-> ``queue=risk_averse``,
  ``power_prob_queue_model(n)`` <-> ``queue=power_prob, queue_power=n``;
- exchange: ``partial_fill_exchange()``, GTC limit orders; fees ``trading_value_fee_model``
  with robo-trader's basis points / 1e4; tick 0.01, lot 1 share;
- strategy: a fixed quoter, one bid at the best bid and one ask at the best ask of 100 shares,
  re-quoted every ``interval`` (a resting quote at the wanted price is kept), no bid at +500
  shares, no ask at -500: ``MarketMaker`` with no inventory skew and no spread (``quoter``)
  and ``hft_quoter`` below, line for line.

With these settings the two agree exactly: fills, volume, position, fees and P&L (to 1e-6,
tests/benchmarks/test_hftbacktest_peer.py, both queue models). Two differences are hftbacktest
2.4.2's, and the reason the comparison runs its no-partial-fill exchange (robo-trader's
``partial_fills=false``):

- with ``partial_fill_exchange()`` its local state applies a fill to the position only when an
  order's status becomes Filled (``backtest/proc/local.rs``), and then only the last part: a
  quote filled 100 then 50 counts 50 shares, so its position and P&L drift from its own
  exchange's (and from robo-trader's, which counts every part);
- an order whose queue fill equals its remaining size exactly is marked Filled but left in its
  price level, and the next event on it stops the backtest with InvalidOrderStatus (elapse
  returns 14). The quotes are 150 shares on a book of 100-share lots, so that never happens.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from pipeline.lob.engine import NS, replay
from plugins.broker.lob import LOBExchange
from plugins.data.lob_synthetic import synthetic_book
from plugins.strategy.market_maker import MarketMaker

QTY, MAX_INVENTORY = 150.0, 600.0


def quoter(interval: float) -> MarketMaker:
    """The fixed quoter as robo-trader's market maker: no volatility, so no skew, and a fill
    intensity so steep that the optimal spread is zero: it joins the best bid and ask."""
    return MarketMaker(interval=interval, sigma=1e-12, gamma=0.1, kappa=1e12, horizon=0.0,
                       order_qty=QTY, max_inventory=MAX_INVENTORY)


def exchange(queue: str = "risk_averse", power: float = 2.0, partial: bool = False, feed: float = 0.001,
             entry: float = 0.001, response: float = 0.001, maker_bps: float = -0.2,
             taker_bps: float = 0.3) -> LOBExchange:
    return LOBExchange(feed_latency=feed, entry_latency=entry, response_latency=response, queue=queue,
                       queue_power=power, partial_fills=partial, maker_fee_bps=maker_bps, taker_fee_bps=taker_bps)


def to_hftbacktest(book, feed: float, tick: float = 0.01) -> np.ndarray:
    """The book's rows as hftbacktest market-by-price events (``event_dtype``)."""
    from hftbacktest import (BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT,
                             TRADE_EVENT)
    from hftbacktest.binding import event_dtype

    t = np.round(book.time * NS).astype(np.int64)
    lag = int(round(feed * NS))
    trades = {int(r): i for i, r in enumerate(book.trade_row)}
    rows = []
    prev = ({}, {})
    for k in range(book.n_rows):
        if k in trades:
            i = trades[k]
            flag = TRADE_EVENT | (BUY_EVENT if book.trade_sign[i] > 0 else SELL_EVENT)
            rows.append((EXCH_EVENT | LOCAL_EVENT | flag, t[k], t[k] + lag, book.trade_price[i],
                         book.trade_size[i], 0, 0, 0.0))
        for side, (prices, sizes, flag) in enumerate(((book.bid_price, book.bid_size, BUY_EVENT),
                                                      (book.ask_price, book.ask_size, SELL_EVENT))):
            now = {int(round(p / tick)): q for p, q in zip(prices[k], sizes[k]) if np.isfinite(p) and q > 0}
            before = prev[side]
            changed = [(p, 0.0) for p in before if p not in now] + \
                      [(p, q) for p, q in now.items() if before.get(p) != q]
            for p, q in changed:
                rows.append((EXCH_EVENT | LOCAL_EVENT | DEPTH_EVENT | flag, t[k], t[k] + lag, p * tick, q, 0, 0, 0.0))
            prev = (now, prev[1]) if side == 0 else (prev[0], now)
    return np.array(rows, dtype=event_dtype)


def hft_quoter():
    """hftbacktest's side of the fixed quoter, compiled by numba as hftbacktest requires."""
    from hftbacktest import BUY, GTC, LIMIT, SELL
    from numba import njit

    @njit
    def run(hbt, interval, qty, max_inventory, out):
        n, step = 0, 0
        while True:
            code = hbt.elapse(interval)
            if code != 0:
                break
            hbt.clear_inactive_orders(0)
            depth = hbt.depth(0)
            position = hbt.position(0)
            orders = hbt.orders(0)
            bid, ask = depth.best_bid, depth.best_ask
            want_bid = bid if position < max_inventory else np.nan
            want_ask = ask if position > -max_inventory else np.nan
            keep_bid, keep_ask = False, False
            values = orders.values()
            while values.has_next():
                order = values.get()
                if not order.cancellable:
                    continue
                want = want_bid if order.side == BUY else want_ask
                kept = keep_bid if order.side == BUY else keep_ask
                if abs(order.price - want) < depth.tick_size / 2 and not kept:
                    if order.side == BUY:
                        keep_bid = True
                    else:
                        keep_ask = True
                else:
                    hbt.cancel(0, order.order_id, False)
            if not keep_bid and np.isfinite(want_bid):
                n += 1
                hbt.submit_buy_order(0, n, want_bid, qty, GTC, LIMIT, False)
            if not keep_ask and np.isfinite(want_ask):
                n += 1
                hbt.submit_sell_order(0, n, want_ask, qty, GTC, LIMIT, False)
            if step < out.shape[0]:
                out[step, 0] = hbt.current_timestamp
                out[step, 1] = position
            step += 1
        return step, code

    return run


def run_hftbacktest(events: np.ndarray, interval: float, queue: str = "risk_averse", power: float = 2.0,
                    partial: bool = False, entry: float = 0.001, response: float = 0.001, maker_bps: float = -0.2,
                    taker_bps: float = 0.3, quoter_fn=None, steps: int = 0) -> dict:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (BacktestAsset().data(events).linear_asset(1.0)
             .constant_order_latency(int(round(entry * NS)), int(round(response * NS)))
             .trading_value_fee_model(maker_bps / 1e4, taker_bps / 1e4)
             .tick_size(0.01).lot_size(1.0).last_trades_capacity(0))
    asset = asset.partial_fill_exchange() if partial else asset.no_partial_fill_exchange()
    asset = asset.risk_adverse_queue_model() if queue == "risk_averse" else asset.power_prob_queue_model(power)
    hbt = HashMapMarketDepthBacktest([asset])
    started = time.perf_counter()
    path = np.zeros((int(steps), 2))
    n, code = (quoter_fn or hft_quoter())(hbt, int(round(interval * NS)), QTY, MAX_INVENTORY, path)
    elapsed = time.perf_counter() - started
    state = hbt.state_values(0)
    depth = hbt.depth(0)
    mid = (depth.best_bid + depth.best_ask) / 2
    out = {"position": state.position, "balance": state.balance, "fee": state.fee,
           "fills": state.num_trades, "volume": state.trading_volume,
           "pnl": state.balance + state.position * mid - state.fee, "seconds": elapsed,
           "path": path[:min(n, path.shape[0])], "code": code}
    hbt.close()
    return out


def run_ours(book, interval: float, ex: Optional[LOBExchange] = None, compiled: bool = True) -> dict:
    ex = ex or exchange()
    started = time.perf_counter()
    # hftbacktest's clock starts at the first event's time and steps first by one interval
    result = replay(book, quoter(interval), ex, capital=0.0, origin=book.time[0] + interval, compiled=compiled)
    elapsed = time.perf_counter() - started
    f = result.fills
    fees = float(np.sum(f["fee"]))
    side, qty, px = (np.asarray(f[k], float) for k in ("side", "qty", "price"))
    position, balance = float(np.sum(side * qty)), float(-np.sum(side * qty * px))
    # marked as hftbacktest marks it: at the mid after the last event
    return {"position": position, "balance": balance, "fee": fees, "fills": len(qty), "volume": float(qty.sum()),
            "pnl": balance + position * float(book.mid[-1]) - fees, "seconds": elapsed, "result": result}


def main() -> None:
    book = synthetic_book(n_events=200_000, seed=7, rate=200.0)
    events = to_hftbacktest(book, feed=0.001)
    interval = 0.1
    run_ours(synthetic_book(n_events=2_000, seed=1), interval)          # compile and warm up both
    fn = hft_quoter()
    run_hftbacktest(to_hftbacktest(synthetic_book(n_events=2_000, seed=1), 0.001), interval, quoter_fn=fn)
    ours, peer = run_ours(book, interval), run_hftbacktest(events, interval, quoter_fn=fn)
    print(f"{book.n_rows:,} book rows ({events.size:,} hftbacktest events), quotes every {interval}s")
    for name, r in (("robo-trader", ours), ("hftbacktest", peer)):
        print(f"  {name:12s} fills {r['fills']:6d}  volume {r['volume']:10,.0f}  position {r['position']:7,.0f}  "
              f"P&L {r['pnl']:10,.2f}  {r['seconds']:.2f}s  {book.n_rows / r['seconds']:,.0f} rows/s")


if __name__ == "__main__":
    main()
