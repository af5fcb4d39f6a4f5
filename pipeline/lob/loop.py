"""The replay loop compiled with numba, for a strategy with a compiled rule
(``EventStrategy.quote_kernel``: quotes kept or replaced as ``MarketMaker.decide`` does;
``target_kernel``: a position reached by market orders as ``Microstructure.decide`` does):
``pipeline/lob/engine.py``'s ``Replay.run`` step for step, with the exchange kernel's own
functions (``kernel.run_live``, ``kernel.arrive``) and no Python per decision.

What ``Replay`` keeps in objects and heaps lives here in tables (``Tables``): orders, fills,
the exchange's pending arrivals and cancels and the strategy's delayed knowledge (each a table
of records in the order they were made, plus a binary heap of record numbers ordered by
``(time, record)``, which is ``Replay``'s ``(time, seq)``), equity marks and actions. The
loop stops (returns a status) where only Python can go on, at points where it can resume:
``MORE`` when the book buffer is used up (``Replay._more`` appends the next chunk), ``ROOM``
when a table or the pre-drawn latencies run short (``Tables.grow``), ``BAD`` on an order
``Replay.send`` would refuse. Lognormal latencies are drawn from the replay's generator in
blocks: the same numbers in the same order as ``Replay._latency``'s one at a time.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from pipeline.core.lob import NO_QUOTE, quote_signature, target_signature
from pipeline.lob import kernel

NS = 1_000_000_000
DONE, MORE, ROOM, BAD = 1, 2, 3, 4
SENT, RESTING, FILLED, CANCELLED, EXPIRED = range(5)
STATUS = ("resting", "resting", "filled", "cancelled", "expired")     # not arrived yet: resting
NEW, CANCEL = 0, 1              # what reaches the exchange (and the actions' kinds)
FILL, GONE = 0, 1               # what the strategy learns
# columns: orders (int, float), fills (int, float), records of pending and known events
O_SIDE, O_TICK, O_SENT, O_ENTRY, O_RESP, O_SLOT, O_STATE, O_DONE, O_CANCEL, O_MARKET = range(10)
O_QTY, O_AHEAD, O_FILLED, O_KNOWN = range(4)
F_ORDER, F_TIME, F_MAKER = range(3)
F_PX, F_QTY, F_FEE, F_MID, F_MID1, F_MID10 = range(6)
R_TIME, R_KIND, R_ORDER = range(3)
K_QTY, K_PX, K_FEE = range(3)
# counters (c), money (x), settings (ci, cf)
(C_NOW, C_KP, C_J, C_ORDERS, C_FILLS, C_PEND, C_PHEAP, C_KNOWN, C_KHEAP, C_MARKS, C_ACTS, C_OPEN,
 C_DRAW, C_M1, C_M10, C_LAST, C_BAD) = range(17)
X_CASH, X_POS, X_KCASH, X_KPOS, X_BAD = range(5)
I_MODEL, I_PARTIAL, I_STEP, I_FEED, I_ENTRY, I_RESP, I_LOGNORMAL, I_MARGIN, I_TAKER = range(9)
G_POWER, G_TICK, G_MAKER_BPS, G_TAKER_BPS, G_MAKER_PS, G_TAKER_PS, G_ENTRY, G_RESP, G_QTY = range(9)
MARKOUTS = ((C_M1, F_MID1, NS), (C_M10, F_MID10, 10 * NS))   # engine.MARKOUTS: 1 s and 10 s


@numba.njit(cache=True, inline="always")
def _before(key, a, b):
    return key[a] < key[b] or (key[a] == key[b] and a < b)


@numba.njit(cache=True, inline="always")
def _push(heap, n, key, rec):
    i = n
    while i > 0:
        parent = (i - 1) >> 1
        if _before(key, heap[parent], rec):
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = rec
    return n + 1


@numba.njit(cache=True, inline="always")
def _pop(heap, n, key):
    top, n = heap[0], n - 1
    last, i = heap[n], 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _before(key, heap[child + 1], heap[child]):
            child += 1
        if _before(key, last, heap[child]):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = last
    return top, n


@numba.njit(cache=True, inline="always")
def _upto(t, v, hint):
    """``np.searchsorted(t, v, side="right")`` (how many of the sorted ``t`` are <= ``v``),
    searched outward from ``hint``: the loop's clocks move little between calls, and a binary
    search over the whole buffer misses the cache at every step."""
    n = t.shape[0]
    hint = min(max(hint, 0), n)
    if hint < n and t[hint] <= v:
        lo, step = hint + 1, 1
        while hint + step < n and t[hint + step] <= v:
            lo = hint + step + 1
            step *= 2
        hi = min(hint + step, n)
    else:
        hi, step = hint, 1
        while hint - step >= 0 and t[hint - step] > v:
            hi = hint - step
            step *= 2
        lo = max(hint - step + 1, 0)
    while lo < hi:
        mid = (lo + hi) >> 1
        if t[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, inline="always")
def _mid(bt, at, r, tick):
    b, a = bt[r, 0], at[r, 0]
    return (b + a) * tick / 2 if b != kernel.NO_BID and a != kernel.NO_ASK else np.nan


@numba.njit(cache=True, inline="always")
def _learn(when, kind, oid, qty, px, fee, kni, knf, kheap, c):
    n = c[C_KNOWN]
    kni[n, R_TIME], kni[n, R_KIND], kni[n, R_ORDER] = when, kind, oid
    knf[n, K_QTY], knf[n, K_PX], knf[n, K_FEE] = qty, px, fee
    c[C_KNOWN] = n + 1
    c[C_KHEAP] = _push(kheap, c[C_KHEAP], kni[:, R_TIME], n)


@numba.njit(cache=True, inline="always")
def _record_fill(slot, when, row, px_tick, qty, maker, slot_order, bt, at, oi, of, fi, ff, kni, knf, kheap,
                 c, x, cf):
    oid = slot_order[slot]
    tick = cf[G_TICK]
    px = px_tick * tick
    notional = px * qty
    if maker:
        fee = notional * cf[G_MAKER_BPS] / 1e4 + qty * cf[G_MAKER_PS]
    else:
        fee = notional * cf[G_TAKER_BPS] / 1e4 + qty * cf[G_TAKER_PS]
    side = oi[oid, O_SIDE]
    x[X_CASH] -= side * notional + fee
    x[X_POS] += side * qty
    of[oid, O_FILLED] += qty
    if of[oid, O_FILLED] >= of[oid, O_QTY] - 1e-9:
        oi[oid, O_STATE] = FILLED
    n = c[C_FILLS]
    fi[n, F_ORDER], fi[n, F_TIME], fi[n, F_MAKER] = oid, when, maker
    ff[n, F_PX], ff[n, F_QTY], ff[n, F_FEE] = px, qty, fee
    ff[n, F_MID] = _mid(bt, at, row - 1 if maker and row > 0 else row, tick)
    ff[n, F_MID1] = ff[n, F_MID10] = np.nan
    c[C_FILLS] = n + 1
    _learn(when + oi[oid, O_RESP], FILL, oid, qty, px, fee, kni, knf, kheap, c)


@numba.njit(cache=True, inline="always")
def _markouts(t, bt, at, fi, ff, c, tick, final):
    """The mid at each fill's horizons once the buffer holds a later row (or the data ended);
    fill times never decrease, so a pointer per horizon is the engine's heap."""
    for ptr, col, h in MARKOUTS:
        i = c[ptr]
        while i < c[C_FILLS]:
            target = fi[i, F_TIME] + h
            if not final and target >= t[-1]:
                break
            r = np.searchsorted(t, target, side="right") - 1
            b, a = bt[r, 0], at[r, 0]
            if b != kernel.NO_BID and a != kernel.NO_ASK:
                ff[i, col] = (b + a) * tick / 2
            i += 1
        c[ptr] = i


