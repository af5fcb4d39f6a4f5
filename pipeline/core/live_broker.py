"""The broker-neutral live-broker contract: what paper and live trading need from a broker that
trades through a gateway, and what it reports back. Plugins implement it (``plugins/broker/ib/``
for Interactive Brokers) and map their venue's order statuses and error codes to the states
below, so the live loop (``pipeline.live``) knows no venue.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import ClassVar, Optional

from pipeline.core.errors import UserError
from pipeline.core.orders import OrderTerms, OrderType

# an order's state as a LiveBroker reports it in ``OrderUpdate.status``
PENDING = "pending"      # handed over, not acknowledged yet (or a state the broker does not map)
WORKING = "working"      # acknowledged: working at the venue (a cancel may be on its way)
FILLED = "filled"
CANCELLED = "cancelled"  # cancelled, expired or made inactive, with or without partial fills
REJECTED = "rejected"    # refused by the venue, nothing filled
DONE = (FILLED, CANCELLED, REJECTED)  # an order in one of these is over


class BrokerError(UserError):
    kind = "broker error"


class NotConnected(Exception):
    """The broker is not connected, or stopped answering (which it treats as a disconnect):
    nothing was sent; wait for ``ready`` and ask again."""


# ---------------------------------------------------------------- the live broker contract

@dataclasses.dataclass
class LiveOrder:
    """An order as the runner hands it over. ``terms`` (``pipeline.core.orders``) carries a
    stop, trailing or auction order; without it ``limit`` makes a limit order and None a market
    order. A bracket's exits name their entry's ``parent_id`` (active once it fills); an order
    with ``transmit`` false is held at the gateway until a later one of its group transmits
    (the last of a bracket), so a bracket goes out whole or not at all. ``good_after`` (epoch
    seconds) keeps an order inactive until then (a time stop's closing auction)."""

    ref: str
    symbol: str
    quantity: float                 # signed: + buy, - sell
    limit: Optional[float] = None   # None: a market order
    tif: str = "DAY"
    order_id: Optional[int] = None  # from ``LiveBroker.next_order_id``, journaled before the send
    terms: Optional[OrderTerms] = None
    parent_id: Optional[int] = None
    transmit: bool = True
    good_after: Optional[float] = None

    def order_terms(self) -> OrderTerms:
        if self.terms is not None:
            return self.terms
        return OrderTerms(type=OrderType.MARKET if self.limit is None else OrderType.LIMIT, limit=self.limit)


@dataclasses.dataclass
class OrderUpdate:
    """An order as the broker reports it: ``status`` is one of the states above; the broker's own
    word for it goes in ``broker_status`` (for the dashboard and the journal's events) and its
    error code in ``error_code``."""

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
    broker_status: str = ""


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
    ``ib_lost`` (the gateway lost its own connection to the venue), ``restored`` (back, data
    kept), ``restored_data_lost`` (back after resubscribing what was lost),
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

    # for the message refusing a live account in mode=paper: how the broker tells its paper
    # accounts, and what to log in with instead
    paper_rule: ClassVar[str] = "the broker says it is not a paper account"
    paper_login: ClassVar[str] = "a paper account"

    def is_paper(self, account: str) -> bool:
        """Is ``account`` a paper (simulated) one? ``mode=paper`` trades no other."""
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
        """Hand the order over (non-blocking); raise ``NotConnected`` if nothing was sent, and
        ``pipeline.core.orders.OrderError`` for terms that must never be sent. An ``order_id``
        the broker already works is a modification (an exit resized to a new position)."""
        raise NotImplementedError

    def cancel(self, ref: str) -> bool:
        raise NotImplementedError

    async def cancel_open(self) -> list[str]:
        """Cancel every open order of this client; the refs cancelled."""
        raise NotImplementedError

    def round_price(self, symbol: str, price: float, side: float) -> float:
        return round(price, 2)
