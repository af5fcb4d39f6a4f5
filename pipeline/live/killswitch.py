"""The kill switch: once engaged, nothing is sent and open orders are cancelled, until a person
releases it. It survives restarts.

Engaged by any of:

- a file (``mode.killswitch.file``, by default ``<mode.state_dir>/KILL``): create it by hand
  (``touch state/paper/KILL``) or with the command below; its text is the reason;
- the command ``python -m pipeline.live.killswitch on [--mode live] [--state-dir DIR] [--reason "..."]``
  (by default the folder ``mode=paper`` uses, ``state/paper``, under the current directory);
- automatically, by the runner: the day's loss from the first net liquidation value seen that
  day (in the exchange's time zone) beyond ``max_daily_loss``, a drawdown from the highest
  net liquidation value seen beyond ``max_drawdown``, or ``max_rejects`` orders rejected by
  the broker in one day.

The state lives in the journal (``state.killswitch``) and in the file, so deleting one alone
does not release it: ``python -m pipeline.live.killswitch off --state-dir ...`` clears both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Optional

from pipeline.core.configs import conf_dir
from pipeline.live.journal import Journal

# the config folder (a checkout's conf/ or the installed package): read without Hydra or the app
CONF = conf_dir()

FILE = "KILL"


class KillSwitch:
    def __init__(self, journal: Journal, file: str | Path, max_daily_loss: Optional[float] = None,
                 max_drawdown: Optional[float] = None, max_rejects: Optional[int] = None,
                 tz: str = "America/New_York") -> None:
        self.journal = journal
        self.file = Path(file)
        self.max_daily_loss = max_daily_loss
        self.max_drawdown = max_drawdown
        self.max_rejects = max_rejects
        self.tz = tz

    def reason(self) -> Optional[str]:
        """Why the switch is engaged, or None when it is not."""
        state = self.journal.get("killswitch")
        if state:
            return state.get("reason") or "engaged"
        if self.file.exists():
            text = self.file.read_text(errors="replace").strip().splitlines()
            return f"file {self.file}" + (f": {text[0]}" if text else "")
        return None

    def engage(self, reason: str) -> None:
        if self.journal.get("killswitch"):
            return
        self.journal.put("killswitch", {"reason": reason, "at": time.time()})
        self.journal.event("killswitch", reason)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            if not self.file.exists():
                self.file.write_text(reason + "\n")
        except OSError:
            pass  # the journal holds it; the file is a convenience

    def release(self) -> None:
        self.journal.delete("killswitch")
        self.journal.event("killswitch", "released")
        self.file.unlink(missing_ok=True)

    def _day(self, now: float) -> str:
        from zoneinfo import ZoneInfo

        return dt.datetime.fromtimestamp(now, ZoneInfo(self.tz)).date().isoformat()

    def observe_equity(self, equity: float, now: Optional[float] = None) -> Optional[str]:
        """Track the day's first and the highest equity; engage on a loss beyond the limits."""
        now = time.time() if now is None else now
        day = self._day(now)
        start = self.journal.get("day_start")
        if not start or start.get("day") != day:
            start = {"day": day, "equity": equity}
            self.journal.put("day_start", start)
            self.journal.put("rejects", {"day": day, "count": 0})
        peak = max(float(self.journal.get("peak_equity", equity)), equity)
        self.journal.put("peak_equity", peak)
        reason = None
        if self.max_daily_loss is not None and start["equity"] > 0:
            loss = 1.0 - equity / start["equity"]
            if loss > self.max_daily_loss:
                reason = (f"daily loss {loss:.2%} exceeds mode.killswitch.max_daily_loss="
                          f"{self.max_daily_loss:g} (net liquidation {start['equity']:,.2f} -> {equity:,.2f})")
        if reason is None and self.max_drawdown is not None and peak > 0:
            dd = 1.0 - equity / peak
            if dd > self.max_drawdown:
                reason = (f"drawdown {dd:.2%} exceeds mode.killswitch.max_drawdown={self.max_drawdown:g} "
                          f"(peak {peak:,.2f}, now {equity:,.2f})")
        if reason is not None:
            self.engage(reason)
        return reason

    def observe_reject(self, ref: str, code: int, message: str, now: Optional[float] = None) -> Optional[str]:
        now = time.time() if now is None else now
        day = self._day(now)
        state = self.journal.get("rejects") or {}
        count = (state.get("count", 0) if state.get("day") == day else 0) + 1
        self.journal.put("rejects", {"day": day, "count": count})
        if self.max_rejects is not None and count >= self.max_rejects:
            reason = (f"{count} orders rejected today (last {ref}: error {code}: {message}); "
                      f"mode.killswitch.max_rejects={self.max_rejects}")
            self.engage(reason)
            return reason
        return None


def default_state_dir(mode: str) -> str:
    """``mode.state_dir`` as ``conf/mode/<mode>.yaml`` sets it, relative to where runs start."""
    import yaml

    return str(yaml.safe_load((CONF / "mode" / f"{mode}.yaml").read_text())["state_dir"])


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.live.killswitch",
                                description="Engage, release or show the trading kill switch.")
    p.add_argument("action", choices=("on", "off", "status"))
    p.add_argument("--mode", choices=("paper", "live"), default="paper",
                   help="whose state folder: mode.state_dir of conf/mode/<mode>.yaml (default paper)")
    p.add_argument("--state-dir", default=None, help="the runner's mode.state_dir, if it was changed")
    p.add_argument("--reason", default="engaged by hand")
    p.add_argument("--file", default=None, help="the kill file (default <state-dir>/KILL)")
    args = p.parse_args(argv)
    state = Path(args.state_dir or default_state_dir(args.mode))
    journal = Journal(state / "journal.sqlite")
    switch = KillSwitch(journal, args.file or state / FILE)
    try:
        if args.action == "on":
            switch.engage(args.reason)
        elif args.action == "off":
            switch.release()
        reason = switch.reason()
        print(f"kill switch: {'ENGAGED: ' + reason if reason else 'released'} ({state})")
        return 0
    finally:
        journal.close()


if __name__ == "__main__":
    sys.exit(main())
