"""Implementation shortfall: the Almgren-Chriss optimal trajectory for a given risk aversion."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins, Orders
from plugins.execution._common import WINDOW_RULES, Scheduled, Window, check_window

# beyond kappa * tau = 50 the whole order goes in the first bin to machine precision
MAX_KAPPA_TAU = 50.0


def ac_kappa(risk_aversion: float, sigma: np.ndarray, eta: np.ndarray, tau: float) -> np.ndarray:
    """Almgren & Chriss (2000) with no permanent impact: the urgency ``kappa`` with
    ``2 (cosh(kappa tau) - 1) / tau^2 = risk_aversion * sigma^2 / eta``, for trading intervals of
    length ``tau``, price volatility ``sigma`` (per share, per unit time) and linear temporary
    impact ``eta`` (price per share per unit of trading rate). ``eta = 0`` (trading costs
    nothing) with risk to avoid gives the largest ``kappa``: everything at once."""
    risk = risk_aversion * sigma ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        k2 = np.where(eta > 0, risk / np.where(eta > 0, eta, 1.0), np.where(risk > 0, np.inf, 0.0))
        kappa = np.arccosh(1.0 + 0.5 * k2 * tau * tau) / tau
    return np.minimum(kappa, MAX_KAPPA_TAU / tau)


def almgren_chriss(kappa: np.ndarray, n: int, horizon: float) -> np.ndarray:
    """Share of the order still held at ``t_j = j * horizon / n``, ``j = 0..n`` (rows):
    ``x_j / X = sinh(kappa (T - t_j)) / sinh(kappa T)``, the Almgren-Chriss optimal trajectory
    (``kappa = 0``: a straight line, TWAP). Computed as ``e^(a-b) expm1(-2a) / expm1(-2b)`` to
    stay finite for large ``kappa``."""
    left = horizon - np.arange(n + 1)[:, None] * (horizon / n)
    a, b = kappa * left, kappa * horizon
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        curved = np.exp(a - b) * np.expm1(-2.0 * a) / np.expm1(-2.0 * b)
    return np.where(b > 1e-12, curved, left / horizon)


class ImplementationShortfall(Scheduled):
    """Trades each parent along the Almgren-Chriss (2000) trajectory that minimises expected
    cost plus ``risk_aversion`` times its variance: the more risk-averse, the more front-loaded.

    Over the ``n`` bins of the window, of total length ``T`` (in days: a session is one, an
    intraday horizon its share of one, ``Bins.days``;
    the bins are taken as equal intervals, as Almgren and Chriss's are), the holdings after bin
    ``j`` are ``X sinh(kappa (T - t_j)) / sinh(kappa T)`` with ``t_j = j T / n`` and ``kappa``
    from ``ac_kappa``, where:

    - ``sigma = s P``: the daily volatility ``s`` (``Bins.sigma``) times the arrival price;
    - ``eta``: the square-root impact ``impact_coef * s * P * sqrt(v / ADV)`` per share at the
      order's average rate ``v = X / T`` (shares a day; ``ADV`` the forecast daily volume),
      linearised at that rate: ``eta = impact_coef * s * P / sqrt(v * ADV)``, so that
      ``kappa^2 ~ risk_aversion * s * P * sqrt(v * ADV) / impact_coef``.

    ``risk_aversion`` is Almgren and Chriss's lambda, per unit of currency (their example uses
    1e-6); 0 gives TWAP. ``start``, ``end``, ``limit_bps``, ``max_participation`` and
    ``min_slice`` are those of every scheduling algorithm (``plugins/execution/_common.py``).
    """

    rules = {**WINDOW_RULES, "risk_aversion": "[0, inf)", "impact_coef": "[0, 100]"}

    def __init__(self, risk_aversion: float = 1e-6, impact_coef: float = 0.5, start: float = 0.0,
                 end: float = 1.0, limit_bps: Optional[float] = None,
                 max_participation: Optional[float] = None, min_slice: float = 0.0) -> None:
        check_window(start, end)
        self.risk_aversion = risk_aversion
        self.impact_coef = impact_coef
        self.start = start
        self.end = end
        self.limit_bps = limit_bps
        self.max_participation = max_participation
        self.min_slice = min_slice

    def schedule(self, orders: Orders, bins: Bins, window: Window) -> np.ndarray:
        n = int(window.mask.sum())
        horizon = float(np.diff(bins.elapsed, prepend=0.0)[window.mask].sum()) * bins.days
        size = np.abs(orders.quantity)
        daily = bins.sigma * orders.arrival
        adv = bins.forecast.sum(axis=0) / bins.days
        # no forecast volume: no impact estimate to trade risk against, so trade evenly
        eta = np.where(adv > 0, self.impact_coef * daily /
                       np.sqrt(size / horizon * np.where(adv > 0, adv, 1.0)), np.inf)
        kappa = ac_kappa(self.risk_aversion, daily, eta, horizon / n)
        out = np.zeros((bins.elapsed.size, size.size))
        out[window.mask] = -np.diff(almgren_chriss(kappa, n, horizon), axis=0)
        return out
