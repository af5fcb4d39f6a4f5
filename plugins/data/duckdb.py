"""Prices from a DuckDB query: any table of a database file, or any file DuckDB reads
(``read_parquet('prices/*/*.parquet')``, ``read_csv(...)``), validated as ``data=csv``
validates a file."""

from __future__ import annotations

import os
from typing import Callable, Literal, Optional

from pipeline.core.errors import DataError
from plugins.data._frames import US_TZ
from plugins.data.csv import CSVData, table_source


class DuckDBData(CSVData):
    """The rows of ``query`` (SQL), run by DuckDB on ``database`` (a DuckDB file, opened
    read-only) or, with none, in memory, where the query reads files itself
    (``SELECT date, symbol, close FROM read_parquet('prices.parquet') WHERE close > 0``).

    The result is read as ``CSVData`` reads a file, with the same parameters after
    ``database``: layouts (long, wide, ohlcv, by the column names), adjusted closes, time
    zones, missing bars, slicing, and every check and its message; a message names
    ``data.query`` and the row of the result (counted from 1). A query DuckDB refuses, or one
    that returns no rows, is an error with DuckDB's reason."""

    def __init__(self, query: str, database: Optional[str] = None,
                 layout: Literal["auto", "long", "wide", "ohlcv"] = "auto",
                 symbol: Optional[str] = None, columns: Optional[dict[str, str]] = None,
                 date_format: Optional[str] = None, tz: str = US_TZ, close_time: str = "16:00",
                 sort: bool = False, fill: Literal["error", "ffill", "drop"] = "error",
                 start: Optional[str] = None, end: Optional[str] = None,
                 symbols: Optional[list[str]] = None, min_history: int = 2):
        super().__init__(path="data.query", layout=layout, symbol=symbol, columns=columns,
                         date_format=date_format, tz=tz, close_time=close_time, sort=sort,
                         fill=fill, start=start, end=end, symbols=symbols,
                         min_history=min_history)
        self.query = query
        self.database = database

    def read(self, role_of: Callable):
        try:
            import duckdb  # the package, not this module: imports are absolute
        except ImportError:
            raise DataError("data=duckdb needs the duckdb package; pip install duckdb (or "
                            "pip install 'robo-trader[duckdb]')") from None
        where = ":memory:"
        if self.database is not None:
            where = os.path.abspath(os.path.expanduser(str(self.database)))
            if not os.path.isfile(where):  # DuckDB would create an empty database
                raise DataError(f"data.database={self.database!r}: no such file ({where}); "
                                f"check the path, or drop it to query files in memory")
        try:
            with duckdb.connect(where, read_only=self.database is not None) as con:
                table = con.execute(str(self.query)).df()
        except duckdb.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"data.query={self.query!r}: DuckDB refused it ({reason}); fix "
                            f"the SQL") from None
        if table.empty:
            raise DataError(f"data.query={self.query!r} returned no rows; widen its WHERE "
                            f"clause or check the files it reads")
        return table_source("data.query", table, role_of), "duckdb"