@numba.njit(cache=True, inline="always")
def _latency(which, draws, c, ci, cf):
    mean = cf[G_ENTRY if which == 0 else G_RESP]
    if ci[I_LOGNORMAL] and mean > 0:
        c[C_DRAW] += 1
        return np.int64(np.rint(mean * draws[c[C_DRAW] - 1] * NS))
    return ci[I_ENTRY if which == 0 else I_RESP]


@numba.njit(cache=True, inline="always")
def _done(oid, now, oi, opn, c):
    if oi[oid, O_DONE] >= 0:
        return
    oi[oid, O_DONE] = now
    n = c[C_OPEN]
    i = 0
    while opn[i] != oid:
        i += 1
    for m in range(i, n - 1):
        opn[m] = opn[m + 1]
    c[C_OPEN] = n - 1


@numba.njit(cache=True, inline="always")
def _catch_up(now, oi, of, opn, kni, knf, kheap, c, x):
    while c[C_KHEAP] > 0 and kni[kheap[0], R_TIME] <= now:
        rec, left = _pop(kheap, c[C_KHEAP], kni[:, R_TIME])
        c[C_KHEAP] = left
        oid = kni[rec, R_ORDER]
        if kni[rec, R_KIND] == FILL:
            qty = knf[rec, K_QTY]
            side = oi[oid, O_SIDE]
            of[oid, O_KNOWN] += qty
            x[X_KPOS] += side * qty
            x[X_KCASH] -= side * qty * knf[rec, K_PX] + knf[rec, K_FEE]
            if of[oid, O_KNOWN] >= of[oid, O_QTY] - 1e-9:
                _done(oid, now, oi, opn, c)
        else:
            _done(oid, now, oi, opn, c)


