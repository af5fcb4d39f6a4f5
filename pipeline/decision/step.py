"""One decision: target weights and a book to parent orders, for the backtest and live trading.

    targets -> risk -> path risk -> drift gate -> shares -> lots -> dust filter -> orders

``risk`` applies the stateless constraints to every decision at once; ``Step`` takes one
decision from there on the book as it stands: the path-dependent constraints
(``Constraint.stateful``), the drift gate, and the orders. The backtest's walk calls it at
every decision with the book it simulated; the live runner calls it once per decision with
the account's book. The inputs say where each runs: the backtest values the book at the
decision's close and sizes at the next session's reference price, net of the session's
expected costs; live values and sizes at the broker's quotes, on the account's net
liquidation. ``pipeline.backtest.engine._walk_auction`` sizes the same way with its own
vectorised arithmetic (a test holds the two walks equal).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from pipeline.core.contracts import AUCTION, Book, ChildOrders, Constraint, Orders, RiskContext
from pipeline.core.orders import NEEDS_LIMIT, TIFS, TYPES, OrderError, OrderType, TimeInForce

# orders smaller than this fraction of equity are not worth a commission: they are skipped
MIN_ORDER_FRACTION = 1e-7


def risk(weights: np.ndarray, constraints: Sequence[tuple[str, Constraint]],
         ctx: RiskContext) -> tuple[np.ndarray, dict[str, int]]:
    """The stateless constraints in declared order over all decisions (K x N), and the number
    of decisions where each bound (0 for the path-dependent ones, which ``Step`` applies)."""
    binding = {name: 0 for name, _ in constraints}
    for name, constraint in constraints:
        if not constraint.stateful:
            weights, bound = constraint.apply(weights, ctx)
            binding[name] = int(np.count_nonzero(bound))
    if not np.isfinite(weights).all():
        raise RuntimeError(f"the risk stage produced non-finite weights "
                           f"({[n for n, _ in constraints]}): a plugin bug")
    return weights, binding


class Step:
    """One decision on a book: ``target`` (path risk, then the drift gate), then ``orders``.

    ``binding`` (constraint name -> count) is incremented where a path-dependent constraint
    binds; ``drift`` is ``schedule.drift`` (None: trade at every decision); ``lot`` the
    broker's lot size (None: fractional shares).
    """

    def __init__(self, constraints: Sequence[tuple[str, Constraint]], drift: Optional[float],
                 lot: Optional[float], binding: Optional[dict[str, int]] = None) -> None:
        self.path = [(n, c) for n, c in constraints if c.stateful]
        self.drift = None if drift is None else float(drift)
        self.lot = lot
        self.binding = {n: 0 for n, _ in constraints} if binding is None else binding

    def target(self, t: int, first: bool, target: np.ndarray, pos: np.ndarray, price: np.ndarray,
               equity: float, peak: float) -> Optional[np.ndarray]:
        """The target weights at bar ``t`` after path-dependent risk on the book (``pos`` shares
        valued at ``price``, ``equity``, ``peak`` the highest equity marked so far), or None
        when the book is within ``drift`` of them; the first decision always trades."""
        held = None
        if self.path:
            held = pos * price / equity
            book = Book(bar=t, equity=equity, peak_equity=peak, weights=held, prices=price)
            for name, constraint in self.path:
                target, bound = constraint.apply_step(target, book)
                self.binding[name] += bool(bound)
            if not np.isfinite(target).all():
                raise RuntimeError(f"risk constraints {[n for n, _ in self.path]} produced "
                                   f"non-finite weights: a plugin bug")
        if self.drift is not None and not first:
            if held is None:
                held = pos * price / equity
            if np.abs(held - target).max() <= self.drift:
                return None
        return target

    def orders(self, target: np.ndarray, pos: np.ndarray, funds: float, fill_shares: np.ndarray,
               price: np.ndarray, equity: float,
               cost: Optional[Callable[[np.ndarray, np.ndarray], float]] = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Order quantities (N) and the symbols that trade: ``target`` weights of ``funds``
        (the book valued at the fill reference) in shares (``fill_shares``: shares per unit of
        money at the fill reference, 0 where there is none: that position stays), in lots,
        without orders under ``MIN_ORDER_FRACTION`` of ``equity`` at ``price``. ``cost(qty,
        sym)`` is what trading them is expected to cost: the orders are sized again on the
        funds less it, so that the session's costs come out of the book."""
        qty, sym = self._sized(target, pos, funds, fill_shares, price, equity)
        if cost is not None and sym.size:
            # sized again on the funds less the first sizing's costs; when that sizing costs
            # more (it sells more), the excess is reserved twice over, which covers the
            # costs' change with it
            reserve = cost(qty, sym)
            qty, sym = self._sized(target, pos, funds - reserve, fill_shares, price, equity)
            spent = cost(qty, sym)
            if spent > reserve:
                qty, sym = self._sized(target, pos, funds + reserve - 2.0 * spent, fill_shares,
                                       price, equity)
        return qty, sym

    def _sized(self, target: np.ndarray, pos: np.ndarray, funds: float, fill_shares: np.ndarray,
               price: np.ndarray, equity: float) -> tuple[np.ndarray, np.ndarray]:
        # rounded as _walk_auction rounds it
        qty = np.where(fill_shares > 0, target * fill_shares * funds - pos, 0.0)
        if self.lot:
            qty = np.round(qty / self.lot) * self.lot
        return qty, np.flatnonzero(np.abs(qty) * price > MIN_ORDER_FRACTION * equity)


