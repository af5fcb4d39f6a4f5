"""Every registered strategy: truncation invariance, determinism, shape and finiteness."""

import numpy as np
import pytest

from pipeline.app import registry
from pipeline.core.contracts import Strategy
from pipeline.core.lob import EventStrategy
from pipeline.core.schedule import decision_bars

# daily strategies; event strategies (order books) have their own contract test_event_contract.py
STRATEGIES = sorted(name for name, ep in registry.registered()["strategy"].items()
                    if not issubclass(ep.load(), EventStrategy))


# Per-strategy settings that keep the test fast and exercise the strategy's moving parts on
# four years of data (re-formation / refits every month, enough pairs to trade).
OVERRIDES = {
    "pairs": {"formation": 120, "reform": "monthly", "correction": "none"},
    "ml": {"lookbacks": [5, 21, 60], "vol_windows": [21], "min_train": 250, "top_k": None},
    "regime": {"min_history": 126},
}


def make(name: str) -> Strategy:
    cls = registry.load("strategy", name)
    # small windows keep the test fast and leave many decisions after warm-up
    small = {"lookback": 60, "skip": 5, "top_k": 3}
    params = {k: v for k, v in small.items() if k in cls.param_names()}
    params.update(OVERRIDES.get(name, {}))
    return cls(**params)


@pytest.fixture(scope="module")
def data(sp500):
    return sp500.select(start="2005-01-01", end="2008-12-31")


@pytest.mark.parametrize("name", STRATEGIES)
def test_truncation_invariance(name, data):
    """The signal at t from data[:t+1] equals the signal at t from the full history."""
    strategy = make(name)
    at = decision_bars(data.index, "weekly", first=strategy.warmup())
    full = strategy.signal(data, at)
    for i in range(0, at.size, max(at.size // 12, 1)):
        t = int(at[i])
        cut = make(name).signal(data.view(t + 1), at[: i + 1])
        np.testing.assert_array_equal(cut[-1], full[i], err_msg=f"{name} looked ahead at bar {t}")


@pytest.mark.parametrize("name", STRATEGIES)
def test_deterministic_finite_and_shaped(name, data):
    strategy = make(name)
    at = decision_bars(data.index, "monthly", first=strategy.warmup())
    a = strategy.signal(data, at)
    b = make(name).signal(data, at)
    assert a.shape == (at.size, data.n_symbols)
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", STRATEGIES)
def test_future_prices_do_not_change_past_signals(name, data):
    """Scramble everything after bar t: signals up to t must not move."""
    strategy = make(name)
    at = decision_bars(data.index, "monthly", first=strategy.warmup())
    cut = int(at[at.size // 2])
    close = data.close.copy()
    close[cut + 1:] = close[cut + 1:][::-1] * 1.7
    import dataclasses
    scrambled = dataclasses.replace(data, close=close)
    keep = at <= cut
    np.testing.assert_array_equal(make(name).signal(scrambled, at)[keep], strategy.signal(data, at)[keep])
