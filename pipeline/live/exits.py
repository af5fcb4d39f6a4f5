"""Exits in paper and live trading: the run's exit rules (``cfg.exits``, the backtest's own
``ExitRule`` objects) become orders the broker holds natively, one one-cancels-other group per
position, so a stop works while the runner is down.

* **Levels**: each position a decision opens (or flips) gets its rules' orders at the levels
  ``ExitRule.levels`` gives for the entry's fill (the average price of the decision's fills in
  the position's direction) on the decision's bar: the same call the backtest makes, so the
  orders are the backtest's ``ExitLevels`` (``exit_orders``).
* **Bracket**: an entry that opens a position from flat in one market order carries its exits
  as a bracket (``parentId``; the entry and all but the last exit with ``transmit`` false, so
  the gateway takes the whole bracket or nothing), priced on the quote it is sent at; once the
  entry has filled they are re-priced to the fill. Other entries (sliced, limit, added to a
  position) get their exits as an OCA group on the position once the decision's children are
  done.
  Prices are rounded to the contract's tick on the cautious side (a sell stop up, a buy stop
  down). A time stop is a market-on-close, good after the session it is due in.
* **Journal first**: exits are rows of the journal's ``orders`` (``kind = 'exit'``, their terms
  as JSON), planned, then ``intent`` before each is handed over, like every child; an order that
  ``OrderTerms.check`` refuses is never journaled as planned, and the broker checks again.
* **Crash safety**: reconciliation treats them as any order (adopted by orderRef, perm id or
  order id, never sent twice); planned exits left by a crash go out once the broker is ready.
* **OCO**: a fill of one exit cancels its siblings at the gateway (``ocaGroup``); the runner
  cancels any the gateway still lists as working.
* **Rebalances**: before a decision trades a symbol, its working exits are resized down to
  what the position keeps on its side, or cancelled (confirmed) when it goes flat or flips;
  after it, they are resized to the new position, or replaced when it was opened or flipped.
  Symbols the decision does not trade keep their exits untouched.

Not done live: re-entry cool-downs (the next decision trades from the broker's positions), and
rules limited to some sleeves apply only when every sleeve of the run is among them (the
broker's book is not split by sleeve).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import math
import time
from typing import Any, Optional

import numpy as np
import pandas as pd

from pipeline.core.errors import ConfigError
from pipeline.core.exits import ExitLevels
from pipeline.core.live_broker import DONE, BrokerError, LiveOrder, NotConnected
from pipeline.core.orders import OrderError, OrderTerms, OrderType, TimeInForce
from pipeline.live.journal import Child
from pipeline.live.messages import say

EXIT = "exit"      # the journal's kind of an exit order
WORKING = ("intent", "submitted")
SESSION_OPEN = dt.time(9, 30)
EXCHANGE_TZ = "America/New_York"


def exit_terms(levels: ExitLevels, i: int, side: float, entry: float, oca: str) -> Optional[OrderTerms]:
    """The order rule ``levels`` keeps for position ``i`` (None where it sends nothing): a
    stop, a take-profit limit, a trailing stop starting at its level for ``entry``, or a
    market-on-close ``after`` bars on. Good till cancelled, in the position's ``oca`` group."""
    common = dict(tif=TimeInForce.GTC, oca=oca, reason=levels.rule)
    kind = levels.type
    if kind is OrderType.STOP:
        return _priced(levels.stop, i, lambda v: OrderTerms(OrderType.STOP, stop=v, **common))
    if kind is OrderType.LIMIT:
        return _priced(levels.limit, i, lambda v: OrderTerms(OrderType.LIMIT, limit=v, **common))
    if kind is OrderType.TRAILING_STOP:
        start = float(levels.trigger(np.array([side]), np.array([entry]))[0])
        amount = _value(levels.trail_amount, i)
        percent = _value(levels.trail_percent, i)
        if not math.isfinite(start) or not (math.isfinite(amount) or math.isfinite(percent)):
            return None
        return OrderTerms(OrderType.TRAILING_STOP, stop=start,
                          trail_amount=amount if math.isfinite(amount) else None,
                          trail_percent=None if math.isfinite(amount) else percent, **common)
    after = int(np.asarray(levels.after)[i]) if levels.after is not None else -1
    if after < 1:
        return None
    return OrderTerms(OrderType.MARKET_ON_CLOSE, after=after, **common)


