"""The live loop's console lines: ``live: ...`` on stdout (flushed, for a terminal or a log file
under cron) and the same text at debug level on the ``robo_trader.live`` logger."""

from __future__ import annotations

import logging

log = logging.getLogger("robo_trader.live")


def say(text: str) -> None:
    print(f"live: {text}", flush=True)
    log.debug(text)
