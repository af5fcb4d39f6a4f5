"""The exchange's inner loop, compiled with numba: resting orders against replayed book events.

Book rows are snapshots after each event (``OrderBook``), as integer price ticks; row ``k``'s
event is its trade (if any, from the book's trades) followed by the depth changes from row
``k - 1`` to row ``k``. For every resting order of ours, in this order:

1. **Trade** at price ``p`` against the resting side: an order priced through ``p`` (a buy above
   it, a sell below) fills whole; an order at ``p`` advances in its queue by the traded size,
   and what trades beyond the volume ahead of it fills it (partially, up to its size).
2. **Depth change** at the order's price from ``prev`` to ``new`` shares (the queue model):

   - ``RISK_AVERSE``: the volume ahead only shrinks when the level shrinks below it
     (``ahead = min(ahead, new)``): cancellations are assumed to come from behind the order,
     and only trades move it forward. hftbacktest's ``RiskAdverseQueueModel``.
   - ``POWER_PROB``: a decrease not explained by the trades just seen is a cancellation, ahead
     of the order with probability ``1 - p`` where ``p = back^n / (back^n + ahead^n)``
     (``back`` the volume behind it, ``n`` = ``queue_power``): ``ahead -= (1 - p) * chg`` (and
     what the back cannot absorb), capped by the level. hftbacktest's ``PowerProbQueueModel``
     (after Rigtorp 2013); ``n`` large tends to the risk-averse model.
3. **Cross**: an order the opposite best price reached (a buy at or above the best ask) fills
   whole at its own price.

Without partial fills (``partial=False``, hftbacktest's ``NoPartialFillExchange``) an order
fills whole once the volume ahead of it has traded, and a crossing order whole at the best price.

A new order joins the back of its level (``ahead`` = the level's size when it arrives; 0 at a
price with no visible size). Fills are recorded with the row they happened at.
"""

from __future__ import annotations

import numba
import numpy as np

RISK_AVERSE, POWER_PROB = 0, 1
FREE, RESTING = 0, 1
NO_BID, NO_ASK = -(1 << 62), 1 << 62


@numba.njit(cache=True, inline="always")
def qty_at(ticks: np.ndarray, qty: np.ndarray, k: int, px: int) -> float:
    for level in range(ticks.shape[1]):
        if ticks[k, level] == px:
            return qty[k, level]
    return 0.0


@numba.njit(cache=True)
def _fill(slot, k, px, qty, maker, o_leaves, o_state, f_slot, f_row, f_px, f_qty, f_maker, nfill):
    o_leaves[slot] -= qty
    if o_leaves[slot] <= 1e-9:
        o_leaves[slot] = 0.0
        o_state[slot] = FREE
    f_slot[nfill] = slot
    f_row[nfill] = k
    f_px[nfill] = px
    f_qty[nfill] = qty
    f_maker[nfill] = maker
    return nfill + 1


@numba.njit(cache=True)
def _queue_trade(slot, qty, lot, o_front, o_cum):
    o_front[slot] -= qty
    o_cum[slot] += qty
    execute = np.round(-o_front[slot] / lot) * lot
    if execute > 0:
        o_front[slot] = 0.0
        return execute
    return 0.0


@numba.njit(cache=True)
def _queue_depth(slot, prev, new, model, power, o_front, o_cum):
    if model == RISK_AVERSE:
        o_front[slot] = min(o_front[slot], new)
        return
    chg = prev - new - o_cum[slot]
    o_cum[slot] = 0.0
    if chg < 0:
        o_front[slot] = min(o_front[slot], new)
        return
    front = o_front[slot]
    back = prev - front
    fb, ff = back ** power, front ** power
    p = fb / (fb + ff) if fb + ff > 0 else np.nan
    if np.isinf(p):
        p = 1.0
    est = front - (1.0 - p) * chg + min(back - p * chg, 0.0)
    o_front[slot] = new if np.isnan(est) else min(est, new)


@numba.njit(cache=True)
def run_rows(k0, k1, j, bt, bq, at, aq, tr_row, tr_tick, tr_qty, tr_sign,
             o_state, o_side, o_px, o_leaves, o_front, o_cum, model, power, lot, partial,
             f_slot, f_row, f_px, f_qty, f_maker, nfill):
    """Replay rows ``[k0, k1)`` (trade pointer ``j``); stops early at a row boundary when the
    fill buffers have fewer than ``len(o_state)`` free places. Returns ``(k, j, nfill)``."""
    return run_live(np.flatnonzero(o_state == RESTING), k0, k1, j, bt, bq, at, aq, tr_row, tr_tick, tr_qty,
                    tr_sign, o_state, o_side, o_px, o_leaves, o_front, o_cum, model, power, lot, partial,
                    f_slot, f_row, f_px, f_qty, f_maker, nfill)


