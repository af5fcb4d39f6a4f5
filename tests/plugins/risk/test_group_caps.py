"""group_caps: groups from config, mapped onto the data's columns by symbol name."""

import numpy as np
import pytest

from pipeline.core.contracts import RiskContext
from pipeline.core.errors import ConfigError
from plugins.risk.group_caps import GroupCaps

SYMBOLS = ("AAPL", "MSFT", "CVX", "XOM", "JNJ")
GROUPS = {"tech": ["AAPL", "MSFT"], "energy": ["CVX", "XOM"]}


def ctx(weights, symbols=SYMBOLS):
    return RiskContext(returns=np.zeros((1, weights.shape[1])), at=np.arange(weights.shape[0]),
                       symbols=symbols)


def test_over_cap_group_is_scaled_to_its_cap_and_the_rest_goes_to_cash():
    w = np.array([[0.3, -0.3, 0.1, 0.1, 0.2], [0.2, 0.2, 0.2, 0.2, 0.2]])
    out, bound = GroupCaps(limit=0.4, groups=GROUPS).apply(w, ctx(w))
    np.testing.assert_allclose(out, [[0.2, -0.2, 0.1, 0.1, 0.2], [0.2, 0.2, 0.2, 0.2, 0.2]])
    assert bound.tolist() == [True, False]
    np.testing.assert_array_equal(out[1], w[1])


def test_per_group_limits_override_the_default():
    w = np.array([[0.2, 0.2, 0.2, 0.2, 0.2]])
    out, bound = GroupCaps(limit=0.4, limits={"energy": 0.1}, groups=GROUPS).apply(w, ctx(w))
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.05, 0.05, 0.2]])
    assert bound.tolist() == [True]


def test_redistribute_spreads_the_excess_and_cascades():
    w = np.array([[0.3, 0.3, 0.1, 0.1, 0.2]])
    out, _ = GroupCaps(limit=0.4, groups=GROUPS, redistribute=True).apply(w, ctx(w))
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.15, 0.15, 0.3]])
    # energy then exceeds its 0.25 cap: capped in turn, its excess goes to JNJ (ungrouped)
    caps = GroupCaps(limit=0.4, limits={"energy": 0.25}, groups=GROUPS, redistribute=True)
    out, _ = caps.apply(w, ctx(w))
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.125, 0.125, 0.35]])
    assert out.sum() == pytest.approx(1.0)


def test_redistribute_when_the_caps_cannot_hold_the_book_is_a_config_error():
    w = np.array([[0.3, 0.3, 0.2, 0.2, 0.0]])
    caps = GroupCaps(limit=0.4, groups=GROUPS, redistribute=True)
    with pytest.raises(ConfigError, match=r"risk\.group_caps cannot hold the book at decision bar 0"
                                          r".*0\.8 in total.*redistribute=false"):
        caps.apply(w, ctx(w))
    out, _ = GroupCaps(limit=0.4, groups=GROUPS).apply(w, ctx(w))  # the cash default holds it
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.2, 0.2, 0.0]])


def test_symbols_come_from_the_context_or_bind():
    w = np.array([[0.5, 0.5, 0.0]])
    caps = GroupCaps(limit=0.4, groups=GROUPS)
    with pytest.raises(RuntimeError, match="bind"):
        caps.apply(w, ctx(w, symbols=()))
    caps.bind(("XOM", "CVX", "IBM"))  # columns in another order; AAPL, MSFT not in the data
    out, bound = caps.apply(w, ctx(w, symbols=()))
    np.testing.assert_allclose(out, [[0.2, 0.2, 0.0]])
    out, bound = caps.apply(w, ctx(w, symbols=("IBM", "XOM", "CVX")))  # the context wins
    np.testing.assert_allclose(out, [[0.5, 0.4, 0.0]])


def test_groups_that_match_no_symbol_or_no_groups_are_config_errors():
    w = np.array([[0.5, 0.5]])
    with pytest.raises(ConfigError, match=r"risk\.group_caps\.groups: none of the grouped symbols"):
        GroupCaps(groups=GROUPS).apply(w, ctx(w, symbols=("IBM", "GE")))
    with pytest.raises(ConfigError, match=r"risk\.group_caps\.groups is empty"):
        GroupCaps(limit=0.3).apply(w, ctx(w, symbols=("IBM", "GE")))
