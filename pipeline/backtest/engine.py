"""The backtest loop: signal -> allocate -> risk -> execute -> broker -> account.

Signals, weights and stateless risk constraints are computed for every decision at once
(they only read data up to each decision); the loop then walks the decisions in order,
because trading depends on the holdings the previous trades left. Between trades the book is
marked to market with matrix products, never bar by bar in Python.

There are two walks over the decisions, with one result. ``_walk_sessions`` builds each
session's orders, has the execution algorithm slice them and the broker fill them: what a
live run does. When the algorithm sends every order whole to the auction
(``ExecutionAlgo.whole_in_auction``: ``execution=market``) and the broker states its auction
costs ahead (``Broker.auction``: the simulated broker), ``_walk_auction`` runs the same
backtest with a handful of numpy calls per decision and prices every fill at the end: a daily
run over 8,312 decisions takes about a fifth of the time (``tests/pipeline/test_engine.py``
holds the two walks equal).

Both walks take the decision step of ``pipeline.decision.step`` (path risk, drift gate, and
for ``_walk_sessions`` the orders; live trading takes the same step on the account's book), and
size an order the same way: the target weights times the equity at the session's
reference price (the price the order fills at in the auction), less what the session's trades
are expected to cost (``AuctionCosts``), after the night's financing. A long-only book at a
gross exposure of 1 therefore ends the session with cash of about zero rather than borrowing
for the price move since the decision and for the costs (what is left: lot rounding, and the
intraday prices of sliced execution).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from pipeline.backtest.exits import ExitBook, ExitTrades
from pipeline.core.contracts import (AUCTION, Allocator, AuctionCosts, Broker, Constraint,
                                ExecutionAlgo, ExitRule, Fills, Financing, Orders, RiskContext,
                                Session, Strategy)
from pipeline.core.errors import DataError
from pipeline.core.orders import CODE, OrderType
from pipeline.core.market import MarketData, forward_filled, session_ends
from pipeline.decision.step import MIN_ORDER_FRACTION, Step, check_children, risk
from pipeline.decision.targets import Targets, first_decision, in_data_bars, targets


@dataclasses.dataclass
class Ledger:
    """Everything a run produced, as arrays; ``pipeline.results.recorder`` turns it into files."""

    data: MarketData
    start: int                      # first bar of the record (the first decision)
    equity: np.ndarray              # per bar from ``start``, marked at the close
    cash: np.ndarray
    positions: np.ndarray           # shares per bar and symbol from ``start``
    gross_exposure: np.ndarray      # sum of |position value| / equity per bar from ``start``
    decisions: np.ndarray           # decision bars at which the book was traded
    weights: np.ndarray             # target weights at those decisions (after risk)
    orders: dict[str, np.ndarray]
    fills: dict[str, np.ndarray]
    binding: dict[str, int]         # constraint name -> decisions where it bound
    traded: np.ndarray              # indices into plan's decisions of the traded ones
    plan: Targets                   # sleeves' weights and return streams at every decision
    capital: float
    financing: dict[str, np.ndarray]  # kind -> cost per bar from ``start`` (- : interest earned)
    days: np.ndarray                # calendar days each bar accrued financing for (0 at ``start``)
    exits: Optional[ExitTrades] = None  # what the exit rules filled between decisions (None: no rules)


def backtest(
    data: MarketData,
    strategies: Strategy | Mapping[str, Strategy],
    allocator: Allocator,
    constraints: Sequence[tuple[str, Constraint]],
    algo: ExecutionAlgo,
    broker: Broker,
    decisions: np.ndarray,
    capital: float,
    drift: Optional[float] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    portfolio: Optional[Allocator] = None,
    exits: Optional[Mapping[str, ExitRule]] = None,
) -> Ledger:
    close = data.close
    n_bars, n_sym = close.shape
    if isinstance(strategies, Strategy):
        strategies = {type(strategies).__name__.lower(): strategies}
    strategies, allocator, portfolio, constraints = in_data_bars(data, strategies, allocator, portfolio,
                                                                 constraints)
    first = first_decision(strategies)
    at = decisions[(decisions >= first) & (decisions <= n_bars - 2)]
    if at.size == 0:
        raise DataError(f"{data.name}: no decision fits in {n_bars} bars "
                        f"({data.index[0].date()} to {data.index[-1].date()}); the strategy needs "
                        f"{first} bars of warm-up and one more session to trade: use more history "
                        f"(data.start earlier) or a shorter lookback")

    plan = targets(data, strategies, allocator, portfolio, at)
    weights, binding = risk(plan.weights, constraints,
                            RiskContext(returns=data.returns, at=at, symbols=data.symbols,
                                        bars_per_year=data.bars_per_year))
    mark = forward_filled(close)
    per_share = np.where(mark > 0, 1.0 / np.where(mark > 0, mark, 1.0), 0.0)  # 0 before listing
    reference = data.open if data.open is not None else close
    algo.prepare(data)
    broker.prepare(data)
    start = int(at[0])
    step = Step(constraints, drift, broker.lot_size, binding)
    peak = _Peak(mark, capital, start) if step.path else None
    terms = broker.financing()
    financing = None if terms is None else _Financing(terms, data.index, mark, start)
    # orders are sized at the session's reference price (at the decision's close where the
    # session has none: such an order cannot fill)
    session_ref = reference[at + 1]
    usable = np.isfinite(session_ref) & (session_ref > 0)
    fill_price = np.where(usable, session_ref, mark[at])
    fill_shares = np.where(fill_price > 0, 1.0 / np.where(fill_price > 0, fill_price, 1.0), 0.0)
    costs = broker.auction()
    # exits=none takes exactly the path it always took; a cooldown's re-entries hold symbols
    # out of decisions, which only the general walk can do
    book = ExitBook(exits, data, plan, at, costs, reference) if exits else None
    if costs is not None and algo.whole_in_auction and (book is None or not book.cools):
        walk = _walk_auction(at, weights, mark, per_share, fill_price, fill_shares, reference, capital,
                             step, costs, peak, financing, progress, book)
    else:
        walk = _walk_sessions(data, at, weights, mark, fill_price, fill_shares, reference,
                              capital, step, algo, broker, costs, peak, financing, progress, book)
    if book is not None:
        book.apply(walk.d_pos, walk.d_cash)
    if progress is not None:
        progress(at.size, at.size)

    positions = np.cumsum(walk.d_pos[start:], axis=0)
    cash_path = np.cumsum(walk.d_cash[start:])
    held = positions * mark[start:]
    equity_path = cash_path + held.sum(axis=1)
    return Ledger(
        data=data, start=start, equity=equity_path, cash=cash_path, positions=positions,
        gross_exposure=np.abs(held).sum(axis=1) / equity_path, decisions=at[walk.traded],
        traded=walk.traded, plan=plan, weights=walk.weights, orders=walk.orders, fills=walk.fills,
        binding=binding, capital=float(capital),
        financing=dict(zip(_Financing.KINDS, (np.zeros((3, n_bars)) if financing is None
                                               else financing.cost)[:, start:])),
        days=np.zeros(n_bars - start) if financing is None else financing.days[start:],
        exits=None if book is None else book.trades())


@dataclasses.dataclass
class _Walk:
    """What walking the decisions traded: share and cash flows per bar, and the tables."""

    d_pos: np.ndarray        # T x N shares bought (+) or sold (-) in each session
    d_cash: np.ndarray       # T: cash in (+) or out (-) in each session; the capital at the start
    traded: np.ndarray       # indices into the decisions of the ones that sent orders
    weights: np.ndarray      # their target weights
    orders: dict[str, np.ndarray]
    fills: dict[str, np.ndarray]


class _Peak:
    """The highest equity marked at any close so far, for the path-dependent constraints."""

    def __init__(self, mark: np.ndarray, capital: float, start: int) -> None:
        self.mark, self.peak, self.last = mark, float(capital), start - 1

    def __call__(self, t: int, pos: np.ndarray, cash: float) -> float:
        # the peak over every close since the last decision, not only decision closes
        self.peak = max(self.peak, float((cash + self.mark[self.last + 1: t + 1] @ pos).max()))
        self.last = t
        return self.peak


class _Financing:
    """The broker's ``Financing`` accrued bar by bar on the book the walk holds; both walks
    call it alike, so their cash paths agree.

    ``accrue(to, pos, cash, short)`` posts bars ``last + 1 .. to`` (positions ``pos`` held
    through them, ``cash`` at the close before the first) and returns the cash after; ``short``
    says whether ``pos`` holds a short when the caller knows (None: ``pos`` is scanned).
    ``cost`` holds each bar's margin interest, cash interest (negative: earned) and borrow fee.
    """

    KINDS = ("margin_interest", "cash_interest", "borrow_fee")

    def __init__(self, terms: Financing, index, mark: np.ndarray, start: int) -> None:
        n_bars = mark.shape[0]
        self.days = np.zeros(n_bars)
        self.days[start + 1:] = np.diff(index.as_unit("ns").asi8[start:]) / 86_400e9  # ns whatever the unit
        self.years = (self.days / terms.day_count).tolist()
        self.margin, self.earn = float(terms.margin_rate), float(terms.cash_rate)
        self.fee = np.asarray(terms.borrow_fee, dtype=np.float64)
        self.borrows = bool(self.fee.any())
        self.mark = mark
        self.cost = np.zeros((3, n_bars))
        self.last = start

    def accrue(self, to: int, pos: np.ndarray, cash: float, short: Optional[bool] = None) -> float:
        first = self.last + 1
        if to < first:
            return cash
        self.last = to
        shorts = self.borrows and (float(pos.min()) < 0.0 if short is None else short)
        if not shorts and (self.earn == 0.0 if cash >= 0.0 else self.margin == 0.0):
            return cash  # nothing accrues: idle cash that earns nothing, or free margin
        years = self.years[first: to + 1]
        cost = self.cost
        if shorts:  # short value at each previous close, times its fee
            owed = self.mark[first - 1: to] @ (np.minimum(pos, 0.0) * self.fee)
            fees = (-owed * np.asarray(years)).tolist()
            cost[2, first: to + 1] = fees
        for bar, y in enumerate(years, first):
            # one kind of interest per bar: the rows start at zero and each bar is posted once
            if cash < 0.0:
                interest = -cash * self.margin * y
                cost[0, bar] = interest
            else:
                interest = -cash * self.earn * y
                cost[1, bar] = interest
            cash -= interest + fees[bar - first] if shorts else interest
        return cash


def _walk_sessions(data: MarketData, at: np.ndarray, weights: np.ndarray, mark: np.ndarray,
                   fill_price: np.ndarray, fill_shares: np.ndarray,
                   reference: np.ndarray, capital: float, step: Step,
                   algo: ExecutionAlgo, broker: Broker, costs: Optional[AuctionCosts],
                   peak: Optional[_Peak], financing: Optional[_Financing],
                   progress: Optional[Callable[[int, int], None]],
                   exits: Optional[ExitBook] = None) -> _Walk:
    """Every session through the execution algorithm and the broker, as a live run would go."""
    close = data.close
    n_bars, n_sym = close.shape
    lot = broker.lot_size
    pos = np.zeros(n_sym)
    cash = float(capital)
    start = int(at[0])
    d_pos = np.zeros((n_bars, n_sym))
    d_cash = np.zeros(n_bars)
    d_cash[start] = cash
    traded, traded_weights = [], []
    order_parts: list[tuple[int, Orders]] = []
    fill_parts: list[tuple[int | np.ndarray, int, Fills]] = []
    horizon = _horizons(data, at) if data.intraday else None
    n_orders = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(at.size):
            t = int(at[k])
            price = mark[t]
            if exits is not None:
                cash = exits.advance(t, pos, cash, financing, peak)
            if financing is not None:
                cash = financing.accrue(t, pos, cash)
            equity = cash + float(pos @ price)
            if equity <= 0.0:
                break  # ruined: nothing left to trade with; the record shows it
            target = step.target(t, k == 0, weights[k], pos, price, equity,
                                 0.0 if peak is None else peak(t, pos, cash))
            if target is None:
                continue
            if financing is not None:  # the night before the session is the book's as it stands
                cash = financing.accrue(t + 1, pos, cash)

            def cost(qty: np.ndarray, sym: np.ndarray) -> float:
                trade = np.zeros(n_sym)
                trade[sym] = qty[sym]
                return costs.cost(reference[t + 1], costs.impact_scale[t], trade)

            qty, sym = step.orders(target, pos, cash + float(pos @ fill_price[k]), fill_shares[k],
                                   price, equity, None if costs is None else cost)
            if exits is not None:
                sym = sym[~exits.blocked(t)[sym]]
            if sym.size == 0:
                continue
            orders = Orders(symbol=sym, quantity=qty[sym], arrival=price[sym])
            session = Session(bar=t + 1, reference=reference[t + 1], close=close[t + 1],
                              volume=None if data.volume is None else data.volume[t + 1],
                              symbols=sym, lot=lot, source=broker.session_bins,
                              last=None if horizon is None else int(horizon[k]))
            children = algo.slice(orders, session)
            check_children(children, orders)
            fills = broker.execute(orders, children, session)
            if fills.symbol.size:
                moved = np.bincount(fills.symbol, weights=fills.quantity, minlength=n_sym)
                if exits is not None:  # entry prices before costs: q p = q r + spread + impact
                    value = np.bincount(fills.symbol, minlength=n_sym, weights=fills.quantity * fills.price
                                        - fills.spread_cost - fills.impact_cost)
                    exits.entered(k, t, pos.copy(), pos + moved,
                                  np.where(moved != 0, value / np.where(moved != 0, moved, 1.0), np.nan))
                pos += moved
                flow = float(fills.quantity @ fills.price) + float(fills.commission.sum())
                cash -= flow
                if horizon is None:
                    d_pos[t + 1] += moved
                    d_cash[t + 1] -= flow
                else:  # intraday data: each fill posts at its own bar
                    rows = t + 1 + np.maximum(fills.bin, 0)
                    np.add.at(d_pos, (rows, fills.symbol), fills.quantity)
                    np.add.at(d_cash, rows, -(fills.quantity * fills.price + fills.commission))
            order_parts.append((t, orders))
            fill_parts.append((t + 1 if horizon is None else t + 1 + np.maximum(fills.bin, 0),
                               n_orders, fills))
            n_orders += sym.size
            traded.append(k)
            traded_weights.append(target)
            if progress is not None and k % 64 == 0:
                progress(k, at.size)
    if exits is not None:
        cash = exits.advance(n_bars - 1, pos, cash, financing, peak)
    if financing is not None:
        financing.accrue(n_bars - 1, pos, cash)
        d_cash -= financing.cost.sum(axis=0)
    fills_table = _concat_fills(fill_parts)
    return _Walk(d_pos=d_pos, d_cash=d_cash, traded=np.asarray(traded, dtype=np.int64),
                 weights=np.array(traded_weights).reshape(len(traded), n_sym),
                 orders={**_concat_orders(order_parts, fills_table), **_concat_reports(fill_parts)},
                 fills=fills_table)


def _horizons(data: MarketData, at: np.ndarray) -> np.ndarray:
    """Intraday data: the last bar each decision's orders work in, the next decision or the
    end of the trading day of the bar after it, whichever comes first (``Session``)."""
    ends = session_ends(data.sessions)
    return np.minimum(ends[np.searchsorted(ends, at + 1)], np.append(at[1:], data.n_bars - 1))


def _walk_auction(at: np.ndarray, weights: np.ndarray, mark: np.ndarray, per_share: np.ndarray,
                  fill_price: np.ndarray, fill_shares: np.ndarray, reference: np.ndarray,
                  capital: float, step: Step, costs: AuctionCosts,
                  peak: Optional[_Peak], financing: Optional[_Financing],
                  progress: Optional[Callable[[int, int], None]],
                  exits: Optional[ExitBook] = None) -> _Walk:
    """Every order whole in the next session's auction, filled by the broker's ``AuctionCosts``.

    The same backtest as ``_walk_sessions`` with an algorithm that is ``whole_in_auction``
    (orders, fills and reports alike, up to rounding in the last bits), without a per-session
    object: the loop keeps one row of order quantities per decision and the cash each session
    cost, and the fills are priced for the whole run at once afterwards. The cash a session
    costs, ``sum(q * price + commission)`` over its fills, is summed term by term of
    ``AuctionCosts``: with ``a = |q|``, ``r`` the reference and ``s`` the impact scale,
    ``q.r + a.(r h) + a^1.5.(r s) + sum(max(a r c + a c_s, c_min))`` (size in dollars:
    ``a^1.5.(r^1.5 s)``); when there is no minimum the commission joins the linear term.
    An order is sized as ``_walk_sessions`` sizes it: on the funds at the reference, then on
    that less the first sizing's costs (and a third time when the second costs more).

    Sizing and costing run up to three times a decision, so each is a few numpy calls on
    buffers and per-decision rows prepared ahead: the orders are ``[funds, -1] . [shares;
    positions]``, and the costs one dot of ``[a, a^1.5, max(a, c_min / fee)]`` (sizes below the
    order floor set to 0) with ``[linear, curved, fee]`` (the commission's minimum as
    ``fee * max(a, c_min / fee)``: where some fee is not positive, as ``max(a fee, c_min)``).
    """
    n_bars, n_sym = mark.shape
    total = at.size
    lot = step.lot
    sessions = at + 1
    ref = reference[sessions]
    impact = costs.impact_scale[at]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(ref * impact)   # no bar, or no volume in the window: cannot fill
    every_fills = ok.all(axis=1).tolist()
    r = ref if all(every_fills) else np.where(ok, ref, 0.0)
    # the cash a session costs, per term (the docstring); a term that is zero is not computed
    fee_rate = r * costs.commission.rate
    if costs.commission.per_share:
        fee_rate = fee_rate + costs.commission.per_share * ok
    c_min = float(costs.commission.minimum)
    linear = r * costs.half_spread + (0.0 if c_min else fee_rate)
    scale = np.where(ok, impact, 0.0)
    curved = r * scale if costs.impact_in_shares else r * np.sqrt(r) * scale
    has_curve = bool(curved.any())
    costly = bool(linear.any()) or has_curve or c_min > 0.0
    # the orders, then the cost terms' sizes (their weights per decision in ``weight_rows``)
    terms = np.zeros((2 + has_curve + (c_min > 0.0), n_sym))
    q, a = terms[0], terms[1]
    curve, commission = terms[2] if has_curve else None, terms[-1] if c_min else None
    weight = [linear] + ([curved] if has_curve else [])
    fee_rows = threshold_rows = None
    if c_min:
        if (ok & ~(fee_rate > 0.0)).any():  # the minimum alone, or no fee at all: as is
            fee_rows, minimum = list(fee_rate), np.full(n_sym, c_min)
            weight.append(np.ones_like(fee_rate))
        else:
            with np.errstate(divide="ignore"):  # a fee of 0 only where nothing fills
                threshold_rows = list(np.where(fee_rate > 0.0, c_min / fee_rate, 0.0))
            weight.append(fee_rate)
    weight_rows = list(np.stack(weight, axis=1).reshape(total, -1))
    priced = terms[1:]
    flat = priced.ravel()
    mark_at = mark[at]
    at_bars = at.tolist()
    r_rows = list(r)
    price_rows = list(np.stack([mark_at, fill_price], axis=1))  # the marks; the fill prices
    shares_rows = list(weights * fill_shares)              # shares per unit of funds
    floor_rows = list(MIN_ORDER_FRACTION * per_share[at])  # smallest order, per unit of equity
    blocked_rows = None if all(every_fills) else list(~ok)
    placed = np.zeros((total, n_sym))
    placed_rows = list(placed)
    chosen = weights if not step.path else weights.copy()  # the targets after path-dependent risk
    flows = [0.0] * total
    book = np.zeros((2, n_sym))  # the decision's shares per unit of funds; the positions
    pos = book[1]
    funds_row = np.array([0.0, -1.0])
    lots = np.full(n_sym, float(lot)) if lot else None
    cash = float(capital)
    floor = np.empty(n_sym)
    small, idle = np.empty(n_sym, dtype=bool), np.empty(n_sym, dtype=bool)  # idle: small or cannot fill
    # a long-only target sized on non-negative funds leaves no short (each traded position is
    # fl(fl(s f) - p) + p >= 0), so the book is scanned for shorts only where lots, a short
    # target or negative funds may have made one
    scan = financing is not None and financing.borrows
    long_rows = (weights >= 0.0).all(axis=1).tolist() if scan and not step.path and not lot else None
    short = False
    absolute, less_equal, multiply, maximum, copyto = (np.absolute, np.less_equal, np.multiply,
                                                       np.maximum, np.copyto)

    def size(k: int, funds: float) -> float:
        """The orders of decision ``k`` on ``funds`` into ``q``, ``a`` their sizes and ``small``
        those under the floor (zeroed in ``q`` when costly and all can fill); returns their cost
        (spread, impact and commission of those that trade), 0 when nothing costs."""
        funds_row[0] = funds
        funds_row.dot(book, q)
        if lots is not None:
            np.divide(q, lots, q)
            np.rint(q, q)
            multiply(q, lots, q)
        absolute(q, a)
        less_equal(a, floor, small)
        if not costly:
            return 0.0
        if curve is not None:
            np.sqrt(a, curve)
            multiply(curve, a, curve)
        if threshold_rows is not None:
            maximum(a, threshold_rows[k], out=commission)
        elif fee_rows is not None:
            multiply(a, fee_rows[k], commission)
            maximum(commission, minimum, out=commission)
        if every_fills[k]:
            copyto(terms, 0.0, where=small)
        else:  # what cannot fill costs nothing but stays an order
            copyto(priced, 0.0, where=np.logical_or(small, blocked_rows[k], idle))
        return float(flat.dot(weight_rows[k]))

    for k in range(total):
        t = at_bars[k]
        if exits is not None:
            cash = exits.advance(t, pos, cash, financing, peak)
        if financing is not None:
            cash = financing.accrue(t, pos, cash, short)
        held, at_fill = price_rows[k].dot(pos).tolist()  # the book at the marks, at the fill prices
        equity = cash + held
        if equity <= 0.0:
            break  # ruined: nothing left to trade with; the record shows it
        target = step.target(t, k == 0, weights[k], pos, mark_at[k], equity,
                             0.0 if peak is None else peak(t, pos, cash))
        if target is None:
            continue
        shares = shares_rows[k]
        if peak is not None:
            chosen[k] = target
            shares = target * fill_shares[k]
        if financing is not None:
            cash = financing.accrue(t + 1, pos, cash, short)
        funds = cash + at_fill
        book[0] = shares
        multiply(floor_rows[k], equity, floor)
        sized_on = funds
        spent = size(k, sized_on)
        if costly:  # the session's costs come out of the book (as _walk_sessions reserves them)
            reserve = spent
            sized_on = funds - reserve
            spent = size(k, sized_on)
            if spent > reserve:
                sized_on = funds + reserve - 2.0 * spent
                spent = size(k, sized_on)
        if not (costly and every_fills[k]):
            np.putmask(q, small, 0.0)
        placed_rows[k][:] = q
        filled = q if every_fills[k] else q * ok[k]  # what cannot fill stays in ``placed``, unfilled
        flow = float(filled.dot(r_rows[k])) + spent if costly else float(filled.dot(r_rows[k]))
        if exits is not None:
            exits.entered(k, t, pos.copy(), pos + filled, r_rows[k])
        pos += filled
        cash -= flow
        flows[k] = flow
        if scan and (short or long_rows is None or not long_rows[k] or sized_on < 0.0):
            short = float(pos.min()) < 0.0
        if progress is not None and k % 64 == 0:
            progress(k, total)
    if exits is not None:
        cash = exits.advance(n_bars - 1, pos, cash, financing, peak)
    if financing is not None:
        financing.accrue(n_bars - 1, pos, cash)
    if not np.isfinite(placed).all():
        raise RuntimeError("the backtest produced a NaN or infinite order: check the data and the "
                           "weights")

    cell = np.flatnonzero(placed)  # row-major: by decision, then by symbol, as orders are
    row, sym = np.divmod(cell, n_sym)
    qty = placed.ravel()[cell]
    n = cell.size
    everything = all(every_fills)
    ids = np.arange(n) if everything else np.flatnonzero(ok.ravel()[cell])
    f_cell, f_row, f_sym, f_qty = (cell, row, sym, qty) if everything else (
        cell[ids], row[ids], sym[ids], qty[ids])
    f_ref = ref.ravel()[f_cell]
    price, spread, impact_cost = costs.fill(f_ref, impact.ravel()[f_cell], f_qty)
    commission = np.maximum(costs.commission.fee(f_qty, np.abs(f_qty) * f_ref), c_min)
    fills = {"bar": sessions[f_row], "order": ids, "symbol": f_sym, "quantity": f_qty,
             "price": price, "commission": commission, "spread_cost": spread,
             "impact_cost": impact_cost, "bin": np.full(ids.size, AUCTION, dtype=np.int64)}

    def per_order(values: np.ndarray, missing: float) -> np.ndarray:
        """``values`` of the filled orders, ``missing`` for the others."""
        if everything:
            return values
        out = np.full(n, missing)
        out[ids] = values
        return out

    filled = f_qty.copy() if everything else per_order(f_qty, 0.0)  # not the quantity's array
    market = per_order(f_ref, np.nan)
    auction = np.full(n, AUCTION, dtype=np.int64)
    orders = {"decision": at[row], "id": np.arange(n), "symbol": sym, "quantity": qty,
              "arrival": mark_at.ravel()[cell], "filled": filled,
              "filled_value": per_order(f_qty * price, 0.0), "first_bin": auction,
              "last_bin": auction, "market_vwap": market, "market_twap": market,
              "market_volume": per_order(costs.session_volume(sessions[f_row], f_sym, f_ref), np.nan),
              "cancelled": qty - filled, "swept": np.zeros(n)}

    d_pos = np.zeros((n_bars, n_sym))
    d_pos[sessions] = placed if everything else placed * ok
    d_cash = np.zeros(n_bars)
    d_cash[int(at[0])] = float(capital)
    d_cash[sessions] -= np.asarray(flows)
    if financing is not None:
        d_cash -= financing.cost.sum(axis=0)
    traded = np.flatnonzero(placed.any(axis=1))
    return _Walk(d_pos=d_pos, d_cash=d_cash, traded=traded, weights=chosen[traded],
                 orders=orders, fills=fills)


FILL_FIELDS = ("symbol", "quantity", "price", "commission", "spread_cost", "impact_cost", "bin")
# ParentReport field -> orders key
REPORT_FIELDS = {"first_bin": "first_bin", "last_bin": "last_bin", "vwap": "market_vwap",
                 "twap": "market_twap", "volume": "market_volume", "cancelled": "cancelled",
                 "swept": "swept"}


def _concat_fills(parts: list[tuple[int | np.ndarray, int, Fills]]) -> dict[str, np.ndarray]:
    """Fills of the whole run: ``bar`` of the session (of each fill's bar on intraday data),
    ``order`` the run-wide parent id."""
    if not parts:
        return {k: np.array([], dtype=np.int64 if k in ("bar", "order", "symbol", "bin") else np.float64)
                for k in ("bar", "order") + FILL_FIELDS}
    sizes = np.array([p[2].symbol.size for p in parts], dtype=np.int64)
    out = {"bar": np.concatenate([np.broadcast_to(np.asarray(p[0], dtype=np.int64), (n,))
                                  for p, n in zip(parts, sizes.tolist())]),
           "order": np.concatenate([p[2].parent for p in parts])
           + np.repeat(np.array([p[1] for p in parts], dtype=np.int64), sizes)}
    for key in FILL_FIELDS:
        out[key] = np.concatenate([getattr(p[2], key) for p in parts])
    if any(p[2].order_type is not None for p in parts):  # children with order types
        out.update(_typed([(p[2], p[2].symbol.size) for p in parts]))
    return out


def _typed(parts: list[tuple[object, int]]) -> dict[str, np.ndarray]:
    """The ``order_type`` codes and ``trigger`` of fills or reports (market, NaN where not set)."""
    return {"order_type": np.concatenate([np.full(n, CODE[OrderType.MARKET]) if x.order_type is None
                                          else x.order_type for x, n in parts]),
            "trigger": np.concatenate([np.full(n, np.nan) if x.trigger is None else x.trigger
                                       for x, n in parts])}


def _concat_reports(parts: list[tuple[int, int, Fills]]) -> dict[str, np.ndarray]:
    """The broker's report on every parent order of the run (see ``ParentReport``)."""
    if not parts:
        return {name: np.array([]) for name in REPORT_FIELDS.values()}
    out = {name: np.concatenate([getattr(p[2].report, key) for p in parts])
           for key, name in REPORT_FIELDS.items()}
    if any(p[2].report.order_type is not None for p in parts):
        out.update(_typed([(p[2].report, p[2].report.cancelled.size) for p in parts]))
    return out


def _concat_orders(parts: list[tuple[int, Orders]], fills: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parent orders of the whole run with what filled of each (``id`` is the row number)."""
    sizes = np.array([p[1].symbol.size for p in parts], dtype=np.int64)
    n = int(sizes.sum())
    cat = (lambda key: np.concatenate([getattr(p[1], key) for p in parts])) if parts else \
        (lambda key: np.array([]))
    return {
        "decision": np.repeat(np.array([p[0] for p in parts], dtype=np.int64), sizes),
        "id": np.arange(n),
        "symbol": cat("symbol").astype(np.int64),
        "quantity": cat("quantity"),
        "arrival": cat("arrival"),
        "filled": np.bincount(fills["order"], weights=fills["quantity"], minlength=n),
        "filled_value": np.bincount(fills["order"], weights=fills["quantity"] * fills["price"],
                                    minlength=n),
    }