@numba.njit(cache=True, inline="always")
def _pending(now, delay, kind, oid, pend, pheap, act, c):
    n = c[C_PEND]
    pend[n, R_TIME], pend[n, R_KIND], pend[n, R_ORDER] = now + delay, kind, oid
    c[C_PEND] = n + 1
    c[C_PHEAP] = _push(pheap, c[C_PHEAP], pend[:, R_TIME], n)
    a = c[C_ACTS]
    act[a, R_TIME], act[a, R_KIND], act[a, R_ORDER] = now, kind, oid
    c[C_ACTS] = a + 1


@numba.njit(cache=True, inline="always")
def _quote(side, want, now, oi, of, opn, pend, pheap, act, draws, c, ci, cf):
    """``MarketMaker.decide`` for one side: keep the first open order at the wanted price (not
    being cancelled), cancel the others, send one when none is kept."""
    kept = -1
    for i in range(c[C_OPEN]):
        oid = opn[i]
        if oi[oid, O_SIDE] != side:
            continue
        if kept < 0 and want != NO_QUOTE and oi[oid, O_CANCEL] < 0 and oi[oid, O_TICK] == want:
            kept = oid
        elif oi[oid, O_CANCEL] < 0:
            oi[oid, O_CANCEL] = now
            _pending(now, _latency(0, draws, c, ci, cf), CANCEL, oid, pend, pheap, act, c)
    if kept < 0 and want != NO_QUOTE:
        _send(side, want, cf[G_QTY], False, now, oi, of, opn, pend, pheap, act, draws, c, ci, cf)


@numba.njit(cache=True, inline="always")
def _send(side, tick, qty, market, now, oi, of, opn, pend, pheap, act, draws, c, ci, cf):
    """``Replay.send``: a limit order at ``tick`` or a market order (tick 0)."""
    oid = c[C_ORDERS]
    entry = _latency(0, draws, c, ci, cf)
    resp = _latency(1, draws, c, ci, cf)
    oi[oid, O_SIDE], oi[oid, O_TICK], oi[oid, O_SENT], oi[oid, O_ENTRY], oi[oid, O_RESP] = side, tick, now, entry, resp
    oi[oid, O_SLOT], oi[oid, O_STATE], oi[oid, O_DONE], oi[oid, O_CANCEL] = -1, SENT, -1, -1
    oi[oid, O_MARKET] = market
    of[oid, O_QTY], of[oid, O_AHEAD], of[oid, O_FILLED], of[oid, O_KNOWN] = qty, np.nan, 0.0, 0.0
    c[C_ORDERS] = oid + 1
    opn[c[C_OPEN]] = oid
    c[C_OPEN] += 1
    _pending(now, entry, NEW, oid, pend, pheap, act, c)


