"""Performance metrics from an equity curve, with the textbook definitions in each docstring.

Conventions: simple returns per bar; annualisation by ``periods_per_year`` (252 trading days
for daily bars); the risk-free rate is 0; CAGR uses calendar time (days / 365.25).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.core.market import periods_per_year


def bar_returns(equity: np.ndarray) -> np.ndarray:
    return equity[1:] / equity[:-1] - 1.0


def total_return(equity: np.ndarray) -> float:
    return float(equity[-1] / equity[0] - 1.0)


def years(index: pd.DatetimeIndex) -> float:
    return (index[-1] - index[0]).total_seconds() / (365.25 * 86_400)


def cagr(equity: np.ndarray, index: pd.DatetimeIndex) -> float:
    """``(E_end / E_0) ** (1 / years) - 1``; NaN over less than a day or after ruin."""
    span = years(index)
    if span <= 0 or equity[-1] <= 0:
        return math.nan
    return float((equity[-1] / equity[0]) ** (1.0 / span) - 1.0)


def annual_vol(r: np.ndarray, ppy: float) -> float:
    """Sample standard deviation (ddof=1) of bar returns times ``sqrt(ppy)``."""
    return float(np.std(r, ddof=1) * math.sqrt(ppy)) if r.size > 1 else math.nan


def sharpe(r: np.ndarray, ppy: float) -> float:
    """``mean(r) / std(r, ddof=1) * sqrt(ppy)`` (Sharpe 1994, risk-free rate 0)."""
    sd = np.std(r, ddof=1) if r.size > 1 else 0.0
    return float(np.mean(r) / sd * math.sqrt(ppy)) if sd > 0 else math.nan


def sortino(r: np.ndarray, ppy: float) -> float:
    """``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(ppy)``: downside deviation below 0
    over all bars (Sortino & Price 1994)."""
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else 0.0
    return float(np.mean(r) / downside * math.sqrt(ppy)) if downside > 0 else math.nan


def drawdown(equity: np.ndarray) -> np.ndarray:
    """``E_t / max_{s<=t} E_s - 1`` (0 at a new high, negative below it)."""
    return equity / np.maximum.accumulate(equity) - 1.0


def max_drawdown(equity: np.ndarray) -> float:
    """The deepest drawdown, a negative fraction (-0.5 is a 50 % fall from a peak)."""
    return float(drawdown(equity).min())


def calmar(equity: np.ndarray, index: pd.DatetimeIndex) -> float:
    """``CAGR / |max drawdown|`` (Young 1991)."""
    mdd = max_drawdown(equity)
    return cagr(equity, index) / abs(mdd) if mdd < 0 else math.nan


def turnover(rebalance_turnover: np.ndarray, index: pd.DatetimeIndex) -> float:
    """Annualised two-way turnover: the mean over rebalances of ``traded notional / equity``
    (buys plus sells over the equity the orders were sized from, ``sum |w_target - w_held|``
    when every order fills), times rebalances per year. Dividing a year's trading by the
    curve's average equity instead understates it on a growing curve, where early trades are
    small in money but not as a share of the book."""
    span = years(index)
    if span <= 0:
        return math.nan
    per = np.asarray(rebalance_turnover, dtype=np.float64)
    return float(np.mean(per) * per.size / span) if per.size else 0.0


def summarize(equity: np.ndarray, index: pd.DatetimeIndex, *, rebalance_turnover: np.ndarray,
              gross_exposure: np.ndarray, costs: dict[str, float], n_trades: int,
              n_rebalances: int, sessions: np.ndarray | None = None) -> dict[str, float | int | str]:
    """The run's headline numbers as written to ``metrics.json``.

    ``rebalance_turnover``: traded notional over equity at each rebalance (``turnover``).
    ``exposure`` is the average gross exposure (sum of absolute position values over equity)
    across bars.
    """
    r = bar_returns(equity)
    ppy = periods_per_year(index, sessions)
    out: dict[str, float | int | str] = {
        "start": str(index[0]),
        "end": str(index[-1]),
        "final_equity": float(equity[-1]),
        "total_return": total_return(equity),
        "cagr": cagr(equity, index),
        "annual_vol": annual_vol(r, ppy),
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "max_drawdown": max_drawdown(equity),
        "calmar": calmar(equity, index),
        "turnover": turnover(rebalance_turnover, index),
        "total_costs": float(sum(costs.values())),
        "n_trades": int(n_trades),
        "n_rebalances": int(n_rebalances),
        "exposure": float(np.mean(gross_exposure)),
    }
    out.update({f"cost_{k}": float(v) for k, v in costs.items()})
    return out
