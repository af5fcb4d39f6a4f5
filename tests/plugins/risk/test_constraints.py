"""Risk constraints: each rule on hand-made cases, binding reported exactly where the weights
change, infeasible settings as ConfigError naming the key, and the contract over every
constraint (registered, or a module of plugins/risk)."""

import importlib
import pkgutil

import numpy as np
import pytest

import plugins.risk
from pipeline.app import registry
from pipeline.core.contracts import Book, Constraint, RiskContext
from pipeline.core.errors import ConfigError
from pipeline.core.params import build
from plugins.risk.long_only import LongOnly
from plugins.risk.max_gross_leverage import MaxGrossLeverage
from plugins.risk.max_net_leverage import MaxNetLeverage
from plugins.risk.max_weight import MaxWeight
from plugins.risk.min_weight import MinWeight

CTX = RiskContext(returns=np.zeros((1, 4)), at=np.array([0]))


def ctx_for(weights):
    return RiskContext(returns=np.zeros((1, weights.shape[1])), at=np.arange(weights.shape[0]))


def module_constraints():
    """name -> class for every public module of plugins/risk (named like its module)."""
    found = {}
    for info in pkgutil.iter_modules(plugins.risk.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"plugins.risk.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Constraint) and obj is not Constraint
                    and obj.__module__ == module.__name__):
                found[info.name] = obj
    return found


ALL = {**module_constraints(),
       **{name: ep.load() for name, ep in registry.registered()["risk"].items()}}


# ---------------------------------------------------------------- max_weight, max_gross_leverage

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


# ---------------------------------------------------------------- long_only

