"""Smart: picks an algorithm per parent order by its size and the configured urgency."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import AUCTION, ChildOrders, ExecutionAlgo, Orders, Session
from plugins.execution._common import WINDOW_RULES, check_window, to_children, window_of
from plugins.execution.implementation_shortfall import ImplementationShortfall
from plugins.execution.pov import POV
from plugins.execution.vwap import VWAP


class Smart(ExecutionAlgo):
    """Routes each parent by its size against the forecast daily volume (``ADV``):

    - below ``market_below`` of ADV: the auction, whole (``market``): one spread crossing
      costs less than slicing a small order over the day;
    - at or above ``pov_above`` of ADV: ``pov`` at ``pov_rate``: a large order follows the
      volume so that its participation, hence its impact, stays bounded;
    - in between: ``implementation_shortfall`` with ``risk_aversion`` when ``urgency`` is at
      least ``urgent_above`` (front-loaded: the price risk of waiting matters more), else
      ``vwap``.

    A symbol with no forecast volume counts as large. ``start``, ``end``,
    ``max_participation`` (for ``vwap`` and ``implementation_shortfall``) and ``min_slice`` are
    those of every scheduling algorithm (``plugins/execution/_common.py``).
    """

    rules = {**WINDOW_RULES, "urgency": "[0, 1]", "market_below": "[0, 1]",
             "pov_above": "(0, inf)", "urgent_above": "[0, 1]", "pov_rate": "(0, 1]",
             "risk_aversion": "[0, inf)"}

    def __init__(self, urgency: float = 0.5, market_below: float = 0.001, pov_above: float = 0.05,
                 urgent_above: float = 0.7, pov_rate: float = 0.1, risk_aversion: float = 1e-6,
                 start: float = 0.0, end: float = 1.0, max_participation: Optional[float] = None,
                 min_slice: float = 0.0) -> None:
        check_window(start, end)
        if market_below > pov_above:
            raise ValueError(f"market_below={market_below} exceeds pov_above={pov_above}")
        self.urgency = urgency
        self.market_below = market_below
        self.pov_above = pov_above
        self.urgent_above = urgent_above
        self.pov_rate = pov_rate
        self.risk_aversion = risk_aversion
        self.start = start
        self.end = end
        self.max_participation = max_participation
        self.min_slice = min_slice

    def route(self, orders: Orders, session: Session) -> np.ndarray:
        """Per parent: 0 the auction, 1 vwap or implementation shortfall (by urgency), 2 pov."""
        adv = session.bins.forecast.sum(axis=0) / session.bins.days  # a day's, on intraday horizons too
        size = np.abs(orders.quantity)
        share = np.divide(size, adv, out=np.full(size.shape, np.inf), where=adv > 0)
        return np.where(share < self.market_below, 0, np.where(share >= self.pov_above, 2, 1))

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        bins = session.bins
        route = self.route(orders, session)
        window = window_of(bins.elapsed, self.start, self.end)
        common = dict(start=self.start, end=self.end, min_slice=self.min_slice)
        middle = (ImplementationShortfall(risk_aversion=self.risk_aversion,
                                          max_participation=self.max_participation, **common)
                  if self.urgency >= self.urgent_above
                  else VWAP(max_participation=self.max_participation, **common))
        pov = POV(rate=self.pov_rate, **common)
        weights = np.where(route == 2, pov.schedule(orders, bins, window),
                           middle.schedule(orders, bins, window) * (route == 1))
        cap = np.where(route == 2, self.pov_rate,
                       np.nan if self.max_participation is None else self.max_participation)
        sliced = to_children(orders, session, weights, np.full(len(orders), np.nan), cap,
                             self.min_slice, window.last)
        whole = np.flatnonzero(route == 0)
        return ChildOrders(
            parent=np.concatenate([whole, sliced.parent]),
            bin=np.concatenate([np.full(whole.size, AUCTION), sliced.bin]),
            quantity=np.concatenate([orders.quantity[whole], sliced.quantity]),
            limit=np.concatenate([np.full(whole.size, np.nan), sliced.limit]),
            participation=np.concatenate([np.full(whole.size, np.nan), sliced.participation]),
            expire=np.concatenate([np.full(whole.size, AUCTION), sliced.expire]))
