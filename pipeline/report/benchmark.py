"""The report's benchmark: the data's own (``universe``), one of its symbols, or a CSV of levels
(``report.benchmark``), as a level at each bar of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.contracts import DataSource
from pipeline.core.errors import ConfigError
from pipeline.core.market import forward_filled
from pipeline.core.params import build as build_component
from pipeline.report.analytics import utc_ns

UNIVERSE = "universe"


def benchmark(data: Any, start: int = 0, choice: str = UNIVERSE) -> tuple[str, np.ndarray] | None:
    """The benchmark's level at each bar of ``data`` (a MarketData) from ``start``: ``choice``
    is ``universe`` (the equal-weight buy-and-hold of the symbols priced at ``start``, on the
    same adjusted prices as the strategy), one of the data's symbols, or a CSV file of levels
    (``report.benchmark``; a source states its own default, ``DataSource.default_benchmark``).
    Anything else is a ConfigError naming the key."""
    close = np.asarray(data.close, dtype=np.float64)[start:]
    if close.size == 0:
        return None
    choice = str(choice)
    if choice == UNIVERSE:
        first = close[0]
        held = np.isfinite(first) & (first > 0)
        # a delisted symbol's last price holds: its value stays in the book, as cash would
        level = (forward_filled(close[:, held]) / first[held]).mean(axis=1)
        late = int(close.shape[1] - held.sum())
        return (f"equal-weight buy-and-hold of the {int(held.sum())} symbols priced at the start"
                + (f" ({late} listed later left out)" if late else "") + ", no costs"), level
    if choice in data.symbols:
        j = data.symbols.index(choice)
        level = pd.Series(close[:, j]).ffill().to_numpy()
        return f"{choice} (buy-and-hold, no costs)", level
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ConfigError(f"report.benchmark={choice!r} is not 'universe', a symbol of the data "
                          f"({', '.join(data.symbols)}) or a CSV file; pick one of those, or null for "
                          f"the data's own ({UNIVERSE})")
    return path.name, _csv_levels(path, data.index[start:], choice)


def _csv_levels(path: Path, index: pd.DatetimeIndex, key: str) -> np.ndarray:
    """A CSV's first numeric column (dates in the first), on ``index``'s days, carried forward."""
    try:
        frame = pd.read_csv(path, index_col=0)
        dates = pd.to_datetime(frame.index, format="mixed")
    except (ValueError, TypeError, pd.errors.ParserError) as exc:
        raise ConfigError(f"report.benchmark={key!r}: {path} does not read as dates then levels ({exc})") from None
    numeric = frame.select_dtypes("number")
    if numeric.empty:
        raise ConfigError(f"report.benchmark={key!r}: {path} has no numeric column of levels")
    if dates.tz is not None:
        dates = dates.tz_convert(index.tz)
    series = pd.Series(numeric.iloc[:, 0].to_numpy(dtype=np.float64), index=dates.strftime("%Y-%m-%d"))
    series = series[~series.index.duplicated(keep="last")].sort_index()
    days = index.strftime("%Y-%m-%d")
    level = series.reindex(series.index.union(days)).ffill().reindex(days).to_numpy(copy=True)
    level[np.asarray(days > series.index[-1])] = np.nan  # past the file's end: not known
    if not np.isfinite(level).any():
        raise ConfigError(f"report.benchmark={key!r}: {path} covers {series.index[0]}..{series.index[-1]}, "
                          f"not the run's {days[0]}..{days[-1]}")
    return level



def benchmark_choice(config: Any, source: Any) -> str:
    """``report.benchmark`` as configured, else the data source's own default."""
    chosen = (config.get("report") or {}).get("benchmark")
    return str(chosen) if chosen is not None else getattr(source, "default_benchmark", UNIVERSE)


def folder_benchmark(prov: dict[str, Any], equity_index: pd.DatetimeIndex) -> tuple[str, np.ndarray] | None:
    """The benchmark for a recorded run: rebuilds its data source from the resolved config."""
    node = prov.get("config", {}).get("data")
    if not node:
        return None
    source = build_component(node, "data", DataSource, seed=int(prov.get("seed", 0)))
    data = source.load()
    start = int(np.searchsorted(utc_ns(data.index), utc_ns(equity_index)[0]))
    return benchmark(data, start, benchmark_choice(prov.get("config", {}), source))

