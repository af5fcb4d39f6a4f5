"""Reconciliation: the journal against what the broker holds (executions, open and completed
orders), after a restart, a reconnect, or a status that came before its fills; and the broker's
callbacks, which move each child along the same way (see ``pipeline.live.runner``'s docstring,
Crash safety)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Optional

from pipeline.core.live_broker import (CANCELLED, DONE, FILLED, REJECTED, WORKING, BrokerError,
                                       Execution, OrderUpdate)
from pipeline.live.exits import EXIT
from pipeline.live.messages import say


class Reconciler:
    """Journal vs broker for ``LiveRunner``, and its ``Listener`` callbacks."""

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
        self._one_cancels_other()
        if self.decision is not None:
            self._load_children(self.decision)

    def _apply(self, child, update: OrderUpdate) -> bool:
        """Move a child to the status an update reports (never backwards from a final one; never
        final while the gateway has filled more than its journaled fills); True when something
        changed."""
        status = journal_status(update, child)
        if status is None:
            return False
        if child.final and status != child.status:
            return False
        if unjournaled(status, update, child):
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
        self._show("order", {"order_id": update.ref, "status": (update.broker_status or update.status).lower(),
                             "filled": update.filled, "remaining": update.remaining,
                             "avg_price": update.avg_price, "message": update.message})
        ref = self._ref_of(update.ref, update.order_id, update.perm_id, update.client_id)
        child = self.journal.child(ref) if ref else None
        if child is None:
            if update.ref:
                self.journal.event("foreign order", dataclasses.asdict(update))
            return
        self._apply(child, update)
        if unjournaled(journal_status(update, child), update, child):
            self.reconcile_due = True  # the status came before its executions: ask for them
        self.changed.set()

    def on_execution(self, ex: Execution) -> None:
        self._record_executions([ex])
        child = self.journal.child(self._ref_of(ex.ref, ex.order_id, ex.perm_id))
        if child is not None and child.kind == EXIT:
            self._one_cancels_other()
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


def journal_status(update: OrderUpdate, child) -> Optional[str]:
    """The journal's status for a child the broker reports in ``update`` (None: no change)."""
    s = update.status
    if s == WORKING:
        return "submitted"
    if s == FILLED:
        return "filled"
    if s == REJECTED:
        # an order with journaled executions was not refused, whatever the broker says
        return "cancelled" if child.filled else "rejected"
    if s == CANCELLED:
        return "cancelled"
    return None


def unjournaled(status: Optional[str], update: OrderUpdate, child) -> bool:
    """A final status whose fills are not all journaled: filled without executions for the whole
    quantity, or cancelled with more filled at the gateway than journaled."""
    if status == "filled":
        return abs(child.quantity) - abs(child.filled) > 1e-9
    return status == "cancelled" and update.filled - abs(child.filled) > 1e-9
