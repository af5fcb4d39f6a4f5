"""Pre-trade checks and rate limits: what every child order passes before it is sent.

``check`` returns the reason an order may not be sent (the runner journals the child as
``blocked`` with it), or None. Whatever the limits, a child whose quantity is not a finite
non-zero number, whose limit price is not a finite positive one, or whose resulting exposure is
not finite is refused: every comparison below is false for NaN, so such a child would pass them
all. Then:

- ``max_order_notional``: the child's size times its reference price;
- ``max_position_notional``: the position the child would leave, if every open order of the
  symbol filled, times the reference price;
- ``price_collar``: a limit price further than this fraction from the reference price, or a
  reference (the broker's quote) further than this from the decision's arrival price: the
  market moved away from what the decision saw, or the limit is a typo.

The order rate (``max_orders_per_second``) is held by ``pipeline.core.rate.Window``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional



@dataclasses.dataclass
class Limits:
    max_order_notional: Optional[float] = None
    max_position_notional: Optional[float] = None
    price_collar: Optional[float] = None


def check(limits: Limits, symbol: str, quantity: float, limit_price: Optional[float],
          arrival: float, quote: Optional[float], exposure_after: float) -> Optional[str]:
    """The reason this child may not be sent, or None. ``exposure_after``: signed shares the
    symbol would hold if this child and every working one filled."""
    if not (math.isfinite(quantity) and quantity != 0):
        return f"invalid quantity: {symbol} {quantity!r} shares (expected a finite, non-zero number; a plugin bug)"
    if limit_price is not None and not (math.isfinite(limit_price) and limit_price > 0):
        return f"invalid limit price: {symbol} limit {limit_price!r} (expected a finite price > 0; a plugin bug)"
    if not math.isfinite(exposure_after):
        return (f"invalid exposure: {symbol} would hold {exposure_after!r} shares (a position or a working "
                f"order is not a number: check the broker's positions and the journal)")
    reference = quote if quote is not None and quote > 0 else arrival
    if not (reference > 0):
        return f"no valid reference price for {symbol} ({reference})"
    notional = abs(quantity) * reference
    if limits.max_order_notional is not None and notional > limits.max_order_notional:
        return (f"max_order_notional: {symbol} {quantity:+g} @ {reference:.4g} = {notional:,.0f} "
                f"> {limits.max_order_notional:,.0f}")
    position = abs(exposure_after) * reference
    if limits.max_position_notional is not None and position > limits.max_position_notional:
        return (f"max_position_notional: {symbol} would hold {exposure_after:+g} shares = "
                f"{position:,.0f} > {limits.max_position_notional:,.0f}")
    collar = limits.price_collar
    if collar is not None:
        if quote is not None and quote > 0 and arrival > 0 and abs(quote / arrival - 1) > collar:
            return (f"price_collar: {symbol} quote {quote:.4g} is {quote / arrival - 1:+.2%} from the "
                    f"decision's price {arrival:.4g} (collar {collar:.2%})")
        if limit_price is not None and abs(limit_price / reference - 1) > collar:
            return (f"price_collar: {symbol} limit {limit_price:.4g} is {limit_price / reference - 1:+.2%} "
                    f"from {reference:.4g} (collar {collar:.2%})")
    return None