def check_children(children: ChildOrders, orders: Orders) -> None:
    """No child order may carry a NaN, infinite, zero, flipped or oversized quantity, nor a
    term ``OrderTerms.check`` would refuse (a NaN, infinite, zero or negative trigger)."""
    if children.type is not None and children.quantity.size:
        check_terms(children)
    if children.quantity.size == 0 or children.whole:  # whole parents, which the engine checked
        return
    # the ratio to the parent is NaN, infinite, <= 0 or > 1 for every kind of bad quantity,
    # and a parent's ratios summing above 1 means more was scheduled than ordered
    ratio = children.quantity / orders.quantity[children.parent]
    if not ratio.min() > 0:
        raise RuntimeError("execution produced a child order with a NaN, zero or wrong-side "
                           "quantity: a plugin bug")
    if children.bin.min() < AUCTION:
        raise RuntimeError("execution produced a child order in a negative bin: a plugin bug")
    if children.oca is not None and (children.oca >= 0).any():
        ratio = _oca_once(children, ratio)
    if not np.bincount(children.parent, weights=ratio).max() <= 1 + 1e-9:
        raise RuntimeError("execution produced an infinite child order or scheduled more than a "
                           "parent order's quantity: a plugin bug")


def check_terms(children: ChildOrders) -> None:
    """``OrderTerms.check`` over arrays: raise ``OrderError`` naming the first bad term."""
    kind = children.type
    if not (np.issubdtype(kind.dtype, np.integer) and kind.min() >= 0 and kind.max() < len(TYPES)):
        raise OrderError(f"execution produced child order types {np.unique(kind).tolist()}: codes "
                         f"of pipeline.core.orders.TYPES are 0..{len(TYPES) - 1}")
    if children.tif is not None and (children.tif != TIFS.index(TimeInForce.DAY)).any():
        raise OrderError("execution child orders are DAY orders (they expire at the session's end); "
                         "GTC is for exits, which the backtest keeps working: use exits=...")
    trail = (children.trail_amount, children.trail_percent)
    needs = {"limit": lambda t: t in NEEDS_LIMIT,
             "stop": lambda t: t in (OrderType.STOP, OrderType.STOP_LIMIT)}
    for t in np.unique(kind).tolist():
        mine = kind == t
        what = f"execution produced a {TYPES[t].value} child order"
        for name, need in needs.items():
            value = getattr(children, name)
            if need(TYPES[t]) and (value is None or not (value[mine] > 0).all()
                                   or not np.isfinite(value[mine]).all()):
                raise OrderError(f"{what} with a NaN, infinite, zero or negative {name}")
        if TYPES[t] is OrderType.TRAILING_STOP:
            amount, percent = (np.full(mine.sum(), np.nan) if a is None else a[mine] for a in trail)
            given = np.isfinite(amount) & (amount > 0), np.isfinite(percent) & (percent > 0) & (percent < 1)
            if not (given[0] ^ given[1]).all():
                raise OrderError(f"{what} without exactly one finite positive trail_amount or "
                                 f"trail_percent (a fraction below 1)")


def _oca_once(children: ChildOrders, ratio: np.ndarray) -> np.ndarray:
    """The ratios with each one-cancels-all group counted once, at its largest member."""
    group = children.oca
    member = group >= 0
    ids, inverse = np.unique(group[member], return_inverse=True)
    owner = np.full(ids.size, -1)
    np.maximum.at(owner, inverse, children.parent[member])
    lowest = np.full(ids.size, children.parent.max() + 1)
    np.minimum.at(lowest, inverse, children.parent[member])
    if (owner != lowest).any():
        raise OrderError(f"execution produced one-cancels-all group {int(ids[owner != lowest][0])} "
                         f"across parents: a group's members belong to one parent order")
    largest = np.zeros(ids.size)
    np.maximum.at(largest, inverse, ratio[member])
    out = np.where(member, 0.0, ratio)
    first = np.unique(inverse, return_index=True)[1]
    out[np.flatnonzero(member)[first]] = largest
    return out
