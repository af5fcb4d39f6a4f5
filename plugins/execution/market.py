"""Send each parent order whole to the session's reference auction."""

from __future__ import annotations


from pipeline.core.contracts import AUCTION, ChildOrders, ExecutionAlgo, Orders, Session


class Market(ExecutionAlgo):
    """One child per parent in the ``AUCTION`` bin, no limit price: it fills whole at the
    session's open, or at its close when the data has no opens. The session's intraday bins
    are never built."""

    whole_in_auction = True

    def __init__(self) -> None:
        pass

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        return ChildOrders.whole_orders(orders, AUCTION)