@numba.njit(cache=True, inline="always")
def _room(c, oi, fi, pend, kni, eqi, act, opn, draws, ci):
    """Whether every table has room for one more step (a decision, an arrival or a call of
    ``kernel.run_rows``): ``ci[I_MARGIN]`` rows, and the open orders' cancels."""
    need = ci[I_MARGIN] + c[C_OPEN]
    return (oi.shape[0] - c[C_ORDERS] >= need and fi.shape[0] - c[C_FILLS] >= need
            and pend.shape[0] - c[C_PEND] >= need and kni.shape[0] - c[C_KNOWN] >= need
            and eqi.shape[0] - c[C_MARKS] >= need and act.shape[0] - c[C_ACTS] >= need
            and opn.shape[0] - c[C_OPEN] >= need
            and (not ci[I_LOGNORMAL] or draws.shape[0] - c[C_DRAW] >= c[C_OPEN] + 4))


def _run(quote_rule, target_rule, params, t, bt, bq, at, aq, tr_row, tr_tick, tr_qty, tr_sign, ft, fbp, fbs, fap, fas, ftr_px,
         ftr_qty, ftr_sign, o_state, o_side, o_px, o_leaves, o_front, o_cum, slot_order, f_slot, f_row, f_px,
         f_qty, f_maker, oi, of, fi, ff, pend, pheap, kni, knf, kheap, eqi, eqf, act, opn, draws, c, x, ci, cf):
    """``Replay.run`` from decision time ``c[C_NOW]`` until the data ends or Python is needed;
    the strategy's decision is ``quote_rule``'s or, with ``ci[I_TAKER]``, ``target_rule``'s."""
    tick, model, power, partial = cf[G_TICK], ci[I_MODEL], cf[G_POWER], ci[I_PARTIAL] != 0
    now = c[C_NOW]
    live = np.empty(o_state.shape[0], np.int64)
    seen = c[C_J]                   # trades up to the last row the strategy received (a search hint)
    while True:
        # -- Replay.advance(now): events and arrivals up to now, in time order
        while True:
            has = c[C_PHEAP] > 0
            nxt = pend[pheap[0], R_TIME] if has else 0
            arrival = has and nxt <= now
            k1 = _upto(t, nxt if arrival else now, c[C_KP])
            while c[C_KP] < k1:                                          # Replay._rows
                if not _room(c, oi, fi, pend, kni, eqi, act, opn, draws, ci):
                    return ROOM
                n = 0
                for s in range(o_state.shape[0]):
                    if o_state[s] == kernel.RESTING:
                        live[n] = s
                        n += 1
                if n == 0:             # nothing resting: run_live would return at once (it costs a call)
                    c[C_KP] = k1
                    break
                k, j, n = kernel.run_live(live[:n], c[C_KP], k1, c[C_J], bt, bq, at, aq, tr_row, tr_tick, tr_qty,
                                          tr_sign, o_state, o_side, o_px, o_leaves, o_front, o_cum, model, power,
                                          1.0, partial, f_slot, f_row, f_px, f_qty, f_maker, 0)
                c[C_J] = j
                for i in range(n):
                    _record_fill(f_slot[i], t[f_row[i]], f_row[i], f_px[i], f_qty[i], True, slot_order, bt, at,
                                 oi, of, fi, ff, kni, knf, kheap, c, x, cf)
                c[C_KP] = k
            if c[C_KP] == t.size and not c[C_LAST]:
                _markouts(t, bt, at, fi, ff, c, tick, False)
                return MORE
            if not arrival:
                break
            if not _room(c, oi, fi, pend, kni, eqi, act, opn, draws, ci):
                return ROOM
            rec, left = _pop(pheap, c[C_PHEAP], pend[:, R_TIME])
            c[C_PHEAP] = left
            _arrival(rec, pend, t, bt, bq, at, aq, o_state, o_side, o_px, o_leaves, o_front, o_cum, slot_order,
                     f_slot, f_row, f_px, f_qty, f_maker, oi, of, fi, ff, kni, knf, kheap, c, x, ci, cf)
        if c[C_LAST] and now > t[-1]:
            _markouts(t, bt, at, fi, ff, c, tick, True)
            return DONE
        if not _room(c, oi, fi, pend, kni, eqi, act, opn, draws, ci):
            return ROOM
        # -- the decision at now: what the strategy knows, the equity mark, its quotes
        _catch_up(now, oi, of, opn, kni, knf, kheap, c, x)
        r = _upto(t, now, c[C_KP]) - 1
        row = _upto(t, now - ci[I_FEED], r + 1) - 1
        mid = _mid(bt, at, r, tick) if r >= 0 else np.nan
        e = c[C_MARKS]
        eqi[e] = now
        eqf[e, 0], eqf[e, 1], eqf[e, 2] = mid, x[X_POS], x[X_CASH]
        eqf[e, 3] = x[X_CASH] + x[X_POS] * mid if x[X_POS] != 0 else x[X_CASH]
        c[C_MARKS] = e + 1
        if row >= 0 and ci[I_TAKER]:
            if c[C_OPEN] == 0:                   # Microstructure.decide: one market order at a time
                end = row + 1
                seen = hi = _upto(tr_row, row, seen)
                target = target_rule(ft[:end], fbp[:end], fbs[:end], fap[:end], fas[:end], tr_row[:hi],
                                     ftr_px[:hi], ftr_qty[:hi], ftr_sign[:hi], x[X_KPOS], tick, params)
                if target != x[X_KPOS]:
                    size = abs(target - x[X_KPOS])
                    if not (np.isfinite(size) and size > 0):
                        c[C_BAD], x[X_BAD] = NO_QUOTE, size
                        return BAD
                    _send(1 if target - x[X_KPOS] > 0 else -1, 0, size, True, now, oi, of, opn, pend, pheap, act,
                          draws, c, ci, cf)
        elif row >= 0:
            end = row + 1
            seen = hi = _upto(tr_row, row, seen)
            bid, ask = quote_rule(ft[:end], fbp[:end], fbs[:end], fap[:end], fas[:end], tr_row[:hi], ftr_px[:hi],
                                  ftr_qty[:hi], ftr_sign[:hi], x[X_KPOS], tick, params)
            for side, want in ((1, bid), (-1, ask)):
                if want != NO_QUOTE and want <= 0:
                    c[C_BAD], x[X_BAD] = want, cf[G_QTY]
                    return BAD
                _quote(side, want, now, oi, of, opn, pend, pheap, act, draws, c, ci, cf)
        now += ci[I_STEP]
        c[C_NOW] = now


