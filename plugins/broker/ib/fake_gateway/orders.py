"""The order lifecycle at the fake gateway: placeOrder answered with PreSubmitted, Submitted and
partial fills (limit orders rest until marketable), cancels, and the open-order, completed-order
and execution requests. Mixed into ``FakeGateway``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Optional

from plugins.broker.ib.fake_gateway import protocol
from plugins.broker.ib.fake_gateway.protocol import READ_ONLY, parse_ib_time
from plugins.broker.ib.fake_gateway.state import GwExecution, GwOrder, fills_of

if TYPE_CHECKING:
    from plugins.broker.ib.fake_gateway.server import Connection


class OrderDesk:
    """Orders and executions of ``FakeGateway`` (state: ``orders``, ``executions``, ``books``,
    ``cash``, ``prices``, ``connections``, ``faults``)."""

    def _perm(self) -> int:
        self.next_perm_id += 1
        return self.next_perm_id

    def _place_order(self, conn: Connection, f: list[str]) -> None:
        order_id = int(f[1])
        symbol, con_id = f[3], f[2]
        action, qty, otype = f[16], float(f[17] or 0), f[18]
        limit = float(f[19]) if f[19] else None
        tif, account, ref = f[21] or "DAY", f[23] or self.account, f[26]
        terms = order_terms(f)
        now = time.time()
        self.received.append({"time": now, "client_id": conn.client_id, "order_id": order_id,
                              "ref": ref, "symbol": symbol, "action": action, "quantity": qty,
                              "type": otype, "limit": limit, "tif": tif, **terms})
        if self.read_only_api:  # refused before it exists: a later cancel finds nothing (10147)
            conn.send([4, 2, order_id, 321, READ_ONLY, ""])
            return
        existing = next((o for o in self.orders
                         if o.client_id == conn.client_id and o.order_id == order_id), None)
        if existing is not None:
            if existing.done:
                conn.send([4, 2, order_id, 103, f"Duplicate order id {order_id}", ""])
            else:  # a modification: new size, limit or trigger
                existing.quantity, existing.limit = qty, limit
                existing.aux, existing.trail_percent = terms["aux"], terms["trail_percent"]
                if terms["trail_stop"] is not None:
                    existing.trail_stop = terms["trail_stop"]
                self._send_open(existing)
                self._send_status(existing)
            return
        self.next_order_id = max(self.next_order_id, order_id + 1)
        inst = self._instrument(symbol, con_id)
        if inst is None:
            conn.send([4, 2, order_id, 200, "No security definition has been found for the request", ""])
            return
        order = GwOrder(order_id=order_id, client_id=conn.client_id, perm_id=self._perm(), ref=ref,
                        inst=inst, action=action, quantity=qty, order_type=otype, limit=limit,
                        tif=tif, account=account, received=now, connection=conn.serial, **terms)
        self.orders.append(order)
        reason = None
        if account not in self.accounts:
            reason = f"Order rejected - reason:The account {account} is not managed by this login"
        elif not self.ib_up.is_set():
            self.violations.append(f"order {ref} received during a connectivity outage")
            reason = "Order rejected - reason:Not connected to IB"
        elif self.reject_next > 0:
            self.reject_next -= 1
            reason = "Order rejected - reason:The order was rejected by the fault injector"
        elif symbol in self.reject_symbols or "*" in self.reject_symbols:
            reason = f"Order rejected - reason:{symbol} is not available for trading"
        elif not supported(otype, qty, limit, order):
            reason = f"Order rejected - reason:unsupported order {otype} {qty}"
        if reason is not None:
            order.reason = reason
            self._finish(order, "Cancelled")
            conn.send([4, 2, order_id, 201, reason, ""])
            self._send_status(order)
            return
        if order.transmit:  # with the orders of its bracket held until now
            root = order.parent_id or order.order_id
            for held in [o for o in self.orders if o.client_id == order.client_id and not o.transmit
                         and o.task is None and not o.done and root in (o.order_id, o.parent_id)]:
                held.task = asyncio.get_running_loop().create_task(self._work(held))
            order.task = asyncio.get_running_loop().create_task(self._work(order))
        n = len(self.received)
        if self.drop_after_orders is not None and n >= self.drop_after_orders:
            self.drop_after_orders = None
            asyncio.get_running_loop().call_later(0.01, conn.abort)

    def _owner(self, order: GwOrder) -> list[Connection]:
        return [c for c in self.connections
                if not c.closed and (c.client_id == order.client_id or c.client_id == 0)
                and not self.faults.hidden(c, order)]

    def _send_open(self, order: GwOrder) -> None:
        for conn in self._owner(order):
            conn.send(self.open_order_fields(order))

    def _send_status(self, order: GwOrder) -> None:
        for conn in self._owner(order):
            conn.send([3, order.order_id, order.status, order.filled, order.remaining, order.avg_price,
                       order.perm_id, 0, order.last_price, order.client_id, "", 0.0])

    def _finish(self, order: GwOrder, status: str) -> None:
        order.status = status
        order.done = True
        order.completed_at = time.time()

    def _marketable(self, order: GwOrder) -> bool:
        if order.auction or not self._active(order):
            return False  # an auction order fills in its auction (``auction``), nothing else
        price = self.prices[order.inst.symbol]
        if order.order_type in ("STP", "STP LMT", "TRAIL"):
            order.observe(price)
            if not order.triggered:
                return False
        if order.order_type in ("MKT", "STP", "TRAIL"):
            return True
        return price <= order.limit + 1e-9 if order.action == "BUY" else price >= order.limit - 1e-9

    def _active(self, order: GwOrder) -> bool:
        """Working at the venue: its bracket's parent has filled and its good-after time passed."""
        if order.good_after is not None and time.time() < order.good_after:
            return False
        if order.parent_id:
            parent = self._parent(order)
            return parent is not None and parent.status == "Filled"
        return True

    def _parent(self, order: GwOrder) -> Optional[GwOrder]:
        return next((o for o in self.orders if o.client_id == order.client_id
                     and o.order_id == order.parent_id), None)

    def observe(self, symbol: str) -> None:
        """The price path moved: every active stop of ``symbol`` sees the new price (a trailing
        stop ratchets on each price, not only on those its order happens to wake for)."""
        for order in self.orders:
            if not order.done and order.inst.symbol == symbol and order.task is not None \
                    and order.order_type in ("STP", "STP LMT", "TRAIL") and self._active(order):
                order.observe(self.prices[symbol])

    def auction(self, which: str = "close") -> int:
        """The session's opening or closing auction: every active order for it (MOO; MOC and
        LOC at or better than its limit) fills in full at the current price. The number filled."""
        n = 0
        for order in list(self.orders):
            if order.done or order.task is None or order.auction != which or not self._active(order):
                continue
            price = self.prices[order.inst.symbol]
            if order.order_type == "LOC" and not (price <= order.limit + 1e-9 if order.sign > 0
                                                  else price >= order.limit - 1e-9):
                continue
            self._fill(order, order.remaining, price)
            n += 1
        return n

    async def _work(self, order: GwOrder, acked: bool = False) -> None:
        try:
            if not acked:
                if self.ack_delay:
                    await asyncio.sleep(self.ack_delay)
                if order.cancel or order.done:  # cancelled, or filled by an outage, meanwhile
                    return
                order.status = "PreSubmitted"
                self._send_open(order)
                self._send_status(order)
                await asyncio.sleep(min(self.fill_delay, 0.02))
                if order.done:
                    return
                order.status = "Submitted"
                self._send_status(order)
            parts = fills_of(order.quantity, self.partial)
            while order.parent_id and not order.cancel and not self.closing and not self._active(order):
                parent = self._parent(order)
                if parent is None or (parent.done and parent.status != "Filled"):
                    self._cancel(order)  # its entry never filled: the bracket's exits go with it
                    return
                await asyncio.sleep(self.fill_delay)
            while order.remaining > 1e-9 and not order.cancel and not self.closing:
                await asyncio.sleep(self.fill_delay)
                await self.ib_up.wait()
                if order.cancel:
                    break
                if not self._marketable(order):
                    async with self._price_changed:
                        try:
                            await asyncio.wait_for(self._price_changed.wait(), 0.5)
                        except asyncio.TimeoutError:
                            pass
                    continue
                shares = min(parts.pop(0) if parts else order.remaining, order.remaining)
                self._fill(order, shares, self.prices[order.inst.symbol])
        except asyncio.CancelledError:
            pass

    def _fill(self, order: GwOrder, shares: float, price: float, when: Optional[float] = None) -> None:
        now = time.time() if when is None else when
        sym = order.inst.symbol
        first = order.filled == 0
        order.filled += shares
        order.value += shares * price
        order.last_price = price
        fee = shares * self.commission_per_share
        if first:
            fee = max(fee, self.commission_min)
        fee = min(fee, 0.01 * shares * price) if shares * price > 0 else fee
        self.n_exec += 1
        ex = GwExecution(exec_id=f"0000e0d5.{order.perm_id:08x}.{self.n_exec:02d}.01", order=order,
                         shares=shares, price=price, time=now, cum_qty=order.filled,
                         avg_price=order.avg_price, commission=round(fee, 6))
        self.executions.append(ex)
        book = self.books[order.account]
        qty, cost = book.get(sym, [0.0, 0.0])
        delta = order.sign * shares
        new = qty + delta
        if new == 0:
            cost = 0.0
        elif qty == 0 or (qty > 0) != (new > 0):
            cost = price
        elif abs(new) > abs(qty):
            cost = (qty * cost + delta * price) / new
        book[sym] = [new, cost]
        self.cash[order.account] -= delta * price + ex.commission
        done = order.remaining <= 1e-9
        if done:
            self._finish(order, "Filled")
        self._one_cancels_other(order, shares)
        for conn in self._owner(order):
            conn.send(self.exec_fields(ex, -1))
            conn.send([3, order.order_id, order.status, order.filled, order.remaining, order.avg_price,
                       order.perm_id, 0, price, order.client_id, "", 0.0])
            if done:
                conn.send(self.open_order_fields(order))
            conn.send(self.commission_fields(ex))
        self._push_account(order.account, sym)

    def _one_cancels_other(self, order: GwOrder, shares: float) -> None:
        """A fill of one member of an OCA group: ocaType 1 cancels the others, 2 and 3 reduce
        them by the shares filled (IB's rules). A bracket's exits are one such group."""
        if not order.oca and not order.parent_id:
            return
        for other in self.orders:
            if other is order or other.done or other.account != order.account:
                continue
            siblings = other.client_id == order.client_id and other.parent_id == order.parent_id
            if not ((order.oca and other.oca == order.oca) or (order.parent_id and siblings)):
                continue
            if order.oca_type in (2, 3):
                other.quantity = max(other.quantity - shares, other.filled)
                if other.remaining > 1e-9:
                    self._send_status(other)
                    continue
            self._cancel(other, code=202, text="Order Canceled - reason:OCA group fill")

    def _cancel_order(self, conn: Connection, f: list[str]) -> None:
        order_id = int(f[2])
        order = next((o for o in self.orders
                      if o.order_id == order_id and o.client_id == conn.client_id), None)
        if order is None:
            conn.send([4, 2, order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found.", ""])
            return
        self._cancel(order)

    def _cancel(self, order: GwOrder, code: int = 202, text: str = "Order Canceled - reason:") -> None:
        if order.done:
            for conn in self._owner(order):
                conn.send([4, 2, order.order_id, 10148, f"OrderId {order.order_id} that needs to be "
                           f"cancelled cannot be cancelled, state: {order.status}.", ""])
            return
        order.cancel = True
        self._finish(order, "Cancelled")
        for conn in self._owner(order):
            conn.send([4, 2, order.order_id, code, text, ""])
        self._send_status(order)

    def _global_cancel(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done:
                self._cancel(order)

    def _visible(self, conn: Connection, order: GwOrder) -> bool:
        return conn.client_id == 0 or order.client_id == conn.client_id

    def _req_open_orders(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done and self._visible(conn, order) and order.status != "PendingSubmit" \
                    and not self.faults.hidden(conn, order):
                conn.send(self.open_order_fields(order))
                conn.send([3, order.order_id, order.status, order.filled, order.remaining,
                           order.avg_price, order.perm_id, 0, order.last_price, order.client_id, "", 0.0])
        conn.send([53, 1])
        self.faults.fill_returning(conn)

    def _req_all_open_orders(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if not order.done and order.status != "PendingSubmit" and not self.faults.hidden(conn, order):
                conn.send(self.open_order_fields(order))
        conn.send([53, 1])

    def _req_completed(self, conn: Connection, f: list[str]) -> None:
        for order in self.orders:
            if order.done and not self.faults.hidden(conn, order):
                conn.send(self.completed_order_fields(order))
        conn.send([102])

    def _req_executions(self, conn: Connection, f: list[str]) -> None:
        req_id = int(f[2])
        client = int(f[3] or 0)
        since = parse_ib_time(f[5]) if len(f) > 5 else None
        symbol = f[6] if len(f) > 6 else ""
        for ex in self.executions:
            o = ex.order
            if client and o.client_id != client:
                continue
            if not client and not self._visible(conn, o):
                continue
            if since is not None and ex.time < since:
                continue
            if symbol and o.inst.symbol != symbol:
                continue
            if self.faults.hidden(conn, o):
                continue
            conn.send(self.exec_fields(ex, req_id))
            conn.send(self.commission_fields(ex))
        conn.send([55, 1, req_id])

    def exec_fields(self, ex: GwExecution, req_id: int) -> list:
        return protocol.exec_fields(ex, req_id, self.faults.echo(ex.order.ref))

    commission_fields = staticmethod(protocol.commission_fields)

    def open_order_fields(self, o: GwOrder) -> list:
        return protocol.open_order_fields(o, self.faults.echo(o.ref))

    def completed_order_fields(self, o: GwOrder) -> list:
        return protocol.completed_order_fields(o, self.faults.echo(o.ref))


# placeOrder's fields at server version 176 past the contract (``ib_async.client.placeOrder``)
F_AUX, F_OCA, F_TRANSMIT, F_PARENT, F_GOOD_AFTER, F_OCA_TYPE = 20, 22, 27, 28, 37, 47
F_TRAIL_STOP, F_TRAIL_PERCENT = 69, 70


def order_terms(f: list[str]) -> dict:
    """A placeOrder's terms beyond type, size and limit, as ``GwOrder`` fields."""
    def num(i: int) -> Optional[float]:
        return float(f[i]) if len(f) > i and f[i] not in ("", None) else None

    good_after = f[F_GOOD_AFTER] if len(f) > F_GOOD_AFTER else ""
    return {"aux": num(F_AUX), "oca": f[F_OCA], "oca_type": int(num(F_OCA_TYPE) or 0),
            "transmit": f[F_TRANSMIT] != "0", "parent_id": int(num(F_PARENT) or 0),
            "good_after": parse_ib_time(good_after) if good_after else None,
            "trail_stop": num(F_TRAIL_STOP), "trail_percent": num(F_TRAIL_PERCENT)}


def supported(otype: str, qty: float, limit: Optional[float], order: GwOrder) -> bool:
    """What IB would take: a positive size, and the prices its type needs, positive."""
    def positive(value: Optional[float]) -> bool:
        return value is not None and value > 0

    if qty <= 0:
        return False
    if otype == "MKT" or otype == "MOC":
        return True
    if otype in ("LMT", "LOC"):
        return positive(limit)
    if otype == "STP":
        return positive(order.aux)
    if otype == "STP LMT":
        return positive(order.aux) and positive(limit)
    if otype == "TRAIL":
        return positive(order.aux) or positive(order.trail_percent)
    return False
