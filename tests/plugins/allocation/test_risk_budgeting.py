"""Risk budgeting with user budgets: skfolio parity, budgets by index and by name."""

import numpy as np
import pytest

from pipeline.core import estimators
from pipeline.core.errors import ConfigError
from plugins.allocation._solvers import risk_contributions
from plugins.allocation.risk_budgeting import RiskBudgeting


def skfolio_rb(X, budgets):
    from skfolio import RiskMeasure
    from skfolio.optimization import RiskBudgeting as SkRiskBudgeting

    return SkRiskBudgeting(risk_measure=RiskMeasure.VARIANCE, risk_budget=budgets).fit(X).weights_


@pytest.mark.parametrize("start", [0, 3000, 4700, 7500])
def test_unequal_budgets_match_skfolio(sp500_frame, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    budgets = list(np.linspace(1.0, 4.0, 20))
    w = RiskBudgeting(budgets=budgets, covariance="sample").weigh_one(X, np.ones(20))
    b = np.asarray(budgets) / np.sum(budgets)
    np.testing.assert_allclose(risk_contributions(estimators.sample_covariance(X), w), b,
                               rtol=1e-8, atol=0)
    np.testing.assert_allclose(w, skfolio_rb(X, np.asarray(budgets)), rtol=0, atol=1e-5)


def test_list_budgets_index_the_full_columns_in_weigh(sp500_returns):
    """In ``weigh`` a list has one budget per column of ``returns``; at each decision only the
    eligible columns' budgets count, renormalised."""
    budgets = [float(i + 1) for i in range(20)]
    alloc = RiskBudgeting(budgets=budgets, covariance="sample", lookback=252)
    at = np.array([3000, 3021])
    signals = np.zeros((2, 20))
    signals[0, [2, 5, 11]] = 1.0
    signals[1, [0, 19]] = -1.0
    W = alloc.weigh(sp500_returns, signals, at)
    for i, cols in enumerate([[2, 5, 11], [0, 19]]):
        X = sp500_returns[at[i] - 251: at[i] + 1, cols] * np.sign(signals[i, cols])
        b = np.array(budgets)[cols] / np.sum(np.array(budgets)[cols])
        np.testing.assert_allclose(risk_contributions(estimators.sample_covariance(X),
                                                      np.abs(W[i, cols])), b, rtol=1e-8)


def test_budgets_by_name(sp500_frame):
    names = list(sp500_frame.columns[:4])
    X = sp500_frame.to_numpy()[5000:5252, :4]
    by_name = RiskBudgeting(budgets={names[1]: 3.0}, covariance="sample")
    by_list = RiskBudgeting(budgets=[1.0, 3.0, 1.0, 1.0], covariance="sample")
    np.testing.assert_allclose(by_name.weigh_one(X, np.ones(4), columns=names),
                               by_list.weigh_one(X, np.ones(4)), rtol=1e-12)
    with pytest.raises(ConfigError, match="by column name"):
        by_name.weigh_one(X, np.ones(4))
    with pytest.raises(ConfigError, match="not columns"):
        RiskBudgeting(budgets={"NOPE": 1.0}).weigh_one(X, np.ones(4), columns=names)
    with pytest.raises(ConfigError, match="2 entries for 4 columns"):
        RiskBudgeting(budgets=[1.0, 2.0]).weigh_one(X, np.ones(4))


def test_zero_budget_gets_zero_weight(sp500_frame):
    X = sp500_frame.to_numpy()[5000:5252, :4]
    w = RiskBudgeting(budgets=[1.0, 0.0, 2.0, 1.0]).weigh_one(X, np.ones(4))
    assert w[1] == 0.0 and np.all(w[[0, 2, 3]] > 0) and w.sum() == pytest.approx(1.0)
    everything_zero = RiskBudgeting(budgets=[0.0, 0.0, 0.0, 0.0]).weigh_one(X, np.ones(4))
    np.testing.assert_allclose(everything_zero, 0.25)


@pytest.mark.parametrize("bad", [[1.0, -1.0], {"A": float("nan")}, ["x"]])
def test_bad_budgets_are_rejected(bad):
    with pytest.raises(ValueError, match="non-negative"):
        RiskBudgeting(budgets=bad)
