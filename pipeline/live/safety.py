"""Safety: the checks before real money trades (``check_live``, the account checks) and the kill
switch as the running loop uses it: watched beside the trading loop, engaged once by whoever
trips it (its file or command, the dashboard, a limit), skipping what is planned and cancelling
what works."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from pipeline.core.errors import UserError
from pipeline.core.live_broker import DONE, FILLED, LiveBroker, OrderUpdate
from pipeline.live.messages import say

KILL_POLL = 0.2  # seconds between looks at the kill switch (file and journal)


class SafetyError(UserError):
    kind = "safety"


class KillSwitchEngaged(UserError):
    kind = "kill switch"



def check_live(mode: Any, broker: LiveBroker) -> None:
    """Before connecting: real money needs three explicit yeses."""
    if not broker.live:
        raise SafetyError("mode=live sends real orders: set broker.live=true to allow it "
                          "(with broker.account=<account> and mode.confirm=<account>), or use mode=paper")
    if not broker.account:
        raise SafetyError("mode=live needs broker.account=<your account id> (or IB_ACCOUNT): "
                          "the runner never guesses which account to trade")
    if mode.confirm is not None and str(mode.confirm) == str(broker.account):
        return
    if mode.confirm is not None:
        raise SafetyError(f"mode.confirm={mode.confirm} does not match broker.account={broker.account}: "
                          f"confirm with the account id you mean to trade live")
    if sys.stdin is not None and sys.stdin.isatty():
        answer = input(f"robo-trader: LIVE trading on account {broker.account}: type the account id "
                       f"to confirm: ").strip()
        if answer == str(broker.account):
            return
        raise SafetyError(f"live trading not confirmed (typed {answer!r}, expected {broker.account})")
    raise SafetyError(f"live trading on {broker.account} needs a confirmation: run at a terminal to "
                      f"type it, or pass mode.confirm={broker.account}")



class Safety:
    """The account checks and the kill switch of ``LiveRunner`` (state: ``killswitch``, ``killed``,
    ``_kill_task``, ``_trading``)."""

    def _check_account(self) -> str:
        managed = self.broker.managed_accounts()
        where = self.broker.where()
        want = self.broker.account
        if want:
            if want not in managed:
                raise SafetyError(f"broker.account={want} is not an account of the gateway at {where} "
                                  f"(it manages {', '.join(managed) or 'none'}); check broker.account / IB_ACCOUNT")
            account = want
        elif len(managed) == 1:
            account = managed[0]
        else:
            raise SafetyError(f"the gateway at {where} manages {len(managed)} accounts "
                              f"({', '.join(managed)}): choose one with broker.account=<id>")
        if self.mode.name == "paper" and not self.broker.is_paper(account):
            raise SafetyError(f"account {account} is a live account ({self.broker.paper_rule}): "
                              f"mode=paper does not trade it; use {self.broker.paper_login}, or mode=live")
        self.broker.use_account(account)
        owner = self.journal.meta("account")
        if owner is None:
            self.journal.set_meta("account", account)
        elif owner != account:
            raise SafetyError(f"the journal {self.journal.path} belongs to account {owner}, not {account}: "
                              f"use another mode.state_dir for this account")
        client = str(getattr(self.broker, "client_id", ""))
        writer = self.journal.meta("client_id")
        if writer is None:
            self.journal.set_meta("client_id", client)
        elif writer != client:
            # orders are bound to the client id that placed them: another id could neither see
            # nor cancel them after a restart
            raise SafetyError(f"the journal {self.journal.path} was written by client id {writer}; "
                              f"client id {client} cannot see or cancel its orders: set "
                              f"broker.client_id={writer}, or use another mode.state_dir")
        return account


    async def _dashboard_kill(self, reason: str) -> str:
        """The page's button: the one kill every other source shares, so a second press (or a
        press after the switch tripped on its own) answers what that kill did."""
        already = self._kill_task is not None
        if not already and (self._trading is None or self._trading.done()):  # the run is ending
            self.killswitch.engage(f"dashboard: {reason}")
            return "kill switch engaged; this run is stopping: its next start cancels whatever still works"
        message = await asyncio.shield(self._start_kill(f"dashboard: {reason}"))
        return f"kill switch {'already ' if already else ''}engaged: {message}"


    async def _watch_killswitch(self) -> None:
        """The file or ``python -m pipeline.live.killswitch on``, seen within KILL_POLL seconds
        whatever the trading loop waits for."""
        while self._kill_task is None:
            reason = self.killswitch.reason()
            if reason:
                self._start_kill(reason)
                return
            await asyncio.sleep(KILL_POLL)

    async def _check_killswitch(self) -> None:
        reason = self.killswitch.reason()
        if reason:
            await self._kill(reason)

    def _start_kill(self, reason: str) -> asyncio.Task:
        """The one kill: the watcher, the trading loop's own limits and the dashboard all start
        or join it, so it runs once and every caller gets its account of what it did."""
        if self._kill_task is None:
            self.killed = reason  # synchronously: nothing is sent from here on
            self._kill_task = asyncio.ensure_future(self._kill_all(reason))
        return self._kill_task

    async def _kill(self, reason: str) -> None:
        """From the trading loop: the kill, then stop."""
        raise KillSwitchEngaged(await asyncio.shield(self._start_kill(reason)))

    async def _kill_all(self, reason: str) -> str:
        """Engage the switch, skip what is planned, cancel what works; the trading loop stops."""
        release = f"python -m pipeline.live.killswitch off --state-dir {self.state_dir}"
        try:
            self.killswitch.engage(reason)
            self._show("kill_switch", {"engaged": True, "reason": reason})
            skipped = 0
            for child in self.journal.children():
                if child.status == "planned":
                    self.journal.mark(child.ref, "skipped", reason=f"kill switch: {reason}")
                    skipped += 1
            sent = self.counts.get("sent", 0)
            done = f"{sent} order(s) sent by this run before it" if sent else "nothing sent by this run"
            if skipped:
                done += f", {skipped} planned order(s) not sent"
            try:
                outcome = await self._cancel_working()
            except Exception as exc:  # noqa: BLE001 - the switch holds; say what could not be done
                outcome = (f"cancelling at the gateway failed ({type(exc).__name__}: {exc}): check its open "
                           f"orders in TWS / IB Gateway")
            message = f"{reason}; {outcome}; {done}; release with `{release}` once the cause is dealt with"
            say(f"kill switch engaged: {message}")
            return message
        finally:
            if self._trading is not None and self._trading is not asyncio.current_task():
                self._trading.cancel()

    async def _cancel_working(self) -> str:
        """Cancel every working order (the journal's at once, then any other the gateway holds
        for this client) and wait, up to ``mode.ack_timeout``, for the broker to confirm."""
        await self._wait_ready()
        working = [c.ref for c in self.journal.children() if c.status in ("intent", "submitted")]
        say(f"kill switch: cancelling {len(working)} working order(s)")
        for ref in working:
            self.broker.cancel(ref)
        # the gateway takes requests in order: what it still lists as open was not cancelled above
        refs = list(dict.fromkeys(working + await self.broker.cancel_open()))
        final = DONE
        known: dict[str, OrderUpdate] = {}
        end = time.time() + float(self.mode.ack_timeout)
        while refs:
            known = self._by_child(await self.broker.known_orders())
            if time.time() >= end or all(known.get(r) is None or known[r].status in final for r in refs):
                break
            await asyncio.sleep(0.1)
        for r in refs:
            child = self.journal.child(r)
            if child is not None and r in known:
                self._apply(child, known[r])
        self.journal.event("killswitch cancel", {"cancelled": refs})
        filled = sum(1 for r in refs if r in known and known[r].status == FILLED)
        open_ = [r for r in refs if r in known and known[r].status not in final]
        text = f"{len(refs) - filled - len(open_)} open order(s) cancelled"
        if filled:
            text += f" ({filled} filled before the cancel arrived)"
        if open_:
            text += (f"; {len(open_)} not confirmed within mode.ack_timeout={self.mode.ack_timeout}s "
                     f"({', '.join(open_[:3])}): check them at the gateway")
        return text
