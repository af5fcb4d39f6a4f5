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

``Window`` is a sliding-window rate limit that waits instead of refusing: the order rate
(``max_orders_per_second``) and historical-data pacing (IB: at most 60 requests in ten
minutes, no identical request within 15 seconds, at most six for one contract in two
seconds) both use it. It never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import deque
from typing import Hashable, Optional


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


class Window:
    """At most ``limit`` events in any ``seconds``; ``acquire`` waits for room (never refuses).

    ``key`` adds per-key rules on top: at most ``per_key`` events for one key in
    ``per_key_seconds``, and at least ``same_gap`` seconds between two events with an
    identical ``same`` key (IB's rule for identical historical-data requests).
    """

    def __init__(self, limit: Optional[int], seconds: float, per_key: Optional[int] = None,
                 per_key_seconds: float = 2.0, same_gap: float = 0.0,
                 clock=time.monotonic) -> None:
        self.limit = limit
        self.seconds = seconds
        self.per_key = per_key
        self.per_key_seconds = per_key_seconds
        self.same_gap = same_gap
        self.clock = clock
        self.times: deque[float] = deque()
        self.keyed: dict[Hashable, deque[float]] = {}
        self.same: dict[Hashable, float] = {}
        self.waited = 0.0
        self._lock: Optional[asyncio.Lock] = None

    def delay(self, key: Hashable = None, same: Hashable = None, now: Optional[float] = None) -> float:
        """Seconds to wait before an event with these keys fits (0: now)."""
        now = self.clock() if now is None else now
        while self.times and now - self.times[0] >= self.seconds:
            self.times.popleft()
        wait = 0.0
        if self.limit is not None and len(self.times) >= self.limit:
            wait = self.times[len(self.times) - self.limit] + self.seconds - now
        if key is not None and self.per_key is not None:
            q = self.keyed.setdefault(key, deque())
            while q and now - q[0] >= self.per_key_seconds:
                q.popleft()
            if len(q) >= self.per_key:
                wait = max(wait, q[len(q) - self.per_key] + self.per_key_seconds - now)
        if same is not None and same in self.same:
            wait = max(wait, self.same[same] + self.same_gap - now)
        return max(wait, 0.0)

    def record(self, key: Hashable = None, same: Hashable = None, now: Optional[float] = None) -> None:
        now = self.clock() if now is None else now
        self.times.append(now)
        if key is not None and self.per_key is not None:
            self.keyed.setdefault(key, deque()).append(now)
        if same is not None:
            self.same[same] = now

    async def acquire(self, key: Hashable = None, same: Hashable = None) -> float:
        """Wait until the event fits, record it, and return how long it waited."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        waited = 0.0
        async with self._lock:  # first come, first served
            while True:
                wait = self.delay(key, same)
                if wait <= 0:
                    break
                waited += wait
                await asyncio.sleep(wait)
            self.record(key, same)
        self.waited += waited
        return waited
