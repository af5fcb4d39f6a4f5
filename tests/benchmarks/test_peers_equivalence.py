"""bt and vectorbt, set up as benchmarks/peers.py sets them up, reproduce robo-trader's equity
curves to 1e-6 (the precondition of comparing their speed). Skipped without the bench extra."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("bt")
pytest.importorskip("vectorbt")

PEERS = Path(__file__).resolve().parents[2] / "benchmarks" / "peers.py"


def _peers():
    spec = importlib.util.spec_from_file_location("benchmarks_peers", PEERS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


peers = _peers()


@pytest.fixture(scope="module")
def data():
    # 2011-2022: long enough for the 252-bar windows, short enough for bt's daily loop
    return peers.load_sp500(start="2011-01-01")


@pytest.mark.slow
@pytest.mark.parametrize("case", peers.CASES, ids=lambda c: c.name)
def test_peers_reproduce_robo_trader(data, case):
    diffs = peers.differences(data, case)
    assert set(diffs) == {"bt", "vectorbt"}
    for tool, diff in diffs.items():
        assert diff <= peers.TOLERANCE, f"{tool} differs from robo-trader by {diff:.2e} in {case.name}"