@numba.njit(cache=True, inline="always")
def _arrival(rec, pend, t, bt, bq, at, aq, o_state, o_side, o_px, o_leaves, o_front, o_cum, slot_order,
             f_slot, f_row, f_px, f_qty, f_maker, oi, of, fi, ff, kni, knf, kheap, c, x, ci, cf):
    """``Replay._arrival``: a cancel or a new order reaches the exchange after row ``kp - 1``."""
    when, kind, oid = pend[rec, R_TIME], pend[rec, R_KIND], pend[rec, R_ORDER]
    k = c[C_KP] - 1
    state = oi[oid, O_STATE]
    if kind == CANCEL:
        if state == SENT or state == RESTING:     # a cancel may overtake its order (random latency)
            if state == RESTING:
                o_state[oi[oid, O_SLOT]] = kernel.FREE
            oi[oid, O_STATE] = CANCELLED
            _learn(when + oi[oid, O_RESP], GONE, oid, 0.0, 0.0, 0.0, kni, knf, kheap, c)
        return
    if state == CANCELLED:
        return
    slot = -1
    for s in range(o_state.shape[0]):
        if o_state[s] == kernel.FREE:
            slot = s
            break
    if slot < 0 or k < 0:
        oi[oid, O_STATE] = EXPIRED                 # no room at the venue (or no book yet): rejected
        _learn(when + oi[oid, O_RESP], GONE, oid, 0.0, 0.0, 0.0, kni, knf, kheap, c)
        return
    slot_order[slot] = oid
    oi[oid, O_SLOT] = slot
    n, ahead = kernel.arrive(slot, oi[oid, O_SIDE], oi[oid, O_TICK], of[oid, O_QTY], oi[oid, O_MARKET] != 0, k,
                             bt, bq, at, aq,
                             o_state, o_side, o_px, o_leaves, o_front, o_cum, ci[I_PARTIAL] != 0,
                             f_slot, f_row, f_px, f_qty, f_maker, 0)
    oi[oid, O_STATE] = RESTING
    of[oid, O_AHEAD] = ahead
    for i in range(n):
        _record_fill(slot, when, k, f_px[i], f_qty[i], False, slot_order, bt, at, oi, of, fi, ff, kni, knf,
                     kheap, c, x, cf)
    if oi[oid, O_STATE] == RESTING and o_state[slot] == kernel.FREE:
        oi[oid, O_STATE] = EXPIRED
        _learn(when + oi[oid, O_RESP], GONE, oid, 0.0, 0.0, 0.0, kni, knf, kheap, c)


