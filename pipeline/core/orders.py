"""Order types: the terms an order carries beyond symbol and quantity, the same in every mode.

The simulated broker fills each type by its rule (``pipeline.core.exits`` for the triggered
ones) and a live broker translates it into its venue's own order (``plugins/broker/ib``:
``STP``, ``STP LMT``, ``TRAIL``, ``MOC``, ``LOC``, ``MOO``), so a stop the backtest honours is
the stop the gateway holds while the runner is down. The names here are venue-neutral.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Optional

from pipeline.core.errors import UserError


class OrderError(UserError):
    """An order that must never reach a broker (NaN, infinite, zero or negative terms)."""

    kind = "order error"


class OrderType(str, enum.Enum):
    MARKET = "market"
    LIMIT = "limit"                      # limit: the worst price accepted
    STOP = "stop"                        # stop: trigger; a market order once touched
    STOP_LIMIT = "stop_limit"            # stop: trigger; then a limit order at limit
    TRAILING_STOP = "trailing_stop"      # a stop trailing the best price since entry by
                                         # trail_amount (currency) or trail_percent (fraction)
    MARKET_ON_OPEN = "market_on_open"    # the session's opening auction
    MARKET_ON_CLOSE = "market_on_close"  # the session's closing auction
    LIMIT_ON_CLOSE = "limit_on_close"    # the closing auction, at limit or better


class TimeInForce(str, enum.Enum):
    DAY = "day"   # cancelled at the session's close if not filled
    GTC = "gtc"   # working until filled or cancelled (exits: until the position is closed)


TRIGGERED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})
NEEDS_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_ON_CLOSE})
AUCTIONS = frozenset({OrderType.MARKET_ON_OPEN, OrderType.MARKET_ON_CLOSE,
                      OrderType.LIMIT_ON_CLOSE})
# arrays of orders (``ChildOrders.type``, ``ChildOrders.tif``) carry these positions as codes
TYPES = tuple(OrderType)
CODE = {t: i for i, t in enumerate(TYPES)}
TIFS = tuple(TimeInForce)


@dataclasses.dataclass(frozen=True)
class OrderTerms:
    """What kind of order, at which prices, for how long.

    ``oca`` names a one-cancels-all group: a fill of any member cancels the others (an exit's
    stop and take-profit). ``parent`` names the entry a bracket's exits hang on: they become
    active when it fills. ``after`` is the number of sessions after entry before the order is
    active (a time stop: good after), 0 for at once. ``reason`` says why the order exists (the
    exit rule's name), for the journal and the reports.
    """

    type: OrderType = OrderType.MARKET
    limit: Optional[float] = None
    stop: Optional[float] = None
    trail_amount: Optional[float] = None
    trail_percent: Optional[float] = None
    tif: TimeInForce = TimeInForce.DAY
    oca: Optional[str] = None
    parent: Optional[str] = None
    after: int = 0
    reason: str = ""

    def check(self, symbol: str, quantity: float) -> None:
        """Raise ``OrderError`` unless the order can be sent as it stands: one line naming the
        symbol and the term at fault."""
        what = f"{self.type.value} order for {symbol}"
        if not (isinstance(quantity, (int, float)) and math.isfinite(quantity) and quantity != 0):
            raise OrderError(f"{what}: quantity {quantity!r} is not a finite non-zero number of shares")
        for name in ("limit", "stop", "trail_amount", "trail_percent"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise OrderError(f"{what}: {name} {value!r} must be a finite positive number")
        if self.type in NEEDS_LIMIT and self.limit is None:
            raise OrderError(f"{what} needs a limit price")
        if self.type in (OrderType.STOP, OrderType.STOP_LIMIT) and self.stop is None:
            raise OrderError(f"{what} needs a stop (trigger) price")
        if self.type is OrderType.TRAILING_STOP:
            if (self.trail_amount is None) == (self.trail_percent is None):
                raise OrderError(f"{what} needs exactly one of trail_amount and trail_percent")
            if self.trail_percent is not None and self.trail_percent >= 1:
                raise OrderError(f"{what}: trail_percent {self.trail_percent} is a fraction "
                                 f"below 1 (0.05 is 5%)")
        if self.after < 0:
            raise OrderError(f"{what}: after {self.after} sessions cannot be negative")
