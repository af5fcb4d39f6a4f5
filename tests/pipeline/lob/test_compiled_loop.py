"""The compiled replay loop (``pipeline/lob/loop.py``) against the Python one (``Replay.run``
with ``decide``): every column of orders, fills and equity and every action, exactly, for the
market maker over queue models, partial fills, latency models, inventory limits, a full venue
and chunked books, and for the microstructure taker over its signals and settings."""

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import UserError
from pipeline.core.lob import NO_QUOTE, EventStrategy, quote_signature, target_signature
from pipeline.lob.engine import Replay, replay
from plugins.broker.lob import LOBExchange
from plugins.data.lob_synthetic import synthetic_book
from plugins.data.lobster import LOBSTER, write_lobster
from plugins.strategy.market_maker import MarketMaker
from plugins.strategy.microstructure import Microstructure


@pytest.fixture(scope="module")
def book():
    return synthetic_book(n_events=8_000, seed=11)


def pieces(book, rows):
    return [book.window(lo, min(lo + rows, book.n_rows)) for lo in range(0, book.n_rows, rows)]


def same(compiled, python):
    nan_free = lambda actions: [tuple(None if v != v else v for v in a) for a in actions]    # noqa: E731
    assert nan_free(compiled.actions) == nan_free(python.actions)
    for table in ("orders", "fills", "equity"):      # NaN-aware and exact, column by column
        a, b = pd.DataFrame(getattr(compiled, table)), pd.DataFrame(getattr(python, table))
        assert list(a.columns) == list(b.columns) and len(a) == len(b), table
        for column in a:
            assert a[column].equals(b[column]), f"{table}.{column}"
    assert (compiled.events, compiled.capital) == (python.events, python.capital)


