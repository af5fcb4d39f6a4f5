"""The simulated broker: fills child orders against the session's intraday bins with a cost model."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional

import numpy as np

from pipeline.core.contracts import (AUCTION, AuctionCosts, Bins, Broker, ChildOrders, Commission, Fills,
                                Financing, Orders, ParentReport, Session)
from pipeline.core.errors import ConfigError
from pipeline.core.exits import ExitLevels, first_exit
from pipeline.core.orders import CODE, OrderType
from pipeline.core.intraday import IntradayMarket, load_bars, trailing_volatility, trailing_volume
from pipeline.core.market import MarketData


# an auction at the close comes after every bin, for one-cancels-all
_CLOSE = 1e18


class SimBroker(Broker):
    """Fills child orders in the session's auction or its intraday bins; every cost is on by
    default.

    Fill convention (one for the whole framework): a decision on the close of bar ``t`` trades
    in session ``t + 1``. A child in the ``AUCTION`` bin (what ``execution=market`` sends)
    fills whole at the session's reference price: its open, or its close when the data has no
    opens (see ``pipeline.core.contracts.Session``). Other children fill in the session's intraday
    bins, real or simulated (``pipeline.core.intraday``: ``bins`` bins, a ``profile`` of volume
    with ``u_ratio`` and ``volume_noise``, real bars from the file ``intraday`` with forecasts
    from ``profile_days`` sessions; seeded by the run's ``seed``). When the data itself is
    intraday, the bins are its own bars from the session's first to its horizon, and
    ``window`` counts sessions.

    In the bins, a parent's children are worked first in, first out (``ChildOrders``): in each
    bin the parent fills at most ``participation_cap`` of the bin's volume (or its newest
    child's own ``participation``, if lower), counting only the volume that traded at prices
    its limit accepts (volume spread evenly over the bin's low-high range), rounded down to
    whole lots. A market child, or a limit child whose limit the bin's average price
    satisfies, fills at that average price plus costs; a limit the price only reached fills
    at the limit, passively: no spread, no impact. At the parent's horizon what is left is
    cancelled (``unfilled="cancel"``) or swept (``"sweep"``): sent as one market order in the
    horizon bin, above the cap, paying the impact of its size; a limit the bin's price does not
    satisfy, or a bin without volume, leaves it cancelled. Both are reported per parent.
    A symbol with no bar in the session (halted, delisted) fills nothing: its orders are
    reported unfilled.

    Costs per fill of ``q`` shares at price ``p`` (the reference, or the bin's price):

    - half-spread: the price moves ``half_spread_bps`` against the order;
    - market impact, the square-root law (Almgren et al. 2005; Toth et al. 2011) with
      ``sigma`` the daily volatility of log returns over the ``window`` bars up to the
      decision (never the session itself): in the auction ``impact_coef * sigma * sqrt(q /
      ADV)`` with ``ADV`` the average daily volume in shares over the same window; in a bin
      ``impact_coef * sigma * sqrt(q / v)`` with ``v`` the bin's volume, so that a parent
      spread over the day at a constant participation pays what the square-root law charges
      the whole order, and one crowding into few bins pays more. Impact is temporary: paid on
      the fill, it does not move the session's later prices. Data without volume uses
      ``adv_usd`` dollars of daily volume per symbol, an explicit assumption that the run
      reports. Auction fills before two returns of history exist carry no impact, and a
      symbol whose window traded no volume does not fill in the auction;
    - commission: ``commission_bps`` of notional plus ``commission_per_share`` per share, at
      least ``commission_min`` per parent order. Per-share commission is only meaningful on
      unadjusted prices; adjusted histories (like the bundled data) should use bps.

    ``price`` in the fills includes spread and impact; commission is reported apart.

    Order types (``ChildOrders.type``), every child a DAY order, filled by the rule of
    ``pipeline.core.exits`` with each bin's average price standing for its open:

    - market-on-open: in the reference auction, as an ``AUCTION`` market child;
    - market-on-close: whole at the session's close, with the auction's costs;
      limit-on-close: likewise if the close is at or better than its limit, else cancelled;
    - stop and trailing stop: from the child's bin to its parent's horizon, triggered in the
      first bin whose low (a sell) or high (a buy) reaches the level, then filled whole there
      as a market order at the level, or at the bin's price if that price is already through
      it (a gap), plus spread and impact on the bin's volume (no participation cap). A
      trailing stop ratchets on the previous bins' best price, from the arrival price;
    - stop-limit: once triggered, a limit child released in the trigger bin (it fills only
      where its limit is reachable: not in a bin that gapped through it);
    - one-cancels-all (``oca``): the member that can fill first (the auction, then by bin,
      the close last; ties to the first listed) is kept, the others are cancelled.

    Financing (``pipeline.core.contracts.Financing``), accrued every bar on the calendar days since
    the previous bar, actual/360 (the US money-market count brokers use; a weekend is three
    days), on the cash and short positions held at the previous close, posted to cash:

    - margin interest: ``margin_rate_bps`` a year on negative cash (500: 5 %, a broker's
      benchmark-plus-spread rate, flat over the run);
    - interest on positive cash: ``cash_rate_bps`` a year (0 by default: idle cash earns
      nothing unless you say what your broker pays);
    - short borrow fee: ``borrow_fee_bps`` a year of each short position's market value (25:
      an easy-to-borrow large cap), ``borrow_fee_overrides`` per symbol for hard-to-borrow ones.
    """

    rules = {
        "commission_bps": "[0, 1000]",
        "commission_per_share": "[0, inf)",
        "commission_min": "[0, inf)",
        "half_spread_bps": "[0, 1000]",
        "impact_coef": "[0, 100]",
        "window": "[2, inf)",
        "adv_usd": "(0, inf)",
        "participation_cap": "(0, 1]",
        "bins": "[1, 1440]",
        "u_ratio": "[1, 100]",
        "volume_noise": "[0, 3]",
        "profile_days": "[1, inf)",
        "lot_size": "(0, inf)",
        "margin_rate_bps": "[0, 10000]",
        "cash_rate_bps": "[0, 10000]",
        "borrow_fee_bps": "[0, 100000]",
    }

    def __init__(
        self,
        commission_bps: float = 1.0,
        commission_per_share: float = 0.0,
        commission_min: float = 1.0,
        half_spread_bps: float = 2.0,
        impact_coef: float = 0.5,
        window: int = 20,
        adv_usd: float = 5.0e8,
        participation_cap: float = 0.25,
        unfilled: Literal["cancel", "sweep"] = "cancel",
        bins: int = 13,
        profile: Literal["u_shape", "flat"] = "u_shape",
        u_ratio: float = 2.0,
        volume_noise: float = 0.2,
        intraday: Optional[str] = None,
        profile_days: int = 20,
        lot_size: Optional[float] = None,
        margin_rate_bps: float = 500.0,
        cash_rate_bps: float = 0.0,
        borrow_fee_bps: float = 25.0,
        borrow_fee_overrides: Optional[dict[str, float]] = None,
        seed: int = 0,
    ) -> None:
        self.commission_bps = commission_bps
        self.commission_per_share = commission_per_share
        self.commission_min = commission_min
        self.half_spread_bps = half_spread_bps
        self.impact_coef = impact_coef
        self.window = window
        self.adv_usd = adv_usd
        self.participation_cap = participation_cap
        self.unfilled = unfilled
        self.bins = bins
        self.profile = profile
        self.u_ratio = u_ratio
        self.volume_noise = volume_noise
        self.intraday = intraday
        self.profile_days = profile_days
        self.lot_size = lot_size
        self.margin_rate_bps = margin_rate_bps
        self.cash_rate_bps = cash_rate_bps
        self.borrow_fee_bps = borrow_fee_bps
        self.borrow_fee_overrides = borrow_fee_overrides
        self.seed = seed

    def prepare(self, data: MarketData) -> None:
        # intraday data: windows of ``window`` sessions, daily volume and volatility
        self.sessions_ = data.intraday_sessions
        adv = None if data.volume is None else data.derived(
            ("trailing_volume", self.window), lambda: trailing_volume(data.volume, self.window, self.sessions_))
        self.data_, self.adv_ = data, adv
        self.bars_ = None if self.intraday is None else load_bars(str(self.intraday), data)
        # volatility and the intraday market are built when first needed: execution=market
        # without impact needs neither
        self.sigma_, self.market_ = None, None
        # auction impact = scale * sqrt(size): size in shares over ADV in shares when the data
        # has volume, in notional over the assumed ADV in dollars when it has not
        impact = self.impact_coef * self._sigma() if self.impact_coef else 0.0
        if adv is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                # NaN where the window traded nothing: such a market fills nothing
                scale = np.where(adv > 0, impact / np.sqrt(adv), np.nan)
        else:
            scale = np.broadcast_to(impact / np.sqrt(self.adv_usd), data.close.shape)
        self.auction_ = AuctionCosts(
            impact_scale=scale, half_spread=self.half_spread_bps * 1e-4,
            impact_in_shares=adv is not None, commission=self._commission(), volume=data.volume,
            assumed_dollar_volume=self.adv_usd)
        fee = np.full(len(data.symbols), self.borrow_fee_bps * 1e-4)
        for symbol, bps in (self.borrow_fee_overrides or {}).items():
            if symbol not in data.symbols:
                raise ConfigError(f"broker.borrow_fee_overrides.{symbol}: not a symbol of {data.name} "
                                  f"({', '.join(data.symbols)}); fix the name or drop the entry")
            if not (isinstance(bps, (int, float)) and 0 <= bps <= 100_000):
                raise ConfigError(f"broker.borrow_fee_overrides.{symbol}={bps!r} is not allowed: "
                                  f"expected annual bps in [0, 100000]")
            fee[data.symbols.index(symbol)] = bps * 1e-4
        self.financing_ = Financing(margin_rate=self.margin_rate_bps * 1e-4,
                                    cash_rate=self.cash_rate_bps * 1e-4, borrow_fee=fee)

    def _sigma(self) -> np.ndarray:
        """Daily volatility of log returns over ``window`` bars, or sessions of intraday data
        (row ``t``: up to its close)."""
        if self.sigma_ is None:
            data = self.data_
            self.sigma_ = data.derived(("trailing_volatility", self.window),
                                       lambda: trailing_volatility(data.close, self.window, self.sessions_))
        return self.sigma_

    def _commission(self) -> Commission:
        return Commission(rate=self.commission_bps * 1e-4, per_share=self.commission_per_share,
                          minimum=self.commission_min)

    def auction(self) -> AuctionCosts:
        return self.auction_

    def financing(self) -> Financing:
        return self.financing_

    def session_bins(self, bar: int, symbols: np.ndarray, last: Optional[int] = None) -> Bins:
        if self.market_ is None:
            self.market_ = IntradayMarket(
                self.data_, self._sigma(), self.adv_, n_bins=int(self.bins), profile=self.profile,
                u_ratio=self.u_ratio, volume_noise=self.volume_noise,
                half_spread=self.half_spread_bps * 1e-4, adv_usd=self.adv_usd, seed=int(self.seed),
                bars=self.bars_, profile_days=int(self.profile_days))
        if last is not None:  # intraday data: the data's own bars up to the horizon
            return self.market_.span(bar, last, symbols)
        return self.market_.bins(bar, symbols)

    def execute(self, orders: Orders, children: ChildOrders, session: Session) -> Fills:
        m = len(orders)
        report = ParentReport(first_bin=np.full(m, AUCTION), last_bin=np.full(m, AUCTION),
                              vwap=np.full(m, np.nan), twap=np.full(m, np.nan),
                              volume=np.full(m, np.nan), cancelled=orders.quantity.copy(),
                              swept=np.zeros(m))
        typed = []
        if children.type is not None:
            children, typed = self._typed(orders, children, session, report)
        in_auction = children.bin == AUCTION
        if in_auction.all():  # execution=market: the session's bins are never built
            parts = [self._auction(orders, children, session, report)]
        elif not in_auction.any():
            parts = self._binned(orders, children, session, report)
        else:
            parts = [self._auction(orders, _subset(children, in_auction), session, report),
                     *self._binned(orders, _subset(children, ~in_auction), session, report)]
        parts = typed + parts
        parent, bin_, qty, price, base, spread, impact = (
            parts[0] if len(parts) == 1 else [np.concatenate(col) for col in zip(*parts)])
        fee = self._commission().fee(qty, np.abs(qty) * base)
        if self.commission_min and parent.size:
            # the minimum is per parent order: top up each parent's first fill
            short = np.maximum(self.commission_min - np.bincount(parent, fee, m), 0.0)
            first = np.full(m, parent.size)
            np.minimum.at(first, parent, np.arange(parent.size))
            done = first < parent.size
            fee[first[done]] += short[done]
        return Fills(parent=parent, symbol=orders.symbol[parent], quantity=qty, price=price,
                     commission=fee, spread_cost=spread, impact_cost=impact, bin=bin_,
                     report=report,
                     order_type=None if report.order_type is None else report.order_type[parent],
                     trigger=None if report.trigger is None else report.trigger[parent])

    def _typed(self, orders: Orders, children: ChildOrders, session: Session,
               report: ParentReport) -> tuple[ChildOrders, list[tuple]]:
        """Children with order types: the auctions at the close and the triggered stops filled
        here, one-cancels-all groups resolved; what is left goes on as market or limit children."""
        m, kind = len(orders), children.type
        first = np.full(m, kind.size)
        np.minimum.at(first, children.parent, np.arange(kind.size))
        report.order_type = np.where(first < kind.size, kind[np.minimum(first, kind.size - 1)],
                                     CODE[OrderType.MARKET])
        report.trigger = np.full(m, np.nan)
        is_ = (lambda *types: np.isin(kind, [CODE[t] for t in types]))
        close_auction = is_(OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE)
        side = np.sign(children.quantity)
        close = session.close[orders.symbol[children.parent]]
        with np.errstate(invalid="ignore"):
            crosses = ~is_(OrderType.LIMIT_ON_CLOSE) | (side * (children.limit - close) >= 0)
        # when each child could first fill: -1 the open auction, bins, then the close
        when = np.where(children.bin == AUCTION, -1.0, children.bin.astype(float))
        when[close_auction] = np.where(crosses[close_auction], _CLOSE, np.nan)
        binned = is_(OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)
        oca = children.oca if children.oca is not None else np.full(kind.size, -1)
        triggers = binned & ~is_(OrderType.LIMIT) | (binned & (oca >= 0))
        hit = None
        if triggers.any():
            hit, resting = self._triggers(orders, children, session)
            when[binned] = np.where(hit.bar >= 0, hit.bar, np.nan)[binned]
            when[is_(OrderType.STOP_LIMIT)] = resting[is_(OrderType.STOP_LIMIT)]
        keep = np.ones(kind.size, dtype=bool)
        for group in np.unique(oca[oca >= 0]):
            members = np.flatnonzero(oca == group)
            soonest = np.where(np.isnan(when[members]), np.inf, when[members])
            keep[members] = False
            keep[members[np.argmin(soonest)]] = True
        parts = []
        done = keep & close_auction & crosses
        if done.any():
            parts.append(self._auction(orders, _subset(children, done), session, report,
                                       reference=session.close))
        if hit is not None:
            stops = keep & is_(OrderType.STOP, OrderType.TRAILING_STOP) & (hit.bar >= 0)
            parts.append(self._stopped(orders, children, session, report, hit, stops))
            limits = keep & is_(OrderType.STOP_LIMIT) & (hit.bar >= 0)
            report.trigger[children.parent[limits]] = hit.trigger[limits]
            bin_ = np.where(limits, hit.bar, children.bin)
            expire = children.expire if children.expire is not None else children.bin
            children = dataclasses.replace(children, bin=bin_, expire=np.maximum(expire, bin_))
            keep &= ~is_(OrderType.STOP, OrderType.TRAILING_STOP) & (~is_(OrderType.STOP_LIMIT) | limits)
        keep &= ~close_auction
        rest = _subset(children, keep)
        market = rest.type == CODE[OrderType.MARKET_ON_OPEN]
        limit = np.where(rest.type == CODE[OrderType.MARKET], np.nan, rest.limit)
        return dataclasses.replace(rest, bin=np.where(market, AUCTION, rest.bin), limit=limit,
                                   type=None), parts

    def _triggers(self, orders: Orders, children: ChildOrders, session: Session) -> tuple:
        """``first_exit`` of each child over its parent's bins, from its bin to the parent's
        horizon (the order of an exit, for a position on the other side), and the bin from
        which each triggered stop-limit's limit is reachable (NaN: never)."""
        bins = session.bins
        parent = children.parent
        horizon = np.full(len(orders), -1)
        np.maximum.at(horizon, parent, children.bin if children.expire is None
                      else np.maximum(children.expire, children.bin))
        rows = np.arange(bins.volume.shape[0])[:, None]
        active = (rows >= children.bin) & (rows <= horizon[parent]) & (bins.volume[:, parent] > 0)
        price, high, low = (np.where(active, a[:, parent], np.nan)
                            for a in (bins.price, bins.high, bins.low))
        side = -np.sign(children.quantity)  # a buy stop is a short position's stop
        kind = children.type
        pick = (lambda values, *types: None if values is None else
                np.where(np.isin(kind, [CODE[t] for t in types]), values, np.nan))
        levels = [ExitLevels("stop", OrderType.STOP, stop=pick(children.stop, OrderType.STOP,
                                                                OrderType.STOP_LIMIT)),
                  ExitLevels("trail", OrderType.TRAILING_STOP,
                             trail_amount=pick(children.trail_amount, OrderType.TRAILING_STOP),
                             trail_percent=pick(children.trail_percent, OrderType.TRAILING_STOP)),
                  ExitLevels("limit", OrderType.LIMIT, limit=pick(children.limit, OrderType.LIMIT))]
        hit = first_exit(price, high, low, price, side, levels, extreme=orders.arrival[parent])
        limit = np.where(kind == CODE[OrderType.STOP_LIMIT], children.limit, np.nan)
        after = rows >= np.where(hit.bar >= 0, hit.bar, rows.size)
        rest = first_exit(*(np.where(after, a, np.nan) for a in (price, high, low, price)), side,
                          [ExitLevels("limit", OrderType.LIMIT, limit=limit)])
        return hit, np.where(rest.bar >= 0, rest.bar, np.nan)

    def _stopped(self, orders: Orders, children: ChildOrders, session: Session,
                 report: ParentReport, hit, stops: np.ndarray) -> tuple:
        """Triggered stops filled whole in their trigger bin at the level (the bin's price when
        it gapped through), plus spread and impact on the bin's volume."""
        bins = session.bins
        p, b, q = children.parent[stops], hit.bar[stops], children.quantity[stops]
        at_price = hit.price[stops]
        side = np.sign(q)
        half_spread = bins.half_spread[p]
        impact = self.impact_coef * bins.sigma[p] * np.sqrt(np.abs(q) / bins.volume[b, p])
        report.trigger[p] = hit.trigger[stops]
        report.first_bin[p] = report.last_bin[p] = b
        report.vwap[p] = report.twap[p] = bins.price[b, p]
        report.volume[p] = bins.volume[b, p]
        report.cancelled[p] -= q
        return (p, b, q, at_price * (1.0 + side * (half_spread + impact)), at_price,
                np.abs(q) * at_price * half_spread, np.abs(q) * at_price * impact)

    def _auction(self, orders: Orders, children: ChildOrders, session: Session,
                 report: ParentReport, reference: Optional[np.ndarray] = None) -> tuple:
        """Children filled whole at the session's reference price (or ``reference``: the close)."""
        sym = orders.symbol[children.parent]
        ref = (session.reference if reference is None else reference)[sym]
        impact = self.auction_.impact_scale[session.bar - 1][sym]
        ok = np.isfinite(ref * impact)  # no bar, or no volume in the window: cannot fill
        parent, ref, impact, qty = children.parent[ok], ref[ok], impact[ok], children.quantity[ok]
        price, spread, impact = self.auction_.fill(ref, impact, qty)
        sym = orders.symbol[parent]
        report.vwap[parent] = report.twap[parent] = ref
        report.volume[parent] = self.auction_.session_volume(session.bar, sym, ref)
        report.cancelled[parent] -= qty
        return parent, np.full(parent.size, AUCTION), qty, price, ref, spread, impact

    def _binned(self, orders: Orders, children: ChildOrders, session: Session,
                report: ParentReport) -> list[tuple]:
        """Children worked first in, first out through the bins, under the participation cap."""
        bins = session.bins
        n_bins, m = bins.volume.shape
        if children.bin.max() >= n_bins:
            raise RuntimeError(f"execution produced a child order outside the session's {n_bins} "
                               f"bins: a plugin bug")
        side = np.sign(orders.quantity)
        rows = np.arange(n_bins)[:, None]
        cells = n_bins * m
        flat = children.bin * m + children.parent
        released = np.bincount(flat, np.abs(children.quantity), cells).reshape(n_bins, m)
        first = np.full(m, n_bins)
        np.minimum.at(first, children.parent, children.bin)
        last = np.full(m, -1)
        np.maximum.at(last, children.parent, children.bin if children.expire is None
                      else np.maximum(children.expire, children.bin))
        working = (rows >= first) & (rows <= last)
        volume, price = bins.volume, bins.price
        room = self.participation_cap * volume
        own, limited = children.participation, not np.isnan(children.limit).all()
        capped = own is not None and not np.isnan(own).all()
        if capped or limited:
            # each bin works under the limit and participation of the parent's newest child
            newest = np.where(np.bincount(flat, minlength=cells).reshape(n_bins, m) > 0, rows, 0)
            newest_cell = (np.maximum.accumulate(newest, 0), np.arange(m))
        if capped:
            cap = np.full(cells, np.nan)
            cap[flat] = own
            room = np.fmin(cap.reshape(n_bins, m)[newest_cell], self.participation_cap) * volume
        if limited:
            limit = np.full(cells, np.nan)
            limit[flat] = children.limit
            limit = limit.reshape(n_bins, m)[newest_cell]
            with np.errstate(invalid="ignore", divide="ignore"):
                # the share of the bin's volume that traded at prices the limit accepts
                span = bins.high - bins.low
                through = np.where(side > 0, limit - bins.low, bins.high - limit)
                room = room * np.where(np.isnan(limit), 1.0, np.where(
                    span > 0, np.clip(through / span, 0.0, 1.0), through >= 0))
                marketable = np.isnan(limit) | (side * (limit - price) >= 0)
        wanted = np.abs(report.cancelled)  # all of each parent, less what the auction filled
        # capped at the parent's size: it changes no fill and keeps the sums at the order's scale
        capacity = np.where(working, np.minimum(room, wanted), 0.0)
        if self.lot_size:
            capacity = np.floor(capacity / self.lot_size) * self.lot_size
        # a queue with releases A and capacities C: cumulative fills D = C + min(0, min_j<=b A_j - C_j)
        cum_capacity = capacity.cumsum(0)
        done = cum_capacity + np.minimum(np.minimum.accumulate(released.cumsum(0) - cum_capacity, 0), 0.0)
        filled = done.copy()
        filled[1:] -= done[:-1]
        left = np.maximum(wanted - done[-1], 0.0)

        p, b = np.nonzero(filled.T > 0)
        q = filled[b, p]
        at_price = price[b, p]
        half_spread = bins.half_spread[p]
        impact = self.impact_coef * bins.sigma[p] * np.sqrt(q / volume[b, p])
        if limited:
            aggressive = marketable[b, p]
            half_spread, impact = half_spread * aggressive, impact * aggressive
            at_price = np.where(aggressive, at_price, limit[b, p])
        parts = [(p, b, side[p] * q, at_price * (1.0 + side[p] * (half_spread + impact)), at_price,
                  q * at_price * half_spread, q * at_price * impact)]

        has = last >= 0
        if self.unfilled == "sweep":
            horizon = np.maximum(last, 0)
            cols = np.arange(m)
            v_end = volume[horizon, cols]
            sweep = has & (left > 0) & (v_end > 0)
            if limited:
                sweep &= marketable[horizon, cols]
            p = np.flatnonzero(sweep)
            b, q = horizon[p], left[p]
            at_price, half_spread = price[b, p], bins.half_spread[p]
            impact = self.impact_coef * bins.sigma[p] * np.sqrt(q / v_end[p])
            parts.append((p, b, side[p] * q, at_price * (1.0 + side[p] * (half_spread + impact)),
                          at_price, q * at_price * half_spread, q * at_price * impact))
            report.swept[p] = side[p] * q
            left[p] = 0.0

        traded = volume * working
        market_volume = np.add.reduce(traded, 0)
        vwap = np.divide(np.add.reduce(price * traded, 0), market_volume,
                         out=np.full(m, np.nan), where=market_volume > 0)
        twap = np.add.reduce(price * working, 0) / np.maximum(np.add.reduce(working, 0), 1)
        some = slice(None) if has.all() else has
        report.first_bin[some], report.last_bin[some] = first[some], last[some]
        report.vwap[some], report.twap[some] = vwap[some], twap[some]
        report.volume[some], report.cancelled[some] = market_volume[some], (side * left)[some]
        return parts


def _subset(children: ChildOrders, keep: np.ndarray) -> ChildOrders:
    arrays = {f.name: getattr(children, f.name) for f in dataclasses.fields(ChildOrders)
              if f.name != "whole"}
    return ChildOrders(**{k: None if a is None else a[keep] for k, a in arrays.items()})