def test_long_only_sends_shorts_to_cash_by_default():
    w = np.array([[0.6, -0.4, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [-0.5, -0.5, 0.0, 0.0]])
    out, bound = LongOnly().apply(w, ctx_for(w))
    np.testing.assert_array_equal(out, [[0.6, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 0]])
    assert bound.tolist() == [True, False, True]


def test_long_only_redistribute_keeps_the_gross_on_the_longs():
    w = np.array([[0.6, -0.2, 0.2, 0.0], [-0.5, -0.5, 0.0, 0.0]])
    out, bound = LongOnly(freed="redistribute").apply(w, ctx_for(w))
    np.testing.assert_allclose(out, [[0.75, 0, 0.25, 0], [0, 0, 0, 0]])  # no long: cash
    assert bound.tolist() == [True, True]


# ---------------------------------------------------------------- min_weight

def test_min_weight_drops_small_names_and_keeps_the_gross():
    w = np.array([[0.5, -0.3, 0.15, 0.05], [0.4, 0.3, 0.2, 0.1]])
    out, bound = MinWeight(limit=0.1).apply(w, ctx_for(w))
    np.testing.assert_allclose(out[0], np.array([0.5, -0.3, 0.15, 0.0]) / 0.95)
    np.testing.assert_array_equal(out[1], w[1])  # 0.1 is at the floor: untouched
    assert bound.tolist() == [True, False]


def test_min_weight_drop_keeps_the_largest_names_that_can_reach_the_floor():
    # 20 names at 0.05 under a 0.06 floor: spread over 16 names each holds 0.0625 >= 0.06,
    # over 17 only 0.0588; the first 16 columns are kept (ties: the earlier column)
    w = np.full((1, 20), 0.05)
    out, bound = MinWeight(limit=0.06).apply(w, ctx_for(w))
    np.testing.assert_allclose(out[0], [1 / 16] * 16 + [0.0] * 4)
    assert bound.tolist() == [True]
    # a row whose whole gross is below the floor cannot hold a name: cash
    out, bound = MinWeight(limit=0.06).apply(np.array([[0.03, 0.02, 0, 0]]), CTX)
    np.testing.assert_array_equal(out, np.zeros((1, 4)))
    assert bound.tolist() == [True]


def test_min_weight_raise_lifts_small_names_and_scales_the_rest():
    w = np.array([[0.7, 0.25, -0.05, 0.0]])
    out, bound = MinWeight(limit=0.1, mode="raise").apply(w, CTX)
    c = 0.9 / 0.95
    np.testing.assert_allclose(out, [[0.7 * c, 0.25 * c, -0.1, 0.0]])
    assert np.abs(out).sum() == pytest.approx(1.0) and np.abs(out[0, :3]).min() >= 0.1 - 1e-12
    assert bound.tolist() == [True]


def test_min_weight_raise_cascades():
    # raising two names pushes a third under the floor; it is floored too
    w = np.array([[0.8, 0.12, 0.04, 0.04]])
    out, _ = MinWeight(limit=0.11, mode="raise").apply(w, CTX)
    np.testing.assert_allclose(out[0, 1:], 0.11)
    assert out.sum() == pytest.approx(1.0)


def test_min_weight_raise_too_many_names_is_a_config_error():
    w = np.full((1, 12), 1 / 12)
    ctx = RiskContext(returns=np.zeros((1, 12)), at=np.array([250]))
    with pytest.raises(ConfigError, match=r"risk\.min_weight=0\.1 cannot hold: 12 holdings.*"
                                          r"bar 250.*mode=drop"):
        MinWeight(limit=0.1, mode="raise").apply(w, ctx)


def test_min_weight_above_max_weight_is_a_config_error():
    floor = MinWeight(limit=0.3)
    with pytest.raises(ConfigError, match=r"risk\.min_weight=0\.3 exceeds risk\.max_weight=0\.25"):
        floor.check_with([("min_weight", floor), ("max_weight", MaxWeight(limit=0.25))])
    floor.check_with([("min_weight", floor), ("max_weight", MaxWeight(limit=0.3))])


# ---------------------------------------------------------------- max_net_leverage

def test_net_leverage_scales_the_dominant_side():
    w = np.array([[0.6, 0.3, -0.2, 0.0],     # net +0.7: longs scaled to 0.7
                  [0.1, -0.5, -0.4, 0.0],    # net -0.8: shorts scaled to 0.6
                  [0.5, -0.3, 0.0, 0.0]])    # net +0.2: within
    out, bound = MaxNetLeverage(limit=0.5).apply(w, ctx_for(w))
    np.testing.assert_allclose(out[0], [0.6 * 0.7 / 0.9, 0.3 * 0.7 / 0.9, -0.2, 0.0])
    np.testing.assert_allclose(out[1], [0.1, -0.5 * 0.6 / 0.9, -0.4 * 0.6 / 0.9, 0.0])
    np.testing.assert_array_equal(out[2], w[2])
    np.testing.assert_allclose(np.abs(out.sum(axis=1)), [0.5, 0.5, 0.2])
    assert bound.tolist() == [True, True, False]


def test_net_leverage_zero_is_dollar_neutral():
    w = np.array([[0.6, -0.2, 0.0, 0.0], [0.7, 0.3, 0.0, 0.0]])
    out, bound = MaxNetLeverage(limit=0.0).apply(w, ctx_for(w))
    np.testing.assert_allclose(out, [[0.2, -0.2, 0, 0], [0, 0, 0, 0]], atol=1e-15)
    assert bound.tolist() == [True, True]


def test_net_leverage_zero_with_long_only_is_a_config_error():
    net = MaxNetLeverage(limit=0.0)
    with pytest.raises(ConfigError, match=r"risk\.max_net_leverage=0 with risk\.long_only"):
        net.check_with([("long_only", LongOnly()), ("max_net_leverage", net)])
    MaxNetLeverage(limit=0.1).check_with([("long_only", LongOnly())])


# ---------------------------------------------------------------- build errors name the key

@pytest.mark.parametrize("cls, params, message", [
    ("vol_target.VolTarget", {"lookback": 10, "min_history": 20},
     "risk.vol_target: min_history=20 exceeds lookback=10"),
    ("drawdown_control.DrawdownControl", {"threshold": 0.1, "reentry": 0.2},
     "risk.drawdown_control: reentry=0.2 exceeds threshold=0.1"),
    ("group_caps.GroupCaps", {"groups": {"a": ["X"], "b": ["X", "Y"]}},
     "risk.group_caps: groups: X is in both a and b"),
    ("group_caps.GroupCaps", {"groups": {"a": ["X"]}, "limits": {"b": 0.2}},
     "risk.group_caps: limits.b: no such group in groups (a)"),
    ("group_caps.GroupCaps", {"groups": {"a": []}}, "risk.group_caps: groups.a=[]"),
    ("min_weight.MinWeight", {"limit": 0}, "risk.min_weight.limit=0 is not allowed"),
    ("long_only.LongOnly", {"freed": "longs"}, "risk.long_only.freed='longs' is not allowed"),
])
def test_bad_parameters_are_config_errors_naming_the_key(cls, params, message):
    name = cls.split(".")[0]
    with pytest.raises(ConfigError) as err:
        build({"_target_": f"plugins.risk.{cls}", **params}, f"risk.{name}", Constraint)
    assert message in str(err.value)


# ---------------------------------------------------------------- the contract, for every constraint

# constraints whose defaults need the run's data to mean anything get it here
CONFIGURED = {"group_caps": {"groups": {"a": ["S0", "S1"], "b": ["S2"]}, "limit": 0.4}}
SYMBOLS = ("S0", "S1", "S2", "S3")


def test_declared_order():
    assert all(c.order > 80 for c in ALL.values() if c.stateful)
    assert all(c.order <= 80 for c in ALL.values() if not c.stateful)
    ours = ["long_only", "vol_target", "min_weight", "max_weight", "group_caps",
            "max_net_leverage", "max_gross_leverage", "drawdown_control", "max_turnover", "min_trade"]
    assert sorted(ours, key=lambda n: ALL[n].order) == ours


@pytest.mark.parametrize("name", sorted(module_constraints()))
def test_every_risk_module_is_registered(name):
    cls = module_constraints()[name]
    assert name in registry.registered()["risk"], (
        f'add "risk.{name}" = "{cls.__module__}:{cls.__name__}" to pyproject.toml\'s '
        f'robo_trader.plugins entry points and reinstall')


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_constraint_keeps_weights_finite_and_reports_binding(name):
    cls = ALL[name]
    constraint = cls(**CONFIGURED.get(name, {}))
    if hasattr(constraint, "bind"):
        constraint.bind(SYMBOLS)
    rng = np.random.default_rng(3)
    w = rng.dirichlet(np.ones(4), size=50) * rng.choice([-1, 1], size=(50, 4))
    w[::7] = 0.0   # empty books
    w[::5] *= 2.5  # levered ones
    if not cls.stateful:
        returns = rng.normal(0, 0.01, (120, 4))
        returns[0] = np.nan  # as MarketData.returns: no return on the first bar
        before = w.copy()
        out, bound = constraint.apply(w, RiskContext(returns=returns, at=np.arange(70, 120)))
        np.testing.assert_array_equal(w, before)  # input untouched
        assert out.shape == w.shape and np.isfinite(out).all()
        assert bound.shape == (50,) and bound.dtype == bool
        assert (bound == (out != w).any(axis=1)).all()  # bound exactly where changed
        return
    equity, peak = 1.0, 1.0
    current = np.zeros(4)
    hits = 0
    for k in range(50):
        equity *= 1 + rng.normal(0, 0.05)
        peak = max(peak, equity)
        book = Book(bar=100 + k, equity=equity, peak_equity=peak, weights=current.copy(),
                    prices=np.ones(4))
        target = w[k].copy()
        out, bound = constraint.apply_step(target, book)
        np.testing.assert_array_equal(target, w[k])
        assert out.shape == (4,) and np.isfinite(out).all()
        assert isinstance(bound, (bool, np.bool_))
        assert bool(bound) == bool((out != w[k]).any())
        hits += bool(bound)
        current = out * (1 + rng.normal(0, 0.02, 4))  # traded, then drifted
    assert hits > 0, f"{name}: never bound on random books with its defaults"
