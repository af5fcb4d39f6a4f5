import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import build
from pipeline.core.schedule import decision_bars
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum
from plugins.strategy.regime import Regime

CALM, STORM = 0.006, 0.025   # daily volatility of the common factor in each regime


def two_regimes(T: int = 2000, seed: int = 2) -> tuple[MarketData, np.ndarray]:
    """Five symbols on one factor whose volatility switches: storms in [700, 900) and
    [1400, 1600), calm elsewhere. Returns the data and the storm mask per bar."""
    rng = np.random.default_rng(seed)
    storm = np.zeros(T, dtype=bool)
    storm[700:900] = storm[1400:1600] = True
    factor = np.where(storm, STORM, CALM) * rng.standard_normal(T)
    r = factor[:, None] + 0.003 * rng.standard_normal((T, 5))
    index = pd.bdate_range("2005-01-03", periods=T).tz_localize("America/New_York") + pd.Timedelta(hours=16)
    close = 100 * np.exp(np.cumsum(r, axis=0))
    data = MarketData(index=index, symbols=("A", "B", "C", "D", "E"), close=close)
    return data, storm


@pytest.mark.parametrize("method", ["volatility", "markov"])
def test_detects_the_storms_and_stands_aside(method):
    data, storm = two_regimes()
    gate = Regime(base=BuyAndHold(), method=method, min_history=500, vol_window=21, quantile=0.8,
                  refit=250, fit_window=None)
    at = np.arange(gate.warmup(), data.n_bars - 1)
    high = gate.turbulent(data, at)
    # past the first weeks of each storm (the detector needs evidence) most storm days are flagged
    settled = storm[at] & storm[at - 20]
    assert high[settled].mean() > 0.8
    # once a storm has been seen, calm days are rarely flagged (before it, the volatility rule
    # flags the top 20 % of calm days: it only knows what it has seen)
    calm = ~storm[at] & ~storm[at - 30] & (at >= 930)
    assert high[calm].mean() < 0.1
    sig = gate.signal(data, at)
    np.testing.assert_array_equal(sig[high], 0.0)
    np.testing.assert_array_equal(sig[~high], 1.0)


def test_scales_instead_of_gating():
    data, _ = two_regimes()
    half = Regime(base=BuyAndHold(), high_scale=0.5, low_scale=1.0, min_history=500)
    at = np.arange(half.warmup(), data.n_bars - 1)
    high = half.turbulent(data, at)
    sig = half.signal(data, at)
    assert high.any() and (sig[high] == 0.5).all() and (sig[~high] == 1.0).all()


@pytest.mark.parametrize("method", ["volatility", "markov"])
def test_causal(method, sp500_0508, causal):
    def make():
        return Regime(base=Momentum(lookback=60, skip=5, top_k=3), method=method,
                      min_history=250, refit="yearly", fit_window=500)
    at = decision_bars(sp500_0508.index, "weekly", first=make().warmup())
    sig = causal(make, sp500_0508, at, checks=5)
    assert (sig == 0).all(axis=1).any() and (sig != 0).any()   # it gated some decisions, not all


def test_the_threshold_is_set_by_the_past_only():
    """The expanding quantile at t uses volatilities up to t: a later storm cannot make an
    earlier bar look calm."""
    data, storm = two_regimes()
    gate = Regime(base=BuyAndHold(), min_history=500)
    at = np.arange(gate.warmup(), 1000)
    early = gate.turbulent(data.view(1000), at)
    np.testing.assert_array_equal(gate.turbulent(data, at), early)


def test_base_strategy_from_a_config_node():
    node = OmegaConf.create({"_target_": "plugins.strategy.regime.Regime",
                             "base": {"_target_": "plugins.strategy.momentum.Momentum",
                                      "lookback": 126, "top_k": 4}})
    gate = build(node, "strategy.regime", Strategy, seed=7)
    assert isinstance(gate.base, Momentum) and gate.base.lookback == 126
    assert gate.warmup() == max(126, 21 + 504)


def test_base_must_be_a_strategy():
    with pytest.raises(ValueError, match="base"):
        Regime(base="momentum")