def exit_orders(rules: dict[str, Any], side: float, entry: float, bar: int, column: int,
                oca: str) -> list[tuple[str, OrderTerms]]:
    """Every rule's order for one position opened on ``side`` at ``entry`` on ``bar`` in
    ``column``: the rules' own ``levels`` (the backtest's call), as order terms."""
    out = []
    for name, rule in rules.items():
        levels = rule.levels(np.array([side]), np.array([entry]), np.array([bar]), np.array([column]))
        terms = exit_terms(levels, 0, side, entry, oca)
        if terms is not None:
            out.append((name, terms))
    return out


def exit_action(held: float, target: float, working: float) -> tuple[str, float]:
    """What a rebalance from ``held`` to ``target`` does to exits working for ``working``
    shares (signed like the exit order: opposite to the position), before it trades: keep
    them, resize them to the shares the position keeps on its side, or cancel them."""
    if held == 0 or target == 0 or (held > 0) != (target > 0):
        return "cancel", 0.0
    keep = -math.copysign(min(abs(held), abs(target)), held)
    return ("keep", working) if abs(keep) >= abs(working) - 1e-9 else ("resize", keep)


def good_after(after: int, now: float) -> float:
    """The opening of the session a time stop of ``after`` bars is due in (the entry's session
    counts as the first; weekends skipped, exchange holidays not), as epoch seconds."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(EXCHANGE_TZ)
    local = dt.datetime.fromtimestamp(now, zone)
    session = np.busday_offset(np.datetime64(local.date()), 0, roll="forward")
    if local.time() >= dt.time(16, 0) and session == np.datetime64(local.date()):
        session = np.busday_offset(session, 1)
    day = np.busday_offset(session, after - 1).astype(dt.date)
    return dt.datetime.combine(day, SESSION_OPEN, zone).timestamp()


class ExitDesk:
    """The exits of ``LiveRunner`` (state: ``exit_rules``, ``journal``, ``broker``)."""

    def _exit_rules(self) -> dict[str, Any]:
        rules = dict(getattr(self.stages, "exits", None) or {})
        sleeves = set(self.stages.strategies)
        for name, rule in rules.items():
            if rule.sleeves is not None and not sleeves <= set(rule.sleeves):
                raise ConfigError(f"exits.{name}.sleeves={list(rule.sleeves)}: paper and live trading "
                                  f"hold one book for every sleeve ({', '.join(sorted(sleeves))}); "
                                  f"set it to null or to all of them")
        return rules

    def _working_exits(self, symbol: Optional[str] = None) -> list[Child]:
        return [c for c in self.journal.exits(symbol) if c.status in WORKING or c.status == "planned"]

    async def _exits_before(self, parents: dict) -> None:
        """Before a decision trades: exits resized down to what each position keeps, or
        cancelled (and confirmed) where it goes flat or flips."""
        cancel = []
        held = self.broker.held()
        for sym, parent in parents.items():
            for child in self._working_exits(sym):
                action, qty = exit_action(held.get(sym, parent.position), parent.target, child.quantity)
                if action == "cancel":
                    cancel.append(child)
                elif action == "resize":
                    await self._modify_exit(child, qty)
        await self._cancel_exits(cancel, "the decision closes or flips the position")

    async def _exits_after(self, key: str, parents: dict, positions: dict[str, float]) -> None:
        """After a decision: exits resized to the new positions, or placed for the positions it
        opened or flipped, then sent."""
        rules = self.exit_rules
        cancel, new = [], []
        data = self._exit_data.pop(key, None)
        prepared = False
        for sym in sorted(parents):
            pos = float(positions.get(sym, 0.0))
            working = self._working_exits(sym)
            same = working and pos and all((c.quantity < 0) == (pos > 0) for c in working)
            if not same:
                cancel += working
            if not pos or not rules or (same and not any(c.decision == key for c in working)):
                for child in working if same else []:  # kept from an earlier entry: resized only
                    if abs(child.quantity + pos) > 1e-9:
                        await self._modify_exit(child, -pos)
                continue
            fills = [f for f in self.journal.fills(key, entries=True)
                     if f["symbol"] == sym and (f["quantity"] > 0) == (pos > 0)]
            shares = sum(f["quantity"] for f in fills)
            if not fills or not shares:
                self.journal.event("exits", f"{sym}: no entry fill in decision {key}: no exit orders")
                say(f"warning: {sym} holds {pos:+g} without an entry fill of this decision: no exit orders")
                continue
            entry = sum(f["quantity"] * f["price"] for f in fills) / shares
            if not prepared:  # a decision resumed after a restart loads its data again
                data = data if data is not None else await self._load()
                for rule in rules.values():
                    rule.prepare(data)
                prepared = True
            kids = self._plan_exits(key, data, sym, pos, entry, new=not same)
            if not same:
                new += kids
                continue
            fresh = {c.ref: terms_of(c.terms)[0] for c in kids}  # a bracket's, priced on a quote
            for child in working:
                now, _ = terms_of(child.terms)
                terms = fresh.get(child.ref)
                repriced = terms is not None and prices(terms) != prices(now)
                if abs(child.quantity + pos) > 1e-9 or repriced:
                    text = terms_json(dataclasses.replace(terms, parent=now.parent), time.time()) if repriced else None
                    await self._modify_exit(child, -pos, text)
        await self._cancel_exits(cancel, "replaced: the position was closed or flipped")
        if new:
            self.journal.add_children(new)
        await self._send_exits(held=positions)

    def _plan_exits(self, key: str, data, sym: str, pos: float, entry: float, new: bool = True) -> list[Child]:
        """The exits of a position of ``pos`` entered at ``entry`` (not journaled). ``new``: refs
        no order has had yet (a bracket cancelled with its entry leaves its own behind); else
        the position's first refs, to re-price those."""
        row = self.journal.decision(key)
        bar = _bar_of(data, row["bar"] if row is not None else None)
        column = list(data.symbols).index(sym)
        base = f"rt:{self.run_id}:{key.split('#')[-1]}x{bar}:{sym}"
        side = 1.0 if pos > 0 else -1.0
        kids = []
        now = time.time()
        n = 0
        while new and any(self.journal.child(f"{base}:{name}{_nth(n)}") for name in self.exit_rules):
            n += 1
        for name, terms in exit_orders(self.exit_rules, side, entry, bar, column, f"{base}:oca{_nth(n)}"):
            terms = self._rounded(sym, terms, -pos)
            terms.check(sym, -pos)  # before the journal: nothing unsendable is ever planned
            kids.append(Child(ref=f"{base}:{name}{_nth(n)}", decision=key, symbol=sym, child=-1, quantity=-pos,
                              limit_price=terms.limit, release_at=now, expire_at=math.inf,
                              kind=EXIT, terms=terms_json(terms, now)))
        say(f"{sym}: {len(kids)} exit order(s) for {pos:+g} entered at {entry:.4f}: "
            + ", ".join(f"{c.ref.rsplit(':', 1)[-1]} {describe(c.terms)}" for c in kids))
        return kids

    def _bracket_for(self, child: Child, price: Optional[float]) -> list[Child]:
        """The exits to send as a bracket on ``child`` (journaled, planned), priced at ``price``:
        only for an entry that opens a position from flat in one market order, in a decision
        this process planned (a resumed one gets its exits after its fills)."""
        data = self._exit_data.get(child.decision)
        if not self.exit_rules or data is None or child.limit_price is not None or not price \
                or not math.isfinite(price) or self._working_exits(child.symbol):
            return []
        parent = next((p for p in self.journal.parents(child.decision) if p.symbol == child.symbol), None)
        siblings = [c for c in self.children.values() if c.symbol == child.symbol]
        if parent is None or parent.position != 0 or len(siblings) != 1 or self.broker.held().get(child.symbol):
            return []
        for rule in self.exit_rules.values():
            rule.prepare(data)
        kids = self._plan_exits(child.decision, data, child.symbol, child.quantity, float(price))
        for kid in kids:  # the entry they hang on, by its ref (its order id may change on a re-send)
            terms, _ = terms_of(kid.terms)
            kid.terms = terms_json(dataclasses.replace(terms, parent=child.ref), time.time())
        self.journal.add_children(kids)
        return kids

    def _rounded(self, sym: str, terms: OrderTerms, qty: float) -> OrderTerms:
        """Prices on the contract's tick, the cautious way: a sell's stop and limit up, a buy's
        down (``round_price``), a trailing amount down (tighter)."""
        r = self.broker.round_price
        fields = {k: (None if getattr(terms, k) is None else r(sym, getattr(terms, k), qty))
                  for k in ("stop", "limit")}
        if terms.trail_amount is not None:
            fields["trail_amount"] = r(sym, terms.trail_amount, 1.0)
        return _replace(terms, **fields)

    async def _send_exits(self, bracket: Optional[list[Child]] = None, parent_id: Optional[int] = None,
                          held: Optional[dict[str, float]] = None) -> None:
        """Hand over exits (journaled ``intent`` first), unless the switch is on: a bracket's on
        its entry ``parent_id`` (the last one transmits the bracket), or every planned exit
        whose position the broker holds (``held``, default its last report): none could open one."""
        if bracket is None:
            held = self.broker.held() if held is None else held
            todo = [c for c in self.journal.exits() if c.status == "planned"
                    and held.get(c.symbol, 0.0) * c.quantity < 0 and abs(c.quantity) <= abs(held[c.symbol]) + 1e-9]
        else:
            todo = [self.journal.child(c.ref) for c in bracket]
        for n, child in enumerate(todo):
            if self.killed or self.killswitch.reason():
                return
            terms, after_at = terms_of(child.terms)
            try:
                terms.check(child.symbol, child.quantity)
            except OrderError as exc:
                self.journal.mark(child.ref, "blocked", reason=str(exc))
                say(f"blocked {child.ref}: {exc}")
                continue
            await self._wait_ready()
            if self.rate is not None:
                await self.rate.acquire()
            try:
                order_id = self.broker.next_order_id()
            except NotConnected:
                return
            self.journal.intent(child.ref, order_id, time.time())
            try:
                self.broker.place(LiveOrder(ref=child.ref, symbol=child.symbol, quantity=child.quantity,
                                            limit=terms.limit, tif="GTC", order_id=order_id, terms=terms,
                                            good_after=after_at, parent_id=parent_id,
                                            transmit=bracket is None or n == len(todo) - 1))
            except NotConnected as exc:
                self.journal.not_sent(child.ref, order_id, reason=f"not sent: {exc}")
                return
            self.handed[child.ref] = self.epoch
            self._count("exits_sent")

    async def _modify_exit(self, child: Child, quantity: float, terms_text: Optional[str] = None) -> None:
        """Modify a working exit to ``quantity`` (and new terms: a bracket's exit re-priced to
        its entry's fill), journaled first; one not sent yet is only re-journaled."""
        self.journal.resize(child.ref, quantity, terms_text)
        if child.status == "planned" or child.order_id is None:
            return
        terms, after_at = terms_of(terms_text or child.terms)
        await self._wait_ready()
        entry = self.journal.child(terms.parent) if terms.parent else None
        try:
            self.broker.place(LiveOrder(ref=child.ref, symbol=child.symbol, quantity=quantity, limit=terms.limit,
                                        tif="GTC", order_id=child.order_id, terms=terms, good_after=after_at,
                                        parent_id=entry.order_id if entry is not None else None))
        except BrokerError as exc:  # it filled or went meanwhile: the reconcile says which
            self.journal.event("resize", f"not modified: {exc}", ref=child.ref)

    async def _cancel_exits(self, children: list[Child], why: str) -> None:
        """Cancel exits and wait, up to ``mode.ack_timeout``, for the broker to confirm, so no
        stop is left working beside the orders that replace it."""
        refs = []
        for child in children:
            if child.status == "planned":
                self.journal.mark(child.ref, "skipped", reason=why)
                continue
            self.journal.event("cancel", why, ref=child.ref)
            self.broker.cancel(child.ref)
            refs.append(child.ref)
        end = time.time() + float(self.mode.ack_timeout)
        while refs:
            known = self._by_child(await self._ask(self.broker.known_orders))
            for ref in refs:
                if ref in known:
                    self._apply(self.journal.child(ref), known[ref])
            refs = [r for r in refs if r in known and known[r].status not in DONE]
            if not refs or time.time() >= end:
                break
            await asyncio.sleep(0.05)

    def _one_cancels_other(self) -> None:
        """An exit filled (in part or whole): its siblings the gateway still works are
        cancelled (the gateway's OCA group does it; this covers a group it did not honour)."""
        exits = self.journal.exits()
        hit = {terms_of(c.terms)[0].oca for c in exits if c.filled}
        for child in exits:
            if child.status in WORKING and not child.filled and terms_of(child.terms)[0].oca in hit \
                    and child.ref not in self.cancelling:
                self.cancelling.add(child.ref)
                self.journal.event("cancel", "its OCA sibling filled", ref=child.ref)
                self.broker.cancel(child.ref)


