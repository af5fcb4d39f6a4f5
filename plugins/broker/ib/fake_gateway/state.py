"""The gateway's world: instruments, orders and executions as it holds them, and the market it
serves (``load_market``)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from typing import Optional

from plugins.data.csv import CSVData
from plugins.data.sp500 import SP500
from plugins.data.stocks import Stocks
from plugins.data.synthetic import Synthetic

UTC = dt.timezone.utc
NEW_YORK = "America/New_York"
NASDAQ = {"AAPL", "AMD", "MSFT", "PEP", "GOOG", "FB", "AMZN", "NVDA", "INTC", "CSCO"}


@dataclasses.dataclass
class Instrument:
    con_id: int
    symbol: str
    primary: str
    currency: str = "USD"
    sec_type: str = "STK"
    min_tick: float = 0.01

    def fields11(self, exchange: str = "SMART") -> list:
        """conId .. tradingClass, without primaryExchange (execDetails, openOrder, position)."""
        return [self.con_id, self.symbol, self.sec_type, "", 0.0, "", "", exchange, self.currency,
                self.symbol, "NMS"]


@dataclasses.dataclass
class GwOrder:
    order_id: int
    client_id: int
    perm_id: int
    ref: str
    inst: Instrument
    action: str
    quantity: float
    order_type: str
    limit: Optional[float]
    tif: str
    account: str
    received: float
    status: str = "PendingSubmit"
    filled: float = 0.0
    value: float = 0.0           # sum of fill quantity * price
    last_price: float = 0.0
    cancel: bool = False
    done: bool = False
    completed_at: float = 0.0
    reason: str = ""
    task: Optional[asyncio.Task] = None
    connection: int = 0          # serial of the connection that placed it
    aux: Optional[float] = None  # STP / STP LMT: the trigger; TRAIL: the trailing amount
    trail_percent: Optional[float] = None  # TRAIL: in percent, as IB takes it
    trail_stop: Optional[float] = None     # TRAIL: where its stop is now (ratchets)
    oca: str = ""
    oca_type: int = 0
    parent_id: int = 0           # a bracket's exit: active once the parent has filled
    transmit: bool = True        # false: held until a later order of its bracket transmits
    good_after: Optional[float] = None  # inactive until then (epoch seconds)
    triggered: bool = False      # a stop whose trigger the price path has crossed

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> float:
        return self.value / self.filled if self.filled else 0.0

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1

    @property
    def auction(self) -> str:
        """The auction the order fills in ('open', 'close'), or ''."""
        if self.order_type in ("MOC", "LOC"):
            return "close"
        return "open" if self.tif == "OPG" else ""

    def observe(self, price: float) -> None:
        """The price path moved to ``price``: a trailing stop ratchets on it (never back), and
        a stop whose trigger it reached or passed is triggered (a gap fills at the price seen)."""
        if self.order_type == "TRAIL":
            if self.trail_percent is not None:
                level = price * (1.0 + self.sign * self.trail_percent / 100.0)
            else:
                level = price + self.sign * (self.aux or 0.0)
            if self.trail_stop is None:
                self.trail_stop = level
            else:  # a sell stop only rises, a buy stop only falls
                self.trail_stop = max(self.trail_stop, level) if self.sign < 0 else min(self.trail_stop, level)
        trigger = self.trail_stop if self.order_type == "TRAIL" else self.aux
        if self.order_type in ("STP", "STP LMT", "TRAIL") and trigger is not None:
            if (price <= trigger + 1e-9) if self.sign < 0 else (price >= trigger - 1e-9):
                self.triggered = True


@dataclasses.dataclass
class GwExecution:
    exec_id: str
    order: GwOrder
    shares: float
    price: float
    time: float
    cum_qty: float
    avg_price: float
    commission: float


@dataclasses.dataclass
class Market:
    """Daily bars per symbol: ``dates`` (datetime.date), and open/high/low/close/volume lists."""

    dates: list
    bars: dict[str, dict[str, list]]


def load_market(source: str = "sp500", history: int = 600, shift: bool = True,
                symbols: Optional[list[str]] = None, now: Optional[float] = None) -> Market:
    import numpy as np
    import pandas as pd

    if source == "sp500":
        data = SP500().load()
    elif source == "stocks":
        data = Stocks().load()
    elif source == "synthetic":
        data = Synthetic(n_bars=max(history, 300)).load()
    else:
        data = CSVData(path=source).load()
    if symbols:
        data = data.select([s for s in symbols])
    if data.n_bars > history:
        data = data.select(start=data.index[data.n_bars - history])
    close = data.close
    n = close.shape[0]
    prev = np.vstack([close[:1], close[:-1]])
    opens = data.open if data.open is not None else prev
    highs = data.high if data.high is not None else np.maximum(opens, close) * 1.002
    lows = data.low if data.low is not None else np.minimum(opens, close) * 0.998
    with np.errstate(invalid="ignore", divide="ignore"):
        vols = data.volume if data.volume is not None else np.round(2e8 / close)
    if shift:
        last = last_session(now)
        dates = [d.date() for d in pd.bdate_range(end=last, periods=n)]
    else:
        dates = [d.date() for d in data.index.tz_convert(NEW_YORK)]
    bars = {}
    for j, sym in enumerate(data.symbols):
        ok = np.isfinite(close[:, j])
        bars[sym] = {"ok": ok.tolist(), "open": opens[:, j].tolist(), "high": highs[:, j].tolist(),
                     "low": lows[:, j].tolist(), "close": close[:, j].tolist(),
                     "volume": np.nan_to_num(vols[:, j]).tolist()}
    return Market(dates=dates, bars=bars)


def last_session(now: Optional[float] = None) -> dt.date:
    """The last weekday whose 16:00 New York close is at or before ``now``."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(NEW_YORK))
    day = local.date()
    if local.time() < dt.time(16, 0):
        day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def last_valid(values: list[float], ok: list[bool]) -> float:
    for v, good in zip(reversed(values), reversed(ok)):
        if good:
            return float(v)
    return float("nan")


def fills_of(quantity: float, parts: int) -> list[float]:
    """``quantity`` in ``parts`` fills of whole shares (fewer when it is small)."""
    whole = float(quantity).is_integer()
    parts = max(1, min(parts, int(quantity) if whole and quantity >= 1 else 1))
    if not whole:
        return [quantity]
    base, extra = divmod(int(quantity), parts)
    return [float(base + (1 if i < extra else 0)) for i in range(parts)]
