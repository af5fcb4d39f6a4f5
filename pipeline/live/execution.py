"""Execution: releasing a decision's children at their bins' times through the pre-trade checks
and the order-rate limit, cancelling what works at each parent's horizon (and sweeping the rest
with ``broker.unfilled=sweep``), pausing while the broker is away, and the final check of the
book against the targets (``exposure_check``)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Callable, ClassVar, Optional

from pipeline.core.live_broker import BrokerError, LiveOrder, NotConnected
from pipeline.live import pretrade
from pipeline.live.journal import Child
from pipeline.live.messages import say


class Executor:
    """Sends and expires ``LiveRunner``'s children (state: ``children``, ``cancelling``, ``handed``,
    ``epoch``, ``connected_at``, ``down_since``)."""

    # called with "after_intent" (the intent is committed, nothing sent) and "after_place" (handed
    # to the broker) as each child passes them: the seam crash-safety tests kill the process at
    step: ClassVar[Optional[Callable[[str], None]]] = None

    async def execute(self, key: str) -> None:
        self.decision = key
        self.cancelling = set()
        self._load_children(key)
        parents = {p.symbol: p for p in self.journal.parents(key)}
        await self._qualify(sorted(parents))
        await self.reconcile()
        self._reschedule()
        await self._exits_before(parents)
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
        """Pause while the broker is disconnected (or the gateway lost its own), for at most
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
        # exits ride on an entry that opens a position in one market order, as a bracket
        bracket = self._bracket_for(child, quote if quote is not None else arrival)
        self.journal.intent(child.ref, order_id, time.time())
        self._passed("after_intent")
        try:
            self.broker.place(live_order(child, order_id, transmit=not bracket))
        except NotConnected as exc:
            self.journal.not_sent(child.ref, order_id, reason=f"not sent: {exc}")
            return
        self.handed[child.ref] = self.epoch
        self._passed("after_place")
        self._count("sent")
        await self._send_exits(bracket, parent_id=order_id)

    def _passed(self, step: str) -> None:
        if self.step is not None:
            self.step(step)

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
        await self._exits_after(key, parents, positions)
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




def live_order(child, order_id: Optional[int] = None, transmit: bool = True) -> LiveOrder:
    return LiveOrder(ref=child.ref, symbol=child.symbol, quantity=child.quantity,
                     limit=child.limit_price, order_id=order_id, transmit=transmit)
