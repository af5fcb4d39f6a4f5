"""The backtest loop: signal -> allocate -> risk -> execute -> broker -> account.

Signals, weights and stateless risk constraints are computed for every decision at once
(they only read data up to each decision); the loop then walks the decisions in order,
because trading depends on the holdings the previous trades left. Between trades the book is
marked to market with matrix products, never bar by bar in Python.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from pipeline.contracts import (AUCTION, Allocator, Book, Broker, ChildOrders, Constraint,
                                ExecutionAlgo, Fills, Orders, RiskContext, Session, Strategy)
from pipeline.errors import DataError
from pipeline.market import MarketData, forward_filled
from pipeline.portfolio import Targets, first_decision, targets

# orders smaller than this fraction of equity are not worth a commission: they are skipped
MIN_ORDER_FRACTION = 1e-7


@dataclasses.dataclass
class Ledger:
    """Everything a run produced, as arrays; ``pipeline.recorder`` turns it into files."""

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
) -> Ledger:
    close = data.close
    n_bars, n_sym = close.shape
    if isinstance(strategies, Strategy):
        strategies = {type(strategies).__name__.lower(): strategies}
    first = first_decision(strategies)
    at = decisions[(decisions >= first) & (decisions <= n_bars - 2)]
    if at.size == 0:
        raise DataError(f"{data.name}: no decision fits in {n_bars} bars "
                        f"({data.index[0].date()} to {data.index[-1].date()}); the strategy needs "
                        f"{first} bars of warm-up and one more session to trade: use more history "
                        f"(data.start earlier) or a shorter lookback")

    plan = targets(data, strategies, allocator, portfolio, at)
    weights = plan.weights
    returns = data.returns
    ctx = RiskContext(returns=returns, at=at, symbols=data.symbols)
    binding = {name: 0 for name, _ in constraints}
    path_dependent = [(n, c) for n, c in constraints if c.stateful]
    for name, constraint in constraints:
        if not constraint.stateful:
            weights, bound = constraint.apply(weights, ctx)
            binding[name] = int(np.count_nonzero(bound))
    if not np.isfinite(weights).all():
        raise RuntimeError(f"the risk stage produced non-finite weights "
                           f"({[n for n, _ in constraints]}): a plugin bug")
    mark = forward_filled(close)
    per_share = np.where(mark > 0, 1.0 / np.where(mark > 0, mark, 1.0), 0.0)  # 0 before listing
    reference = data.open if data.open is not None else close
    lot = broker.lot_size
    algo.prepare(data)
    broker.prepare(data)

    pos = np.zeros(n_sym)
    cash = float(capital)
    start = int(at[0])
    d_pos = np.zeros((n_bars, n_sym))
    d_cash = np.zeros(n_bars)
    d_cash[start] = cash
    traded, traded_weights = [], []
    order_parts: list[tuple[int, Orders]] = []
    fill_parts: list[tuple[int, int, Fills]] = []
    n_orders = 0
    peak, last = cash, start - 1
    total = at.size
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(total):
            t = int(at[k])
            price = mark[t]
            equity = cash + float(pos @ price)
            if equity <= 0.0:
                break  # ruined: nothing left to trade with; the record shows it
            target = weights[k]
            if path_dependent:
                # the peak over every close since the last decision, not only decision closes
                peak = max(peak, float((cash + mark[last + 1: t + 1] @ pos).max()))
                last = t
                book = Book(bar=t, equity=equity, peak_equity=peak, weights=pos * price / equity,
                            prices=price)
                for name, constraint in path_dependent:
                    target, bound = constraint.apply_step(target, book)
                    binding[name] += bool(bound)
                if not np.isfinite(target).all():
                    raise RuntimeError(f"risk constraints {[n for n, _ in path_dependent]} produced "
                                       f"non-finite weights: a plugin bug")
            if drift is not None and k > 0 and np.abs(pos * price / equity - target).max() <= drift:
                continue
            qty = target * equity * per_share[t] - pos
            if lot:
                qty = np.round(qty / lot) * lot
            sym = np.flatnonzero(np.abs(qty) * price > MIN_ORDER_FRACTION * equity)
            if sym.size == 0:
                continue
            orders = Orders(symbol=sym, quantity=qty[sym], arrival=price[sym])
            session = Session(bar=t + 1, reference=reference[t + 1], close=close[t + 1],
                              volume=None if data.volume is None else data.volume[t + 1],
                              symbols=sym, lot=lot, source=broker.session_bins)
            children = algo.slice(orders, session)
            _check_children(children, orders)
            fills = broker.execute(orders, children, session)
            if fills.symbol.size:
                moved = np.bincount(fills.symbol, weights=fills.quantity, minlength=n_sym)
                pos += moved
                d_pos[t + 1] += moved
                flow = float(fills.quantity @ fills.price) + float(fills.commission.sum())
                cash -= flow
                d_cash[t + 1] -= flow
            order_parts.append((t, orders))
            fill_parts.append((t + 1, n_orders, fills))
            n_orders += sym.size
            traded.append(k)
            traded_weights.append(target)
            if progress is not None and k % 64 == 0:
                progress(k, total)
    if progress is not None:
        progress(total, total)

    positions = np.cumsum(d_pos[start:], axis=0)
    cash_path = np.cumsum(d_cash[start:])
    fills_table = _concat_fills(fill_parts)
    reports = _concat_reports(fill_parts)
    held = positions * mark[start:]
    equity_path = cash_path + held.sum(axis=1)
    return Ledger(
        data=data, start=start, equity=equity_path, cash=cash_path, positions=positions,
        gross_exposure=np.abs(held).sum(axis=1) / equity_path,
        decisions=at[np.asarray(traded, dtype=np.int64)], traded=np.asarray(traded, dtype=np.int64),
        plan=plan,
        weights=np.array(traded_weights).reshape(len(traded), n_sym),
        orders={**_concat_orders(order_parts, fills_table), **reports}, fills=fills_table,
        binding=binding, capital=float(capital))


def _check_children(children: ChildOrders, orders: Orders) -> None:
    """No child order may carry a NaN, infinite, zero, flipped or oversized quantity."""
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
    if not np.bincount(children.parent, weights=ratio).max() <= 1 + 1e-9:
        raise RuntimeError("execution produced an infinite child order or scheduled more than a "
                           "parent order's quantity: a plugin bug")


FILL_FIELDS = ("symbol", "quantity", "price", "commission", "spread_cost", "impact_cost", "bin")
# ParentReport field -> orders key
REPORT_FIELDS = {"first_bin": "first_bin", "last_bin": "last_bin", "vwap": "market_vwap",
                 "twap": "market_twap", "volume": "market_volume", "cancelled": "cancelled",
                 "swept": "swept"}


def _concat_fills(parts: list[tuple[int, int, Fills]]) -> dict[str, np.ndarray]:
    """Fills of the whole run: ``bar`` of the session, ``order`` the run-wide parent id."""
    if not parts:
        return {k: np.array([], dtype=np.int64 if k in ("bar", "order", "symbol", "bin") else np.float64)
                for k in ("bar", "order") + FILL_FIELDS}
    sizes = np.array([p[2].symbol.size for p in parts], dtype=np.int64)
    out = {"bar": np.repeat(np.array([p[0] for p in parts], dtype=np.int64), sizes),
           "order": np.concatenate([p[2].parent for p in parts])
           + np.repeat(np.array([p[1] for p in parts], dtype=np.int64), sizes)}
    for key in FILL_FIELDS:
        out[key] = np.concatenate([getattr(p[2], key) for p in parts])
    return out


def _concat_reports(parts: list[tuple[int, int, Fills]]) -> dict[str, np.ndarray]:
    """The broker's report on every parent order of the run (see ``ParentReport``)."""
    if not parts:
        return {name: np.array([]) for name in REPORT_FIELDS.values()}
    reports = [p[2].report for p in parts]
    out: dict[str, np.ndarray] = {}
    done: dict[str, str] = {}
    for key, name in REPORT_FIELDS.items():
        # a field that is the very array of an earlier one in every session is that one again
        # (an auction's twap is its vwap, its last bin its first): join it once
        same = next((k for k in done if all(getattr(r, key) is getattr(r, k) for r in reports)), None)
        out[name] = out[done[same]] if same else np.concatenate([getattr(r, key) for r in reports])
        done[key] = name
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
