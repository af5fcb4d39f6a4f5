"""``Window``: a sliding-window rate limit that waits instead of refusing. The live order rate
(``mode.pretrade.max_orders_per_second``) and historical-data pacing (IB: at most 60 requests in
ten minutes, no identical request within 15 seconds, at most six for one contract in two
seconds) both use it. It never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Hashable, Optional


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
