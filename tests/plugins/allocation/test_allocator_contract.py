"""Every allocator module in plugins/allocation, built from its config file: the contract.

Finite, right shape, zero off the eligible columns, sign = side, gross 1 (or as documented),
inputs untouched, deterministic, ``weigh`` = the loop over ``weigh_one``, and the documented
handling of degenerate windows (one column, duplicated columns, a constant column, NaN rows,
too little history, more columns than rows).
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import plugins.allocation
from pipeline.core.contracts import Allocator
from pipeline.core.params import build

CONF = Path(__file__).resolve().parents[3] / "conf" / "allocation"
MODULES = sorted(m.name for m in pkgutil.iter_modules(plugins.allocation.__path__)
                 if not m.name.startswith("_"))
# small windows keep the test fast; the skfolio adapter fits a convex solver per decision
SMALL = {"lookback": 80, "min_history": 30}


def allocator_classes(module_name):
    module = importlib.import_module(f"plugins.allocation.{module_name}")
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, Allocator) and c is not Allocator and c.__module__ == module.__name__]


def config_for(cls):
    """The config file whose _target_ is ``cls``."""
    target = f"{cls.__module__}.{cls.__name__}"
    found = [p for p in CONF.glob("*.yaml") if OmegaConf.load(p).get("_target_") == target]
    assert len(found) == 1, f"{target}: expected one config file in conf/allocation, got {found}"
    return OmegaConf.load(found[0])


ALL = [cls for name in MODULES for cls in allocator_classes(name)]


def make(cls, **params):
    node = config_for(cls)
    for key, value in {**SMALL, **params}.items():
        if key in cls.param_names():
            node[key] = value
    return build(node, "allocation", Allocator)


def gross_ok(alloc, gross):
    """Gross exposure as the allocator documents it: 1, or up to Kelly's leverage cap."""
    if "max_leverage" in alloc.param_names():
        return np.all(gross <= alloc.max_leverage + 1e-9)
    return np.allclose(gross, 1.0, atol=1e-9)


def check_weights(alloc, w, side):
    assert w.shape == side.shape
    assert np.isfinite(w).all(), w
    assert np.all(w * side >= -1e-12), f"a weight opposes its side: {w} vs {side}"
    assert gross_ok(alloc, np.abs(w).sum()), np.abs(w).sum()


def test_every_module_has_an_allocator_and_a_config():
    assert set(MODULES) >= {"equal_weight", "inverse_vol", "risk_parity", "risk_budgeting", "kelly",
                            "adaptive", "min_variance", "mean_variance", "hrp", "skfolio"}
    for name in MODULES:
        classes = allocator_classes(name)
        assert classes, f"plugins/allocation/{name}.py defines no Allocator"
        for cls in classes:
            node = config_for(cls)
            # every parameter, with its default, is spelled out in the config file
            assert set(node) - {"_target_"} == set(cls.param_names()), cls
            defaults = {p.name: p.default for p in
                        list(inspect.signature(cls.__init__).parameters.values())[1:]}
            for key in cls.param_names():
                if not isinstance(defaults[key], (dict, list)) and defaults[key] is not None:
                    assert node[key] == defaults[key], (cls, key)


@pytest.fixture(scope="module")
def market(random_returns):
    rng = np.random.default_rng(11)
    T, N = 400, 8
    R = random_returns(rng, T, N)
    R[0] = np.nan
    R[:150, 2] = np.nan        # listed late
    R[200:260, 5] = 0.0        # halted: constant inside some windows
    at = np.arange(60, T - 1, 17)
    signals = rng.choice([-1.0, 0.0, 1.0, 2.0], size=(at.size, N), p=[0.25, 0.25, 0.3, 0.2])
    signals[3] = 0.0           # a decision with nothing eligible
    signals[:, 2] = np.where(np.arange(at.size) % 2, 1.0, signals[:, 2])
    return R, signals, at


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_weigh_contract(cls, market):
    R, signals, at = market
    R0, S0, A0 = R.copy(), signals.copy(), at.copy()
    alloc = make(cls)
    W = alloc.weigh(R, signals, at)
    np.testing.assert_array_equal(R, R0)
    np.testing.assert_array_equal(signals, S0)
    np.testing.assert_array_equal(at, A0)
    assert W.shape == signals.shape
    assert np.isfinite(W).all()
    assert np.all(W[signals == 0] == 0)
    for i in range(at.size):
        cols = np.flatnonzero(signals[i])
        if cols.size:
            check_weights(alloc, W[i, cols], np.sign(signals[i, cols]))
        else:
            assert not W[i].any()
    np.testing.assert_array_equal(make(cls).weigh(R, signals, at), W)  # deterministic


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_weigh_matches_weigh_one(cls, market):
    """Vectorised or warm-started ``weigh`` gives what the plain loop over ``weigh_one`` does
    (Adaptive blends in the previous decision, so only without smoothing)."""
    R, signals, at = market
    alloc = make(cls, smoothing=0.0)
    loop = Allocator.weigh(alloc, R, signals, at)
    np.testing.assert_allclose(alloc.weigh(R, signals, at), loop, rtol=0, atol=1e-8)


