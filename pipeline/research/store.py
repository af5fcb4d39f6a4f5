"""The sweep store: one row per job in Parquet files under ``<sweep>/store/``, one file per batch.

A row holds the job's number, its overrides, status and error, its objective, its
``metrics.json`` as text (the same bytes' content: JSON with NaN as null) and its per-bar
returns (``returns.csv``'s column) as a list, placed on a calendar by ``calendar`` (a digest
naming ``<sweep>/calendars/<digest>.parquet``, the data's bar times) and ``first`` (the
calendar position of its first return).

The returns are stored as float32 (7 significant digits; ``returns.csv`` and ``rerun`` have
them exactly): a double's mantissa is noise to a compressor, so float64 returns cost 7.7 bytes
a bar (62 KB a job on the bundled 33 years), float32 about 3.7. What must be exact is kept
exact beside them: ``sharpe``, ``skew``, ``kurtosis`` and ``n`` of the exact returns
(``overfitting.own_moments``), from which the DSR is computed; only PBO's CSCV block sums are
taken from the float32 returns (its ranks move only where two trials tie to 7 digits). Batches are written to a temporary name and renamed,
so an interrupted sweep leaves whole batches only, and a resumed sweep skips the jobs held.

    pd.read_parquet("<sweep>/store")      # every job; columns=[...] to skip the returns
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.research import overfitting as overfit
from pipeline.results.metrics import periods_per_year

STORE = "store"
CALENDARS = "calendars"
SCHEMA = pa.schema([
    ("job", pa.int64()), ("overrides", pa.list_(pa.string())), ("status", pa.string()),
    ("error", pa.string()), ("objective", pa.float64()), ("metrics", pa.string()),
    ("calendar", pa.string()), ("first", pa.int64()), ("n", pa.int64()),
    ("sharpe", pa.float64()), ("skew", pa.float64()), ("kurtosis", pa.float64()),
    ("returns", pa.list_(pa.float32())),
])
TABLE_COLUMNS = ["job", "overrides", "status", "error", "objective", "metrics"]


def has_store(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / STORE).is_dir()


def calendar_digest(times: pd.DatetimeIndex) -> str:
    return hashlib.sha256(np.ascontiguousarray(times.asi8).tobytes() + str(times.tz).encode()).hexdigest()[:16]


def write_calendar(sweep_dir: Path, times: pd.DatetimeIndex) -> str:
    """The calendar's digest; its file is written once (the same bytes whoever writes it)."""
    digest = calendar_digest(times)
    path = Path(sweep_dir) / CALENDARS / f"{digest}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        pq.write_table(pa.table({"time": pa.array(times)}), tmp)
        os.replace(tmp, path)
    return digest


def read_calendar(sweep_dir: Path, digest: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pq.read_table(Path(sweep_dir) / CALENDARS / f"{digest}.parquet")
                            .column("time").to_pandas())


def returns_fields(returns: np.ndarray) -> dict[str, Any]:
    """A completed job's stored returns (``returns``, float64, the exact series) and their
    exact moments."""
    sharpe, skew, kurtosis, _ = overfit.own_moments(returns)
    return {"n": int(returns.size), "returns": np.asarray(returns, dtype=np.float64),
            "sharpe": sharpe, "skew": skew, "kurtosis": kurtosis}


def write_batch(sweep_dir: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write one batch's rows (dicts with SCHEMA's keys, ``returns`` an array or None; missing
    keys are null) atomically."""
    folder = Path(sweep_dir) / STORE
    folder.mkdir(parents=True, exist_ok=True)
    columns: dict[str, Any] = {f.name: [row.get(f.name) for row in rows] for f in SCHEMA if f.name != "returns"}
    series = [row.get("returns") for row in rows]
    sizes = np.array([0 if r is None else len(r) for r in series], dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    values = np.concatenate([np.asarray(r, dtype=np.float32) for r in series if r is not None] or
                            [np.zeros(0, np.float32)])
    mask = pa.array([r is None for r in series])
    columns["returns"] = pa.ListArray.from_arrays(offsets, pa.array(values), mask=mask)
    table = pa.table(columns, schema=SCHEMA)
    path = folder / f"{name}.parquet"
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    # floats stored byte by byte (byte_stream_split) compress about a fifth better under zstd
    pq.write_table(table, tmp, compression="zstd", use_byte_stream_split=["returns.list.element", "objective"])
    os.replace(tmp, path)
    return path


def batch_files(sweep_dir: Path) -> list[Path]:
    folder = Path(sweep_dir) / STORE
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def read_table(sweep_dir: Path) -> pd.DataFrame:
    """One row per job (the last written if a retried batch wrote a job twice), by job number,
    without the returns."""
    files = batch_files(sweep_dir)
    if not files:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    frame = pq.ParquetDataset(files).read(columns=TABLE_COLUMNS).to_pandas()
    return frame.drop_duplicates("job", keep="last").sort_values("job", kind="stable").reset_index(drop=True)


def held_jobs(sweep_dir: Path) -> dict[int, list[str]]:
    """Job number -> overrides of every job the store holds (for ``sweep.resume``)."""
    table = read_table(sweep_dir)
    return {int(j): list(o) for j, o in zip(table["job"], table["overrides"])}


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """``sweep.csv``'s rows from the store: job, overrides, status, error, and the scalar metrics."""
    table = read_table(sweep_dir)
    rows = []
    for job, overrides, status, error, metrics in zip(table["job"], table["overrides"], table["status"],
                                                      table["error"], table["metrics"]):
        row: dict[str, Any] = {"job": str(int(job)), "overrides": " ".join(overrides), "status": status}
        if status == "completed" and metrics is not None:
            row.update({k: (math.nan if v is None else v) for k, v in json.loads(metrics).items()
                        if not isinstance(v, (dict, list))})
        else:
            row["error"] = error
        rows.append(row)
    return pd.DataFrame(rows)


