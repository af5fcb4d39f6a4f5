"""``Faults``: a misbehaving gateway, scripted from a test."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Optional

from plugins.broker.ib.fake_gateway.state import GwOrder

if TYPE_CHECKING:
    from plugins.broker.ib.fake_gateway.server import Connection, FakeGateway


class Faults:
    """A misbehaving gateway, scripted from a test: ``gw.faults.stall(2)``, ``gw.faults.drop_ref =
    True``, ``gw.faults.report_late(0.5)``, ``gw.call(gw.faults.start_outage, 1.0)``. Flags and
    ``stall`` may be set from any thread; ``outage`` runs on the gateway's loop (``gw.call``)."""

    def __init__(self, gw: "FakeGateway") -> None:
        self.gw = gw
        self.drop_ref = False        # orderRef left empty in openOrder, completedOrder, execDetails
        self.late = 0.0              # see report_late
        self.stalled_until = 0.0
        self.returning: dict[int, list[GwOrder]] = {}  # client id -> orders to fill on its return

    def stall(self, seconds: float) -> None:
        """For ``seconds`` the gateway keeps every socket open and accepts new ones, reads every
        request and answers none (a handshake neither); orders it already holds keep working at
        IB, and what they report meanwhile is lost."""
        self.stalled_until = time.time() + float(seconds)

    def stalled(self) -> bool:
        return time.time() < self.stalled_until

    def echo(self, ref: str) -> str:
        return "" if self.drop_ref else ref

    def report_late(self, seconds: float) -> None:
        """From now on, for ``seconds`` after a client connects again, the orders it placed on an
        earlier connection are missing from every answer (open and completed orders, executions)
        and their updates are not sent; they keep working meanwhile. 0 turns it off."""
        self.late = float(seconds)

    def hidden(self, conn: Connection, order: GwOrder) -> bool:
        return bool(self.late) and order.client_id == conn.client_id \
            and order.connection != conn.serial and time.time() - conn.started < self.late

    async def outage(self, seconds: float, fill_resting: bool = True, lasting: Optional[float] = None) -> None:
        """The gateway goes away: every socket closed and connections refused for ``seconds``.
        With ``fill_resting`` every working order fills in full meanwhile (a limit order at its
        limit), stamped ``lasting`` seconds (default ``seconds``) before the gateway is back, so a
        test can stage an outage of minutes in a second; the client hears nothing of those
        fills. The last of them fills only once its client is back, right after its first
        open-orders request: a live fill that reaches the client before it can reconcile."""
        gw = self.gw
        gw.server.close()
        gw.drop()
        await gw.server.wait_closed()
        resting = [o for o in gw.orders if not o.done] if fill_resting else []
        stamp = time.time() + seconds - (seconds if lasting is None else float(lasting))
        for order in resting[:-1]:
            gw._fill(order, order.remaining, self._price(order), when=stamp)
        for order in resting[-1:]:
            self.returning.setdefault(order.client_id, []).append(order)
        await asyncio.sleep(seconds)
        gw.server = await asyncio.start_server(gw._serve, gw.host, gw.port)

    def start_outage(self, seconds: float, fill_resting: bool = True, lasting: Optional[float] = None) -> None:
        asyncio.get_running_loop().create_task(self.outage(seconds, fill_resting, lasting))

    def fill_returning(self, conn: Connection) -> None:
        for order in self.returning.pop(conn.client_id, []):
            if not order.done:
                self.gw._fill(order, order.remaining, self._price(order))

    def _price(self, order: GwOrder) -> float:
        return order.limit if order.limit is not None else self.gw.prices[order.inst.symbol]