CASES = ["one column", "nan rows at start", "two identical columns", "constant column",
         "constant nonzero column", "every column constant", "more columns than rows",
         "tiny returns", "anti-correlated pair", "plain"]


def degenerate_windows(random_returns):
    rng = np.random.default_rng(5)
    X = random_returns(rng, 120, 5)
    nan_start = X.copy()
    nan_start[:40] = np.nan
    nan_start[40:70, 1] = np.nan
    twin = X.copy()
    twin[:, 3] = twin[:, 1]
    const = X.copy()
    const[:, 2] = 0.0
    const_nonzero = X.copy()
    const_nonzero[:, 4] = 0.0007
    all_const = np.zeros((120, 3))
    wide = random_returns(rng, 40, 60)  # more columns than rows
    tiny = X * 1e-7
    anti = X[:, :2].copy()
    anti[:, 1] = -anti[:, 0]  # perfectly anti-correlated: a riskless long-only pair
    return {
        "one column": X[:, :1],
        "nan rows at start": nan_start,
        "two identical columns": twin,
        "constant column": const,
        "constant nonzero column": const_nonzero,
        "every column constant": all_const,
        "more columns than rows": wide,
        "tiny returns": tiny,
        "anti-correlated pair": anti,
        "plain": X,
    }


@pytest.mark.filterwarnings("ignore:The covariance matrix is not positive definite:UserWarning")
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_degenerate_windows(cls, case, random_returns):
    window = degenerate_windows(random_returns)[case]
    alloc = make(cls, lookback=200, min_history=30)
    if cls.__name__ == "SkfolioAllocator" and case == "tiny returns":
        from skfolio.exceptions import NonPositiveVarianceError

        # documented: skfolio's own errors propagate (its `fallback` parameter handles them)
        with pytest.raises(NonPositiveVarianceError):
            alloc.weigh_one(window, np.ones(window.shape[1]))
        return
    rng = np.random.default_rng(len(case))
    for side in (np.ones(window.shape[1]), rng.choice([-1.0, 1.0], window.shape[1])):
        before = window.copy()
        w = alloc.weigh_one(window, side)
        np.testing.assert_array_equal(window, before)
        check_weights(alloc, w, side)
        if case == "constant column" and "lookback" in cls.param_names():
            assert w[2] == 0.0  # no risk estimate: documented weight 0
        if case == "every column constant":
            np.testing.assert_allclose(w, side / side.size)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_too_little_history_is_equal_weight(cls, random_returns):
    rng = np.random.default_rng(3)
    window = random_returns(rng, 100, 4)
    window[:75] = np.nan  # 25 complete rows < min_history = 30
    side = np.array([1.0, -1.0, 1.0, 1.0])
    w = make(cls, lookback=100, min_history=30).weigh_one(window, side)
    np.testing.assert_allclose(w, side / 4)
    empty = make(cls).weigh_one(np.full((0, 4), np.nan), side)
    np.testing.assert_allclose(empty, side / 4)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_sleeve_level(cls, random_returns):
    """Columns are sleeves' return streams: flat (all zero) until each sleeve starts trading."""
    rng = np.random.default_rng(9)
    R = random_returns(rng, 300, 3) * 0.5
    R[:120, 0] = 0.0
    R[:200, 2] = 0.0
    at = np.arange(50, 299, 10)
    signals = np.ones((at.size, 3))
    W = make(cls).weigh(R, signals, at)
    assert np.isfinite(W).all() and np.all(W >= 0)
    for i in range(at.size):
        assert gross_ok(make(cls), np.abs(W[i]).sum())
