"""Planning: a decision's targets, shares, parents and children, committed to the journal before
anything is sent (see ``pipeline.live.runner``'s docstring, steps 2 to 4).

The execution algorithm slices over bins that are forecasts only. On daily data: ``mode.bins``
bins of ``mode.bin_seconds`` (shorter to end at a half day's early close), a U-shaped volume
profile times the trailing daily volume. On intraday data the bins are the data's own coming
bars (``bar_grid``): aligned to ``bar_size``, from now to ``mode.bins x mode.bin_seconds``
ahead, the session's close (of ``data.calendar``) or the next decision bar, whichever comes
first (the backtest's horizon); a child is
released at its bar's start (the first bar's: now), and each bar's forecast is the volume
the trailing sessions traded in that bar of the session (``clock_volume``, the backtest's
forecast, from bars before now only).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from typing import Any

import numpy as np

from pipeline.core import calendars
from pipeline.core.contracts import Bins, ChildOrders, Orders, RiskContext, Session
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.intraday import clock_volume, trailing_volatility, trailing_volume, volume_profile
from pipeline.core.market import forward_filled, session_clock, session_ends
from pipeline.core.schedule import decision_bars
from pipeline.decision.step import Step, check_children, risk
from pipeline.decision.targets import first_decision, in_data_bars, last_decision, targets
from pipeline.core.live_broker import BrokerError
from pipeline.live.journal import Child, Parent
from pipeline.live.messages import say


class Planner:
    """Plans a decision for ``LiveRunner`` (state: ``broker``, ``journal``, ``stages``, ``qualified``)."""

    async def plan(self, data, key: str, config: str, parts: dict) -> None:
        symbols = list(data.symbols)
        self._exit_data[key] = data
        await self._qualify(symbols)
        # sized on the gateway's quotes: the data's last close may be days (or years) old
        quoted = await self._ask(lambda: self.broker.quotes(symbols))
        quote = np.array([quoted.get(s, np.nan) for s in symbols])
        positions = await self._ask(self.broker.positions)
        equity = await self._ask(self.broker.net_liquidation)
        reason = self.killswitch.observe_equity(equity)
        if reason:
            await self._kill(reason)
        if not equity > 0:
            raise BrokerError(f"net liquidation value of {self.account} is {equity}: nothing to trade with")
        held = np.array([positions.get(s, 0.0) for s in symbols])
        outside = sorted(s for s, q in positions.items() if q and s not in symbols)
        if outside:
            self.journal.event("outside", {"symbols": outside})
            say(f"positions outside the data's symbols are left alone: {', '.join(outside)}")
        self.journal.snapshot_positions(positions)
        peak = float(self.journal.get("peak_equity", equity))
        first = self.journal.last_decision() is None
        self._bar_grid = None  # intraday data: (start, bar closes), set when the bins are built
        result = await asyncio.to_thread(self._targets, data, equity, held, peak, first, quote)
        if result is None:
            self.journal.save_plan(key, self.run_id, equity, time.time(), time.time(), [], [],
                                   status="skipped", note="within schedule.drift", bar=data.index[-1].isoformat(),
                                   config=config, config_parts=parts)
            say(f"decision {key}: weights within schedule.drift of the targets: no trade")
            return
        weights, target, qty, price, orders, children = result
        unpriced = [s for j, s in enumerate(symbols) if s not in quoted and (weights[j] or held[j])]
        if unpriced:
            problem = self.broker.quote_problem() or "no quote"
            self.journal.event("no quote", {"symbols": unpriced, "problem": problem})
            say(f"warning: no current quote for {', '.join(unpriced)} from {self.broker.where()} ({problem}): "
                f"their orders are not sized and their positions stay as they are (paper and live size on "
                f"the gateway's quotes, not on the data's last close); check the account's market-data "
                f"subscriptions")
        # every target weight, for the final check at current prices
        wanted = {s: float(weights[j]) for j, s in enumerate(symbols) if weights[j] or held[j]}
        lot = self.broker.lot_size
        grid = self._bar_grid
        if grid is not None:  # the data's bars: a bin from its bar's start (the first: now) to its close
            start, closes = grid
            bin_seconds = data.bar_length.total_seconds()
            opens = np.maximum(closes - bin_seconds, start)
        else:
            start = time.time() + 0.05
            # the bins end by the session's real close, a half day's early one
            bin_seconds = calendars.bins_to_close(getattr(self.stages.data, "calendar", None), start,
                                                  float(self.mode.bin_seconds), int(self.mode.bins))
            opens = closes = None
        parents, kids = [], []
        stamp = f"{data.index[-1]:%Y%m%d%H%M}-{config}"
        counter: dict[str, int] = {}
        for j, col in enumerate(orders.symbol):
            sym = symbols[col]
            parents.append(Parent(decision=key, symbol=sym, target=float(target[col]),
                                  position=float(held[col]), quantity=float(qty[col]),
                                  arrival=float(price[col]), weight=float(weights[col])))
        horizon_bin = {}
        for i in range(len(children)):
            p = int(children.parent[i])
            last = int(children.bin[i]) if children.expire is None else max(int(children.expire[i]),
                                                                              int(children.bin[i]))
            horizon_bin[p] = max(horizon_bin.get(p, 0), last)
        order = np.lexsort((np.arange(len(children)), children.bin))
        for i in order:
            p = int(children.parent[i])
            sym = symbols[int(orders.symbol[p])]
            n = counter.get(sym, 0)
            counter[sym] = n + 1
            b = max(int(children.bin[i]), 0)
            limit = float(children.limit[i])
            q = float(children.quantity[i])
            kids.append(Child(
                ref=f"rt:{self.run_id}:{stamp}:{sym}:{n}", decision=key, symbol=sym, child=n,
                quantity=q, limit_price=None if math.isnan(limit) else
                self.broker.round_price(sym, limit, q),
                release_at=start + b * bin_seconds if opens is None else float(opens[min(b, opens.size - 1)]),
                expire_at=start + (horizon_bin[p] + 1) * bin_seconds if closes is None else
                float(closes[min(horizon_bin[p], closes.size - 1)])))
        horizon = max((c.expire_at for c in kids), default=start)
        status = "planned" if kids else "done"
        idle = f"no current quote for {', '.join(unpriced)}" if unpriced else "positions already at target"
        self.journal.save_plan(key, self.run_id, equity, start, horizon, parents, kids, status=status,
                               note="" if kids else idle, bar=data.index[-1].isoformat(),
                               config=config, config_parts=parts, targets=wanted)
        if not kids:
            say(f"decision {key}: {idle} (lot {lot}): no order")
            return
        n_bins = len({c.release_at for c in kids})
        rate = self.mode.pretrade.max_orders_per_second
        busiest = max(sum(1 for c in kids if c.release_at == t) for t in {c.release_at for c in kids})
        if rate and busiest / float(rate) > bin_seconds:
            say(f"warning: {busiest} child orders in one bin need {busiest / float(rate):.1f}s at "
                f"mode.pretrade.max_orders_per_second={rate:g}, longer than a bin ({bin_seconds:g}s): "
                f"some may miss their horizon")
        say(f"decision {key}: {len(parents)} parent orders -> {len(kids)} child orders over {n_bins} "
            f"bin(s) of {bin_seconds:g}s, equity {equity:,.2f}")

    def _targets(self, data, equity: float, held: np.ndarray, peak: float, first: bool, quote: np.ndarray):
        """Targets, risk, shares, parents and children for the last bar (in a worker thread:
        it touches neither the journal nor the broker): the backtest's decision step
        (``pipeline.decision.step``) on the account's book. Shares are sized on ``quote`` (the
        broker's current prices) and the net liquidation ``equity``; a symbol without a quote
        (NaN) keeps its position."""

        stages = self.stages
        t = data.n_bars - 1
        strategies, allocator, portfolio, constraints = in_data_bars(
            data, stages.strategies, stages.allocator, stages.portfolio, stages.constraints)
        warmup = first_decision(strategies)
        if t < warmup:
            raise DataError(f"{data.name}: {data.n_bars} bars loaded, but the strategy needs {warmup + 1} "
                            f"to decide: load more history (data.start earlier, or data.duration for data=ib)")
        at = last_decision(data.index, self.cfg.schedule.rebalance, strategies, data.intraday_sessions)
        plan = targets(data, strategies, allocator, portfolio, at)
        weights, _ = risk(plan.weights, constraints,
                          RiskContext(returns=data.returns, at=at, symbols=data.symbols,
                                      bars_per_year=data.bars_per_year))
        price = quote
        # the book is valued at the quotes too; the last close only stands in for a symbol without
        # one, whose position is left alone
        value = np.where(np.isfinite(quote), quote, forward_filled(data.close)[t])
        step = Step(constraints, self.cfg.schedule.drift, self.broker.lot_size)
        target_w = step.target(t, first, weights[-1], held, value, equity, max(peak, equity))
        if target_w is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            per_unit = np.where(price > 0, 1.0 / np.where(price > 0, price, 1.0), 0.0)
        qty, sym = step.orders(target_w, held, equity, per_unit, value, equity)
        target = held + qty
        orders = Orders(symbol=sym, quantity=qty[sym], arrival=price[sym])
        if sym.size == 0:
            return target_w, target, qty, price, orders, ChildOrders.whole_orders(orders)
        session = Session(bar=t + 1, reference=value, close=value,
                          volume=None if data.volume is None else data.volume[t], symbols=sym,
                          lot=step.lot, source=lambda bar, s: self._bins(data, s, value[s]))
        children = stages.algo.slice(orders, session)
        check_children(children, orders)
        if children.type is not None:  # the journal and the gateway carry market and limit only
            raise ConfigError("execution.order_type: child orders with order types are simulated "
                              "only; live trading sends market and limit children: drop the option")
        return target_w, target, qty, price, orders, children

    def _bins(self, data, symbols: np.ndarray, arrival: np.ndarray):
        """The coming session's bins for ``symbols`` at their ``arrival`` (current) prices:
        forecasts only (see the module's docstring)."""
        t = data.n_bars - 1
        sessions = data.intraday_sessions  # windows count sessions
        sigma = trailing_volatility(data.close[:, symbols], WINDOW, sessions)[t]
        if data.volume is not None:
            adv = np.nan_to_num(trailing_volume(data.volume[:, symbols], WINDOW, sessions)[t])
        else:
            adv = 5.0e8 / arrival
        days = 1.0
        if data.intraday:
            start = time.time() + 0.05
            closes, session, clock = bar_grid(data, start, float(self.mode.bins) * float(self.mode.bin_seconds),
                                              self.cfg.schedule.rebalance)
            self._bar_grid = (start, closes)
            n, bar = closes.size, data.bar_length.value
            ends = session_ends(sessions)
            per_session = data.bars_per_session
            forecast = None if data.volume is None else clock_volume(
                data.volume, symbols, session_clock(data.index, sessions), ends, session, WINDOW, clock, bar)
            if forecast is None:  # no session before this one: the daily volume spread evenly
                forecast = np.repeat(adv[None, :] / per_session, n, axis=0)
            began = closes[0] - bar / 1e9
            elapsed = (closes - began) / (closes[-1] - began)
            days = (closes[-1] - began) * 1e9 / (per_session * bar)
        else:
            n = int(self.mode.bins)
            forecast = volume_profile(n)[:, None] * adv[None, :]
            elapsed = np.arange(1, n + 1) / n
        price = np.repeat(arrival[None, :], n, axis=0)
        return Bins(elapsed=elapsed, price=price, low=price.copy(), high=price.copy(),
                    volume=forecast.copy(), forecast=forecast, sigma=sigma,
                    half_spread=np.full(symbols.size, 2e-4), days=days)

    async def _qualify(self, symbols: list[str]) -> None:
        todo = [s for s in symbols if s not in self.qualified]
        if todo:
            await self._ask(lambda: self.broker.qualify(todo))
            self.qualified.update(todo)


WINDOW = 20  # sessions of the volume and volatility windows and of the intraday profile


def bar_grid(data, now: float, longest: float, rule: Any = None) -> tuple[np.ndarray, int, np.ndarray]:
    """Intraday data: the closes (epoch seconds) of the data's coming bars, aligned to its bar
    size, from the first to close after ``now`` to ``now + longest``, the close of the session
    of ``data.calendar`` holding ``now`` or the next decision bar by ``schedule.rebalance=rule``,
    whichever comes first (at least one bar; the backtest's horizon: ``Session``); the number of
    the session they trade in (the last bar's, or the next); and their session clocks
    (``session_clock``: ns since the midnight before that session's first bar)."""
    import pandas as pd

    bar = int(data.bar_length.value)
    now_ns = int(now * 1e9)
    first = (now_ns // bar + 1) * bar
    stop = now_ns + int(longest * 1e9)
    ahead = data.index[-1:].tz_convert("UTC").as_unit("ns").append(
        pd.DatetimeIndex([first], tz="UTC").as_unit("ns"))
    if data.calendar:
        held, table = calendars.session_of(ahead, data.calendar)
        if held[1] >= 0:
            stop = min(stop, int(pd.Timestamp(table["close"].iloc[held[1]]).value))
        same = held[1] >= 0 and held[0] == held[1]
    local = ahead.tz_convert(data.index.tz).tz_localize(None).asi8
    if not data.calendar:
        same = local[0] // 86_400_000_000_000 == local[1] // 86_400_000_000_000
    closes = np.arange(first, max(stop, first) + 1, bar, dtype=np.int64)
    session = int(data.sessions[-1]) + (0 if same else 1)
    coming = pd.DatetimeIndex(closes, tz="UTC").as_unit("ns").tz_convert(data.index.tz)
    if rule is not None:  # the next decision ends the horizon, as in the backtest
        bars = decision_bars(data.index.as_unit("ns").append(coming), rule,
                             sessions=np.append(data.sessions, np.full(closes.size, session)))
        later = bars[bars >= data.n_bars]
        if later.size:
            closes, coming = closes[:later[0] - data.n_bars + 1], coming[:later[0] - data.n_bars + 1]
    at = coming.tz_localize(None).asi8
    if same:  # the session of the data's last bar goes on: its clock
        midnight = local[0] - session_clock(data.index, data.sessions)[-1]
    else:
        midnight = local[1] - local[1] % 86_400_000_000_000
    return closes / 1e9, session, at - midnight


# the config that determines a decision's targets (besides the data's source and symbols)
TARGET_PARTS = ("strategy", "allocation", "portfolio", "sleeve_caps", "risk")


def decision_config(cfg: Any, data) -> tuple[str, dict]:
    """The resolved config parts that determine the targets, and their hash: a decision is
    keyed by its bar and this hash. Connection and cache settings are left out (they change
    no target); so are the data's dates, which the bar already names."""
    from omegaconf import OmegaConf

    parts: dict[str, Any] = {"data": {"source": data.name, "symbols": list(data.symbols)}}
    for name in TARGET_PARTS:
        node = cfg.get(name)
        parts[name] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8], json.loads(text)


def changed(row, parts: dict) -> str:
    """The config keys in which ``parts`` differ from a journaled decision's, for messages."""
    def flat(value: Any, path: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(flat(v, f"{path}.{k}" if path else str(k)))
            return out
        return {path: value}

    before, now = flat(json.loads(row["config_parts"] or "{}")), flat(parts)
    keys = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"changed: {shown}" if keys else "changed"
