"""Send each parent order whole to one of the session's auctions."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.core.contracts import AUCTION, ChildOrders, ExecutionAlgo, Orders, Session
from pipeline.core.orders import CODE, OrderType


class Market(ExecutionAlgo):
    """One child per parent, no limit price, filled whole. ``order_type``: ``market`` (the
    default) fills at the session's open, or at its close when the data has no opens, and
    never builds the session's intraday bins; ``market_on_open`` is the same order sent as
    a market-on-open; ``market_on_close`` fills at the session's close; ``limit_on_close``
    at the close if the close is at or better than ``limit_offset_bps`` from the arrival
    price (a buy pays at most ``arrival * (1 + bps / 1e4)``), else it is cancelled."""

    rules = {"limit_offset_bps": "(-10000, 10000)"}

    def __init__(self, order_type: Literal["market", "market_on_open", "market_on_close",
                                           "limit_on_close"] = "market",
                 limit_offset_bps: Optional[float] = None) -> None:
        if (order_type == "limit_on_close") != (limit_offset_bps is not None):
            raise ValueError(f"execution.limit_offset_bps={limit_offset_bps} goes with "
                             f"order_type=limit_on_close only (got order_type={order_type})")
        self.order_type = order_type
        self.limit_offset_bps = limit_offset_bps

    @property
    def whole_in_auction(self) -> bool:
        # an order type other than a plain market order goes through the broker's execute
        return self.order_type == "market"

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        whole = ChildOrders.whole_orders(orders, AUCTION)
        if self.order_type == "market":
            return whole
        n = len(orders)
        if self.limit_offset_bps is not None:
            whole.limit = orders.arrival * (1.0 + np.sign(orders.quantity) * self.limit_offset_bps * 1e-4)
        whole.type = np.full(n, CODE[OrderType(self.order_type)])
        return whole
