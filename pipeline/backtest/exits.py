"""Exits between decisions: the exit rules (``conf/exits/``) worked bar by bar on the book the
walk holds, one block of bars x symbols per decision interval.

Both walks of ``pipeline.backtest.engine`` call ``advance(t, ...)`` before deciding at bar
``t`` (it walks the bars since the last call through ``pipeline.core.exits.first_exit``, the
one fill convention, and closes what fired) and ``entered(...)`` after a session traded. The
rules:

* **Entry price** is the position's average cost since it opened (from flat or a flip), at
  the fills' prices before spread, impact and commission; a rebalance that adds to it moves
  the average (and the levels with it), one that reduces it does not; the best price since
  entry (for trailing stops) and the bars held carry across decisions.
* **When**: every bar from the entry's session on, after the session's rebalance: with open
  prices the auction fills at the open and the exits work in the rest of the bar; on close-only
  data the auction fills at the close, so a position the rebalance opened or added to starts
  on the next bar (as vectorbt's stops do): its levels are not checked against the close it
  was just bought at; its bars held count from there for a new position, and an added one's
  time stop still fills at that close when due. A position the rebalance kept or reduced is
  checked on that close.
* **How much**: a rule on every sleeve closes the whole position; a rule on named
  ``sleeves`` closes those sleeves' share of the symbol's target weight at the last traded
  decision, times the position then (the rest stays, and that rule rests until the next
  decision).
* **Fill**: the level (or the open, gapped through; the close, a time stop) is the reference
  price of the broker's ``AuctionCosts``: the same spread, impact (``impact_scale`` known at
  the bar before) and commission as any order.
* **Re-entry**: ``cooldown`` None waits for the next decision; ``k`` keeps the symbol as the
  exit left it for ``k`` bars (decisions inside them do not trade it), then buys back what the
  exit closed at the next bar's reference price (the last target restored).

The positions after an exit, until the next decision, are what the ledger records.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np

from pipeline.core.contracts import AuctionCosts, ExitRule
from pipeline.core.errors import ConfigError
from pipeline.core.exits import ExitLevels, first_exit
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderError, OrderTerms, OrderType, TimeInForce

REENTRY = "reentry"  # the reason of a cooldown's buy-back
_LEVEL_FIELDS = ("stop", "limit", "trail_amount", "trail_percent", "after")
_FIELDS_OF = {OrderType.STOP: ("stop",), OrderType.LIMIT: ("limit",),
              OrderType.TRAILING_STOP: ("trail_amount", "trail_percent"),
              OrderType.MARKET_ON_CLOSE: ("after",)}


@dataclasses.dataclass
class ExitTrades:
    """Every exit (and cooldown re-entry) the walk filled, one row each, for the recorder.

    ``rule`` indexes ``rules`` (-1: a re-entry); ``level`` is the price before costs (the
    trigger, the open gapped through, or the close), ``price`` the fill with spread and impact;
    ``entry`` the position's average cost the exit is measured from, ``side`` +1 long, -1 short;
    ``decision`` the last traded decision bar before the exit."""

    rules: list[str]
    types: list[str]                # each rule's order type (OrderType value)
    bar: np.ndarray
    symbol: np.ndarray
    quantity: np.ndarray
    level: np.ndarray
    price: np.ndarray
    trigger: np.ndarray
    gap: np.ndarray
    rule: np.ndarray
    entry: np.ndarray
    side: np.ndarray
    decision: np.ndarray
    commission: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray
    close_only: bool

    def reason(self) -> np.ndarray:
        """Why each row filled: the rule's name, ``gap`` when the bar opened through its level."""
        names = np.array(self.rules + [REENTRY], dtype=object)
        why = names[self.rule]
        return np.where(self.gap, why + " (gap)", why)

    def order_type(self) -> np.ndarray:
        types = np.array(self.types + [OrderType.MARKET_ON_OPEN.value], dtype=object)
        return types[self.rule]


