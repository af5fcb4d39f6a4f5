"""Metrics against textbook formulas on a hand-made return series."""

import math

import numpy as np
import pandas as pd
import pytest

from pipeline.report.analytics import bars_per_year
from pipeline.results import metrics

# five daily returns, worked by hand below
R = np.array([0.01, -0.02, 0.03, -0.01, 0.02])
EQUITY = 100.0 * np.cumprod(np.append(1.0, 1.0 + R))
INDEX = pd.DatetimeIndex(pd.bdate_range("2024-01-01", periods=6)).tz_localize("UTC")


def test_returns_recover_the_series():
    np.testing.assert_allclose(metrics.bar_returns(EQUITY), R, rtol=1e-12)


def test_total_return_and_cagr():
    growth = 1.01 * 0.98 * 1.03 * 0.99 * 1.02
    assert metrics.total_return(EQUITY) == pytest.approx(growth - 1, rel=1e-14)
    years = 7 / 365.25  # Monday to the next Monday
    assert metrics.cagr(EQUITY, INDEX) == pytest.approx(growth ** (1 / years) - 1, rel=1e-12)


def test_vol_sharpe_sortino_textbook():
    mean = sum(R) / 5
    var = sum((r - mean) ** 2 for r in R) / 4  # sample variance
    assert metrics.annual_vol(R, 252) == pytest.approx(math.sqrt(var * 252), rel=1e-12)
    assert metrics.sharpe(R, 252) == pytest.approx(mean / math.sqrt(var) * math.sqrt(252), rel=1e-12)
    downside = math.sqrt((0.02 ** 2 + 0.01 ** 2) / 5)  # below-zero returns over all five
    assert metrics.sortino(R, 252) == pytest.approx(mean / downside * math.sqrt(252), rel=1e-12)


def test_drawdown_and_calmar():
    # peak after day 1 (101), trough after day 2 (98.98): drawdown 98.98/101 - 1
    assert metrics.max_drawdown(EQUITY) == pytest.approx(0.98 - 1, rel=1e-12)
    peak, trough = 100 * 1.01 * 0.98 * 1.03, 100 * 1.01 * 0.98 * 1.03 * 0.99
    assert metrics.drawdown(EQUITY)[4] == pytest.approx(trough / peak - 1, rel=1e-12)
    assert metrics.calmar(EQUITY, INDEX) == pytest.approx(metrics.cagr(EQUITY, INDEX) / 0.02, rel=1e-9)


def test_degenerate_series_give_nan_not_errors():
    flat = np.full(5, 100.0)
    r = metrics.bar_returns(flat)
    assert math.isnan(metrics.sharpe(r, 252))
    assert math.isnan(metrics.sortino(r, 252))
    assert metrics.max_drawdown(flat) == 0.0
    assert math.isnan(metrics.calmar(flat, INDEX[:5]))


def test_periods_per_year_daily_and_intraday():
    assert metrics.periods_per_year(INDEX) == 252
    hourly = pd.date_range("2024-01-02 10:00", periods=14, freq="h", tz="UTC")
    hourly = hourly[(hourly.hour >= 10) & (hourly.hour < 17)]
    assert metrics.periods_per_year(hourly) == pytest.approx(252 * 7)


def test_summarize_turnover_and_exposure():
    out = metrics.summarize(EQUITY, INDEX, rebalance_turnover=np.array([0.5]), gross_exposure=np.full(6, 0.5),
                            costs={"commission": 1.0, "spread": 2.0}, n_trades=3, n_rebalances=1)
    assert out["turnover"] == pytest.approx(0.5 / (7 / 365.25))
    assert out["exposure"] == 0.5 and out["total_costs"] == 3.0 and out["cost_spread"] == 2.0


def test_13_14_turnover_is_the_mean_per_rebalance_share_of_equity_annualised():
    from types import SimpleNamespace

    from pipeline.results.recorder import rebalance_turnover

    # a book that doubles over two years (365.25 days each), rebalanced at its three year-ends;
    # by hand: 100 traded at equity 100 (the whole book bought), 30 + 30 at 150 (40 %), 80 at
    # 200 (40 %): mean 60 % a rebalance, 3 rebalances in 2 years -> 0.9x a year
    index = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta([0.0, 365.25, 730.5], unit="D")
    ledger = SimpleNamespace(
        start=10, equity=np.array([100.0, 150.0, 200.0]), decisions=np.array([10, 11, 12]),
        orders={"decision": np.array([10, 11, 11, 12])},
        fills={"order": np.array([0, 1, 2, 3, 3]), "quantity": np.array([10.0, -3.0, 1.5, 2.0, 2.0]),
               "price": np.array([10.0, 10.0, 20.0, 20.0, 20.0])})
    per = rebalance_turnover(ledger)
    np.testing.assert_allclose(per, [1.0, 0.4, 0.4])
    assert metrics.turnover(per, index) == pytest.approx(0.9, abs=1e-12)
    # the old figure, a year's notional over the mean equity, said 0.8x on this growing book
    assert 240 / 2 / np.mean([100.0, 150.0, 200.0]) == pytest.approx(0.8)


def test_19_1_annualisation_counts_sessions_not_bars():
    # a record that starts at a session's last minute, with a half day in it: 252 sessions of
    # 390 minutes (before: 252 x bars / dates, here 252 x 1381 / 5 = 69,601)
    days = (("2024-11-27", "16:00"), ("2024-11-29", "13:00"), ("2024-12-02", "16:00"),
            ("2024-12-03", "16:00"), ("2024-12-04", "16:00"))
    minutes = pd.DatetimeIndex(np.concatenate([
        pd.date_range(f"{d} 09:31", f"{d} {c}", freq="1min", tz="America/New_York").as_unit("ns").asi8
        for d, c in days]), tz="UTC").tz_convert("America/New_York")[389:]
    assert metrics.periods_per_year(minutes) == 252 * 390
    assert bars_per_year(minutes.asi8) == 252 * 390
