"""Exit levels and when they fill: the rule the simulated broker, the meta-labeller's barriers
and the tests share.

An exit rule (``plugins/exits/``) turns open positions into ``ExitLevels``: the order it keeps
working (a stop, a take-profit limit, a trailing stop, or a market-on-close after some bars).
``first_exit`` walks a price path forward from the entry and says, per position, in which bar
the first of several rules fills, at what price, and why. The fill convention, per bar:

* **Gap**: a bar that opens through a level fills at the open (a stop-loss gapped through is
  worse than its level; a take-profit gapped through is better).
* **Touch**: a level the bar's low..high range reaches fills at the level.
* **Time**: a time stop fills at the close (the closing auction) of its bar.
* **Several in one bar**: what the open gaps through first (at the open); else, without a
  path inside the bar, the conservative rule: a stop before a take-profit; among stops the one
  touched first on the way down (long; up for a short), likewise among take-profits; a time
  stop last (at the close). A caller that has the bar's intraday path (bins) passes the bins
  as the path instead, and their order resolves it.
* **Trailing stops** ratchet on the best price since entry up to the previous bar (the high
  for a long, the low for a short), then check the bar: a bar's own high cannot raise the stop
  it is checked against, since the path inside the bar is unknown (vectorbt's convention).
* **Close-only data** passes the close as open, high and low: a close through a level fills
  at that close (the proxy is the gap rule; the report states it).

Costs (spread, impact, commission) are the broker's, on top of these prices.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from pipeline.core.orders import OrderType

EXIT_TYPES = (OrderType.STOP, OrderType.LIMIT, OrderType.TRAILING_STOP, OrderType.MARKET_ON_CLOSE)

# within one bar: an open gapped through, then stops, then take-profits, then the close
_GAP, _STOP, _LIMIT, _CLOSE = 0, 1, 2, 3


@dataclasses.dataclass
class ExitLevels:
    """One rule's exit order for each of ``M`` open positions (struct of arrays, row = position).

    ``type`` is one of ``EXIT_TYPES``: ``STOP`` at ``stop`` (a stop-loss), ``LIMIT`` at
    ``limit`` (a take-profit), ``TRAILING_STOP`` by ``trail_amount`` (price) or
    ``trail_percent`` (fraction; NaN where the other is used), ``MARKET_ON_CLOSE`` in the bar
    ``after`` bars after the entry (a time stop). NaN levels (or ``after`` < 0): no order for
    that position.
    """

    rule: str
    type: OrderType
    stop: Optional[np.ndarray] = None
    limit: Optional[np.ndarray] = None
    trail_amount: Optional[np.ndarray] = None
    trail_percent: Optional[np.ndarray] = None
    after: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.type not in EXIT_TYPES:
            raise ValueError(f"exit rule {self.rule}: {self.type} is not an exit order type")

    def trigger(self, side: np.ndarray, extreme: np.ndarray) -> np.ndarray:
        """The level in force for positions whose best price since entry is ``extreme``
        (broadcasts: ``extreme`` may be ``B x M``); NaN where the rule sends nothing."""
        if self.type is OrderType.STOP:
            return np.broadcast_to(self.stop, np.shape(extreme)).astype(float)
        if self.type is OrderType.LIMIT:
            return np.broadcast_to(self.limit, np.shape(extreme)).astype(float)
        if self.type is OrderType.TRAILING_STOP:
            by_amount = extreme - side * _or_nan(self.trail_amount, side)
            by_percent = extreme * (1.0 - side * _or_nan(self.trail_percent, side))
            return np.where(np.isfinite(by_amount), by_amount, by_percent)
        return np.full(np.shape(extreme), np.nan)


@dataclasses.dataclass
class ExitHits:
    """Where each position's first exit filled. ``bar`` is a row of the path (-1: none),
    ``rule`` an index into the rules (-1: none), ``price`` the fill before costs, ``trigger``
    the level in force (NaN for a time stop), ``gap`` whether the bar opened through it.
    ``extreme`` is the best price since entry at the path's end, ``held`` the bars held then
    (for a caller that continues the walk with a later path)."""

    bar: np.ndarray
    rule: np.ndarray
    price: np.ndarray
    trigger: np.ndarray
    gap: np.ndarray
    extreme: np.ndarray
    held: np.ndarray


def first_exit(open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
               side: np.ndarray, levels: Sequence[ExitLevels],
               extreme: Optional[np.ndarray] = None, held: Optional[np.ndarray] = None) -> ExitHits:
    """The first exit of each position over a path of ``B`` bars (``B x M`` arrays; row 0 is
    the first bar the exits work in, after the entry's fill).

    ``side`` is +1 (long) or -1 (short) per position; ``extreme`` the best price since entry
    before the path (the entry price for a new position) and ``held`` the bars held before the
    path (0 for a new one). A position that fills no exit has ``bar == -1``.
    """
    o, h, lo, c = (np.asarray(a, dtype=float) for a in (open, high, low, close))
    n_bars, m = c.shape
    side = np.asarray(side, dtype=float)
    extreme = np.asarray(c[0] if extreme is None else extreme, dtype=float)
    held = np.zeros(m, dtype=np.int64) if held is None else np.asarray(held, dtype=np.int64)
    best = np.where(side > 0, h, lo)
    run = np.where(side > 0, np.fmax.accumulate(np.vstack([extreme, best]), axis=0),
                   np.fmin.accumulate(np.vstack([extreme, best]), axis=0))
    before = run[:-1]  # the best price up to the previous bar, what a trailing stop trails

    keys = np.full((len(levels), 4, m), np.inf)   # rule x (bar, within, tie, rule) x position
    fills = np.full((len(levels), 2, m), np.nan)  # rule x (price, trigger) x position
    gaps = np.zeros((len(levels), m), dtype=bool)
    for r, rule in enumerate(levels):
        if rule.type is OrderType.MARKET_ON_CLOSE:
            after = np.asarray(rule.after, dtype=np.int64)
            at = after - held - 1  # the bar ``after`` bars after the entry (held counts bars done)
            ok = (after >= 1) & (at >= 0) & (at < n_bars)
            idx = np.where(ok, at, 0)
            keys[r, 0] = np.where(ok, idx, np.inf)
            keys[r, 1] = _CLOSE
            keys[r, 2] = 0.0
            fills[r, 0] = np.where(ok, c[idx, np.arange(m)], np.nan)
            continue
        level = rule.trigger(side, before)
        stop_like = rule.type is not OrderType.LIMIT
        down = (side > 0) == stop_like  # the level is below the price: hit on the way down
        gapped = np.where(down, o <= level, o >= level)
        touched = np.where(down, lo <= level, h >= level) & (lo <= h)
        hit = (gapped | touched) & np.isfinite(level)
        any_hit = hit.any(axis=0)
        first = np.where(any_hit, hit.argmax(axis=0), 0)
        cols = np.arange(m)
        lvl = level[first, cols]
        gap = gapped[first, cols] & any_hit
        keys[r, 0] = np.where(any_hit, first, np.inf)
        keys[r, 1] = np.where(gap, _GAP, _STOP if stop_like else _LIMIT)
        # the level met first on the price's way from the open: the highest stop of a long
        keys[r, 2] = np.where(gap, 0.0, np.where(down, -lvl, lvl))
        fills[r, 0] = np.where(any_hit, np.where(gap, o[first, cols], lvl), np.nan)
        fills[r, 1] = np.where(any_hit, lvl, np.nan)
        gaps[r] = gap
    keys[:, 3] = np.arange(len(levels))[:, None]

    bar = np.full(m, -1, dtype=np.int64)
    rule_of = np.full(m, -1, dtype=np.int64)
    price = np.full(m, np.nan)
    trigger = np.full(m, np.nan)
    gap = np.zeros(m, dtype=bool)
    if levels:
        order = np.lexsort((keys[:, 3], keys[:, 2], keys[:, 1], keys[:, 0]), axis=0)[0]
        cols = np.arange(m)
        fired = np.isfinite(keys[order, 0, cols])
        bar = np.where(fired, keys[order, 0, cols], -1).astype(np.int64)
        rule_of = np.where(fired, order, -1)
        price = np.where(fired, fills[order, 0, cols], np.nan)
        trigger = np.where(fired, fills[order, 1, cols], np.nan)
        gap = fired & gaps[order, cols]
    return ExitHits(bar=bar, rule=rule_of, price=price, trigger=trigger, gap=gap,
                    extreme=run[-1], held=held + n_bars)


def _or_nan(values: Optional[np.ndarray], like: np.ndarray) -> np.ndarray:
    return np.full(np.shape(like), np.nan) if values is None else np.asarray(values, dtype=float)
