import numpy as np
import pytest

from pipeline import registry
from pipeline.contracts import RiskContext
from plugins.risk.max_gross_leverage import MaxGrossLeverage
from plugins.risk.max_weight import MaxWeight

CTX = RiskContext(returns=np.zeros((1, 4)), at=np.array([0]))


def test_max_weight_caps_and_redistributes():
    w = np.array([[0.7, 0.1, 0.1, 0.1]])
    out, bound = MaxWeight(limit=0.4).apply(w, CTX)
    np.testing.assert_allclose(out, [[0.4, 0.2, 0.2, 0.2]])
    assert bound.tolist() == [True]


def test_max_weight_cascades_until_nothing_exceeds():
    w = np.array([[0.5, 0.3, 0.15, 0.05]])
    out, _ = MaxWeight(limit=0.3).apply(w, CTX)
    assert out.max() <= 0.3 + 1e-12
    assert out.sum() == pytest.approx(1.0)


def test_max_weight_infeasible_leaves_cash_and_keeps_sides():
    w = np.array([[0.5, -0.5, 0.0, 0.0]])
    out, _ = MaxWeight(limit=0.25).apply(w, CTX)
    np.testing.assert_allclose(out, [[0.25, -0.25, 0.0, 0.0]])


def test_max_weight_clip_only():
    out, _ = MaxWeight(limit=0.4, redistribute=False).apply(np.array([[0.7, 0.3, 0, 0]]), CTX)
    np.testing.assert_allclose(out, [[0.4, 0.3, 0, 0]])


def test_gross_leverage_scales_rows_above_the_limit():
    w = np.array([[0.8, -0.8, 0.2, 0.2], [0.3, 0.3, 0.2, 0.1]])
    out, bound = MaxGrossLeverage(limit=1.0).apply(w, CTX)
    np.testing.assert_allclose(np.abs(out).sum(axis=1), [1.0, 0.9])
    assert bound.tolist() == [True, False]


@pytest.mark.parametrize("name", sorted(registry.registered()["risk"]))
def test_every_constraint_keeps_weights_finite_and_reports_binding(name):
    cls = registry.load("risk", name)
    rng = np.random.default_rng(3)
    w = rng.dirichlet(np.ones(4), size=50) * rng.choice([-1, 1], size=(50, 4))
    out, bound = cls().apply(w.copy(), RiskContext(returns=rng.normal(0, 0.01, (60, 4)), at=np.arange(10, 60)))
    assert out.shape == w.shape and np.isfinite(out).all()
    assert bound.shape == (50,) and bound.dtype == bool
    changed = ~np.isclose(out, w).all(axis=1)
    assert (changed <= bound).all()