def iter_returns(sweep_dir: Path, jobs: set[int]) -> Iterator[tuple[int, str, int, np.ndarray]]:
    """(job, calendar, first, returns) of the given jobs, one batch file in memory at a time."""
    seen: set[int] = set()
    for path in reversed(batch_files(sweep_dir)):  # the last written wins, as in read_table
        table = pq.read_table(path, columns=["job", "calendar", "first", "returns"])
        column = table.column("returns").combine_chunks()
        values = column.values.to_numpy(zero_copy_only=False)
        offsets = column.offsets.to_numpy()
        for i, (job, cal, first) in enumerate(zip(table.column("job").to_pylist(), table.column("calendar").to_pylist(),
                                                  table.column("first").to_pylist())):
            if job in jobs and job not in seen:
                seen.add(job)
                yield job, cal, first, values[offsets[i]:offsets[i + 1]]


def spans(sweep_dir: Path, jobs: set[int]) -> dict[int, tuple[str, int, int, float, float, float]]:
    """Job -> (calendar, first, n, sharpe, skew, kurtosis) without reading the returns (the
    last written wins, as in ``read_table``)."""
    out: dict[int, tuple[str, int, int, float, float, float]] = {}
    keys = ["job", "calendar", "first", "n", "sharpe", "skew", "kurtosis"]
    for path in batch_files(sweep_dir):
        table = pq.read_table(path, columns=keys).to_pydict()
        for job, *rest in zip(*(table[k] for k in keys)):
            if job in jobs:
                out[job] = tuple(math.nan if v is None else v for v in rest)
    return out


def overfitting(sweep_dir: Path, jobs: list[str], best: str | None = None, chunk: int = 512) -> dict[str, Any]:
    """``overfitting.summary`` of the given jobs, streamed from the store: each job's returns
    are read once, a batch file at a time, into its CSCV block sums (S x N) over the rows every
    job has; the Sharpe ratios and the chosen job's moments are the stored exact ones."""
    if not jobs:
        return {}
    ids = [int(j) for j in jobs]
    column = {job: i for i, job in enumerate(ids)}
    span = spans(sweep_dir, set(ids))
    cals = {d: read_calendar(sweep_dir, d) for d in sorted({s[0] for s in span.values()})}
    union = next(iter(cals.values()))
    for times in cals.values():
        union = union.union(times)
    where = {d: union.get_indexer(times) for d, times in cals.items()}
    whole = {d: len(cals) == 1 for d in cals}  # one calendar: a job's rows are its own positions
    count = np.zeros(len(union), dtype=np.int64)
    for (d, first, n), k in pd.Series([s[:3] for s in span.values()]).value_counts().items():
        count[where[d][first:first + n]] += k
    common = np.flatnonzero(count == len(ids))
    t = common.size
    splits = overfit.cscv_splits(t)
    block = t // splits if splits >= 2 else 0
    rows = common[:block * splits]
    sharpes = np.array([span[job][3] for job in ids], dtype=np.float64)
    if best is not None:
        pick: int | None = column[int(best)]
    else:  # the highest Sharpe ratio, the first job of a tie
        pick = int(np.nanargmax(sharpes)) if np.isfinite(sharpes).any() else None
    moments = None if pick is None else (sharpes[pick], span[ids[pick]][4], span[ids[pick]][5], span[ids[pick]][2])
    sum1, sum2 = np.zeros((max(splits, 1), len(ids))), np.zeros((max(splits, 1), len(ids)))
    buf, cols = np.empty((rows.size, min(chunk, len(ids)))), []

    def flush() -> None:
        if cols and block:
            s1, s2 = overfit.block_sums(buf[:, :len(cols)], splits)
            sum1[:, cols], sum2[:, cols] = s1, s2
        cols.clear()

    if block:
        for job, cal, first, r in iter_returns(sweep_dir, set(ids)):
            buf[:, len(cols)] = r[rows - first] if whole[cal] else r[np.searchsorted(where[cal][first:first + r.size], rows)]
            cols.append(column[job])
            if len(cols) == buf.shape[1]:
                flush()
        flush()
    return overfit.from_parts([str(j) for j in ids], sharpes, pick, moments, t, splits,
                              lambda: overfit.pbo_from_sums(sum1, sum2, block, n_dropped=t - rows.size),
                              periods_per_year(union[count > 0]))