@functools.lru_cache(maxsize=None)
def compiled():
    """``_run`` compiled once per machine (cached on disk), for any rules of ``quote_signature()``
    and ``target_signature()``: first-class function arguments, so one compiled loop serves
    every strategy."""
    from numba import types

    i1, i2, f1, f2 = types.int64[::1], types.int64[:, ::1], types.float64[::1], types.float64[:, ::1]
    args = ([types.FunctionType(quote_signature()), types.FunctionType(target_signature()), f1]
            + [i1, i2, f2, i2, f2, i1, i1, f1, i1]
            + [f1, f2, f2, f2, f2, f1, f1, f1]
            + [types.int8[::1], types.int8[::1], i1, f1, f1, f1, i1, i1, i1, i1, f1, types.boolean[::1]]
            + [i2, f2, i2, f2, i2, i1, i2, f2, i1, i1, f2, i2, i1, f1, i1, f1, i1, f1])
    return numba.njit(types.int64(*args), cache=True)(_run)


def _no_quotes(time, bid_price, bid_size, ask_price, ask_size, trade_row, trade_price, trade_size, trade_sign,
               position, tick, params):
    return NO_QUOTE, NO_QUOTE


def _no_target(time, bid_price, bid_size, ask_price, ask_size, trade_row, trade_price, trade_size, trade_sign,
               position, tick, params):
    return position


@functools.lru_cache(maxsize=None)
def unused() -> tuple:
    """The rules ``_run`` is given for the kind of decision a strategy does not make."""
    return (numba.njit(quote_signature(), cache=True)(_no_quotes),
            numba.njit(target_signature(), cache=True)(_no_target))


