"""The stage contracts every plugin honours. Plugins import these; pipeline imports no plugin.

Shapes: ``T`` bars, ``N`` symbols, ``K`` decision times. Arrays are float64 numpy; a decision
at bar ``t`` sees rows ``[0, t]`` only and trades in the next session, bar ``t + 1``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, ClassVar, Optional

import numpy as np

from pipeline.core.exits import ExitLevels
from pipeline.core.market import MarketData
from pipeline.core.params import Component


# ---------------------------------------------------------------- data

class DataSource(Component):
    """Loads a market. Every source accepts ``start``, ``end`` and ``symbols`` to slice.

    A source states what a report should know about it: ``default_benchmark``, the report's
    benchmark when ``report.benchmark`` is null (``universe``: the equal-weight buy-and-hold
    of its symbols; or one of its symbols), and ``caveats``, sentences on the data's biases.
    ``calendar`` names the exchange whose sessions its bars follow (an ISO MIC for
    ``pipeline.core.calendars``, None: not known): paper and live ticks fall on its sessions.
    """

    default_benchmark: ClassVar[str] = "universe"
    caveats: ClassVar[tuple[str, ...]] = ()
    calendar: Optional[str] = None

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
    bars_per_year: float = 252.0   # the data's annualisation (MarketData.bars_per_year)


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
    raises ``pipeline.core.errors.ConfigError``; it never passes weights through silently.
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


# ---------------------------------------------------------------- exits

class ExitRule(Component):
    """An exit kept working while a position is open, checked every bar between decisions
    (``plugins/exits/``; the fill convention is ``pipeline.core.exits``).

    ``levels`` gives the rule's order for positions opened on ``side`` (+1 long, -1 short) at
    ``entry`` prices, in ``columns`` (symbol indices), decided at ``bar``: it may read data up
    to ``bar`` only (an ATR known at the entry's decision). ``sleeves`` limits the rule to
    named sleeves (None: every sleeve). ``cooldown`` is the re-entry policy after this rule
    fired: None waits for the next decision; ``k`` bars keeps the symbol out of the book for
    ``k`` bars (decisions inside them leave it at zero), then restores the last target.
    A rule that cannot hold (a stop above a long's entry) raises ``ConfigError`` in
    ``__init__`` or ``prepare``, before any work.
    """

    sleeves: Optional[list] = None
    cooldown: Optional[int] = None

    def prepare(self, data: MarketData) -> None:
        """Called once before a run with the whole market (estimate only from the past)."""

    def levels(self, side: np.ndarray, entry: np.ndarray, bar: np.ndarray,
               columns: np.ndarray) -> ExitLevels:
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


# A child order in this bin is sent to the session's reference auction: it fills whole at
# ``Session.reference`` (the open, or the close when the data has no opens), as ``market`` does.
AUCTION = -1


@dataclasses.dataclass
class ChildOrders:
    """A schedule of child orders, one row per child (struct of arrays, no objects).

    ``bin`` is the intraday bin the child is released in (``AUCTION``: the reference auction).
    The children of a parent are worked first in, first out: a child released in bin ``b``
    keeps working in the bins after it until it is filled or its parent's horizon passes, so
    an iceberg's slices released together show one at a time, and what a capped bin could not
    fill rolls into the next. A parent's horizon is the last ``expire`` (or ``bin``) of its
    children; what is still unfilled there is cancelled or swept (the broker's ``unfilled``).
    ``limit`` is a price (NaN: a market order); ``participation`` the most the parent may
    take of a bin's volume while this child is its newest (NaN: the broker's cap only).

    Order types (all optional; None is today's market-or-limit child): ``type`` holds codes
    of ``pipeline.core.orders.TYPES`` (``CODE[OrderType.STOP]``...), with the terms ``stop``
    (the trigger of a stop or stop-limit), ``trail_amount``/``trail_percent`` (a trailing
    stop's distance, NaN where the other is used) and ``limit`` (limit, stop-limit,
    limit-on-close). The auction types (market-on-open/-close, limit-on-close) ignore ``bin``.
    ``oca`` is a one-cancels-all group id per child (-1: none): the group's first member to
    fill cancels the rest; a group's members belong to one parent and its quantity counts
    once (the largest member's). ``tif`` holds ``TimeInForce`` codes, and must be DAY: an
    execution child lives for its session only (its parent's horizon); GTC orders are the
    exits' (``exits=...``), which the backtest keeps working until the position closes.
    """

    parent: np.ndarray
    bin: np.ndarray
    quantity: np.ndarray
    limit: np.ndarray
    participation: Optional[np.ndarray] = None
    expire: Optional[np.ndarray] = None
    whole: bool = False  # set only by ``whole_orders``: child i is all of parent i, in one bin
    type: Optional[np.ndarray] = None
    stop: Optional[np.ndarray] = None
    trail_amount: Optional[np.ndarray] = None
    trail_percent: Optional[np.ndarray] = None
    tif: Optional[np.ndarray] = None
    oca: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.parent)

    @classmethod
    def whole_orders(cls, orders: "Orders", bin: int = AUCTION) -> "ChildOrders":
        """Each parent sent whole as one market child in ``bin``; the engine's quantity checks
        and the broker's bookkeeping can trust this shape without re-deriving it."""
        n = orders.symbol.size
        return cls(parent=np.arange(n), bin=np.full(n, bin, dtype=np.int64),
                   quantity=orders.quantity, limit=np.full(n, np.nan), whole=True)


@dataclasses.dataclass
class ParentReport:
    """What the broker reports for each parent order of a session (row = ``Orders`` row).

    ``first_bin``/``last_bin`` bound the parent's interval (its first child's bin to its
    horizon; ``AUCTION`` for an auction order), over which ``vwap``, ``twap`` and ``volume``
    describe the market: its volume-weighted and time-weighted price and the shares it traded
    (for an auction, the reference price and the session's volume). NaN where unknown (no
    volume traded). ``cancelled`` and ``swept`` are signed quantities: what was left at the
    horizon and cancelled, and what the horizon sweep filled.
    """

    first_bin: np.ndarray
    last_bin: np.ndarray
    vwap: np.ndarray
    twap: np.ndarray
    volume: np.ndarray
    cancelled: np.ndarray
    swept: np.ndarray
    # children with order types (``ChildOrders.type``): each parent's type (its first child's)
    # and the level its first triggered child met (NaN: none); None for market/limit children
    order_type: Optional[np.ndarray] = None
    trigger: Optional[np.ndarray] = None


@dataclasses.dataclass
class Fills:
    """Executions, one row per parent and bin. ``price`` is per share including spread and
    impact; commission is apart. ``report`` describes every parent order, filled or not."""

    parent: np.ndarray
    symbol: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    commission: np.ndarray
    spread_cost: np.ndarray
    impact_cost: np.ndarray
    bin: np.ndarray
    report: ParentReport
    order_type: Optional[np.ndarray] = None  # per fill, as ``report.order_type`` (None: none)
    trigger: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.symbol)


@dataclasses.dataclass
class Bins:
    """A session's intraday bins for the symbols of its orders: ``B x M`` arrays whose column
    ``j`` is the symbol of parent order ``j``.

    ``forecast``, ``sigma`` and ``half_spread`` are known before the session. The rest is
    what the session did; an algorithm deciding bin ``b`` may read it for bins before ``b``
    only, except that it may size bin ``b``'s child by bin ``b``'s volume as it prints
    (``pov``). ``vwap`` never reads ``volume``.
    """

    elapsed: np.ndarray      # B: share of the session elapsed at each bin's end (the last is 1)
    price: np.ndarray        # the bin's average traded price (volume-weighted)
    low: np.ndarray          # lowest and highest traded price in the bin
    high: np.ndarray
    volume: np.ndarray       # shares traded in the bin (0: nothing traded, or halted)
    forecast: np.ndarray     # shares expected in the bin, from data before the session only
    sigma: np.ndarray        # M: daily volatility of log returns known at the decision
    half_spread: np.ndarray  # M: half the quoted spread, a fraction of the price
    # the bins' span in sessions: 1 for a whole session; on intraday data, the horizon's share of
    # a full session (so forecast.sum(0) / days is a daily volume, and elapsed * days is in days)
    days: float = 1.0


@dataclasses.dataclass
class Session:
    """The trading session after a decision: bar ``bar`` of the data.

    ``reference`` is the price a market order at the session's start meets: the open when
    the data has opens, otherwise that session's close (a market-on-close order: the next
    price that exists after the decision). ``bins`` are the session's intraday bins for
    ``symbols`` (the ordered symbols, in the orders' order), built by ``source`` the first
    time anything reads them: a session traded whole in the auction never builds them.
    ``lot`` is the broker's lot size (children should be whole lots).

    On intraday data (``MarketData.intraday``) the session is bars ``bar..last`` of the data:
    from the bar after the decision to the next decision or the end of that bar's trading
    day, whichever comes first; bin ``b`` is bar ``bar + b`` and fills post there.
    """

    bar: int
    reference: np.ndarray
    close: np.ndarray
    volume: Optional[np.ndarray]
    symbols: Optional[np.ndarray] = None
    lot: Optional[float] = None
    source: Optional[Callable[..., Bins]] = None
    last: Optional[int] = None

    @functools.cached_property
    def bins(self) -> Bins:
        if self.source is None:
            raise RuntimeError("this session has no intraday market: the broker must provide one")
        if self.last is not None:
            return self.source(self.bar, self.symbols, last=self.last)
        return self.source(self.bar, self.symbols)


class ExecutionAlgo(Component):
    """Parent orders become child orders over the session's bins (see ``ChildOrders``).

    ``slice`` must never create a child with a NaN, infinite, zero or wrong-side quantity, nor
    schedule more than a parent's quantity (the engine checks). An algorithm whose ``slice``
    is ``ChildOrders.whole_orders(orders, AUCTION)`` in every session declares
    ``whole_in_auction = True``: the engine may then fill a backtest through the broker's
    ``AuctionCosts`` without calling ``slice`` at all.
    """

    whole_in_auction: ClassVar[bool] = False

    def prepare(self, data: MarketData) -> None:
        """Called once before a run with the whole market (estimate only from the past)."""

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        raise NotImplementedError


class Broker(Component):
    """Fills child orders. The simulated broker fills against bars with a cost model."""

    lot_size: Optional[float] = None

    def prepare(self, data: MarketData) -> None:
        """Called once before a run with the whole market (estimate only from the past)."""

    def auction(self) -> Optional["AuctionCosts"]:
        """How this broker fills whole orders in the reference auction, as arrays (after
        ``prepare``); None (the default) when it cannot say ahead of the session, as a real
        broker cannot: the engine then sends every session through ``execute``."""
        return None

    def session_bins(self, bar: int, symbols: np.ndarray, last: Optional[int] = None) -> Bins:
        """The intraday bins of session ``bar`` for ``symbols`` (a ``Session.source``); on
        intraday data, one bin per bar ``bar..last`` of the data itself."""
        raise NotImplementedError(f"{type(self).__name__} simulates no intraday bins; use an "
                                  f"execution algorithm that trades in the auction (execution=market)")

    def execute(self, orders: Orders, children: ChildOrders, session: Session) -> Fills:
        raise NotImplementedError

    def financing(self) -> Optional["Financing"]:
        """What carrying the book costs between sessions (after ``prepare``); None (the
        default) when the broker charges it on its own account, as a real broker does."""
        return None


@dataclasses.dataclass(frozen=True)
class Commission:
    """Per parent order: ``max(|q| * r * rate + |q| * per_share, minimum)`` for ``q`` shares
    at ``r`` (``fee`` is before the minimum, which the broker applies per parent)."""

    rate: float
    per_share: float
    minimum: float

    def fee(self, quantity: np.ndarray, notional: np.ndarray) -> np.ndarray:
        fee = notional * self.rate
        if self.per_share:
            fee += np.abs(quantity) * self.per_share
        return fee


@dataclasses.dataclass(frozen=True)
class AuctionCosts:
    """A broker's fills of whole orders in the reference auction, as a cost model on arrays.

    An order of ``q`` shares meeting the reference price ``r`` of session ``t`` (``impact``
    is ``impact_scale[t - 1]``, known at the decision) fills whole at

        price = r + r * sign(q) * (half_spread + impact * sqrt(size))

    with ``size`` the order's ``|q|`` shares (``impact_in_shares``) or its notional ``|q| r``
    in dollars, and pays ``commission``. A NaN ``r`` (no bar in the session) or ``impact`` (no
    volume in the window) means the order cannot fill there. ``spread_cost`` and
    ``impact_cost`` are the notional times ``half_spread`` and ``impact * sqrt(size)``. The
    session's volume reported is ``volume`` (shares), or ``assumed_dollar_volume / r`` when
    the data has none.

    The simulated broker fills auction children with it, and the engine's whole-auction walk
    (``pipeline.backtest.engine``) fills a whole backtest with it without a per-session object.
    """

    impact_scale: np.ndarray                 # T x N
    half_spread: float
    impact_in_shares: bool
    commission: Commission
    volume: Optional[np.ndarray]             # T x N shares, or None
    assumed_dollar_volume: float

    def fill(self, reference: np.ndarray, impact: np.ndarray,
             quantity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Price per share (spread and impact included), spread cost and impact cost."""
        size = np.abs(quantity)
        notional = size * reference
        cost = impact * np.sqrt(size if self.impact_in_shares else notional)
        price = reference + reference * np.copysign(self.half_spread + cost, quantity)
        return price, notional * self.half_spread, notional * cost

    def cost(self, reference: np.ndarray, impact: np.ndarray, quantity: np.ndarray) -> float:
        """Spread, impact and commission of whole orders ``quantity`` (one per symbol, 0 for
        none) in one session; orders that cannot fill there (see above) cost nothing."""
        with np.errstate(invalid="ignore"):
            fills = (quantity != 0) & np.isfinite(reference * impact)
        q, r = quantity[fills], reference[fills]
        _, spread, impact_cost = self.fill(r, impact[fills], q)
        fee = np.maximum(self.commission.fee(q, np.abs(q) * r), self.commission.minimum)
        return float(spread.sum() + impact_cost.sum() + fee.sum())

    def session_volume(self, bar: np.ndarray, symbol: np.ndarray,
                       reference: np.ndarray) -> np.ndarray:
        if self.volume is not None:
            return self.volume[bar, symbol]
        return self.assumed_dollar_volume / reference


@dataclasses.dataclass(frozen=True)
class Financing:
    """What carrying the book costs between sessions, accrued every bar on calendar time.

    Bar ``s`` accrues ``d / day_count`` years, ``d`` the calendar days from bar ``s - 1`` to
    bar ``s`` (actual/360: a weekend accrues three days), on the book as it stood at the close
    of bar ``s - 1``: cash ``c`` earns ``c * cash_rate`` when positive and pays
    ``-c * margin_rate`` when negative, and each short position pays ``borrow_fee[i]`` of its
    market value. Rates are annual fractions; what accrues is posted to cash at bar ``s``.
    """

    margin_rate: float
    cash_rate: float
    borrow_fee: np.ndarray  # N: annual fee on each symbol's short market value
    day_count: float = 360.0
