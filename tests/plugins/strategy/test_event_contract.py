"""Every event strategy (registered, or a conf/strategy file targeting one): the decision at an
event does not depend on the events after it, and the same replay gives the same actions."""

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.app import registry
from pipeline.core.lob import EventStrategy
from pipeline.core.params import build, import_target
from pipeline.lob.engine import replay
from plugins.broker.lob import LOBExchange
from plugins.data.lob_synthetic import synthetic_book

CONF = Path(__file__).resolve().parents[3] / "conf" / "strategy"


def _event_strategies() -> dict[str, dict]:
    """name -> config node: the YAML files' and the registered plugins' (their defaults)."""
    found = {}
    for path in sorted(CONF.glob("*.yaml")):
        for name, node in OmegaConf.to_container(OmegaConf.load(path)).items():
            if isinstance(node, dict) and issubclass(import_target(node["_target_"], name), EventStrategy):
                found[name] = node
    for name, ep in registry.registered()["strategy"].items():
        if name not in found and issubclass(ep.load(), EventStrategy):
            found[name] = {"_target_": registry.target_path(ep)}
    return found


STRATEGIES = _event_strategies()


def test_19_6_the_event_strategies_are_found():
    assert {"market_maker", "microstructure"} <= set(STRATEGIES)


@pytest.fixture(scope="module")
def book():
    return synthetic_book(n_events=3_000, seed=9)


def make(name):
    return build({**STRATEGIES[name], "interval": 0.5}, f"strategy.{name}", EventStrategy)


def actions(result):
    """(time ns, kind, side, price, size) per action; a market order's price NaN as None, so lists compare."""
    return [tuple(None if v != v else v for v in a) for a in result.actions]


EXCHANGE = LOBExchange(feed_latency=0.002, entry_latency=0.001, response_latency=0.003)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "python"])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_19_6_truncation_invariance_for_every_event_strategy(name, compiled, book):
    """The actions at every decision up to event k are the same whether the replay stops at k or
    runs on; a second replay repeats them exactly. A strategy with a compiled rule is checked
    on both loops (pipeline/lob/loop.py and ``decide``)."""
    if compiled and make(name).quote_kernel() is None and make(name).target_kernel() is None:
        pytest.skip(f"{name} has no compiled rule: its decide is the only path")
    full = actions(replay(book, make(name), EXCHANGE, seed=4, compiled=compiled))
    assert full, f"{name} never acted"
    assert actions(replay(book, make(name), EXCHANGE, seed=4, compiled=compiled)) == full
    for k in np.linspace(200, book.n_rows - 1, 6).astype(int):
        cut = actions(replay(book.view(int(k)), make(name), EXCHANGE, seed=4, compiled=compiled))
        last = round(book.time[k - 1] * 1e9)
        expected = [a for a in full if a[0] <= last]
        assert cut == expected, f"{name} changed its decisions before event {k} when events after it came"


class _Peeks(EventStrategy):
    """Buys when the last event of the whole buffer, not of its view, is a buy: looks ahead."""

    interval = 0.5

    def decide(self, ctx):
        book = ctx._engine.book
        if book.trade_sign.size and book.trade_sign[-1] > 0 and not ctx.orders:
            ctx.market(100)


def test_19_6_the_check_catches_a_strategy_that_looks_ahead(book):
    full = actions(replay(book, _Peeks(), EXCHANGE))
    cuts = [actions(replay(book.view(int(k)), _Peeks(), EXCHANGE)) for k in (700, 1500, 2200)]
    last = [round(book.time[k - 1] * 1e9) for k in (700, 1500, 2200)]
    assert any(cut != [a for a in full if a[0] <= t] for cut, t in zip(cuts, last))
