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

The ``OrderBook`` (defined in ``pipeline.core.lob``) is the data contract event strategies
read. ``LOBSTER`` (the ``data=lobster`` source) streams a file pair to the event engine in
chunks of ``chunk_rows`` rows, checking each before it is used.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.errors import DataError
from pipeline.core.lob import EventSource, OrderBook

PRICE_SCALE = 10_000
DUMMY = 9_999_999_999
_NAME = re.compile(r"^(?P<ticker>[^_]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
                   r"(?P<kind>message|orderbook)_(?P<levels>\d+)\.csv$")


# ---------------------------------------------------------------------- LOBSTER files

EVENT_TYPES = {1: "new limit order", 2: "partial cancellation", 3: "deletion", 4: "execution",
               5: "hidden execution", 6: "cross trade", 7: "trading halt"}


def read_lobster(message: Union[str, Path], orderbook: Union[str, Path],
                 symbol: Optional[str] = None, date: Optional[str] = None,
                 levels: Optional[int] = None) -> OrderBook:
    """Read a LOBSTER message / orderbook file pair into an ``OrderBook``.

    ``symbol`` and ``date`` default to the ones in the LOBSTER file name; ``levels`` keeps the
    first levels only. Errors name the file, the line and the event: a missing file, a wrong
    column count, files of different lengths, times going backwards, a crossed book, a
    negative size or a non-positive price, an unknown event type, an execution at a price the
    book before it did not show (the two files do not belong together).
    """
    message, orderbook = _pair(message, orderbook)
    symbol, date = _names(message, orderbook, symbol, date)
    msg = _read_numeric(message, 6, "message")
    book = _read_numeric(orderbook, None, "orderbook")
    if len(msg) != len(book):
        raise DataError(f"{message} has {len(msg)} rows but {orderbook} has {len(book)}: "
                        f"row k of the order book is the book after message k, they must match")
    return _checked(msg, book, message, orderbook, 0, None, levels, symbol, date)


def iter_lobster(message: Union[str, Path], orderbook: Union[str, Path], chunk_rows: int,
                 symbol: Optional[str] = None, date: Optional[str] = None,
                 levels: Optional[int] = None) -> Iterator[OrderBook]:
    """``read_lobster`` in pieces of ``chunk_rows`` rows (memory bounded by the chunk), each
    checked as ``read_lobster`` checks the whole, continuing the checks across pieces. The
    row counts of the two files are compared first (a line count, no parsing)."""
    message, orderbook = _pair(message, orderbook)
    symbol, date = _names(message, orderbook, symbol, date)
    n_msg, n_book = _count_lines(message), _count_lines(orderbook)
    if n_msg != n_book:
        raise DataError(f"{message} has {n_msg} rows but {orderbook} has {n_book}: "
                        f"row k of the order book is the book after message k, they must match")
    first, last = 0, None
    readers = [pd.read_csv(path, header=None, dtype=np.float64, chunksize=int(chunk_rows))
               for path in (message, orderbook)]
    for msg_frame, book_frame in zip(*readers):
        msg, book = msg_frame.to_numpy(), book_frame.to_numpy()
        if msg.shape[1] != 6:
            raise DataError(f"{message}: {msg.shape[1]} columns; a LOBSTER message file has 6 "
                            f"(time, type, order id, size, price, direction)")
        chunk = _checked(msg, book, message, orderbook, first, last, levels, symbol, date)
        last = (msg[-1], chunk)
        first += len(msg)
        yield chunk


def _pair(message, orderbook) -> tuple[Path, Path]:
    message, orderbook = Path(message), Path(orderbook)
    for path in (message, orderbook):
        if not path.is_file():
            raise DataError(f"LOBSTER file {path} does not exist; LOBSTER data comes as a "
                            f"*_message_<L>.csv and *_orderbook_<L>.csv pair")
    return message, orderbook


def _names(message: Path, orderbook: Path, symbol, date) -> tuple[str, Optional[str]]:
    named = _NAME.match(orderbook.name) or _NAME.match(message.name)
    return (symbol or (named.group("ticker") if named else orderbook.stem),
            date or (named.group("date") if named else None))


def _count_lines(path: Path) -> int:
    count, tail = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            tail = block[-1:]
    return count + (tail != b"\n")


def _event(msg: np.ndarray, i: int) -> str:
    kind = int(msg[i, 1])
    return (f"event {EVENT_TYPES.get(kind, f'type {kind}')} at time {msg[i, 0]:.9f} "
            f"(order {int(msg[i, 2])}, size {msg[i, 3]:g}, price {msg[i, 4]:g}, direction {int(msg[i, 5])})")


