"""An asyncio server run in a thread of its own, for callers without an event loop (a
synchronous run, a test): the dashboard and the fake IB gateway."""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, Callable, Optional


class LoopThread:
    """Runs ``start()`` on a new event loop in a daemon thread and keeps the loop running
    until ``close``, which runs ``stop()`` on it before the thread ends."""

    def __init__(self, start: Callable[[], Awaitable], stop: Callable[[], Awaitable], name: str) -> None:
        self._start, self._stop, self.name = start, stop, name
        self._thread: Optional[threading.Thread] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def open(self, timeout: float = 30) -> None:
        """Returns once ``start()`` has finished; raises what it raised (a port taken, ...)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.loop = loop
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            # what stop() cancelled (and anything left) finishes before the loop closes, as in
            # asyncio.run: a task dropped with a closed loop is torn down mid-await
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(timeout)
        if failure:
            self._thread = None
            raise failure[0]

    def is_current(self) -> bool:
        """True when called from the loop's own thread."""
        return threading.current_thread() is self._thread

    def close(self, timeout: float = 10) -> None:
        if self._thread is None or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self._thread, self.loop = None, None
