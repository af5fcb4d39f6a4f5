"""hftbacktest, set up as benchmarks/hft_peer.py sets it up, fills the same fixed quoter on the
same synthetic events as robo-trader's order-book engine: the same fills, volume, position,
fees and P&L, for both queue models. Skipped without the bench extra (hftbacktest)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("hftbacktest")

PEER = Path(__file__).resolve().parents[2] / "benchmarks" / "hft_peer.py"
pytestmark = pytest.mark.slow   # numba compiles hftbacktest's side of the quoter (about 15 s)


def _peer():
    spec = importlib.util.spec_from_file_location("benchmarks_hft_peer", PEER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peer = _peer()


@pytest.fixture(scope="module")
def setup():
    from plugins.data.lob_synthetic import synthetic_book

    book = synthetic_book(n_events=5_000, seed=3)
    return book, peer.to_hftbacktest(book, feed=0.001), peer.hft_quoter()


@pytest.mark.parametrize("queue", ["risk_averse", "power_prob"])
def test_19_4_hftbacktest_fills_the_fixed_quoter_like_robo_trader(setup, queue):
    book, events, quoter = setup
    theirs = peer.run_hftbacktest(events, 0.1, queue=queue, quoter_fn=quoter)
    ours = peer.run_ours(book, 0.1, peer.exchange(queue=queue))
    assert theirs["code"] == 1                                    # ran to the end of the data
    assert ours["fills"] > 100
    for key in ("fills", "volume", "position"):
        assert ours[key] == theirs[key], key
    for key in ("balance", "fee", "pnl"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