def prices(terms: OrderTerms) -> tuple:
    return terms.type, terms.stop, terms.limit, terms.trail_amount, terms.trail_percent


def terms_json(terms: OrderTerms, now: float) -> str:
    """The journal's record of an exit's terms (and, for a time stop, when it becomes active)."""
    record = {k: getattr(terms, k) for k in ("limit", "stop", "trail_amount", "trail_percent",
                                              "oca", "parent", "after", "reason")}
    record.update(type=terms.type.value, tif=terms.tif.value)
    if terms.type is OrderType.MARKET_ON_CLOSE:
        record["good_after"] = good_after(terms.after, now)
    return json.dumps(record, sort_keys=True)


def terms_of(text: Optional[str]) -> tuple[OrderTerms, Optional[float]]:
    record = json.loads(text or "{}")
    when = record.pop("good_after", None)
    record["type"] = OrderType(record.get("type", "market"))
    record["tif"] = TimeInForce(record.get("tif", "day"))
    return OrderTerms(**record), when


def describe(text: Optional[str]) -> str:
    """An exit's terms for messages: ``stop (stop=119.4)``."""
    terms, when = terms_of(text)
    parts = [f"{name}={getattr(terms, name):g}" for name in ("stop", "limit", "trail_amount", "trail_percent")
             if getattr(terms, name) is not None]
    if when is not None:
        parts.append(f"good after {dt.datetime.fromtimestamp(when, dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return f"{terms.type.value} ({', '.join(parts)})" if parts else terms.type.value


def _nth(n: int) -> str:
    return f".{n}" if n else ""


def _bar_of(data, bar: Optional[str]) -> int:
    if bar is not None:
        where = data.index.get_indexer([pd.Timestamp(bar)])[0]
        if where >= 0:
            return int(where)
    return data.n_bars - 1


def _value(values, i: int) -> float:
    return float("nan") if values is None else float(np.asarray(values, dtype=float)[i])


def _priced(values, i: int, make) -> Optional[OrderTerms]:
    v = _value(values, i)
    return make(v) if math.isfinite(v) else None


def _replace(terms: OrderTerms, **fields: Any) -> OrderTerms:
    return dataclasses.replace(terms, **fields)
