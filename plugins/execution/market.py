"""Send each parent order whole, as a market order at the start of the session."""

from __future__ import annotations

import numpy as np

from pipeline.contracts import ChildOrders, ExecutionAlgo, Orders, Session


class Market(ExecutionAlgo):
    """One child per parent, in the session's first bin, no limit price."""

    def __init__(self) -> None:
        pass

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        n = orders.symbol.size
        no_limit = np.empty(n)
        no_limit.fill(np.nan)
        return ChildOrders(parent=np.arange(n), bin=np.zeros(n, dtype=np.int64),
                           quantity=orders.quantity, limit=no_limit)