def _checked(msg: np.ndarray, book: np.ndarray, message: Path, orderbook: Path, first: int,
             last, levels, symbol, date) -> OrderBook:
    """The rows ``first + 1 ...`` (file lines) of a file pair, checked, as an ``OrderBook``;
    ``last`` is the previous piece's last message and book when streaming."""
    if book.shape[1] % 4:
        raise DataError(f"{orderbook}: {book.shape[1]} columns; a LOBSTER order book has 4 per "
                        f"level (ask price, ask size, bid price, bid size)")

    def fail(path: Path, i: int, what: str) -> None:
        raise DataError(f"{path}: line {first + i + 1}: {what}; {_event(msg, i)}")

    time = msg[:, 0]
    if last is not None and time.size and time[0] < last[0][0]:
        fail(message, 0, f"time goes backwards ({last[0][0]} then {time[0]})")
    back = np.flatnonzero(np.diff(time) < 0)
    if back.size:
        fail(message, back[0] + 1, f"time goes backwards ({time[back[0]]} then {time[back[0] + 1]})")
    kind = msg[:, 1].astype(np.int64)
    unknown = np.flatnonzero(~np.isin(kind, list(EVENT_TYPES)) | (msg[:, 1] != kind))
    if unknown.size:
        fail(message, unknown[0], f"unknown event type {msg[unknown[0], 1]:g} (LOBSTER types are 1-7)")
    visible = (kind >= 1) & (kind <= 5)
    bad = np.flatnonzero(visible & ((msg[:, 3] <= 0) | (msg[:, 4] <= 0)))
    if bad.size:
        fail(message, bad[0], "a size or price that is zero or negative")
    n_levels = book.shape[1] // 4
    keep = n_levels if levels is None else min(levels, n_levels)
    cols = book[:, : 4 * keep].reshape(len(book), keep, 4)
    ask_p, ask_q, bid_p, bid_q = (cols[:, :, k] for k in range(4))
    negative = np.flatnonzero((ask_q < 0).any(axis=1) | (bid_q < 0).any(axis=1))
    if negative.size:
        fail(orderbook, negative[0], "a negative size in the order book")
    empty_a = (ask_p >= DUMMY) | (ask_q <= 0)
    empty_b = (bid_p <= -DUMMY) | (bid_q <= 0)
    priced = np.flatnonzero(((ask_p <= 0) & ~empty_a).any(axis=1) | ((bid_p <= 0) & ~empty_b).any(axis=1))
    if priced.size:
        fail(orderbook, priced[0], "a price that is zero or negative in the order book")
    ask_price = np.where(empty_a, np.nan, ask_p / PRICE_SCALE)
    bid_price = np.where(empty_b, np.nan, bid_p / PRICE_SCALE)
    ask_size = np.where(empty_a, 0.0, ask_q)
    bid_size = np.where(empty_b, 0.0, bid_q)
    with np.errstate(invalid="ignore"):
        crossed = np.flatnonzero(bid_price[:, 0] > ask_price[:, 0])
    if crossed.size:
        fail(orderbook, crossed[0], f"crossed book (bid {bid_price[crossed[0], 0]} > ask "
                                    f"{ask_price[crossed[0], 0]})")
    # a visible execution takes the best order of its side in the book before it: if the
    # book shows another price there, the two files are not one pair
    trades = np.flatnonzero((kind == 4) | (kind == 5))
    execs = trades[(kind[trades] == 4) & (trades > 0 if last is None else trades >= 0)]
    if execs.size:
        prev_bid = np.concatenate([[last[1].bid_price[-1, 0]] if last else [np.nan], bid_price[:-1, 0]])
        prev_ask = np.concatenate([[last[1].ask_price[-1, 0]] if last else [np.nan], ask_price[:-1, 0]])
        best = np.where(msg[execs, 5] > 0, prev_bid[execs], prev_ask[execs])
        off = execs[np.isfinite(best) & (np.abs(best - msg[execs, 4] / PRICE_SCALE) > 1e-9)]
        if off.size:
            fail(message, off[0], f"an execution at {msg[off[0], 4] / PRICE_SCALE} where the order book "
                                  f"{orderbook.name} showed the best {'bid' if msg[off[0], 5] > 0 else 'ask'} at "
                                  f"{best[np.searchsorted(execs, off[0])]}: the message and orderbook files do not match")
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


class LOBSTER(EventSource):
    """A LOBSTER file pair as event data (``data=lobster data.path=...``).

    ``path``: the ``*_message_<L>.csv`` file (its ``*_orderbook_<L>.csv`` sits beside it) or a
    folder holding one pair (``ticker`` picks one of several). ``levels`` keeps the first
    levels; ``chunk_rows`` streams the files in pieces of that many rows (null: read whole).
    """

    rules = {"levels": "[1, inf)", "chunk_rows": "[1, inf)"}
    caveats = ("LOBSTER books show the visible levels only: hidden liquidity and orders beyond "
               "the last level are not simulated",)

    def __init__(self, path: str = "???", ticker: Optional[str] = None, levels: Optional[int] = None,
                 chunk_rows: Optional[int] = None) -> None:
        self.path = path
        self.ticker = ticker
        self.levels = levels
        self.chunk_rows = chunk_rows

    def files(self) -> tuple[Path, Path]:
        path = Path(self.path)
        if path.is_dir():
            pairs = find_lobster(path, self.ticker)
            if len(pairs) != 1:
                found = ", ".join(p[0].name for p in pairs) or "none"
                raise DataError(f"data.path={path}: expected one LOBSTER message/orderbook pair"
                                f"{' for ' + self.ticker if self.ticker else ''}, found {found}; "
                                f"give the message file itself or data.ticker")
            return pairs[0]
        return path, path.with_name(path.name.replace("_message_", "_orderbook_"))

    def load(self) -> OrderBook:
        message, orderbook = self.files()
        return read_lobster(message, orderbook, levels=self.levels)

    def chunks(self) -> Iterator[OrderBook]:
        if self.chunk_rows is None:
            yield self.load()
            return
        message, orderbook = self.files()
        yield from iter_lobster(message, orderbook, self.chunk_rows, levels=self.levels)
