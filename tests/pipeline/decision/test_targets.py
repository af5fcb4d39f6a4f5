"""Sleeves and attribution: hand-checked sleeve returns, and contributions that add up."""

import numpy as np
import pytest

from pipeline.backtest.engine import backtest
from pipeline.results.attribution import attribution, sleeves
from pipeline.core.errors import ConfigError
from pipeline.decision.targets import Capped, _sleeve_returns, targets
from pipeline.core.weights import cap
from plugins.allocation.risk_budgeting import RiskBudgeting
from pipeline.core.schedule import decision_bars
from plugins.allocation.equal_weight import EqualWeight
from plugins.allocation.inverse_vol import InverseVol
from plugins.broker.sim import SimBroker
from plugins.execution.market import Market
from plugins.strategy.buy_and_hold import BuyAndHold
from plugins.strategy.momentum import Momentum


def test_sleeve_returns_hold_the_last_decided_weights():
    returns = np.array([[0.0, 0.0], [0.1, -0.1], [0.2, 0.0], [0.0, 0.3], [0.1, 0.1]])
    weights = np.array([[[1.0, 0.0], [0.5, 0.5]]])  # decisions at bars 1 and 3
    out = _sleeve_returns(returns, weights, np.array([1, 3]))
    np.testing.assert_allclose(out[:, 0], [np.nan, np.nan, 0.2, 0.0, 0.1])


def test_single_sleeve_is_its_own_target(sp500):
    at = decision_bars(sp500.index, "monthly", first=300)
    plan = targets(sp500, {"m": Momentum()}, EqualWeight(), None, at)
    np.testing.assert_array_equal(plan.weights, plan.asset_weights[0])
    assert (plan.sleeve_weights == 1).all()


def test_two_sleeves_combine_by_the_portfolio_weights(sp500):
    at = decision_bars(sp500.index, "monthly", first=300)
    plan = targets(sp500, {"m": Momentum(), "b": BuyAndHold()}, EqualWeight(), InverseVol(), at)
    np.testing.assert_allclose(plan.sleeve_weights.sum(axis=1), 1.0)
    expected = plan.sleeve_weights[:, :1] * plan.asset_weights[0] + plan.sleeve_weights[:, 1:] * plan.asset_weights[1]
    np.testing.assert_allclose(plan.weights, expected)
    # the portfolio allocator saw only sleeve returns up to each decision: recompute one
    k = 100
    window = plan.sleeve_returns[at[k] - 251: at[k] + 1]
    inv = 1 / window.std(axis=0, ddof=1)
    np.testing.assert_allclose(plan.sleeve_weights[k], inv / inv.sum(), rtol=1e-9)


@pytest.mark.parametrize("rule", ["monthly", "weekly"])
def test_attribution_sums_to_the_portfolio_return(sp500, rule):
    ledger = backtest(sp500, {"m": Momentum(), "b": BuyAndHold()}, EqualWeight(), [], Market(), SimBroker(),
                      decision_bars(sp500.index, rule), 1e6, portfolio=InverseVol())
    table = attribution(ledger)
    assets = table.filter(like="asset:").sum(axis=1) + table["commission"]
    by_sleeve = table.filter(like="sleeve:").sum(axis=1) + table["commission"]
    np.testing.assert_allclose(assets, table["portfolio"], atol=1e-14)
    np.testing.assert_allclose(by_sleeve, table["portfolio"], atol=1e-14)
    returns = ledger.equity[1:] / ledger.equity[:-1] - 1
    np.testing.assert_allclose(table["portfolio"].to_numpy()[1:], returns, rtol=1e-12)
    assert table.filter(like="sleeve:").abs().sum().min() > 0  # both sleeves earned something
    curves = sleeves(ledger)
    assert curves.filter(like="equity:").iloc[0].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(curves.filter(like="weight:").iloc[-1].sum(), 1.0)


def test_cap_redistributes_by_column_limits():
    out = cap(np.array([[0.7, 0.2, 0.1]]), np.array([0.5, np.inf, 0.12]))
    np.testing.assert_allclose(out, [[0.5, 0.38, 0.12]])


def test_sleeve_caps_and_budgets_by_sleeve_name(sp500):
    at = decision_bars(sp500.index, "monthly", first=300)
    sleeves_ = {"m": Momentum(), "b": BuyAndHold()}
    capped = targets(sp500, sleeves_, EqualWeight(), Capped(InverseVol(), {"b": 0.3}), at)
    assert capped.sleeve_weights[:, 1].max() <= 0.3 + 1e-12
    np.testing.assert_allclose(capped.sleeve_weights.sum(axis=1), 1.0)
    budget = targets(sp500, sleeves_, EqualWeight(), RiskBudgeting(budgets={"m": 3.0, "b": 1.0}), at)
    # the momentum sleeve carries three times the buy-and-hold sleeve's share of variance
    k = 200
    window = budget.sleeve_returns[at[k] - 251: at[k] + 1]
    from sklearn.covariance import LedoitWolf
    cov = LedoitWolf().fit(window).covariance_
    u = budget.sleeve_weights[k]
    rc = u * (cov @ u)
    assert rc[0] / rc[1] == pytest.approx(3.0, rel=1e-6)
    with pytest.raises(ConfigError, match="not sleeves"):
        targets(sp500, sleeves_, EqualWeight(), Capped(InverseVol(), {"x": 0.3}), at)


def test_a_run_that_never_trades_still_has_sleeve_and_attribution_tables(sp500):
    from pipeline.core.contracts import Strategy

    class Never(Strategy):
        def __init__(self):
            pass

        def signal(self, data, at):
            return np.zeros((len(at), data.n_symbols))

    ledger = backtest(sp500, {"never": Never()}, EqualWeight(), [], Market(), SimBroker(),
                      decision_bars(sp500.index, "monthly"), 1e6)
    assert len(ledger.decisions) == 0
    assert (sleeves(ledger).filter(like="weight:").to_numpy() == 0).all()
    assert (attribution(ledger)["portfolio"] == 0).all()