QUOTES = {"vol_window": 20.0, "kappa": 1e4, "gamma": 0.05}     # near the touch: fills on a small book
SETTINGS = {
    "risk_averse": ({}, {}),
    "power_prob": ({}, {"queue": "power_prob", "queue_power": 3.0}),
    "whole_fills": ({}, {"partial_fills": False}),
    "power_prob_whole": ({}, {"queue": "power_prob", "partial_fills": False}),
    "lognormal": ({}, {"latency": "lognormal", "latency_sigma": 1.5, "entry_latency": 0.2,
                       "response_latency": 0.02}),
    "inventory_limit": ({"max_inventory": 200.0, "gamma": 0.5, "horizon": 5.0}, {}),
    "fixed_quoter": ({"sigma": 1e-12, "kappa": 1e12, "horizon": 0.0, "order_qty": 150.0,
                      "max_inventory": 600.0}, {"partial_fills": False}),
    "venue_full": ({}, {"max_orders": 1, "entry_latency": 0.3}),
    "fees_per_share": ({"interval": 0.05}, {"maker_fee_per_share": -0.002, "taker_fee_per_share": 0.003,
                                            "feed_latency": 0.0, "response_latency": 0.2}),
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
@pytest.mark.parametrize("chunk", [None, 700])
def test_19_5_the_compiled_loop_replays_the_market_maker_like_python(book, name, chunk):
    mm, ex = SETTINGS[name]
    make = lambda: MarketMaker(**{**QUOTES, **mm})          # noqa: E731
    exchange = LOBExchange(**ex)
    source = (lambda: pieces(book, chunk)) if chunk else (lambda: book)
    assert Replay([book], make(), exchange, 0.0, 5).quoter is not None       # the compiled path runs
    compiled = replay(source(), make(), exchange, capital=1e5, seed=5)
    python = replay(source(), make(), exchange, capital=1e5, seed=5, compiled=False)
    assert len(python.fills["qty"]) > 100
    same(compiled, python)
    if name == "inventory_limit":
        assert max(abs(p) for p in python.equity["position"]) >= 200.0
    if name == "venue_full":
        assert "expired" in python.orders["status"]
    if name == "lognormal":                  # drawn per order; some cancels overtake their order
        assert len(set(python.orders["entry_latency"])) > 100 and False in python.fills["maker"]
        assert any(s == "cancelled" and q != q for s, q in zip(python.orders["status"], python.orders["queue_ahead"]))


def test_19_5_chunks_replay_like_the_whole_book_on_the_compiled_path(book, tmp_path):
    ex = LOBExchange(queue="power_prob")
    whole = replay(book, MarketMaker(**QUOTES), ex)
    assert len(whole.fills["qty"]) > 100
    for rows in (333, 2_000):
        same(replay(pieces(book, rows), MarketMaker(**QUOTES), ex), whole)
    # LOBSTER files streamed in chunks (read-only buffers), against the Python loop
    small, messages = synthetic_book(n_events=4_000, seed=5, messages=True)
    message, _ = write_lobster(tmp_path, messages, small)
    source = lambda: LOBSTER(path=str(message), chunk_rows=500).chunks()      # noqa: E731
    same(replay(source(), MarketMaker(**QUOTES), ex), replay(source(), MarketMaker(**QUOTES), ex, compiled=False))


TAKERS = {
    "combined": ({}, {}),
    "imbalance_levels": ({"kind": "imbalance", "levels": 5, "decay": 0.7, "interval": 0.2}, {}),
    "microprice_threshold": ({"kind": "microprice", "threshold": 0.3, "interval": 0.3},
                             {"queue": "power_prob", "partial_fills": False}),
    "trade_flow_lognormal": ({"kind": "trade_flow", "flow_window": 5.0, "interval": 0.2},
                             {"latency": "lognormal", "entry_latency": 0.2, "taker_fee_per_share": 0.003}),
    "venue_full": ({"interval": 0.1, "lot": 50.0}, {"max_orders": 1, "entry_latency": 0.25}),
}


@pytest.mark.parametrize("name", sorted(TAKERS))
@pytest.mark.parametrize("chunk", [None, 900])
def test_19_5_the_compiled_loop_replays_the_microstructure_taker_like_python(book, name, chunk):
    settings, ex = TAKERS[name]
    exchange = LOBExchange(**ex)
    source = (lambda: pieces(book, chunk)) if chunk else (lambda: book)
    assert Replay([book], Microstructure(**settings), exchange, 0.0, 5).taker is not None
    compiled = replay(source(), Microstructure(**settings), exchange, capital=1e5, seed=5)
    python = replay(source(), Microstructure(**settings), exchange, capital=1e5, seed=5, compiled=False)
    assert len(python.fills["qty"]) > 100 and set(python.orders["kind"]) == {"market"}
    same(compiled, python)


class _Subclass(MarketMaker):
    def quotes(self, book, row, position, tick):
        bid, ask = super().quotes(book, row, position, tick)
        return bid - tick, ask


class _Signal(Microstructure):
    def signal(self, book, at):
        return -super().signal(book, at)


def test_19_5_python_overrides_and_plain_strategies_keep_the_python_path(book):
    assert _Subclass().quote_kernel() is None and _Signal().target_kernel() is None
    assert Replay([book], EventStrategy(), LOBExchange(), 0.0, 5).quoter is None
    assert Replay([book], MarketMaker(), LOBExchange(), 0.0, 5, compiled=False).quoter is None


class _AtZero(EventStrategy):
    """A compiled rule that bids at tick 0: refused like ``ctx.buy(0.0, ...)``."""

    interval = 0.5

    def quote_kernel(self):
        from numba import njit

        rule = njit(quote_signature())(lambda t, bp, bs, ap, az, tr, tp, ts, tg, pos, tick, p: (0, NO_QUOTE))
        return rule, np.zeros(1), 100.0


class _NanTarget(EventStrategy):
    """A compiled taker rule that wants a NaN position: refused like ``ctx.market(nan)``."""

    interval = 0.5

    def target_kernel(self):
        from numba import njit

        return njit(target_signature())(lambda t, bp, bs, ap, az, tr, tp, ts, tg, pos, tick, p: np.nan), np.zeros(1)


def test_19_5_a_compiled_rule_gets_the_order_checks_of_the_python_path(book):
    with pytest.raises(UserError, match=r"strategy _AtZero at \d+\.\d{6}: an order with price 0.0 and size 100.0"):
        replay(book, _AtZero(), LOBExchange())
    with pytest.raises(UserError, match=r"strategy _NanTarget at \d+\.\d{6}: an order with price nan and size nan"):
        replay(book, _NanTarget(), LOBExchange())