def check_sleeves(rules: Mapping[str, ExitRule], sleeves: list[str]) -> None:
    """A rule naming a sleeve that does not run is a one-line error before any work."""
    for name, rule in rules.items():
        unknown = sorted(set(rule.sleeves or ()) - set(sleeves))
        if unknown:
            raise ConfigError(f"exits.{name}.sleeves names {unknown}, which are not sleeves; "
                              f"sleeves here: {', '.join(sleeves)}")
        if rule.cooldown is not None and not (isinstance(rule.cooldown, int)
                                              and not isinstance(rule.cooldown, bool)
                                              and rule.cooldown >= 1):
            raise ConfigError(f"exits.{name}.cooldown={rule.cooldown!r}: a whole number of bars "
                              f">= 1, or null to re-enter at the next decision")


class ExitBook:
    """The exit rules' state over one backtest (see the module's docstring)."""

    def __init__(self, rules: Mapping[str, ExitRule], data: MarketData, plan, at: np.ndarray,
                 costs: Optional[AuctionCosts], reference: np.ndarray) -> None:
        if costs is None:
            raise ConfigError("exits need a broker that states its fill costs ahead "
                              "(broker=sim); this broker does not")
        check_sleeves(rules, plan.names)
        self.names = list(rules)
        self.rules = [rules[n] for n in self.names]
        self.cools = any(rule.cooldown is not None for rule in self.rules)
        for rule in self.rules:
            rule.prepare(data)
        self.symbols = data.symbols
        close = data.close
        self.close_only = data.open is None or data.high is None or data.low is None
        self.o, self.h, self.lo = ((close, close, close) if self.close_only
                                   else (data.open, data.high, data.low))
        self.c = close
        self.costs, self.reference, self.at = costs, reference, at
        n = data.n_symbols
        self.n = n
        self.shares = [self._sleeve_share(rule, plan) for rule in self.rules]
        self.side = np.zeros(n)
        self.entry = np.full(n, np.nan)
        self.extreme = np.full(n, np.nan)
        self.held = np.zeros(n, dtype=np.int64)
        self.qty = np.zeros(n)          # the position as the exits see it
        self.base = np.zeros(n)         # the position at the last traded decision
        self.resting = np.zeros((len(self.rules), n), dtype=bool)  # a sleeve rule that fired
        self.levels = [{f: np.full(n, -1 if f == "after" else np.nan) for f in _LEVEL_FIELDS}
                       for _ in self.rules]
        self.types: list[Optional[OrderType]] = [None] * len(self.rules)
        self.k = 0
        self.decision = int(at[0])
        self.last = int(at[0])
        self.back = np.full(n, -1, dtype=np.int64)   # bar of a pending re-entry
        self.back_qty = np.zeros(n)
        # close-only data: the positions the session at bar ``late_bar`` opened (fresh) or
        # added to at its close, which no price level checks on that bar
        self.late, self.late_fresh, self.late_bar = np.zeros(n, bool), np.zeros(n, bool), -1
        self.rows: list[tuple] = []     # (bar, col, qty, level, trigger, gap, rule, entry, side, decision)
        self.priced: list[tuple] = []   # per row: fill price, commission, spread cost, impact cost

    @staticmethod
    def _sleeve_share(rule: ExitRule, plan) -> Optional[np.ndarray]:
        """K x N: the named sleeves' share of each symbol's target weight (None: all of it)."""
        if not rule.sleeves or set(rule.sleeves) >= set(plan.names):
            return None
        pick = np.array([name in rule.sleeves for name in plan.names])
        part = np.einsum("ks,skn->kn", plan.sleeve_weights[:, pick], plan.asset_weights[pick])
        total = plan.weights
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total != 0, part / np.where(total != 0, total, 1.0), 0.0)
        return np.clip(share, 0.0, 1.0)

    # ------------------------------------------------------------------ state after a session

    def entered(self, k: int, t: int, before: np.ndarray, after: np.ndarray,
                price: np.ndarray) -> None:
        """Decision ``k`` at bar ``t`` traded from ``before`` to ``after`` shares at ``price``
        (per symbol, before costs) in the session ``t + 1``."""
        self.k, self.decision = k, t
        self.base[:] = after
        self.qty[:] = after
        self.resting[:] = False
        side = np.sign(after)
        fresh = (side != 0) & (side != np.sign(before))        # from flat, or a flip
        added = (after * before > 0) & (np.abs(after) > np.abs(before))
        new = fresh | added
        if self.close_only:
            self.late, self.late_fresh, self.late_bar = new, fresh, t + 1
        if not new.any():
            self.side[:] = side
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            average = (before * self.entry + (after - before) * price) / after
        self.entry = np.where(fresh, price, np.where(added, average, self.entry))
        self.extreme = np.where(fresh, price, self.extreme)
        self.held[fresh] = 0
        self.side[:] = side
        self._set_levels(np.flatnonzero(new), t)

    def _set_levels(self, cols: np.ndarray, t: int) -> None:
        if cols.size == 0:
            return
        side, entry = self.side[cols], self.entry[cols]
        for r, rule in enumerate(self.rules):
            lv = rule.levels(side, entry, np.full(cols.size, t), cols)
            self.types[r] = lv.type
            for f in _LEVEL_FIELDS:
                value = getattr(lv, f)
                if value is not None:
                    self.levels[r][f][cols] = value
            self._check(r, lv, cols, side, entry)

    def _check(self, r: int, lv: ExitLevels, cols: np.ndarray, side: np.ndarray,
               entry: np.ndarray) -> None:
        """A level on the wrong side of the entry, or not a positive price, is never sent."""
        for f, below in (("stop", True), ("limit", False)):
            value = getattr(lv, f)
            if value is None:
                continue
            value = np.asarray(value, dtype=float)
            sent = ~np.isnan(value)
            right_side = np.where(side > 0, value < entry, value > entry) == below
            wrong = sent & ~(np.isfinite(value) & (value > 0) & right_side)
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                where = ("below" if (side[i] > 0) == below else "above")
                raise OrderError(
                    f"exits.{self.names[r]}: the {lv.type.value} order's {f} price "
                    f"{float(value[i]):.6g} for {self.symbols[cols[i]]} must be positive and {where} "
                    f"the {'long' if side[i] > 0 else 'short'}'s entry {entry[i]:.6g}; check the "
                    f"rule's distance")

    # ----------------------------------------------------------------------- between decisions

    def blocked(self, t: int) -> np.ndarray:
        """Symbols a decision at bar ``t`` must not trade: cooling down until a later re-entry."""
        return self.back > t

    def advance(self, t: int, pos: np.ndarray, cash: float, financing=None, peak=None) -> float:
        """Walk bars ``last + 1 .. t``: fill what the rules trigger on ``pos`` (changed in place)
        and return the cash after; ``financing`` accrues on the book as it was before each exit."""
        lo = self.last + 1
        if t < lo:
            return cash
        self.last = t
        self.qty[:] = pos
        start = len(self.rows)
        cols = np.flatnonzero(self.side != 0)
        if self.late_bar == lo and self.late[cols].any():
            late = self.late[cols]
            added = cols[late & ~self.late_fresh[cols]]
            if added.size:  # the entry's close: only a time stop due there
                self._walk(lo, lo, added, timed=True)
            after = cols[late]
            if lo < t and (self.side[after] != 0).any():
                self._walk(lo + 1, t, after[self.side[after] != 0])
            cols = cols[~late]
        if cols.size:
            self._walk(lo, t, cols)
        for col in np.flatnonzero((self.back >= lo) & (self.back <= t)):
            self._reenter(int(col), int(self.back[col]), t)
        if len(self.rows) == start:
            return cash
        new = sorted(self.rows[start:], key=lambda row: (row[0], row[1]))
        self.rows[start:] = new
        for bar in sorted({row[0] for row in new}):
            if financing is not None:
                cash = financing.accrue(bar, pos, cash)
            if peak is not None and bar - 1 > peak.last:
                peak(bar - 1, pos, cash)
            for row in new:
                if row[0] == bar:
                    cash -= self._fill(row)
                    pos[row[1]] += row[2]
        return cash

    def _walk(self, lo: int, hi: int, cols: np.ndarray, timed: bool = False) -> None:
        """Bars ``lo..hi`` for positions ``cols`` (``timed``: their time stops only)."""
        path = slice(lo, hi + 1)
        may, best = self._may_fire(path, cols, timed)
        calm = cols[~may]  # no level within the block's range: only the best price and age move
        self.extreme[calm] = best[~may]
        self.held[calm] += hi + 1 - lo
        cols = cols[may]
        if cols.size == 0:
            return
        levels, index = self._levels_for(cols, timed)
        side = self.side[cols]
        hits = first_exit(self.o[path, cols], self.h[path, cols], self.lo[path, cols],
                          self.c[path, cols], side, levels, self.extreme[cols], self.held[cols])
        fired = hits.bar >= 0
        quiet = cols[~fired]
        self.extreme[quiet] = hits.extreme[~fired]
        self.held[quiet] = hits.held[~fired]
        for j in np.flatnonzero(fired):
            col, row = int(cols[j]), int(hits.bar[j])
            r = int(index[hits.rule[j]])
            share = self.shares[r]
            qty = -self.qty[col] if share is None else -min(
                abs(share[self.k, col] * self.base[col]), abs(self.qty[col])) * np.sign(self.qty[col])
            bar = lo + row
            self._emit(bar, col, qty, hits.price[j], hits.trigger[j], bool(hits.gap[j]), r)
            if self.qty[col] == 0:
                self.side[col] = 0.0
                if self.rules[r].cooldown is not None:
                    self.back[col] = bar + self.rules[r].cooldown + 1
                    self.back_qty[col] = -qty
            else:  # a sleeve's share closed: the rest walks on from the next bar
                self.resting[r, col] = True
                best = self.h if side[j] > 0 else self.lo
                seen = best[lo: bar + 1, col]
                self.extreme[col] = (np.nanmax if side[j] > 0 else np.nanmin)(
                    np.append(seen, self.extreme[col]))
                self.held[col] += row + 1
                if self.rules[r].cooldown is not None:
                    self.back[col] = bar + self.rules[r].cooldown + 1
                    self.back_qty[col] = -qty
                if bar < hi:
                    self._walk(bar + 1, hi, np.array([col]))

    def _may_fire(self, path: slice, cols: np.ndarray,
                  timed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Which positions some rule could fill in the bars of ``path`` (a necessary condition
        from the block's extremes: most intervals touch no level, and skip ``first_exit``), and
        each position's best price since entry at the block's end."""
        low = np.fmin.reduce(self.lo[path, cols], axis=0)
        high = np.fmax.reduce(self.h[path, cols], axis=0)
        if not self.close_only:  # an open outside the bar's range still counts
            opens = self.o[path, cols]
            low, high = np.fmin(low, np.fmin.reduce(opens, axis=0)), np.fmax(high, np.fmax.reduce(opens, axis=0))
        long = self.side[cols] > 0
        worst, good = np.where(long, low, high), np.where(long, high, low)
        extreme = self.extreme[cols]
        best = np.where(long, np.fmax(extreme, high), np.fmin(extreme, low))
        may = np.zeros(cols.size, dtype=bool)
        bars = path.stop - path.start
        for r, kind in enumerate(self.types):
            lv = self.levels[r]
            if timed and kind is not OrderType.MARKET_ON_CLOSE:
                continue
            if kind is OrderType.STOP or kind is OrderType.TRAILING_STOP:
                level = (lv["stop"][cols] if kind is OrderType.STOP else
                         ExitLevels(rule="", type=kind, trail_amount=lv["trail_amount"][cols],
                                    trail_percent=lv["trail_percent"][cols]).trigger(self.side[cols], best))
                may |= np.where(long, worst <= level, worst >= level)
            elif kind is OrderType.LIMIT:
                level = lv["limit"][cols]
                may |= np.where(long, good >= level, good <= level)
            elif kind is OrderType.MARKET_ON_CLOSE:
                after = lv["after"][cols]
                may |= (after >= 1) & (self.held[cols] + bars >= after)
        return may, best

    def _levels_for(self, cols: np.ndarray, timed: bool = False) -> tuple[list[ExitLevels], list[int]]:
        levels, index = [], []
        for r, kind in enumerate(self.types):
            if kind is None or (timed and kind is not OrderType.MARKET_ON_CLOSE):
                continue
            lv = self.levels[r]
            live = ~self.resting[r, cols]
            if self.shares[r] is not None:
                live &= self.shares[r][self.k, cols] > 0
            if not live.any():
                continue
            every = live.all()
            fields = {f: lv[f][cols] if every else np.where(live, lv[f][cols], -1 if f == "after" else np.nan)
                      for f in _FIELDS_OF[kind]}
            levels.append(ExitLevels(rule=self.names[r], type=kind, **fields))
            index.append(r)
        return levels, index

    def _reenter(self, col: int, bar: int, hi: int) -> None:
        qty = float(self.back_qty[col])
        self.back[col] = -1
        price = self.reference[bar, col]
        if not (np.isfinite(price) and price > 0) or qty == 0:
            return  # no session to buy back in: the next decision decides
        before = self.qty[col]
        self._emit(bar, col, qty, price, np.nan, False, -1)
        after = self.qty[col]
        if np.sign(after) != np.sign(before) or before == 0:
            self.entry[col] = self.extreme[col] = price
            self.held[col] = 0
        else:
            self.entry[col] = (before * self.entry[col] + qty * price) / after
        self.side[col] = np.sign(after)
        self.resting[:, col] = False
        self._set_levels(np.array([col]), bar - 1)
        self._walk(bar, hi, np.array([col]))

    def _emit(self, bar: int, col: int, qty: float, level: float, trigger: float, gap: bool,
              r: int) -> None:
        kind = OrderType.MARKET_ON_OPEN if r < 0 else self.types[r]
        stop = float(trigger) if np.isfinite(trigger) and kind is not OrderType.LIMIT else None
        terms = OrderTerms(type=kind, stop=stop,
                           limit=float(trigger) if kind is OrderType.LIMIT else None,
                           tif=TimeInForce.GTC, reason=REENTRY if r < 0 else self.names[r])
        if kind is OrderType.TRAILING_STOP:
            amount, pct = (self.levels[r][f][col] for f in ("trail_amount", "trail_percent"))
            terms = dataclasses.replace(terms, trail_amount=float(amount) if np.isfinite(amount) else None,
                                        trail_percent=None if np.isfinite(amount) else float(pct))
        terms.check(self.symbols[col], float(qty))
        if not (np.isfinite(level) and level > 0):
            raise OrderError(f"{kind.value} order for {self.symbols[col]}: fill price {level!r} "
                             f"is not a finite positive price")
        self.rows.append((bar, col, float(qty), float(level), float(trigger), gap, r,
                          float(self.entry[col]), float(np.sign(self.qty[col]) or np.sign(qty)),
                          self.decision))
        self.qty[col] += qty

    def _fill(self, row: tuple) -> float:
        """The cash the exit costs (negative: proceeds), with the broker's costs."""
        bar, col, qty, level = row[0], row[1], row[2], row[3]
        q, ref = np.array([qty]), np.array([level])
        impact = np.array([self.costs.impact_scale[bar - 1, col]])
        impact = np.where(np.isfinite(impact), impact, 0.0)
        price, spread, imp = self.costs.fill(ref, impact, q)
        fee = max(float(self.costs.commission.fee(q, np.abs(q) * ref)[0]),
                  self.costs.commission.minimum)
        self.priced.append((float(price[0]), fee, float(spread[0]), float(imp[0])))
        return float(qty * price[0]) + fee

    # ------------------------------------------------------------------------------ the record

    def apply(self, d_pos: np.ndarray, d_cash: np.ndarray) -> None:
        """Add the exits' share and cash flows to a walk's per-bar flows."""
        if not self.rows:
            return
        bar, col, qty = (np.array([row[i] for row in self.rows]) for i in range(3))
        bar, col = bar.astype(np.int64), col.astype(np.int64)
        np.add.at(d_pos, (bar, col), qty)
        priced = np.array(self.priced).reshape(-1, 4)
        np.add.at(d_cash, bar, -(qty * priced[:, 0] + priced[:, 1]))

    def trades(self) -> ExitTrades:
        rows = np.array([row[:7] for row in self.rows], dtype=float).reshape(-1, 7)
        more = np.array([row[7:] for row in self.rows], dtype=float).reshape(-1, 3)
        priced = np.array(self.priced, dtype=float).reshape(-1, 4)
        return ExitTrades(
            rules=self.names, types=[("" if t is None else t.value) for t in self.types],
            bar=rows[:, 0].astype(np.int64), symbol=rows[:, 1].astype(np.int64),
            quantity=rows[:, 2], level=rows[:, 3], trigger=rows[:, 4], gap=rows[:, 5] > 0,
            rule=rows[:, 6].astype(np.int64), entry=more[:, 0], side=more[:, 1],
            decision=more[:, 2].astype(np.int64), price=priced[:, 0], commission=priced[:, 1],
            spread_cost=priced[:, 2], impact_cost=priced[:, 3], close_only=self.close_only)
