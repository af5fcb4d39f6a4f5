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
4b. Exits (``cfg.exits``): working exits of the symbols the decision trades are resized or
   cancelled before it trades, and resized or placed for the new positions after it, as
   native orders the broker holds (``pipeline.live.exits``).
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

Where each part lives: the broker contract and order states in ``pipeline.core.live_broker``;
the clock and the tick in ``pipeline.live.schedule``; steps 2-4 in ``pipeline.live.planning``;
5-6 in ``pipeline.live.execution``; crash safety in ``pipeline.live.reconcile``; the account
checks and the kill switch in ``pipeline.live.safety``; the journal in ``pipeline.live.journal``.
This module holds ``run_live`` and the ``LiveRunner`` they make up, with its main loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

from pipeline.core.errors import ConfigError, UserError
from pipeline.core.live_broker import Listener, LiveBroker
from pipeline.core.rate import Window
from pipeline.dashboard.server import Dashboard
from pipeline.live.execution import Executor
from pipeline.live.exits import ExitDesk
from pipeline.live.journal import Journal
from pipeline.live.killswitch import FILE, KillSwitch
from pipeline.live.messages import log, say
from pipeline.live.planning import Planner
from pipeline.live.pretrade import Limits
from pipeline.live.reconcile import Reconciler
from pipeline.live.safety import KillSwitchEngaged, Safety, check_live
from pipeline.live.schedule import Schedule, check_mode, zone
from pipeline.results import recorder


def run_live(cfg: Any, out: Path, build: Callable[[Any], Any]) -> dict[str, Any]:
    """``mode=paper`` / ``mode=live``: check, connect, trade on schedule; returns a summary.
    ``build(cfg)`` makes the stages (the app's builder: live trading knows no registry)."""
    try:
        mode = cfg.mode
        check_mode(mode)
        stages = build(cfg)
        broker = stages.broker
        if not isinstance(broker, LiveBroker):
            raise ConfigError(f"mode={mode.name} trades through a broker gateway: add broker=ib "
                              f"(broker={type(broker).__name__} only backtests)")
        if mode.name == "live":
            check_live(mode, broker)
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


class LiveRunner(Safety, Schedule, Planner, Executor, Reconciler, ExitDesk, Listener):
    """One paper or live run: the state the parts share, the main loop and the output. The parts
    are mixed in, one module each: ``Safety`` (account checks, kill switch), ``Schedule`` (clock,
    tick), ``Planner``, ``Executor``, ``Reconciler`` (with the ``Listener`` callbacks),
    ``ExitDesk`` (exit orders the broker holds)."""

    def __init__(self, cfg: Any, stages: Any, out: Path) -> None:
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
        self.exit_rules = self._exit_rules()
        self._exit_data: dict[str, Any] = {}  # decision -> the data it was planned on (exit levels)
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
        await self._send_exits()  # exits a crash left planned go before anything else
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
            say(f"next tick at {dt.datetime.fromtimestamp(when, zone(mode.tz, 'mode.tz')):%Y-%m-%d %H:%M:%S %Z}")
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


    def _show(self, kind: str, payload: dict[str, Any]) -> None:
        if self.dash is not None:
            self.dash.publish(kind, payload)


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
