"""Daily bars from Interactive Brokers (``data=ib``), with IB's pacing rules and a local cache.

``reqHistoricalDataAsync`` on a connection of its own (``client_id``; host and port follow
``broker=ib`` when it is selected, else ``IB_HOST``/``IB_PORT``). Contracts are qualified
first (an unknown or ambiguous symbol is an error naming it); bars are stamped at the
session's close (``close_time``) in the exchange's time zone from the contract details, and a
bar whose close is still in the future (today's, during the session) is dropped: a decision
only sees finished bars.

Pacing (IB's rules for historical data): at most ``max_requests`` requests in
``per_seconds`` (60 in 10 minutes), at most five for one contract in two seconds, and no
identical request within ``identical_gap`` seconds. Requests wait for room (they are never
refused); a pacing violation the gateway still reports (error 162) is retried ``retries``
times after ``retry_wait`` seconds, longer each time.

Cache (``cache_dir``, null for none): one CSV per symbol and request kind. A cache that ends
at the last finished session is used without asking IB; otherwise only the missing days are
requested (with a few days of overlap). When the overlap disagrees with the cache (a split or
dividend changed adjusted history), that symbol's whole history is fetched again.

Usable in a backtest too (``python run.py data=ib``): ``load`` runs the same coroutine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.errors import DataError
from pipeline.core.market import MarketData
from pipeline.core.rate import Window
from plugins.data._frames import at_close, select

log = logging.getLogger("robo_trader.ib_data")

SP500 = ["AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT",
         "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM"]
ZONES = {"US/Eastern": "America/New_York", "EST": "America/New_York", "EST5EDT": "America/New_York",
         "US/Central": "America/Chicago", "CST": "America/Chicago", "US/Pacific": "America/Los_Angeles"}
COLUMNS = ("open", "high", "low", "close", "volume")


class IBData(DataSource):
    """Daily OHLCV bars of ``symbols`` from IB (see the module's docstring)."""

    rules = {"port": "[1, 65535]", "client_id": "[0, 2147483647]", "timeout": "(0, 3600]",
             "max_requests": "[1, 10000]", "per_seconds": "(0, 86400]", "identical_gap": "[0, 3600]",
             "retries": "[0, 100]", "retry_wait": "[0, 3600]", "min_history": "[1, inf)"}

    def __init__(self, symbols: list[str] = SP500, host: str = "127.0.0.1", port: int = 4002,
                 client_id: int = 18, exchange: str = "SMART", currency: str = "USD",
                 duration: str = "2 Y",
                 what_to_show: Literal["ADJUSTED_LAST", "TRADES", "MIDPOINT"] = "ADJUSTED_LAST",
                 use_rth: bool = True, close_time: str = "16:00", cache_dir: Optional[str] = "cache/ib",
                 timeout: float = 60.0, max_requests: int = 60, per_seconds: float = 600.0,
                 identical_gap: float = 15.0, retries: int = 3, retry_wait: float = 15.0,
                 start: Optional[str] = None, end: Optional[str] = None, min_history: int = 2,
                 calendar: Optional[str] = "XNYS") -> None:
        self.symbols = list(symbols)
        self.calendar = calendar
        self.host = host
        self.port = port
        self.client_id = client_id
        self.exchange = exchange
        self.currency = currency
        self.duration = duration
        self.what_to_show = what_to_show
        self.use_rth = use_rth
        self.close_time = close_time
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self.identical_gap = identical_gap
        self.retries = retries
        self.retry_wait = retry_wait
        self.start = start
        self.end = end
        self.min_history = min_history

    # ------------------------------------------------------------ public
    def load(self) -> MarketData:
        return asyncio.run(self.load_async())

    async def load_async(self) -> MarketData:
        if not self.symbols:
            raise DataError("data.symbols is empty: list the symbols to load from IB")
        if len(set(self.symbols)) < len(self.symbols):
            raise DataError("data.symbols lists a symbol more than once; list each symbol once")
        from ib_async import IB

        if getattr(self, "pacer_", None) is None:
            self.pacer_ = Window(self.max_requests, self.per_seconds, per_key=5, per_key_seconds=2.0,
                                 same_gap=self.identical_gap)
        self.requests_ = 0
        ib = IB()
        ib.RaiseRequestErrors = True
        for name in ("ib_async", "ib_async.wrapper", "ib_async.client", "ib_async.ib"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            await asyncio.wait_for(ib.connectAsync(self.host, self.port, clientId=self.client_id,
                                                   timeout=self.timeout, readonly=True,
                                                   fetchFields=_no_sync()), self.timeout)
        except Exception as exc:
            ib.disconnect()
            raise DataError(f"data=ib cannot connect to IB Gateway/TWS at {self.host}:{self.port} with "
                            f"client id {self.client_id} ({_describe(exc)}): start the gateway with the "
                            f"API enabled, or set data.host/data.port (IB_HOST/IB_PORT)") from None
        try:
            details = await self._qualify(ib)
            frames = {}
            for symbol in self.symbols:
                contract, zone = details[symbol]
                frames[symbol] = await self._bars(ib, contract, zone)
        finally:
            ib.disconnect()
        zone = details[self.symbols[0]][1]
        return select(_market(frames, self.symbols, zone, self.close_time), "data=ib",
                      self.start, self.end, None, self.min_history)

    # ------------------------------------------------------------ contracts
    async def _qualify(self, ib) -> dict:
        from ib_async import Stock

        async def one(symbol: str):
            try:
                rows = await asyncio.wait_for(
                    ib.reqContractDetailsAsync(Stock(symbol, self.exchange, self.currency)), self.timeout)
            except Exception:  # RequestError 200: no such contract
                rows = []
            return symbol, [d for d in rows if d.contract.secType == "STK"]

        out, missing = {}, []
        for symbol, rows in await asyncio.gather(*[one(s) for s in self.symbols]):
            if len(rows) != 1:
                missing.append(f"{symbol} ({'unknown' if not rows else 'ambiguous'})")
                continue
            zone = ZONES.get(rows[0].timeZoneId, rows[0].timeZoneId or "America/New_York")
            contract = rows[0].contract
            contract.exchange = self.exchange
            out[symbol] = (contract, zone)
        if missing:
            raise DataError(f"data.symbols: IB has no single STK contract on {self.exchange} in "
                            f"{self.currency} for {', '.join(missing)}")
        return out

    # ------------------------------------------------------------ bars, cache, pacing
    def _cache_path(self, symbol: str) -> Optional[Path]:
        if not self.cache_dir:
            return None
        name = f"{symbol}_{self.exchange}_{self.currency}_{self.what_to_show}_{int(self.use_rth)}.csv"
        return Path(self.cache_dir) / name

    async def _bars(self, ib, contract, zone: str) -> pd.DataFrame:
        symbol = contract.symbol
        path = self._cache_path(symbol)
        cached = _read_cache(path)
        wanted = last_finished_session(zone, self.close_time)
        if cached is not None and len(cached) and cached.index[-1] >= wanted:
            return cached
        if cached is not None and len(cached):
            days = (wanted - cached.index[-1]).days + 5
            fresh = await self._request(ib, contract, f"{days} D")
            overlap = cached.index.intersection(fresh.index)
            if len(overlap) and not np.allclose(cached.loc[overlap, "close"], fresh.loc[overlap, "close"],
                                                rtol=1e-6, atol=0.0):
                log.info("%s: adjusted history changed; fetching it again", symbol)
                frame = await self._request(ib, contract, self.duration)
            else:
                frame = pd.concat([cached[~cached.index.isin(fresh.index)], fresh]).sort_index()
        else:
            frame = await self._request(ib, contract, self.duration)
        if path is not None and len(frame):
            _write_cache(path, frame)
        return frame

    async def _request(self, ib, contract, duration: str) -> pd.DataFrame:
        from ib_async import RequestError

        symbol = contract.symbol
        for attempt in range(self.retries + 1):
            await self.pacer_.acquire(key=symbol, same=(symbol, duration, self.what_to_show))
            self.requests_ += 1
            try:
                bars = await ib.reqHistoricalDataAsync(contract, "", duration, "1 day", self.what_to_show,
                                                       self.use_rth, formatDate=1, timeout=self.timeout)
            except RequestError as exc:
                if exc.code == 162 and "pacing" in exc.message.lower() and attempt < self.retries:
                    wait = self.retry_wait * (attempt + 1)
                    log.info("%s: pacing violation; retrying in %.1fs", symbol, wait)
                    await asyncio.sleep(wait)
                    continue
                raise DataError(f"data=ib: IB refused the bars of {symbol} (error {exc.code}: "
                                f"{exc.message})") from None
            except ConnectionError:
                raise DataError(f"data=ib: the connection to {self.host}:{self.port} closed while "
                                f"loading {symbol}") from None
            return _frame(bars)
        raise DataError(f"data=ib: {symbol}: still paced out after {self.retries} retries")


def last_finished_session(zone: str, close_time: str = "16:00", now: Optional[float] = None) -> pd.Timestamp:
    """The date of the last weekday whose close (``close_time`` in ``zone``) is past."""
    from zoneinfo import ZoneInfo

    hour, minute = (int(x) for x in str(close_time).split(":")[:2])
    local = dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(zone))
    day = local.date()
    if local.time() < dt.time(hour, minute):
        day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return pd.Timestamp(day)


def _frame(bars) -> pd.DataFrame:
    rows = [(pd.Timestamp(b.date), b.open, b.high, b.low, b.close, b.volume) for b in bars]
    frame = pd.DataFrame(rows, columns=("date", *COLUMNS)).set_index("date")
    frame.index = pd.DatetimeIndex(frame.index).tz_localize(None).normalize()
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame.astype(np.float64)


def _read_cache(path: Optional[Path]) -> Optional[pd.DataFrame]:
    if path is None or not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, index_col=0, parse_dates=[0])
        frame.index = pd.DatetimeIndex(frame.index).normalize()
        return frame[list(COLUMNS)].astype(np.float64)
    except Exception:  # a damaged cache is refetched, not trusted
        return None


def _write_cache(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    frame.to_csv(tmp, index_label="date", date_format="%Y-%m-%d")
    os.replace(tmp, path)


def _market(frames: dict[str, pd.DataFrame], symbols: list[str], zone: str, close_time: str) -> MarketData:
    days = pd.DatetimeIndex(sorted(set().union(*[set(f.index) for f in frames.values()])))
    hour, minute = (int(x) for x in str(close_time).split(":")[:2])
    index = at_close(days, zone, pd.Timedelta(hours=hour, minutes=minute))
    finished = index <= pd.Timestamp.now(tz=zone)
    arrays = {}
    for field in COLUMNS:
        wide = np.column_stack([frames[s][field].reindex(days).to_numpy() for s in symbols])
        arrays[field] = np.ascontiguousarray(wide[finished])
    return MarketData(index=index[finished], symbols=tuple(symbols), name="ib", **arrays)


def _no_sync():
    from ib_async.ib import StartupFetchNONE

    return StartupFetchNONE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timed out"
    return " ".join(str(exc).split()) or type(exc).__name__