@numba.njit(cache=True)
def run_live(live, k0, k1, j, bt, bq, at, aq, tr_row, tr_tick, tr_qty, tr_sign,
             o_state, o_side, o_px, o_leaves, o_front, o_cum, model, power, lot, partial,
             f_slot, f_row, f_px, f_qty, f_maker, nfill):
    """``run_rows`` given ``live``, the slots resting now in ascending order (a caller that
    keeps them saves the allocation)."""
    cap = f_slot.shape[0] - o_state.shape[0]
    if live.size == 0:             # nothing resting: the events change nothing of ours
        return k1, j, nfill
    k = k0
    while k < k1:
        if nfill > cap:
            break
        while j < tr_row.shape[0] and tr_row[j] < k:
            j += 1
        while j < tr_row.shape[0] and tr_row[j] == k:
            p, q, resting = tr_tick[j], tr_qty[j], -tr_sign[j]
            for s in live:
                if o_state[s] != RESTING or o_side[s] != resting:
                    continue
                through = o_px[s] > p if resting > 0 else o_px[s] < p
                if through:
                    nfill = _fill(s, k, o_px[s], o_leaves[s], True, o_leaves, o_state,
                                  f_slot, f_row, f_px, f_qty, f_maker, nfill)
                elif o_px[s] == p:
                    execute = _queue_trade(s, q, lot, o_front, o_cum)
                    if execute > 0:
                        size = min(execute, o_leaves[s]) if partial else o_leaves[s]
                        nfill = _fill(s, k, o_px[s], size, True, o_leaves, o_state,
                                      f_slot, f_row, f_px, f_qty, f_maker, nfill)
            j += 1
        if k > 0:
            for s in live:
                if o_state[s] != RESTING:
                    continue
                if o_side[s] > 0:
                    prev, new = qty_at(bt, bq, k - 1, o_px[s]), qty_at(bt, bq, k, o_px[s])
                else:
                    prev, new = qty_at(at, aq, k - 1, o_px[s]), qty_at(at, aq, k, o_px[s])
                if prev != new:
                    _queue_depth(s, prev, new, model, power, o_front, o_cum)
        for s in live:
            if o_state[s] != RESTING:
                continue
            if (o_side[s] > 0 and at[k, 0] <= o_px[s]) or (o_side[s] < 0 and bt[k, 0] >= o_px[s]):
                nfill = _fill(s, k, o_px[s], o_leaves[s], True, o_leaves, o_state,
                              f_slot, f_row, f_px, f_qty, f_maker, nfill)
        k += 1
    return k, j, nfill


@numba.njit(cache=True)
def arrive(slot, side, px, qty, is_market, k, bt, bq, at, aq,
           o_state, o_side, o_px, o_leaves, o_front, o_cum, partial,
           f_slot, f_row, f_px, f_qty, f_maker, nfill):
    """A new order reaches the exchange after row ``k``: what crosses fills as taker against
    the visible levels (a market order walks them all and what is left is cancelled; without
    ``partial`` fills, all of it at the best price), the rest rests at ``px`` behind the
    level's visible size. Returns ``(nfill, ahead)``."""
    o_side[slot], o_px[slot], o_leaves[slot], o_cum[slot] = side, px, qty, 0.0
    o_state[slot] = RESTING
    levels = bt.shape[1]
    for level in range(levels):
        if o_state[slot] != RESTING:
            break
        lvl_px = at[k, level] if side > 0 else bt[k, level]
        lvl_qty = aq[k, level] if side > 0 else bq[k, level]
        if lvl_px == NO_ASK or lvl_px == NO_BID or lvl_qty <= 0:
            break
        if not is_market and ((side > 0 and lvl_px > px) or (side < 0 and lvl_px < px)):
            break
        size = min(lvl_qty, o_leaves[slot]) if partial else o_leaves[slot]
        nfill = _fill(slot, k, lvl_px, size, False, o_leaves, o_state,
                      f_slot, f_row, f_px, f_qty, f_maker, nfill)
    if o_state[slot] != RESTING:
        return nfill, 0.0
    if is_market:
        o_state[slot] = FREE
        return nfill, 0.0
    ahead = qty_at(bt, bq, k, px) if side > 0 else qty_at(at, aq, k, px)
    o_front[slot] = ahead
    return nfill, ahead
