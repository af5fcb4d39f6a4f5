"""Level-2 order-book data: the ``OrderBook`` container and a reader/writer for LOBSTER files.

LOBSTER (https://lobsterdata.com, Huang & Polak 2011) ships one trading day of one ticker as
two headerless CSV files with the same number of rows::

    <TICKER>_<YYYY-MM-DD>_<start>_<end>_message_<LEVELS>.csv
        Time (seconds after midnight, decimals to the nanosecond), Type, Order ID, Size,
        Price (dollars x 10000), Direction
    <TICKER>_<YYYY-MM-DD>_<start>_<end>_orderbook_<LEVELS>.csv
        Ask Price 1, Ask Size 1, Bid Price 1, Bid Size 1, Ask Price 2, ... (LEVELS x 4 columns)

Row ``k`` of the order book is the book *after* message ``k``. Types: 1 new limit order,
2 partial cancellation, 3 deletion, 4 execution of a visible order, 5 execution of a hidden
order, 6 cross trade (auction), 7 trading halt. Direction is the side of the *limit* order:
-1 sell, 1 buy, so an execution against a sell order (direction -1) is a buyer-initiated
trade. Empty levels hold the dummy prices -9999999999 (bid) and 9999999999 (ask) with size 0.

``read_lobster`` turns the pair into an ``OrderBook``: prices in dollars, empty levels NaN
with size 0, and the trades (types 4 and 5) with their aggressor's sign. Type 6 cross trades
are auction prints without an aggressor and are left out; halts (type 7) are kept as rows.

The ``OrderBook`` is the data contract the microstructure strategy reads (by attribute, so
the strategy does not import this module). MarketData (daily fields) cannot carry it; it is
used from Python, see ``plugins/strategy/microstructure.py``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError

PRICE_SCALE = 10_000
DUMMY = 9_999_999_999
US_TZ = "America/New_York"
_NAME = re.compile(r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
                   r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv$")


@dataclasses.dataclass(frozen=True, eq=False)
class OrderBook:
    """Level-2 snapshots and trades of one instrument over one session.

    ``time`` (T,) seconds after midnight, non-decreasing; ``bid_price``/``bid_size``/
    ``ask_price``/``ask_size`` (T x L) best level first, NaN price and 0 size where a level is
    empty. Trades: ``trade_row`` (M,) the snapshot row at which the trade is known (the book
    after it), non-decreasing; ``trade_price``, ``trade_size``; ``trade_sign`` +1 when the buyer
    was the aggressor, -1 the seller. A decision at row ``k`` may use rows ``[0, k]`` and the
    trades with ``trade_row <= k``.
    """

    time: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray
    trade_row: np.ndarray
    trade_price: np.ndarray
    trade_size: np.ndarray
    trade_sign: np.ndarray
    symbol: str = "LOB"
    date: Optional[str] = None
    tz: str = US_TZ

    def __post_init__(self) -> None:
        T = self.time.shape[0]
        for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != T or arr.shape != self.bid_price.shape:
                raise ValueError(f"OrderBook.{name} has shape {arr.shape}, expected "
                                 f"({T}, levels) like bid_price {self.bid_price.shape}")
        M = self.trade_row.shape[0]
        for name in ("trade_price", "trade_size", "trade_sign"):
            if getattr(self, name).shape != (M,):
                raise ValueError(f"OrderBook.{name} has shape {getattr(self, name).shape}, "
                                 f"expected ({M},) like trade_row")
        if T and np.any(np.diff(self.time) < 0):
            raise ValueError("OrderBook.time must be non-decreasing")
        if M and (np.any(np.diff(self.trade_row) < 0) or self.trade_row[-1] >= T
                  or self.trade_row[0] < 0):
            raise ValueError("OrderBook.trade_row must be non-decreasing row numbers of the book")

    # -- shape ------------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return int(self.time.shape[0])

    @property
    def levels(self) -> int:
        return int(self.bid_price.shape[1])

    @property
    def trade_time(self) -> np.ndarray:
        return self.time[self.trade_row]

    # -- derived quotes ---------------------------------------------------------------------
    @property
    def mid(self) -> np.ndarray:
        return (self.bid_price[:, 0] + self.ask_price[:, 0]) / 2.0

    @property
    def spread(self) -> np.ndarray:
        return self.ask_price[:, 0] - self.bid_price[:, 0]

    @property
    def microprice(self) -> np.ndarray:
        """Size-weighted mid: ``(ask * bid_size + bid * ask_size) / (bid_size + ask_size)``;
        it leans toward the side whose queue is smaller (the side likely to move first)."""
        qb, qa = self.bid_size[:, 0], self.ask_size[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.ask_price[:, 0] * qb + self.bid_price[:, 0] * qa) / (qb + qa)

    # -- views and clocks -------------------------------------------------------------------
    def view(self, end: int) -> "OrderBook":
        """The first ``end`` rows and the trades known by then."""
        m = int(np.searchsorted(self.trade_row, end, side="left"))
        return dataclasses.replace(
            self, time=self.time[:end], bid_price=self.bid_price[:end],
            bid_size=self.bid_size[:end], ask_price=self.ask_price[:end],
            ask_size=self.ask_size[:end], trade_row=self.trade_row[:m],
            trade_price=self.trade_price[:m], trade_size=self.trade_size[:m],
            trade_sign=self.trade_sign[:m])

    def rows_at(self, seconds: np.ndarray) -> np.ndarray:
        """The last row at or before each clock time (seconds after midnight); -1 if none."""
        return np.searchsorted(self.time, np.asarray(seconds, dtype=float), side="right") - 1

    def decision_rows(self, every: float, start: Optional[float] = None,
                      end: Optional[float] = None) -> np.ndarray:
        """Rows at a regular clock grid of ``every`` seconds (the book as it stood then)."""
        if self.n_rows == 0:
            return np.zeros(0, dtype=np.int64)
        lo = self.time[0] if start is None else start
        hi = self.time[-1] if end is None else end
        grid = np.arange(np.ceil(lo / every) * every, hi + 1e-9, every)
        rows = self.rows_at(grid)
        return np.unique(rows[rows >= 0]).astype(np.int64)

    def timestamps(self) -> pd.DatetimeIndex:
        """Row times as tz-aware stamps (needs ``date``)."""
        if self.date is None:
            raise ValueError("OrderBook.date is not set: times are seconds after midnight")
        base = pd.Timestamp(self.date)
        return (base + pd.to_timedelta(self.time, unit="s")).tz_localize(self.tz)


# ---------------------------------------------------------------------- LOBSTER files

def read_lobster(message: Union[str, Path], orderbook: Union[str, Path],
                 symbol: Optional[str] = None, date: Optional[str] = None,
                 levels: Optional[int] = None) -> OrderBook:
    """Read a LOBSTER message / orderbook file pair into an ``OrderBook``.

    ``symbol`` and ``date`` default to the ones in the LOBSTER file name; ``levels`` keeps the
    first levels only. Errors name the file and row: a missing file, a wrong column count,
    files of different lengths, times going backwards, a crossed book at a row.
    """
    message, orderbook = Path(message), Path(orderbook)
    for path in (message, orderbook):
        if not path.is_file():
            raise DataError(f"LOBSTER file {path} does not exist; LOBSTER data comes as a "
                            f"*_message_<L>.csv and *_orderbook_<L>.csv pair")
    named = _NAME.match(orderbook.name) or _NAME.match(message.name)
    symbol = symbol or (named.group("ticker") if named else orderbook.stem)
    date = date or (named.group("date") if named else None)
    msg = _read_numeric(message, 6, "message")
    book = _read_numeric(orderbook, None, "orderbook")
    if book.shape[1] % 4:
        raise DataError(f"{orderbook}: {book.shape[1]} columns; a LOBSTER order book has 4 per "
                        f"level (ask price, ask size, bid price, bid size)")
    if len(msg) != len(book):
        raise DataError(f"{message} has {len(msg)} rows but {orderbook} has {len(book)}: "
                        f"row k of the order book is the book after message k, they must match")
    time = msg[:, 0]
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        raise DataError(f"{message}: time goes backwards at row {back[0] + 2} "
                        f"({time[back[0]]} then {time[back[0] + 1]})")
    n_levels = book.shape[1] // 4
    keep = n_levels if levels is None else min(levels, n_levels)
    cols = book[:, : 4 * keep].reshape(len(book), keep, 4)
    ask_p, ask_q, bid_p, bid_q = (cols[:, :, k] for k in range(4))
    empty_a = (ask_p >= DUMMY) | (ask_q <= 0)
    empty_b = (bid_p <= -DUMMY) | (bid_q <= 0)
    ask_price = np.where(empty_a, np.nan, ask_p / PRICE_SCALE)
    bid_price = np.where(empty_b, np.nan, bid_p / PRICE_SCALE)
    ask_size = np.where(empty_a, 0.0, ask_q)
    bid_size = np.where(empty_b, 0.0, bid_q)
    with np.errstate(invalid="ignore"):
        crossed = np.flatnonzero(bid_price[:, 0] > ask_price[:, 0])
    if crossed.size:
        raise DataError(f"{orderbook}: crossed book at row {crossed[0] + 1} (bid "
                        f"{bid_price[crossed[0], 0]} > ask {ask_price[crossed[0], 0]})")
    kind = msg[:, 1].astype(np.int64)
    trades = np.flatnonzero((kind == 4) | (kind == 5))
    return OrderBook(time=time, bid_price=bid_price, bid_size=bid_size, ask_price=ask_price,
                     ask_size=ask_size, trade_row=trades.astype(np.int64),
                     trade_price=msg[trades, 4] / PRICE_SCALE,
                     trade_size=msg[trades, 3].astype(np.float64),
                     trade_sign=-msg[trades, 5].astype(np.float64), symbol=symbol, date=date)


def find_lobster(folder: Union[str, Path], ticker: Optional[str] = None) -> list[tuple[Path, Path]]:
    """Message / orderbook file pairs in ``folder`` (optionally for one ticker), by date."""
    pairs = []
    for path in sorted(Path(folder).glob("*_message_*.csv")):
        named = _NAME.match(path.name)
        if not named or (ticker and named.group("ticker") != ticker):
            continue
        other = path.with_name(path.name.replace("_message_", "_orderbook_"))
        if other.is_file():
            pairs.append((path, other))
    return pairs


def write_lobster(folder: Union[str, Path], messages: pd.DataFrame, book: OrderBook,
                  start: int = 34_200_000, end: int = 57_600_000) -> tuple[Path, Path]:
    """Write ``messages`` (columns time, type, order_id, size, price, direction; price in
    dollars) and ``book`` as a LOBSTER file pair named like LOBSTER's own; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{book.symbol}_{book.date or '1970-01-01'}_{start}_{end}"
    L = book.levels
    msg_path = folder / f"{stem}_message_{L}.csv"
    ob_path = folder / f"{stem}_orderbook_{L}.csv"
    m = pd.DataFrame({
        "time": messages["time"].map(lambda v: f"{v:.9f}"),
        "type": messages["type"].astype(np.int64),
        "order_id": messages["order_id"].astype(np.int64),
        "size": messages["size"].astype(np.int64),
        "price": np.round(messages["price"].to_numpy() * PRICE_SCALE).astype(np.int64),
        "direction": messages["direction"].astype(np.int64)})
    m.to_csv(msg_path, header=False, index=False)
    cols = np.empty((book.n_rows, L, 4), dtype=np.int64)
    cols[:, :, 0] = np.where(np.isnan(book.ask_price), DUMMY,
                             np.round(np.nan_to_num(book.ask_price) * PRICE_SCALE))
    cols[:, :, 1] = book.ask_size
    cols[:, :, 2] = np.where(np.isnan(book.bid_price), -DUMMY,
                             np.round(np.nan_to_num(book.bid_price) * PRICE_SCALE))
    cols[:, :, 3] = book.bid_size
    pd.DataFrame(cols.reshape(book.n_rows, 4 * L)).to_csv(ob_path, header=False, index=False)
    return msg_path, ob_path


def _read_numeric(path: Path, n_cols: Optional[int], what: str) -> np.ndarray:
    try:
        try:                                   # the fast path: a clean numeric file
            frame = pd.read_csv(path, header=None, dtype=np.float64)
        except ValueError:                     # find the offending cell for the message
            frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the LOBSTER {what} file is empty") from None
    if n_cols is not None and frame.shape[1] != n_cols:
        raise DataError(f"{path}: {frame.shape[1]} columns; a LOBSTER {what} file has {n_cols} "
                        f"(time, type, order id, size, price, direction)")
    arr = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        row, col = bad[0]
        raise DataError(f"{path}: missing or non-numeric value {frame.iat[row, col]!r} at row "
                        f"{row + 1}, column {col + 1}")
    return arr
