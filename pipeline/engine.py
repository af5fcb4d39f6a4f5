"""The backtest loop: signal -> allocate -> risk -> execute -> broker -> account.

Signals, weights and stateless risk constraints are computed for every decision at once
(they only read data up to each decision); the loop then walks the decisions in order,
because trading depends on the holdings the previous trades left. Between trades the book is
marked to market with matrix products, never bar by bar in Python.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np

from pipeline.contracts import (Allocator, Broker, ChildOrders, Constraint, ExecutionAlgo, Fills,
                                Orders, RiskContext, Session, Strategy)
from pipeline.errors import DataError
from pipeline.market import MarketData

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
    capital: float


def backtest(
    data: MarketData,
    strategy: Strategy,
    allocator: Allocator,
    constraints: Sequence[tuple[str, Constraint]],
    algo: ExecutionAlgo,
    broker: Broker,
    decisions: np.ndarray,
    capital: float,
    drift: Optional[float] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Ledger:
    close = data.close
    n_bars, n_sym = close.shape
    first = max(int(strategy.warmup()), 0)
    at = decisions[(decisions >= first) & (decisions <= n_bars - 2)]
    if at.size == 0:
        raise DataError(f"{data.name}: no decision fits in {n_bars} bars "
                        f"({data.index[0].date()} to {data.index[-1].date()}); the strategy needs "
                        f"{first} bars of warm-up and one more session to trade: use more history "
                        f"(data.start earlier) or a shorter lookback")

    signals = np.asarray(strategy.signal(data, at), dtype=np.float64)
    _expect_shape(signals, (at.size, n_sym), f"{type(strategy).__name__}.signal")
    signals = np.where(np.isfinite(signals) & np.isfinite(close[at]), signals, 0.0)

    returns = data.returns
    weights = np.asarray(allocator.weigh(returns, signals, at), dtype=np.float64)
    _expect_shape(weights, (at.size, n_sym), f"{type(allocator).__name__}.weigh")
    ctx = RiskContext(returns=returns, at=at)
    binding = {}
    for name, constraint in constraints:
        weights, bound = constraint.apply(weights, ctx)
        binding[name] = int(np.count_nonzero(bound))
    if not np.isfinite(weights).all():
        raise RuntimeError(f"the allocation and risk stages produced non-finite weights "
                           f"({type(allocator).__name__}, {[n for n, _ in constraints]}): a plugin bug")

    mark = _forward_filled(close)
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
    total = at.size
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(total):
            t = int(at[k])
            price = mark[t]
            equity = cash + float(pos @ price)
            if equity <= 0.0:
                break  # ruined: nothing left to trade with; the record shows it
            target = weights[k]
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
                              volume=None if data.volume is None else data.volume[t + 1])
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
            traded.append(t)
            traded_weights.append(target)
            if progress is not None and k % 64 == 0:
                progress(k, total)
    if progress is not None:
        progress(total, total)

    positions = np.cumsum(d_pos[start:], axis=0)
    cash_path = np.cumsum(d_cash[start:])
    fills_table = _concat_fills(fill_parts)
    held = positions * mark[start:]
    equity_path = cash_path + held.sum(axis=1)
    return Ledger(
        data=data, start=start, equity=equity_path, cash=cash_path, positions=positions,
        gross_exposure=np.abs(held).sum(axis=1) / equity_path,
        decisions=np.asarray(traded, dtype=np.int64),
        weights=np.array(traded_weights).reshape(len(traded), n_sym),
        orders=_concat_orders(order_parts, fills_table), fills=fills_table,
        binding=binding, capital=float(capital))


def _forward_filled(close: np.ndarray) -> np.ndarray:
    """Last known price per symbol for marking; 0 before a symbol's first price (no holding)."""
    valid = np.isfinite(close)
    if valid.all():
        return close
    idx = np.where(valid, np.arange(close.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = close[idx, np.arange(close.shape[1])]
    return np.where(np.isfinite(filled), filled, 0.0)


def _expect_shape(arr: np.ndarray, shape: tuple, who: str) -> None:
    if arr.shape != shape:
        raise RuntimeError(f"{who} returned shape {arr.shape}, expected {shape}: a plugin bug")


def _check_children(children: ChildOrders, orders: Orders) -> None:
    """No child order may carry a NaN, infinite, zero, flipped or oversized quantity."""
    if children.quantity.size == 0:
        return
    # the ratio to the parent is NaN, infinite, <= 0 or > 1 for every kind of bad quantity,
    # and a parent's ratios summing above 1 means more was scheduled than ordered
    ratio = children.quantity / orders.quantity[children.parent]
    if not ratio.min() > 0:
        raise RuntimeError("execution produced a child order with a NaN, zero or wrong-side "
                           "quantity: a plugin bug")
    if not np.bincount(children.parent, weights=ratio).max() <= 1 + 1e-9:
        raise RuntimeError("execution produced an infinite child order or scheduled more than a "
                           "parent order's quantity: a plugin bug")


FILL_FIELDS = ("symbol", "quantity", "price", "commission", "spread_cost", "impact_cost")


def _concat_fills(parts: list[tuple[int, int, Fills]]) -> dict[str, np.ndarray]:
    """Fills of the whole run: ``bar`` of the session, ``order`` the run-wide parent id."""
    sizes = np.array([p[2].symbol.size for p in parts], dtype=np.int64)
    out = {"bar": np.repeat(np.array([p[0] for p in parts], dtype=np.int64), sizes),
           "order": (np.concatenate([p[2].parent + p[1] for p in parts]) if parts
                     else np.array([], dtype=np.int64))}
    for key in FILL_FIELDS:
        out[key] = np.concatenate([getattr(p[2], key) for p in parts]) if parts else np.array([])
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
