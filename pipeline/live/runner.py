"""Paper and live trading: the backtest's stages, on a schedule, against a live broker.

``python run.py mode=paper broker=ib`` runs the same config a backtest runs, on one asyncio
event loop (no blocking call: data sources without an async loader and the signal, allocation
and risk stages run in a worker thread, and the broker is driven by its async API only).

At each scheduled tick (``mode.at`` daily in ``mode.tz`` on weekdays, or every
``mode.every_seconds``; ``mode.run_once`` ticks once, now, and exits):

1. The data is loaded up to now from the configured source (``data=ib`` reads IB's bars);
   data older than ``mode.max_data_age`` is refused. Its last bar is the decision bar; a
   decision is due when ``schedule.rebalance`` puts a decision bar after the last one the
   journal has handled (calendar rules look one business day ahead to know whether the last
   bar ends its period; the first deployment always trades). A decision is keyed by its bar
   and the config that determines its targets (``decision_config``): another config on a bar
   already decided is decided again, from the positions.
2. Targets: ``pipeline.decision.targets.targets`` and the configured risk constraints for that bar
   (path-dependent constraints see the account's book), converted to shares with the
   account's net liquidation value at the broker's current quotes (never the data's last
   close: a symbol without a quote gets no order), in the broker's lots, and diffed against
   the broker's positions (symbols outside the data are left alone).
3. The parents go through the configured ``ExecutionAlgo.slice`` over the session's bins:
   ``mode.bins`` bins of ``mode.bin_seconds`` each from now (a US session is 13 x 30 min; tests
   use fractions of a second). Bins hold the forecast only (volume profile times the average
   daily volume, the decision's price): what a bin will trade is unknown when the plan is made,
   so algorithms that read the realised tape (``pov``) work from the forecast.
4. The whole plan (parents and children, each with a stable orderRef
   ``rt:<run>:<decision>:<symbol>:<n>`` and its release and expiry time) is committed to the
   journal (``pipeline.live.journal``) before anything is sent.
5. Each child is released at its bin's time: pre-trade checks (``pipeline.live.pretrade``), the
   order-rate limit, ``intent`` committed, then the broker's ``place``. Market children are
   market orders, limit children limit orders. Fills, acks, rejects and commissions update the
   journal as they arrive. At a parent's horizon what is still working is cancelled (and, with
   ``broker.unfilled=sweep``, the rest sent as one market order).
6. At the end the executions are re-read from the broker, positions are snapshot and compared
   with the targets, in shares and, at current quotes, in weights and gross exposure
   (``exposure_check``), and the decision is closed.

Crash safety: after a restart (or a reconnect) the runner reconciles the journal with the
broker before doing anything, completely by construction: every execution the gateway holds
for this client id and account (no time window) is added by execution id; children the broker
knows (open or completed) are adopted, matched by orderRef, by perm id, or by the order id the
journal sent them with (a gateway that drops the orderRef); a completed order is marked filled
only once its fills are journaled. A child in ``intent`` that no full reconcile finds is sent
again at most once, and only when the order it was handed over as may have been lost: never
while the connection that carried it is up (the gateway has it, TCP delivers it), and only
``mode.ack_timeout`` seconds after both its send and the last (re)connection (a gateway reports
late). A child sent twice that the broker still does not know stops the run with a message
rather than go a third time; a sweep is sized from the gateway's filled quantities. A request
the gateway leaves unanswered is a disconnect (``broker.timeout``): trading pauses until the
connection is back, for at most ``broker.max_outage`` seconds, then the run stops with every
order sent in the journal. After a restart or a pause the rest of the schedule resumes from now, with
its spacing; a decision whose horizon passed more than ``mode.grace_seconds`` ago is abandoned
(its unsent children skipped, its working orders cancelled) and the next decision starts from
the positions. The journal is bound to one account and one client id (IB binds orders to the
client id that placed them).

What the backtest does that this loop does not: stateful risk constraints start afresh in each
process; a child's ``participation`` is not enforced (IB would need its own algos for that);
the sizing capital is the account's net liquidation value, not ``capital``.

Safety: ``mode=live`` needs ``broker.live=true``, ``broker.account`` among the gateway's
managed accounts and a confirmation (``mode.confirm=<account>``, or typing the account at a
terminal); ``mode=paper`` refuses live accounts. The kill switch (``pipeline.live.killswitch``) stops
everything and cancels open orders, and persists. It is watched beside the trading loop: engaged
by its file, its command, the dashboard or a limit, it acts within ``KILL_POLL`` seconds whatever
the loop waits for, once, and says how many orders it cancelled and how many had been sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from pipeline.core.errors import ConfigError, DataError, UserError

log = logging.getLogger("robo_trader.live")

MODES = ("backtest", "paper", "live")
KILL_POLL = 0.2  # seconds between looks at the kill switch (file and journal)
# IB's order statuses of an order that is over
DONE = ("Cancelled", "Filled", "ApiCancelled", "Inactive")
# IB error codes that mean the order was refused, not cancelled by us
REJECT_CODES = {103, 104, 105, 106, 107, 109, 110, 111, 113, 114, 115, 116, 117, 118, 119, 200,
                201, 203, 321, 322, 382, 383, 387, 388, 391, 392, 393, 394, 395, 396, 397, 398,
                399, 404, 434, 10147, 10148}


class BrokerError(UserError):
    kind = "broker error"


class SafetyError(UserError):
    kind = "safety"


class KillSwitchEngaged(UserError):
    kind = "kill switch"


class NotConnected(Exception):
    """The broker is not connected, or stopped answering (which it treats as a disconnect):
    nothing was sent; wait for ``ready`` and ask again."""


# ---------------------------------------------------------------- the live broker contract

@dataclasses.dataclass
class LiveOrder:
    ref: str
    symbol: str
    quantity: float                 # signed: + buy, - sell
    limit: Optional[float] = None   # None: a market order
    tif: str = "DAY"
    order_id: Optional[int] = None  # from ``LiveBroker.next_order_id``, journaled before the send


@dataclasses.dataclass
class OrderUpdate:
    """An order as the broker reports it (IB's status words)."""

    ref: str
    status: str
    filled: float = 0.0       # unsigned, cumulative
    remaining: float = 0.0
    avg_price: float = 0.0
    order_id: Optional[int] = None
    perm_id: Optional[int] = None
    error_code: int = 0
    message: str = ""
    client_id: Optional[int] = None  # the client id that placed it (order ids are per client)


@dataclasses.dataclass
class Execution:
    exec_id: str
    ref: str
    symbol: str
    quantity: float           # signed
    price: float
    time: float               # epoch seconds
    commission: Optional[float] = None
    currency: str = ""
    order_id: Optional[int] = None
    perm_id: Optional[int] = None


class Listener:
    """What a live broker reports to the runner (callbacks on the event loop)."""

    def on_order(self, update: OrderUpdate) -> None: ...
    def on_execution(self, execution: Execution) -> None: ...
    def on_commission(self, exec_id: str, commission: float, currency: str) -> None: ...
    def on_connection(self, state: str, detail: str = "") -> None: ...


class LiveBroker:
    """A broker that trades through a gateway (``plugins/broker/ib/__init__.py``). Mixed into a
    ``pipeline.core.contracts.Broker`` so the same ``broker=`` group selects it.

    Connection states reported through ``Listener.on_connection``: ``connected``,
    ``disconnected`` (socket lost; the broker reconnects with backoff), ``reconnected``,
    ``ib_lost`` (1100), ``restored`` (1102), ``restored_data_lost`` (1101, after resubscribing),
    ``farm_broken`` / ``farm_ok`` (one data farm lost / back: the detail names it and what its
    loss pauses), ``failed`` (gave up reconnecting, or the gateway takes no orders at all, e.g. a
    read-only API: the run stops with the detail). ``ready`` is set only while orders may be sent.
    """

    live_only: ClassVar[bool] = True
    live: bool = False
    account: Optional[str] = None
    unfilled: str = "cancel"
    lot_size: Optional[float] = None
    max_outage: Optional[float] = None  # seconds unusable before the runner gives up; None: never

    @property
    def ready(self) -> asyncio.Event:
        raise NotImplementedError

    def where(self) -> str:
        """host:port, for messages."""
        raise NotImplementedError

    async def start(self, listener: Listener) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def managed_accounts(self) -> list[str]:
        raise NotImplementedError

    def use_account(self, account: str) -> None:
        """Trade ``account`` from now on (checked to be managed by the gateway)."""
        raise NotImplementedError

    async def subscribe(self) -> None:
        """Subscribe to the chosen account's values and positions."""

    async def qualify(self, symbols: list[str]) -> None:
        raise NotImplementedError

    async def positions(self) -> dict[str, float]:
        raise NotImplementedError

    def held(self) -> dict[str, float]:
        """Positions as last pushed by the broker (no request)."""
        raise NotImplementedError

    async def net_liquidation(self) -> float:
        raise NotImplementedError

    def equity(self) -> Optional[float]:
        """Net liquidation value as last pushed by the broker (no request)."""
        raise NotImplementedError

    async def quotes(self, symbols: list[str]) -> dict[str, float]:
        """Current prices (last trade, else midpoint, else the session's close) of the symbols
        the broker has a quote for."""
        raise NotImplementedError

    def quote_problem(self) -> str:
        """Why the last ``quotes`` call left symbols out (e.g. the gateway's error), or ''."""
        return ""

    async def known_orders(self) -> list[OrderUpdate]:
        """Every order the broker knows today, open or completed (with or without orderRef)."""
        raise NotImplementedError

    async def executions(self) -> list[Execution]:
        """Every execution of this client id and account the broker holds (no time window)."""
        raise NotImplementedError

    def next_order_id(self) -> int:
        """The order id the next ``place`` goes out with; ``NotConnected`` if there is none."""
        raise NotImplementedError

    def place(self, order: LiveOrder) -> None:
        """Hand the order over (non-blocking); raise ``NotConnected`` if nothing was sent."""
        raise NotImplementedError

    def cancel(self, ref: str) -> bool:
        raise NotImplementedError

    async def cancel_open(self) -> list[str]:
        """Cancel every open order of this client; the refs cancelled."""
        raise NotImplementedError

    def round_price(self, symbol: str, price: float, side: float) -> float:
        return round(price, 2)


# ---------------------------------------------------------------- entry point

def run_live(cfg: Any) -> dict[str, Any]:
    """``mode=paper`` / ``mode=live``: check, connect, trade on schedule; returns a summary."""
    from pipeline.results import recorder
    from pipeline.app.runner import build_stages, output_dir

    out = output_dir(cfg)
    try:
        mode = cfg.mode
        _check_mode(mode)
        stages = build_stages(cfg)
        broker = stages.broker
        if not isinstance(broker, LiveBroker):
            raise ConfigError(f"mode={mode.name} trades through a broker gateway: add broker=ib "
                              f"(broker={type(broker).__name__} only backtests)")
        if mode.name == "live":
            _check_live(mode, broker)
        _quiet_ib_logs()
        runner = LiveRunner(cfg, stages, out)
        try:
            summary = asyncio.run(runner.main())
        except KeyboardInterrupt:
            print("live: stopped; the journal keeps every order, restart to resume", flush=True)
            raise SystemExit(130) from None
    except UserError as exc:
        recorder.record_failure(out, exc)
        raise
    return summary


def _check_mode(mode: Any) -> None:
    if mode.name not in MODES:
        raise ConfigError(f"mode.name={mode.name!r} is not a mode; allowed: {', '.join(MODES)}")
    if mode.name == "backtest":
        return
    if not mode.bins >= 1:
        raise ConfigError(f"mode.bins={mode.bins} is not allowed: expected at least 1 bin")
    if not mode.bin_seconds > 0:
        raise ConfigError(f"mode.bin_seconds={mode.bin_seconds} is not allowed: expected seconds > 0")
    if mode.every_seconds is not None and not mode.every_seconds > 0:
        raise ConfigError(f"mode.every_seconds={mode.every_seconds} is not allowed: expected seconds > 0")
    if mode.every_seconds is None and mode.at is None and not mode.run_once:
        raise ConfigError("mode: no schedule: set mode.at (a daily time, e.g. '09:35'), "
                          "mode.every_seconds, or mode.run_once=true")
    if mode.at is not None:
        _parse_at(mode.at)
    _zone(mode.tz, "mode.tz")
    _max_age(mode.max_data_age)


def _check_live(mode: Any, broker: LiveBroker) -> None:
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


def _quiet_ib_logs() -> None:
    # ib_async logs every order error with the whole Trade; the journal and our own lines
    # say what happened, so its loggers stay quiet unless asked (HYDRA verbose / logging config)
    for name in ("ib_async", "ib_async.wrapper", "ib_async.client", "ib_async.ib"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _parse_at(text: str) -> dt.time:
    try:
        hour, minute = str(text).split(":")[:2]
        return dt.time(int(hour), int(minute))
    except (ValueError, TypeError):
        raise ConfigError(f"mode.at={text!r} is not a time of day; write HH:MM, e.g. '09:35' "
                          f"(quoted: YAML reads 09:35 as a number)") from None


def _max_age(text: Optional[str]):
    """``mode.max_data_age``: an int (business days), a ``pandas.Timedelta``, or None (no check)."""
    import pandas as pd

    if text is None:
        return None
    text = str(text).strip()
    try:
        days = int(text)
    except ValueError:
        pass
    else:
        if days >= 0:
            return days
    try:
        age = pd.Timedelta(text)
    except ValueError:
        age = None
    if age is None or age <= pd.Timedelta(0):
        raise ConfigError(f"mode.max_data_age={text!r} is not an age: give business days (e.g. 2) or a "
                          f"duration (e.g. 36h, 90min); null turns the check off")
    return age


def _zone(name: str, key: str):
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(str(name))
    except Exception:
        raise ConfigError(f"{key}={name!r} is not a time zone; e.g. America/New_York") from None


def say(text: str) -> None:
    print(f"live: {text}", flush=True)
    log.debug(text)


# ---------------------------------------------------------------- the runner

class LiveRunner(Listener):
    def __init__(self, cfg: Any, stages: Any, out: Path) -> None:
        from pipeline.dashboard.server import Dashboard
        from pipeline.live.journal import Journal
        from pipeline.live.killswitch import FILE, KillSwitch
        from pipeline.live.pretrade import Limits, Window

        self.cfg = cfg
        self.mode = cfg.mode
        self.stages = stages
        self.broker: LiveBroker = stages.broker
        self.out = out
        self.state_dir = Path(str(self.mode.state_dir))
        self.journal = Journal(self.state_dir / "journal.sqlite")
        ks = self.mode.killswitch
        self.killswitch = KillSwitch(self.journal, ks.file or self.state_dir / FILE,
                                     max_daily_loss=ks.max_daily_loss, max_drawdown=ks.max_drawdown,
                                     max_rejects=ks.max_rejects, tz=str(self.mode.tz))
        pt = self.mode.pretrade
        self.limits = Limits(max_order_notional=pt.max_order_notional,
                             max_position_notional=pt.max_position_notional,
                             price_collar=pt.price_collar)
        rate = pt.max_orders_per_second
        # a window of one second holding at most ceil(rate) orders; fractional rates stretch it
        self.rate = (None if rate is None else
                     Window(max(int(math.ceil(rate)), 1), max(int(math.ceil(rate)), 1) / float(rate)))
        self.changed: Optional[asyncio.Event] = None
        self.children: dict[str, Any] = {}
        self.cancelling: set[str] = set()
        self.decision: Optional[str] = None
        self.killed: Optional[str] = None
        self.fatal: Optional[BaseException] = None
        self.reconcile_due = False
        self._stale_checked = 0.0
        # connections: a child handed over on the connection still up is in flight, not lost
        self.epoch = 0
        self.handed: dict[str, int] = {}
        self.connected_at = 0.0
        self.down_since: Optional[float] = None
        self.run_id = ""
        self.account: Optional[str] = None
        self.qualified: set[str] = set()
        self.handled: list[str] = []
        self.counts: dict[str, int] = {}
        # built before connecting, so that a dashboard setting it refuses stops the run first
        self._dashboard = Dashboard.from_config(cfg.get("dashboard"), on_kill=self._dashboard_kill,
                                                mode=str(self.mode.name))
        self.dash = None
        self._trading: Optional[asyncio.Task] = None
        self._kill_task: Optional[asyncio.Task] = None

    # ------------------------------------------------------------ main
    async def main(self) -> dict[str, Any]:
        self.changed = asyncio.Event()
        mode = self.mode
        started = time.time()
        try:
            await self.broker.start(self)
            self.connected_at = time.time()
            account = self.account = self._check_account()
            await self.broker.subscribe()
            self.run_id = self._run_id(account)
            await self._start_dashboard()
            say(f"connected to {self.broker.where()} as client {getattr(self.broker, 'client_id', '?')}, "
                f"account {account} ({mode.name}), run {self.run_id}, journal {self.journal.path}")
            await self._guarded()
        finally:
            try:
                await self.broker.stop()
            finally:
                if self.dash is not None:
                    await self.dash.stop()
                summary = self._summary(started)
                self.journal.close()
        return summary

    async def _guarded(self) -> None:
        """Trade, with the kill switch watched beside it: engaged from anywhere, it stops the
        trading wherever that waits (the next tick, a child's release, a request to the broker)."""
        self._trading = asyncio.ensure_future(self._trade())
        watcher = asyncio.ensure_future(self._watch_killswitch())
        try:
            await self._trading
        except asyncio.CancelledError:
            if self._kill_task is None:  # cancelled from outside (Ctrl-C), not by the kill
                raise
        finally:
            watcher.cancel()
        if self._kill_task is not None:
            raise KillSwitchEngaged(await self._kill_task)

    async def _trade(self) -> None:
        mode = self.mode
        await self._check_killswitch()
        await self.reconcile(startup=True)
        for row in self.journal.open_decisions():
            late = time.time() - float(row["horizon"] or 0.0)
            if late > float(mode.grace_seconds):
                await self._abandon(row["decision"], late)
                continue
            say(f"resuming decision {row['decision']} from the journal")
            await self.execute(row["decision"])
        ticks = 0
        if mode.run_once or self._tick_missed():
            await self.tick()
            ticks += 1
        while not mode.run_once and (mode.max_ticks is None or ticks < mode.max_ticks):
            when = self._next_tick()
            say(f"next tick at {dt.datetime.fromtimestamp(when, _zone(mode.tz, 'mode.tz')):%Y-%m-%d %H:%M:%S %Z}")
            await self._sleep_until(when)
            await self.tick()
            ticks += 1

    # ------------------------------------------------------------ dashboard
    async def _start_dashboard(self) -> None:
        """Serve the dashboard (``dashboard.*``); a port in use costs the page, not the run."""
        dash = self._dashboard
        if dash is None:
            return
        try:
            await dash.start()
        except OSError as exc:
            say(f"warning: dashboard not served ({exc}); set dashboard.port, or dashboard.enabled=false")
            return
        self.dash = dash
        if dash.warning:
            say(f"warning: {dash.warning}")
        say(f"dashboard: {dash.url}")
        reason = self.killswitch.reason()
        dash.publish("kill_switch", {"engaged": bool(reason), "reason": reason})
        dash.publish("status", {"connected": True, "message": f"{self.broker.where()} account {self.account}"})

    async def _dashboard_kill(self, reason: str) -> str:
        """The page's button: the one kill every other source shares, so a second press (or a
        press after the switch tripped on its own) answers what that kill did."""
        already = self._kill_task is not None
        if not already and (self._trading is None or self._trading.done()):  # the run is ending
            self.killswitch.engage(f"dashboard: {reason}")
            return "kill switch engaged; this run is stopping: its next start cancels whatever still works"
        message = await asyncio.shield(self._start_kill(f"dashboard: {reason}"))
        return f"kill switch {'already ' if already else ''}engaged: {message}"

    def _show(self, kind: str, payload: dict[str, Any]) -> None:
        if self.dash is not None:
            self.dash.publish(kind, payload)

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
        if self.mode.name == "paper" and not account.startswith("D"):
            raise SafetyError(f"account {account} is a live account (paper accounts start with DU or DF): "
                              f"mode=paper does not trade it; use an IB paper login, or mode=live")
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

    def _run_id(self, account: str) -> str:
        stored = self.journal.meta("run_id")
        wanted = self.mode.run_id
        if stored is not None:
            if wanted is not None and str(wanted) != stored:
                raise ConfigError(f"mode.run_id={wanted} but the journal {self.journal.path} belongs to run "
                                  f"{stored}: use another mode.state_dir for a new run")
            return stored
        run = str(wanted) if wanted is not None else hashlib.sha1(
            f"{account}|{self.state_dir.resolve()}|{time.time()}".encode()).hexdigest()[:6]
        if ":" in run:
            raise ConfigError(f"mode.run_id={run!r} may not contain ':' (it is part of every orderRef)")
        self.journal.set_meta("run_id", run)
        self.journal.set_meta("created", dt.datetime.now(dt.timezone.utc).isoformat())
        return run

    # ------------------------------------------------------------ schedule
    def _scheduled(self, now: float) -> tuple[Optional[float], float]:
        """The last scheduled tick at or before ``now`` (None if none) and the next one after."""
        mode = self.mode
        if mode.every_seconds is not None:
            every = float(mode.every_seconds)
            return math.floor(now / every) * every, (math.floor(now / every) + 1) * every
        zone = _zone(mode.tz, "mode.tz")
        at = _parse_at(mode.at)
        local = dt.datetime.fromtimestamp(now, zone)
        day = local.date() - dt.timedelta(days=7)
        times = []
        for k in range(15):
            d = day + dt.timedelta(days=k)
            if d.weekday() < 5:
                times.append(dt.datetime.combine(d, at, zone).timestamp())
        past = [t for t in times if t <= now]
        future = [t for t in times if t > now]
        return (past[-1] if past else None), future[0]

    def _next_tick(self) -> float:
        return self._scheduled(time.time())[1]

    def _tick_missed(self) -> bool:
        last, _ = self._scheduled(time.time())
        return last is not None and time.time() - last <= float(self.mode.grace_seconds)

    async def _sleep_until(self, when: float) -> None:
        while True:
            left = when - time.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 30.0))
            self._raise_fatal()

    # ------------------------------------------------------------ one tick
    async def tick(self) -> None:
        await self._check_killswitch()
        await self._wait_ready()
        equity = self.broker.equity()
        if equity is not None:
            self._show("equity", {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                  "equity": equity})
            reason = self.killswitch.observe_equity(equity)
            if reason:
                await self._kill(reason)
        data = await self._load()
        bar = data.index[-1].isoformat()
        self._check_age(data)
        config, parts = decision_config(self.cfg, data)
        key = f"{bar}#{config}"
        earlier = self.journal.decisions_at(bar)
        # a decision from before decisions were keyed by config stands for this config too
        row = self.journal.decision(key) or next((r for r in earlier if r["config"] is None), None)
        if row is not None:
            if row["status"] == "planned":
                await self.execute(row["decision"])
            else:
                old = "" if row["config"] else " (journaled before decisions were keyed by their config)"
                say(f"decision {row['decision']} already {row['status']}{old}: nothing to do")
            return
        if earlier:
            due, why = True, (f"decision {earlier[-1]['decision']} on this bar had another config "
                              f"({_changed(earlier[-1], parts)}): deciding again with this one")
            say(why)
        else:
            due, why = self._due(data)
        if not due:
            last = self.journal.last_decision()
            if last is not None and last["config"] and last["config"] != config:
                why += (f"; the config differs from decision {last['decision']}'s ({_changed(last, parts)}): "
                        f"its targets trade at the next decision bar, or now with schedule.rebalance=daily")
            say(f"no decision due at {bar}: {why}")
            return
        await self.plan(data, key, config, parts)
        row = self.journal.decision(key)
        if row is not None and row["status"] == "planned":
            await self.execute(key)

    async def _load(self):
        source = self.stages.data
        loader = getattr(source, "load_async", None)
        if loader is not None:
            data = await loader()
        else:
            data = await asyncio.to_thread(source.load)
        if data.n_bars < 2:
            raise DataError(f"{data.name}: {data.n_bars} bar(s) loaded; the live loop needs history")
        return data

    def _check_age(self, data) -> None:
        """Refuse a data source whose last bar is older than ``mode.max_data_age``: a decision
        on it would trade old targets at old prices (the bundled sample ends in 2022)."""
        import pandas as pd

        limit = _max_age(self.mode.max_data_age)
        if limit is None:
            return
        zone = _zone(self.mode.tz, "mode.tz")
        stamp = data.index[-1].tz_convert(zone)
        now = pd.Timestamp(time.time(), unit="s", tz="UTC").tz_convert(zone)
        if isinstance(limit, int):
            # business days from the bar's day to today: yesterday's close is 1 day old on a
            # Tuesday and on a Monday
            age = len(pd.bdate_range(stamp.date(), now.date())) - 1
            old, how = age > limit, f"{age} business day(s) ago"
            name = f"mode.max_data_age={limit} (business days)"
        else:
            age = now - stamp
            old, how = age > limit, f"{age.total_seconds() / 3600:.1f} hours ago"
            name = f"mode.max_data_age={self.mode.max_data_age}"
        if old:
            raise DataError(f"data {data.name}: its last bar is {stamp:%Y-%m-%d %H:%M %Z}, {how}, older "
                            f"than {name}: mode={self.mode.name} would decide and size orders on old "
                            f"prices; use data=ib for current bars from the gateway (or set "
                            f"mode.max_data_age; null turns the check off)")

    def _due(self, data) -> tuple[bool, str]:
        import pandas as pd

        last = self.journal.last_decision()
        return decision_due(data.index, self.cfg.schedule.rebalance,
                            None if last is None else pd.Timestamp(last["bar"]))

    # ------------------------------------------------------------ planning
    async def plan(self, data, key: str, config: str, parts: dict) -> None:
        from pipeline.live.journal import Child, Parent

        symbols = list(data.symbols)
        await self._qualify(symbols)
        # sized on the gateway's quotes: the data's last close may be days (or years) old
        quoted = await self._ask(lambda: self.broker.quotes(symbols))
        quote = np.array([quoted.get(s, np.nan) for s in symbols])
        positions = await self._ask(self.broker.positions)
        equity = await self._ask(self.broker.net_liquidation)
        reason = self.killswitch.observe_equity(equity)
        if reason:
            await self._kill(reason)
        if not equity > 0:
            raise BrokerError(f"net liquidation value of {self.account} is {equity}: nothing to trade with")
        held = np.array([positions.get(s, 0.0) for s in symbols])
        outside = sorted(s for s, q in positions.items() if q and s not in symbols)
        if outside:
            self.journal.event("outside", {"symbols": outside})
            say(f"positions outside the data's symbols are left alone: {', '.join(outside)}")
        self.journal.snapshot_positions(positions)
        peak = float(self.journal.get("peak_equity", equity))
        first = self.journal.last_decision() is None
        result = await asyncio.to_thread(self._targets, data, equity, held, peak, first, quote)
        if result is None:
            self.journal.save_plan(key, self.run_id, equity, time.time(), time.time(), [], [],
                                   status="skipped", note="within schedule.drift", bar=data.index[-1].isoformat(),
                                   config=config, config_parts=parts)
            say(f"decision {key}: weights within schedule.drift of the targets: no trade")
            return
        weights, target, qty, price, orders, children = result
        unpriced = [s for j, s in enumerate(symbols) if s not in quoted and (weights[j] or held[j])]
        if unpriced:
            problem = self.broker.quote_problem() or "no quote"
            self.journal.event("no quote", {"symbols": unpriced, "problem": problem})
            say(f"warning: no current quote for {', '.join(unpriced)} from {self.broker.where()} ({problem}): "
                f"their orders are not sized and their positions stay as they are (paper and live size on "
                f"the gateway's quotes, not on the data's last close); check the account's market-data "
                f"subscriptions")
        # every target weight, for the final check at current prices
        wanted = {s: float(weights[j]) for j, s in enumerate(symbols) if weights[j] or held[j]}
        lot = self.broker.lot_size
        start = time.time() + 0.05
        bin_seconds = float(self.mode.bin_seconds)
        parents, kids = [], []
        stamp = f"{data.index[-1]:%Y%m%d%H%M}-{config}"
        counter: dict[str, int] = {}
        for j, col in enumerate(orders.symbol):
            sym = symbols[col]
            parents.append(Parent(decision=key, symbol=sym, target=float(target[col]),
                                  position=float(held[col]), quantity=float(qty[col]),
                                  arrival=float(price[col]), weight=float(weights[col])))
        horizon_bin = {}
        for i in range(len(children)):
            p = int(children.parent[i])
            last = int(children.bin[i]) if children.expire is None else max(int(children.expire[i]),
                                                                              int(children.bin[i]))
            horizon_bin[p] = max(horizon_bin.get(p, 0), last)
        order = np.lexsort((np.arange(len(children)), children.bin))
        for i in order:
            p = int(children.parent[i])
            sym = symbols[int(orders.symbol[p])]
            n = counter.get(sym, 0)
            counter[sym] = n + 1
            b = max(int(children.bin[i]), 0)
            limit = float(children.limit[i])
            q = float(children.quantity[i])
            kids.append(Child(
                ref=f"rt:{self.run_id}:{stamp}:{sym}:{n}", decision=key, symbol=sym, child=n,
                quantity=q, limit_price=None if math.isnan(limit) else
                self.broker.round_price(sym, limit, q),
                release_at=start + b * bin_seconds,
                expire_at=start + (horizon_bin[p] + 1) * bin_seconds))
        horizon = max((c.expire_at for c in kids), default=start)
        status = "planned" if kids else "done"
        idle = f"no current quote for {', '.join(unpriced)}" if unpriced else "positions already at target"
        self.journal.save_plan(key, self.run_id, equity, start, horizon, parents, kids, status=status,
                               note="" if kids else idle, bar=data.index[-1].isoformat(),
                               config=config, config_parts=parts, targets=wanted)
        if not kids:
            say(f"decision {key}: {idle} (lot {lot}): no order")
            return
        n_bins = len({c.release_at for c in kids})
        rate = self.mode.pretrade.max_orders_per_second
        busiest = max(sum(1 for c in kids if c.release_at == t) for t in {c.release_at for c in kids})
        if rate and busiest / float(rate) > bin_seconds:
            say(f"warning: {busiest} child orders in one bin need {busiest / float(rate):.1f}s at "
                f"mode.pretrade.max_orders_per_second={rate:g}, longer than a bin ({bin_seconds:g}s): "
                f"some may miss their horizon")
        say(f"decision {key}: {len(parents)} parent orders -> {len(kids)} child orders over {n_bins} "
            f"bin(s) of {bin_seconds:g}s, equity {equity:,.2f}")

    def _targets(self, data, equity: float, held: np.ndarray, peak: float, first: bool, quote: np.ndarray):
        """Targets, risk, shares, parents and children for the last bar (in a worker thread:
        it touches neither the journal nor the broker): the backtest's decision step
        (``pipeline.decision.step``) on the account's book. Shares are sized on ``quote`` (the
        broker's current prices) and the net liquidation ``equity``; a symbol without a quote
        (NaN) keeps its position."""
        from pipeline.core.contracts import ChildOrders, Orders, RiskContext, Session
        from pipeline.core.market import forward_filled
        from pipeline.decision.step import Step, check_children, risk
        from pipeline.decision.targets import first_decision, last_decision, targets

        stages = self.stages
        t = data.n_bars - 1
        warmup = first_decision(stages.strategies)
        if t < warmup:
            raise DataError(f"{data.name}: {data.n_bars} bars loaded, but the strategy needs {warmup + 1} "
                            f"to decide: load more history (data.start earlier, or data.duration for data=ib)")
        at = last_decision(data.index, self.cfg.schedule.rebalance, stages.strategies)
        plan = targets(data, stages.strategies, stages.allocator, stages.portfolio, at)
        weights, _ = risk(plan.weights, stages.constraints,
                          RiskContext(returns=data.returns, at=at, symbols=data.symbols))
        price = quote
        # the book is valued at the quotes too; the last close only stands in for a symbol without
        # one, whose position is left alone
        value = np.where(np.isfinite(quote), quote, forward_filled(data.close)[t])
        step = Step(stages.constraints, self.cfg.schedule.drift, self.broker.lot_size)
        target_w = step.target(t, first, weights[-1], held, value, equity, max(peak, equity))
        if target_w is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            per_unit = np.where(price > 0, 1.0 / np.where(price > 0, price, 1.0), 0.0)
        qty, sym = step.orders(target_w, held, equity, per_unit, value, equity)
        target = held + qty
        orders = Orders(symbol=sym, quantity=qty[sym], arrival=price[sym])
        if sym.size == 0:
            return target_w, target, qty, price, orders, ChildOrders.whole_orders(orders)
        session = Session(bar=t + 1, reference=value, close=value,
                          volume=None if data.volume is None else data.volume[t], symbols=sym,
                          lot=step.lot, source=lambda bar, s: self._bins(data, s, value[s]))
        children = stages.algo.slice(orders, session)
        check_children(children, orders)
        return target_w, target, qty, price, orders, children

    def _bins(self, data, symbols: np.ndarray, arrival: np.ndarray):
        """The coming session's bins for ``symbols`` at their ``arrival`` (current) prices:
        forecasts only (see the module's docstring)."""
        from pipeline.core.contracts import Bins
        from pipeline.core.intraday import trailing_volatility, trailing_volume, volume_profile

        n = int(self.mode.bins)
        t = data.n_bars - 1
        sigma = trailing_volatility(data.close[:, symbols], 20)[t]
        if data.volume is not None:
            adv = np.nan_to_num(trailing_volume(data.volume[:, symbols], 20)[t])
        else:
            adv = 5.0e8 / arrival
        profile = volume_profile(n)
        forecast = profile[:, None] * adv[None, :]
        price = np.repeat(arrival[None, :], n, axis=0)
        return Bins(elapsed=np.arange(1, n + 1) / n, price=price, low=price.copy(), high=price.copy(),
                    volume=forecast.copy(), forecast=forecast, sigma=sigma,
                    half_spread=np.full(symbols.size, 2e-4))

    async def _qualify(self, symbols: list[str]) -> None:
        todo = [s for s in symbols if s not in self.qualified]
        if todo:
            await self._ask(lambda: self.broker.qualify(todo))
            self.qualified.update(todo)

    # ------------------------------------------------------------ execution
    async def execute(self, key: str) -> None:
        self.decision = key
        self.cancelling = set()
        self._load_children(key)
        parents = {p.symbol: p for p in self.journal.parents(key)}
        await self._qualify(sorted(parents))
        await self.reconcile()
        self._reschedule()
        swept: set[str] = set()
        deadline_extra = float(self.mode.settle_seconds)
        while True:
            self.changed.clear()  # anything reported from here on wakes the wait below
            self._raise_fatal()
            if not self.broker.ready.is_set():  # paused: nothing is sent, nothing expires
                await self._wait_ready()
                self._load_children(key)
                self._reschedule()
            if self.reconcile_due and self.broker.ready.is_set():
                self.reconcile_due = False
                await self.reconcile()
                self._reschedule()
            self._load_children(key)
            pending = [c for c in self.children.values() if not c.final]
            if self.killed:
                await self._kill(self.killed)
            if not pending:
                if self.broker.unfilled == "sweep" and await self._sweep(parents, swept):
                    continue
                break
            now = time.time()
            await self._expire(pending, now)
            due = sorted((c for c in pending if c.status == "planned" and c.release_at <= now
                          and c.expire_at > now),
                         key=lambda c: (c.release_at, c.ref))
            for child in due:
                await self._send(child)
                if self.killed or self.fatal:
                    break
            await self._check_stale_intents(pending)
            horizon = max(c.expire_at for c in self.children.values())
            if now > horizon + deadline_extra and self.broker.ready.is_set():
                await self.reconcile()
                self._load_children(key)
                still = [c.ref for c in self.children.values() if not c.final]
                if still:
                    raise BrokerError(f"{len(still)} order(s) still open at the broker "
                                      f"{deadline_extra:g}s after their horizon ({', '.join(still[:3])}"
                                      f"{'...' if len(still) > 3 else ''}); the journal keeps them: "
                                      f"restart to resume, or cancel them at the gateway")
                continue
            upcoming = [c.release_at for c in pending if c.status == "planned" and c.release_at > now]
            upcoming += [c.expire_at for c in pending if c.status in ("intent", "submitted")
                         and c.ref not in self.cancelling and c.expire_at > now]
            wake = min(upcoming, default=now + 0.5)
            await self._wait_change(max(min(wake - now, 0.5), 0.0))
        await self._finish(key, parents)

    async def _abandon(self, key: str, late: float) -> None:
        """A decision whose horizon is long past (the runner was down): its unsent children are
        skipped and its working orders cancelled; the next decision starts from the positions."""
        reason = (f"abandoned: its horizon passed {late / 3600:.1f} hours ago "
                  f"(more than mode.grace_seconds={self.mode.grace_seconds:g})")
        for child in self.journal.children(key):
            if child.status == "planned":
                self.journal.mark(child.ref, "skipped", reason=reason)
            elif child.status in ("intent", "submitted"):
                self.broker.cancel(child.ref)
        await self.reconcile()
        self.journal.finish_decision(key, "done", reason)
        say(f"decision {key} {reason}")

    def _load_children(self, key: str) -> None:
        self.children = {c.ref: c for c in self.journal.children(key)}

    def _reschedule(self) -> None:
        """After a restart or a pause, the rest of the schedule starts again from now.

        The children whose release time passed while the runner was down (or the broker was
        away) would otherwise all go at once and find their horizon gone: the whole remaining
        schedule moves by how late its first child is, keeping its spacing and each child's
        window; working orders get the same extension before their horizon cancel.
        """
        now = time.time()
        waiting = [c for c in self.children.values() if c.status == "planned"]
        late = [c.release_at for c in waiting if c.release_at < now]
        if not late:
            return
        shift = now + 0.05 - min(late)
        if shift < max(0.5 * float(self.mode.bin_seconds), 0.2):
            return
        moved = [(c.ref, c.release_at + (shift if c.status == "planned" else 0.0), c.expire_at + shift)
                 for c in self.children.values() if not c.final]
        self.journal.reschedule(moved)
        self.journal.event("reschedule", {"shift": shift, "children": len(moved)})
        say(f"resuming the schedule {shift:.1f}s late: {len(waiting)} child order(s) still to send")
        self._load_children(self.decision)

    async def _wait_change(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _wait_ready(self) -> None:
        """Pause while the broker is disconnected (or IB lost its connection), for at most
        ``broker.max_outage`` seconds."""
        if self.broker.ready.is_set():
            return
        since = self.down_since = self.down_since or time.time()
        limit = self.broker.max_outage
        say("paused: waiting for the broker connection")
        while not self.broker.ready.is_set():
            self._raise_fatal()
            if limit is not None and time.time() - since > float(limit):
                raise BrokerError(f"the gateway at {self.broker.where()} has not been usable for "
                                  f"{time.time() - since:.0f}s (broker.max_outage={float(limit):g}): "
                                  f"stopped; every order sent is in the journal {self.journal.path}, "
                                  f"restart to reconcile and resume")
            try:
                await asyncio.wait_for(self.broker.ready.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        self.down_since = None
        say("resumed: broker connected")

    async def _ask(self, request):
        """``await request()`` at the broker; while it is not connected (or stopped answering,
        which it treats as a disconnect) wait for the connection and ask again."""
        while True:
            await self._wait_ready()
            try:
                return await request()
            except NotConnected:
                continue

    def _raise_fatal(self) -> None:
        if self.fatal is not None:
            raise self.fatal

    async def _send(self, child) -> None:
        from pipeline.live import pretrade

        child = self.journal.child(child.ref)
        if child is None or child.status != "planned":
            return
        reason = self.killswitch.reason()
        if reason or self.killed:
            self.killed = self.killed or reason
            return
        await self._wait_ready()
        equity = self.broker.equity()
        if equity is not None:
            reason = self.killswitch.observe_equity(equity)
            if reason:
                self.killed = reason
                return
        parent = next((p for p in self.journal.parents(child.decision) if p.symbol == child.symbol), None)
        arrival = parent.arrival if parent is not None else float("nan")
        quote = None
        if self.mode.pretrade.use_quotes:
            quote = (await self.broker.quotes([child.symbol])).get(child.symbol)
        working = sum(c.quantity - c.filled for c in self.children.values()
                      if c.symbol == child.symbol and c.status in ("intent", "submitted"))
        exposure = self.broker.held().get(child.symbol, 0.0) + working + child.quantity
        reason = pretrade.check(self.limits, child.symbol, child.quantity, child.limit_price,
                                arrival, quote, exposure)
        if reason:
            self.journal.mark(child.ref, "blocked", reason=reason)
            self._count("blocked")
            say(f"blocked {child.ref}: {reason}")
            return
        if self.rate is not None:
            await self.rate.acquire()
            await self._wait_ready()
            if self.killed or self.killswitch.reason():
                return
        if time.time() >= child.expire_at:
            self.journal.mark(child.ref, "cancelled", reason="horizon reached before release "
                                                             "(order rate limit or a pause)")
            return
        if self.killed:  # engaged while this child waited for its quote: the kill cancels, never races
            return
        try:
            order_id = self.broker.next_order_id()
        except NotConnected:
            return
        self.journal.intent(child.ref, order_id, time.time())
        _failpoint("after_intent")
        try:
            self.broker.place(_live_order(child, order_id))
        except NotConnected as exc:
            self.journal.not_sent(child.ref, order_id, reason=f"not sent: {exc}")
            return
        self.handed[child.ref] = self.epoch
        _failpoint("after_place")
        self._count("sent")

    async def _expire(self, pending, now: float) -> None:
        for child in pending:
            if child.status in ("intent", "submitted") and child.expire_at <= now \
                    and child.ref not in self.cancelling:
                if not self.broker.ready.is_set():
                    return
                self.cancelling.add(child.ref)
                self.journal.event("cancel", "horizon reached", ref=child.ref)
                self.broker.cancel(child.ref)
            elif child.status == "planned" and child.expire_at <= now:
                self.journal.mark(child.ref, "cancelled", reason="horizon reached before release")
                child.status = "cancelled"

    async def _check_stale_intents(self, pending) -> None:
        now = time.time()
        if now - self._stale_checked < 0.5:
            return
        # a reconcile asks the gateway: one that stopped answering is found out (a disconnect)
        stale = [c for c in pending if c.status == "intent"
                 and now - max(self._sent_at(c.ref), self.connected_at) > float(self.mode.ack_timeout)]
        if stale and self.broker.ready.is_set():
            self._stale_checked = now
            await self.reconcile()

    def _sent_at(self, ref: str) -> float:
        row = self.journal.db.execute("SELECT sent FROM orders WHERE ref = ?", (ref,)).fetchone()
        return float(row[0] or 0.0) if row else 0.0

    async def _sweep(self, parents: dict, swept: set[str]) -> bool:
        """``broker.unfilled=sweep``: one market order per parent for what its horizon left, by
        the gateway's filled quantities (the journal may not have every fill yet)."""
        from pipeline.live.journal import Child

        known = self._by_child(await self._ask(self.broker.known_orders))
        new = []
        now = time.time()
        for sym, p in parents.items():
            if sym in swept:
                continue
            kids = [c for c in self.children.values() if c.symbol == sym]
            # both are what was filled at least: an order's status or its executions may be late
            left = p.quantity - sum(math.copysign(max(known[c.ref].filled if c.ref in known else 0.0,
                                                      abs(c.filled)), c.quantity) for c in kids)
            swept.add(sym)
            if abs(left) < 1e-9 or (self.broker.lot_size and abs(left) < self.broker.lot_size):
                continue
            n = max(c.child for c in kids) + 1 if kids else 0
            new.append(Child(ref=f"{kids[0].ref.rsplit(':', 1)[0]}:{n}" if kids else
                             f"rt:{self.run_id}:sweep:{sym}:{n}", decision=p.decision, symbol=sym,
                             child=n, quantity=left, limit_price=None, release_at=now,
                             expire_at=now + float(self.mode.bin_seconds), reason="sweep"))
        if new:
            self.journal.add_children(new)
            say(f"sweeping {len(new)} parent(s) left unfilled at the horizon")
        return bool(new)

    async def _finish(self, key: str, parents: dict) -> None:
        self._record_executions(await self._ask(self.broker.executions))
        positions = await self._ask(self.broker.positions)
        self.journal.snapshot_positions(positions)
        kids = self.journal.children(key)
        off = {s: (p.target, positions.get(s, 0.0)) for s, p in parents.items()
               if abs(positions.get(s, 0.0) - p.target) > 1e-6}
        counts = {}
        for c in kids:
            counts[c.status] = counts.get(c.status, 0) + 1
        text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        note = "positions match targets" if not off else \
            "off target: " + ", ".join(f"{s} {h:+g} (target {t:+g})" for s, (t, h) in sorted(off.items()))
        row = self.journal.decision(key)
        if row["targets"]:  # decisions journaled before target weights were kept have no check
            wanted = json.loads(row["targets"])
            quoted = await self.broker.quotes(sorted(wanted))
            note += "; " + exposure_check(wanted, positions, quoted, await self.broker.net_liquidation(),
                                          self.broker.quote_problem())
        self.journal.finish_decision(key, "done", note)
        self.handled.append(key)
        say(f"decision {key} done: {text}; {note}")

    # ------------------------------------------------------------ reconciliation
    def _ref_of(self, ref: str, order_id: Optional[int], perm_id: Optional[int],
                client_id: Optional[int] = None) -> str:
        """The child an order or execution belongs to: its orderRef, else (a gateway that drops
        it) its perm id or the order id the journal sent it with, under this client id."""
        if ref:
            return ref
        mine = client_id is None or str(client_id) == str(getattr(self.broker, "client_id", ""))
        return self.journal.ref_for(order_id=order_id if mine else None, perm_id=perm_id) or ""

    def _by_child(self, known: list[OrderUpdate]) -> dict[str, OrderUpdate]:
        """The broker's orders by the child they are; of two for one child (one cancelled or
        done, one working) the working one."""
        out: dict[str, OrderUpdate] = {}
        for update in known:
            ref = self._ref_of(update.ref, update.order_id, update.perm_id, update.client_id)
            if not ref:
                continue
            current = out.get(ref)
            if current is None or (current.status in DONE and update.status not in DONE):
                out[ref] = dataclasses.replace(update, ref=ref)
        return out

    def _record_executions(self, executions: list[Execution]) -> int:
        new = 0
        for ex in executions:
            ref = self._ref_of(ex.ref, ex.order_id, ex.perm_id)
            new += self.journal.add_fill(ex.exec_id, ref, ex.symbol, ex.quantity, ex.price, ex.time,
                                         ex.commission, ex.currency, ex.order_id, ex.perm_id)
        return new

    async def reconcile(self, startup: bool = False) -> None:
        """Journal vs broker: every execution the gateway holds for this client and account,
        then every unfinished child (see the module's docstring)."""
        new = self._record_executions(await self._ask(self.broker.executions))
        known = self._by_child(await self._ask(self.broker.known_orders))
        adopted = resend = 0
        now = time.time()
        ack = float(self.mode.ack_timeout)
        for child in self.journal.children():
            if child.final:
                continue
            update = known.get(child.ref)
            if update is not None:
                adopted += self._apply(child, update) and child.status == "intent"
                continue
            # the gateway has had ack_timeout since the send and since it was last reachable
            settled = now - max(self._sent_at(child.ref), self.connected_at) > ack
            if child.status == "intent":
                if child.filled:
                    status = "filled" if abs(child.filled - child.quantity) < 1e-9 else "submitted"
                    self.journal.mark(child.ref, status, reason="known by its executions")
                    adopted += 1
                elif settled and self.handed.get(child.ref) != self.epoch:
                    sends = self.journal.sends(child.ref)
                    if sends >= 2:
                        raise BrokerError(
                            f"{child.ref} was sent {sends} times and the gateway at {self.broker.where()} "
                            f"knows none of them (no order, no execution by orderRef, order id or perm id): "
                            f"it is not sent again; look it up at the gateway (TWS: Orders, Trades), then "
                            f"restart; the journal {self.journal.path} keeps it")
                    self.journal.mark(child.ref, "planned",
                                      reason="the broker never received it: it will be sent again")
                    # it goes now, with the time its bin had
                    span = max(child.expire_at - child.release_at, float(self.mode.bin_seconds))
                    self.journal.reschedule([(child.ref, now, now + span)])
                    self.cancelling.discard(child.ref)
                    resend += 1
            elif child.status == "submitted" and settled:
                if abs(child.filled - child.quantity) < 1e-9:
                    self.journal.mark(child.ref, "filled", reason="filled while away")
                else:
                    self.journal.mark(child.ref, "cancelled", reason="no longer known at the broker")
        if startup or new or adopted or resend:
            self.journal.event("reconcile", {"new_fills": new, "adopted": adopted, "resend": resend,
                                             "known": len(known)})
        if new or adopted or resend:
            say(f"reconciled with the broker: {new} new fill(s), {adopted} order(s) adopted, "
                f"{resend} to send again")
        if self.decision is not None:
            self._load_children(self.decision)

    def _apply(self, child, update: OrderUpdate) -> bool:
        """Move a child to the status an update reports (never backwards from a final one; never
        final while the gateway has filled more than its journaled fills); True when something
        changed."""
        status = _status(update, child)
        if status is None:
            return False
        if child.final and status != child.status:
            return False
        if _unjournaled(status, update, child):
            status = "submitted"  # until its executions are in (reconcile asks for them)
        elif status == "cancelled" and abs(child.filled - child.quantity) < 1e-9:
            status = "filled"  # its executions say so (the status came from a stale view)
        if status == child.status and update.order_id == child.order_id and update.perm_id in (None, 0, child.perm_id):
            return False
        reason = None
        if status in ("rejected", "cancelled") and update.message:
            reason = f"error {update.error_code}: {update.message}" if update.error_code else update.message
        self.journal.mark(child.ref, status, reason=reason, order_id=update.order_id,
                          perm_id=update.perm_id or None)
        if status == "rejected" and child.status != "rejected":
            self._count("rejected")
            say(f"rejected {child.ref}: error {update.error_code}: {update.message}")
            # a gateway that refuses every order (read-only) has stopped the run with its own
            # message: its refusals are not a run of rejects for the kill switch
            if self.fatal is None:
                reason = self.killswitch.observe_reject(child.ref, update.error_code, update.message)
                if reason:
                    self._start_kill(reason)
        return True

    # ------------------------------------------------------------ listener (broker callbacks)
    def on_order(self, update: OrderUpdate) -> None:
        self._show("order", {"order_id": update.ref, "status": update.status.lower(),
                             "filled": update.filled, "remaining": update.remaining,
                             "avg_price": update.avg_price, "message": update.message})
        ref = self._ref_of(update.ref, update.order_id, update.perm_id, update.client_id)
        child = self.journal.child(ref) if ref else None
        if child is None:
            if update.ref:
                self.journal.event("foreign order", dataclasses.asdict(update))
            return
        self._apply(child, update)
        if _unjournaled(_status(update, child), update, child):
            self.reconcile_due = True  # the status came before its executions: ask for them
        self.changed.set()

    def on_execution(self, ex: Execution) -> None:
        self._record_executions([ex])
        self._show("fill", {"order_id": ex.ref, "exec_id": ex.exec_id, "symbol": ex.symbol,
                            "side": "buy" if ex.quantity > 0 else "sell", "quantity": abs(ex.quantity),
                            "price": ex.price, "time": dt.datetime.fromtimestamp(ex.time, dt.timezone.utc)
                            .isoformat(timespec="seconds")})
        self._show("positions", {"positions": [{"symbol": k, "quantity": v}
                                               for k, v in sorted(self.broker.held().items())]})
        self.changed.set()

    def on_commission(self, exec_id: str, commission: float, currency: str) -> None:
        self.journal.set_commission(exec_id, commission, currency)

    def on_connection(self, state: str, detail: str = "") -> None:
        self.journal.event("connection", {"state": state, "detail": detail})
        self._show("status", {"connected": state not in ("disconnected", "ib_lost", "failed"),
                              "message": f"{state}: {detail}"})
        if state in ("disconnected", "ib_lost"):
            say(f"{state}: {detail} (trading paused)")
            self.down_since = self.down_since or time.time()
            if state == "disconnected":
                self.epoch += 1  # what the lost socket carried may not have arrived
        elif state in ("farm_broken", "farm_ok"):
            say(f"{state}: {detail}")  # the broker names the farm and what its loss pauses
        elif state in ("reconnected", "restored", "restored_data_lost"):
            say(f"{state}: {detail}")
            self.down_since = None
            self.reconcile_due = True
            self.connected_at = time.time()
        elif state == "failed":
            self.fatal = BrokerError(detail)
        if self.changed is not None:
            self.changed.set()

    # ------------------------------------------------------------ kill switch
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
        filled = sum(1 for r in refs if r in known and known[r].status == "Filled")
        open_ = [r for r in refs if r in known and known[r].status not in final]
        text = f"{len(refs) - filled - len(open_)} open order(s) cancelled"
        if filled:
            text += f" ({filled} filled before the cancel arrived)"
        if open_:
            text += (f"; {len(open_)} not confirmed within mode.ack_timeout={self.mode.ack_timeout}s "
                     f"({', '.join(open_[:3])}): check them at the gateway")
        return text

    # ------------------------------------------------------------ output
    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _summary(self, started: float) -> dict[str, Any]:
        summary: dict[str, Any] = {"mode": self.mode.name, "run_id": self.run_id,
                                   "account": self.account, "journal": str(self.journal.path),
                                   "decisions": self.handled, "elapsed": round(time.time() - started, 3),
                                   **{f"orders_{k}": v for k, v in sorted(self.counts.items())}}
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            import pandas as pd

            rows = [dict(r) for r in self.journal.db.execute("SELECT * FROM orders ORDER BY created, ref")]
            pd.DataFrame(rows).to_csv(self.out / "live_orders.csv", index=False)
            fills = [dict(r) for r in self.journal.db.execute("SELECT * FROM fills ORDER BY time, exec_id")]
            pd.DataFrame(fills).to_csv(self.out / "live_fills.csv", index=False)
            (self.out / "live.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        except Exception as exc:  # the journal is the record; a summary file is a convenience
            log.warning("could not write the live summary: %s", exc)
        return summary


def decision_due(index, rule: Any, last) -> tuple[bool, str]:
    """Is a decision due on the last bar of ``index`` under ``schedule.rebalance=rule``, given
    the last decision the journal handled (a timestamp, or None)? And why.

    Calendar rules (weekly, monthly, ...) look one business day ahead: the last bar ends its
    period when the next business day starts a new one. A decision bar missed while the
    runner was down is caught up on the next tick. The first decision is always due.
    """
    import pandas as pd

    from pipeline.core.schedule import decision_bars

    rule = str(rule).strip().lower()
    if last is None:
        return True, "first decision of this journal"
    if index[-1] <= last:
        return False, f"already decided at {last}"
    if rule == "once":
        return False, "schedule.rebalance=once and a decision was taken already"
    if rule.isdigit():
        since = int((index > last).sum())
        return since >= int(rule), f"{since} bar(s) since the last decision, schedule every {rule}"
    if rule == "daily":
        return True, "daily"
    ahead = index.append(pd.DatetimeIndex([index[-1] + pd.offsets.BDay(1)]))
    bars = decision_bars(ahead, rule)
    bars = bars[bars <= len(index) - 1]
    if bars.size == 0:
        return False, f"no {rule} decision bar in the data yet"
    latest = index[int(bars[-1])]
    return latest > last, f"last {rule} decision bar is {latest}"


# a weight (or the gross) this far from its target, at current prices, is reported as off
EXPOSURE_TOLERANCE = 0.01


def exposure_check(wanted: dict[str, float], positions: dict[str, float], quotes: dict[str, float],
                   equity: float, problem: str = "") -> str:
    """The book at current prices against the target weights ``wanted``: the gross exposure
    and each symbol's weight of net liquidation, and what differs by more than
    ``EXPOSURE_TOLERANCE``. Shares can match their targets while the exposure does not (shares
    sized on old prices)."""
    priced = [s for s in sorted(wanted) if s in quotes]
    weight = {s: positions.get(s, 0.0) * quotes[s] / equity for s in priced}
    gross = sum(abs(w) for w in weight.values())
    target = sum(abs(wanted[s]) for s in priced)
    off = [s for s in priced if abs(weight[s] - wanted[s]) > EXPOSURE_TOLERANCE]
    if off or abs(gross - target) > EXPOSURE_TOLERANCE:
        text = (f"exposure off target at current prices: gross {gross:.1%} of net liquidation (target "
                f"{target:.1%})" + "".join(f", {s} {weight[s]:.1%} (target {wanted[s]:.1%})" for s in off))
    else:
        text = f"gross exposure {gross:.1%} of net liquidation at current prices (target {target:.1%})"
    unpriced = [s for s in sorted(wanted) if s not in quotes]
    if unpriced:
        text += f"; not checked at current prices (no quote: {problem or 'none'}): {', '.join(unpriced)}"
    return text


# the config that determines a decision's targets (besides the data's source and symbols)
TARGET_PARTS = ("strategy", "allocation", "portfolio", "sleeve_caps", "risk")


def decision_config(cfg: Any, data) -> tuple[str, dict]:
    """The resolved config parts that determine the targets, and their hash: a decision is
    keyed by its bar and this hash. Connection and cache settings are left out (they change
    no target); so are the data's dates, which the bar already names."""
    from omegaconf import OmegaConf

    parts: dict[str, Any] = {"data": {"source": data.name, "symbols": list(data.symbols)}}
    for name in TARGET_PARTS:
        node = cfg.get(name)
        parts[name] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8], json.loads(text)


def _changed(row, parts: dict) -> str:
    """The config keys in which ``parts`` differ from a journaled decision's, for messages."""
    def flat(value: Any, path: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(flat(v, f"{path}.{k}" if path else str(k)))
            return out
        return {path: value}

    before, now = flat(json.loads(row["config_parts"] or "{}")), flat(parts)
    keys = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"changed: {shown}" if keys else "changed"


_HITS: dict[str, int] = {}


def _failpoint(name: str) -> None:
    """Crash here, for crash-safety tests: ``ROBO_TRADER_FAILPOINT=after_intent:3`` kills the
    process (SIGKILL, no clean-up) the third time it passes ``after_intent``."""
    import os

    spec = os.environ.get("ROBO_TRADER_FAILPOINT")
    if not spec:
        return
    want, _, count = spec.partition(":")
    if want != name:
        return
    _HITS[name] = _HITS.get(name, 0) + 1
    if _HITS[name] >= int(count or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _status(update: OrderUpdate, child) -> Optional[str]:
    s = update.status
    if s in ("PendingSubmit", "ApiPending", ""):
        return None
    if s in ("PreSubmitted", "Submitted", "PendingCancel"):
        return "submitted"
    if s == "Filled":
        return "filled"
    if s in ("Cancelled", "ApiCancelled", "Inactive"):
        # an order with journaled executions was not refused, whatever the last error says
        if update.error_code in REJECT_CODES and update.filled == 0 and not child.filled:
            return "rejected"
        return "cancelled"
    return None


def _unjournaled(status: Optional[str], update: OrderUpdate, child) -> bool:
    """A final status whose fills are not all journaled: filled without executions for the whole
    quantity, or cancelled with more filled at the gateway than journaled."""
    if status == "filled":
        return abs(child.quantity) - abs(child.filled) > 1e-9
    return status == "cancelled" and update.filled - abs(child.filled) > 1e-9


def _live_order(child, order_id: Optional[int] = None) -> LiveOrder:
    return LiveOrder(ref=child.ref, symbol=child.symbol, quantity=child.quantity,
                     limit=child.limit_price, order_id=order_id)
