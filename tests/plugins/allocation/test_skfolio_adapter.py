"""Any skfolio optimiser through the adapter."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import Allocator
from pipeline.core.errors import ConfigError
from pipeline.core.params import build
from plugins.allocation.skfolio import SkfolioAllocator


def test_same_weights_as_skfolio(sp500_frame):
    from skfolio.optimization import HierarchicalEqualRiskContribution, MeanRisk

    X = sp500_frame.to_numpy()[2000:2252]
    for optimizer in (MeanRisk(), HierarchicalEqualRiskContribution()):
        w = SkfolioAllocator(optimizer=optimizer).weigh_one(X, np.ones(20))
        np.testing.assert_allclose(w, optimizer.fit(X).weights_, rtol=1e-12)


def test_config_node_with_enums_and_sides(sp500_frame):
    node = OmegaConf.create({
        "_target_": "plugins.allocation.skfolio.SkfolioAllocator",
        "lookback": 252,
        "optimizer": {"_target_": "skfolio.optimization.MeanRisk",
                      "risk_measure": {"_target_": "skfolio.measures.RiskMeasure", "_args_": ["cvar"]},
                      "max_weights": 0.3}})
    alloc = build(node, "allocation", Allocator)
    X = sp500_frame.to_numpy()[2000:2252, :6]
    side = np.array([1.0, -1.0, 1.0, 1.0, -1.0, 1.0])
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk

    expected = MeanRisk(risk_measure=RiskMeasure.CVAR, max_weights=0.3).fit(X * side).weights_
    np.testing.assert_allclose(alloc.weigh_one(X, side), expected * side, rtol=1e-9, atol=1e-12)
    # a plain dict works too
    plain = SkfolioAllocator(optimizer={"_target_": "skfolio.optimization.EqualWeighted"})
    np.testing.assert_allclose(plain.weigh_one(X, side), side / 6)


def test_bad_optimizers_say_what_to_do(sp500_frame):
    X = sp500_frame.to_numpy()[:100, :3]
    with pytest.raises(ConfigError, match="_target_"):
        SkfolioAllocator(optimizer={"max_weights": 0.3}).weigh_one(X, np.ones(3))
    with pytest.raises(ConfigError, match="not an estimator"):
        SkfolioAllocator(optimizer=3).weigh_one(X, np.ones(3))

    class NoWeights:
        def fit(self, X):
            return self

        def get_params(self, deep=False):
            return {}

    with pytest.raises(ConfigError, match="fallback"):
        SkfolioAllocator(optimizer=NoWeights()).weigh_one(X, np.ones(3))
