"""The stage contracts every plugin honours. Plugins import these; pipeline imports no plugin.

Shapes: ``T`` bars, ``N`` symbols, ``K`` decision times. Arrays are float64 numpy; a decision
at bar ``t`` sees rows ``[0, t]`` only and trades in the next session, bar ``t + 1``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import numpy as np

from pipeline.market import MarketData
from pipeline.params import Component


# ---------------------------------------------------------------- data

class DataSource(Component):
    """Loads a market. Every source accepts ``start``, ``end`` and ``symbols`` to slice."""

    def load(self) -> MarketData:
        raise NotImplementedError


# ---------------------------------------------------------------- signal

class Strategy(Component):
    """Signal stage. ``signal(data, at)`` returns a ``K x N`` array for decision bars ``at``.

    Row ``i`` may use ``data`` rows ``[0, at[i]]`` only (truncation invariance is tested for
    every registered strategy). ``0`` means no position, the sign is the side, and the
    magnitude a conviction that allocators may use or ignore. Strategies that learn do so
    inside ``signal``, walk-forward, on data before each decision.
    """

    def warmup(self) -> int:
        """Bars of history needed before the first meaningful signal."""
        return 0

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------- allocate

class Allocator(Component):
    """Turns a return history and eligible columns (with sign) into weights.

    The same classes weigh the assets a strategy picked and, given sleeves' return streams,
    the sleeves. ``weigh`` handles a batch of decisions; allocators that cannot vectorise
    implement ``weigh_one`` and inherit the loop. Weights sum to 1 in gross over the eligible
    columns unless the allocator documents otherwise, and are never NaN.
    """

    lookback: int = 0

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray) -> np.ndarray:
        out = np.zeros(signals.shape, dtype=np.float64)
        window = max(int(self.lookback), 1)
        for i, t in enumerate(at):
            cols = np.flatnonzero(signals[i])
            if cols.size:
                hist = returns[max(0, t - window + 1): t + 1, cols]
                out[i, cols] = self.weigh_one(hist, np.sign(signals[i, cols]))
        return out

    def weigh_one(self, returns: np.ndarray, side: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------- risk

@dataclasses.dataclass
class RiskContext:
    """What a constraint may look at besides the weights: returns up to each decision."""

    returns: np.ndarray
    at: np.ndarray
    symbols: tuple[str, ...] = ()


@dataclasses.dataclass
class Book:
    """The book at a decision, for constraints that depend on the path of the portfolio."""

    bar: int
    equity: float
    peak_equity: float         # highest equity marked so far (for drawdown control)
    weights: np.ndarray        # current weights (position value / equity), before trading
    prices: np.ndarray         # decision prices (last close)


class Constraint(Component):
    """One risk constraint: weights -> weights.

    Stateless constraints implement ``apply``: the constrained ``K x N`` weights for all
    decisions at once, and a boolean per row, True where the constraint bound (changed the
    weights). Path-dependent constraints (``stateful = True``: drawdown control, turnover cap,
    minimum trade size) implement ``apply_step`` instead, called at each decision with the
    current ``Book``; they run after every stateless one. A constraint that cannot be met
    raises ``pipeline.errors.ConfigError``; it never passes weights through silently.
    ``order`` fixes where it runs (lower first); ``primary`` names the parameter a scalar in
    config sets (``risk.max_weight=0.2``).
    """

    order: ClassVar[float] = 50.0
    primary: ClassVar[Optional[str]] = None
    stateful: ClassVar[bool] = False

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def apply_step(self, target: np.ndarray, book: Book) -> tuple[np.ndarray, bool]:
        raise NotImplementedError


# ---------------------------------------------------------------- orders, execution, broker

@dataclasses.dataclass
class Orders:
    """Parent orders of one decision, as arrays (``quantity`` signed: + buy, - sell)."""

    symbol: np.ndarray
    quantity: np.ndarray
    arrival: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)


@dataclasses.dataclass
class ChildOrders:
    """A schedule of child orders: which parent, which intraday bin, how much, at what limit."""

    parent: np.ndarray
    bin: np.ndarray
    quantity: np.ndarray
    limit: np.ndarray  # NaN for a market order


@dataclasses.dataclass
class Fills:
    """Executions. ``price`` is per share including spread and impact; commission is apart."""

    parent: np.ndarray
    symbol: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    commission: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray

    def __len__(self) -> int:
        return len(self.symbol)


@dataclasses.dataclass
class Session:
    """The trading session after a decision: bar ``bar`` of the data.

    ``reference`` is the price a market order at the session's start meets: the open when
    the data has opens, otherwise that session's close (a market-on-close order: the next
    price that exists after the decision).
    """

    bar: int
    reference: np.ndarray
    close: np.ndarray
    volume: Optional[np.ndarray]


class ExecutionAlgo(Component):
    """A parent order becomes child orders over the session's bins."""

    def prepare(self, data: MarketData) -> None:
        """Called once before a run with the whole market (estimate only from the past)."""

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        raise NotImplementedError


class Broker(Component):
    """Fills child orders. The simulated broker fills against bars with a cost model."""

    lot_size: Optional[float] = None

    def prepare(self, data: MarketData) -> None:
        """Called once before a run with the whole market (estimate only from the past)."""

    def execute(self, orders: Orders, children: ChildOrders, session: Session) -> Fills:
        raise NotImplementedError