class Tables:
    """The loop's tables and counters (grown by doubling), and ``Replay``'s result columns from them."""

    GROWN = (("oi", C_ORDERS), ("of", C_ORDERS), ("fi", C_FILLS), ("ff", C_FILLS), ("pend", C_PEND),
             ("pheap", C_PEND), ("kni", C_KNOWN), ("knf", C_KNOWN), ("kheap", C_KNOWN), ("eqi", C_MARKS),
             ("eqf", C_MARKS), ("act", C_ACTS), ("opn", C_OPEN))
    DRAWS = 4096                 # lognormal latencies drawn at a time

    def __init__(self, margin: int) -> None:
        size = 4 * margin
        for name, shape, dtype in (("oi", (10,), np.int64), ("of", (4,), float), ("fi", (3,), np.int64),
                                   ("ff", (6,), float), ("pend", (3,), np.int64), ("pheap", (), np.int64),
                                   ("kni", (3,), np.int64), ("knf", (3,), float), ("kheap", (), np.int64),
                                   ("eqi", (), np.int64), ("eqf", (4,), float), ("act", (3,), np.int64),
                                   ("opn", (), np.int64)):
            setattr(self, name, np.zeros((size, *shape), dtype))
        self.draws = np.zeros(0)
        self.c = np.zeros(17, np.int64)
        self.x = np.zeros(5)
        self.margin = margin

    def arrays(self) -> tuple:
        return (self.oi, self.of, self.fi, self.ff, self.pend, self.pheap, self.kni, self.knf, self.kheap,
                self.eqi, self.eqf, self.act, self.opn, self.draws, self.c, self.x)

    def grow(self, rng=None, sigma: float = 0.0) -> None:
        """Room for the next steps (``_room``); with ``rng``, the next block of latency factors
        ``exp(sigma z - sigma^2 / 2)`` (``Replay._latency``'s, in its order)."""
        c = self.c
        need = 2 * (self.margin + int(c[C_OPEN]))
        for name, count in self.GROWN:
            arr = getattr(self, name)
            if arr.shape[0] - c[count] < need:
                new = np.zeros((max(2 * arr.shape[0], int(c[count]) + need), *arr.shape[1:]), arr.dtype)
                new[:arr.shape[0]] = arr
                setattr(self, name, new)
        if rng is not None and self.draws.size - c[C_DRAW] < c[C_OPEN] + 4:
            z = rng.standard_normal(max(self.DRAWS, 2 * (int(c[C_OPEN]) + 4)))
            self.draws = np.concatenate([self.draws[c[C_DRAW]:], np.exp(sigma * z - sigma * sigma / 2)])
            c[C_DRAW] = 0

    def result(self, tick: float) -> tuple[dict, dict, dict, list]:
        """Orders, fills, equity and actions as ``Replay`` builds them (the same Python types)."""
        c = self.c
        n, nf, ne = int(c[C_ORDERS]), int(c[C_FILLS]), int(c[C_MARKS])
        oi, of = self.oi[:n], self.of[:n]
        sent, entry, resp, cancel = oi[:, O_SENT], oi[:, O_ENTRY], oi[:, O_RESP], oi[:, O_CANCEL]
        ticks, where = np.unique(oi[:, O_TICK], return_inverse=True)
        market = oi[:, O_MARKET] != 0
        price = np.array([round(k * tick, 10) for k in ticks.tolist()] or [0.0])[where]   # as Replay.send gets it
        price[market] = np.nan
        kinds = np.where(market, "market", "limit")
        orders = {"order_id": list(range(n)), "sent": (sent / NS).tolist(), "arrival": ((sent + entry) / NS).tolist(),
                  "side": oi[:, O_SIDE].tolist(), "kind": kinds.tolist(), "price": price.tolist(),
                  "qty": of[:, O_QTY].tolist(), "filled": of[:, O_FILLED].tolist(),
                  "status": np.array(STATUS)[oi[:, O_STATE]].tolist(), "queue_ahead": of[:, O_AHEAD].tolist(),
                  "entry_latency": (entry / NS).tolist(), "response_latency": (resp / NS).tolist(),
                  "cancel_sent": np.where(cancel >= 0, cancel / NS, np.nan).tolist()}
        fi, ff = self.fi[:nf], self.ff[:nf]
        oid, when = fi[:, F_ORDER], fi[:, F_TIME]
        fills = {"order_id": oid.tolist(), "time": (when / NS).tolist(), "known_time": ((when + resp[oid]) / NS).tolist(),
                 "side": oi[oid, O_SIDE].tolist(), "price": ff[:, F_PX].tolist(), "qty": ff[:, F_QTY].tolist(),
                 "maker": (fi[:, F_MAKER] != 0).tolist(), "fee": ff[:, F_FEE].tolist(),
                 "queue_ahead": of[oid, O_AHEAD].tolist(), "entry_latency": (entry[oid] / NS).tolist(),
                 "response_latency": (resp[oid] / NS).tolist(), "mid": ff[:, F_MID].tolist(),
                 "mid_1s": ff[:, F_MID1].tolist(), "mid_10s": ff[:, F_MID10].tolist()}
        eqf = self.eqf[:ne]
        equity = {"time": (self.eqi[:ne] / NS).tolist(), "mid": eqf[:, 0].tolist(), "position": eqf[:, 1].tolist(),
                  "cash": eqf[:, 2].tolist(), "equity": eqf[:, 3].tolist()}
        act = self.act[:int(c[C_ACTS])]
        kind, o = act[:, R_KIND], act[:, R_ORDER]
        # (time ns, kind, side, price, size) for an order, (..., order id) for a cancel: Replay.actions
        actions = list(zip(act[:, R_TIME].tolist(), np.where(kind == NEW, kinds[o], "cancel").tolist(),
                           oi[o, O_SIDE].tolist(), price[o].tolist(),
                           np.where(kind == NEW, of[o, O_QTY], o.astype(float)).tolist()))
        return orders, fills, equity, actions
