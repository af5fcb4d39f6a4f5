"""Issue 18.8: data where users keep it. A Parquet dataset folder (partitioned by symbol or by
date, or one file per symbol) through ``data=csv data.path=<folder>``, and a DuckDB query
through ``data=duckdb data.query=...``: the same market as the CSV of the same rows, and the
same validation and messages as ``data=csv``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import DataError
from plugins.data.csv import CSVData
from plugins.data.duckdb import DuckDBData

from tests.plugins.data.test_csv import long_frame

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")


def same_market(a, b):
    """The same bars, whatever order the symbols came in."""
    assert sorted(a.symbols) == sorted(b.symbols) and a.index.equals(b.index)
    order = [b.symbols.index(s) for s in a.symbols]
    for field in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field)[:, order])


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "prices.csv"
    long_frame().to_csv(path, index=False)
    return CSVData(path=str(path)).load()


def one_line(fn) -> str:
    with pytest.raises(DataError) as err:
        fn()
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("by", ["symbol", "date"])
def test_18_8_a_parquet_dataset_partitioned_by_symbol_or_date_reads_as_its_csv(tmp_path, csv, by):
    folder = tmp_path / "dataset"
    long_frame().to_parquet(folder, partition_cols=[by], index=False)
    assert all("=" in p.name for p in folder.iterdir())  # hive folders: symbol=AAA/, date=2024-01-02/
    data = CSVData(path=str(folder)).load()
    same_market(data, csv)
    assert data.name == "dataset" and data.index.tz is not None
    assert "data: " + str(folder) + " read as a long file (2 symbols)" in data.notes[0]


def test_18_8_a_folder_of_one_file_per_symbol_names_the_symbols_by_the_files(tmp_path, csv):
    folder = tmp_path / "bars"
    folder.mkdir()
    for sym, rows in long_frame().groupby("symbol"):
        rows.drop(columns="symbol").to_parquet(folder / f"{sym}.parquet", index=False)
    same_market(CSVData(path=str(folder)).load(), csv)


def test_18_8_a_dataset_gets_the_csvs_messages(tmp_path):
    bad = long_frame()
    bad.loc[7, "close"] = -1.0  # AAA on 2024-01-04
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    folder = tmp_path / "bad"
    bad.to_parquet(folder, partition_cols=["symbol"], index=False)
    from_csv = one_line(lambda: CSVData(path=str(path)).load())
    from_folder = one_line(lambda: CSVData(path=str(folder)).load())
    assert from_csv.startswith(f"{path}: AAA on 2024-01-04 ")
    assert from_folder == from_csv.replace(str(path), str(folder))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no .parquet or .pq file" in one_line(lambda: CSVData(path=str(empty)).load())
    # files that disagree on their columns: named, not a traceback
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    long_frame().to_parquet(mixed / "a.parquet", index=False)
    pd.DataFrame({"x": ["a"]}).to_parquet(mixed / "b.parquet", index=False)
    msg = one_line(lambda: CSVData(path=str(mixed)).load())
    assert str(mixed) in msg


def test_18_8_a_duckdb_query_over_files_or_a_database_reads_as_the_csv(tmp_path, csv):
    frame = long_frame()
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    query = f"SELECT * FROM read_parquet('{tmp_path / 'p.parquet'}') ORDER BY symbol DESC, date"
    data = DuckDBData(query=query).load()
    same_market(data, csv)
    assert data.name == "duckdb" and data.symbols == ("BBB", "AAA")
    db = tmp_path / "prices.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE bars AS SELECT CAST(date AS DATE) AS day, symbol AS ticker, open, high, low, "
                    "close AS last, volume FROM frame")
    # a DATE column, a ticker column and a close spelt otherwise, as data.columns names them
    data = DuckDBData(query="SELECT * FROM bars ORDER BY ticker, day", database=str(db),
                      columns={"close": "last", "date": "day"}, symbols=["AAA"]).load()
    frame.to_csv(tmp_path / "x.csv", index=False)
    same_market(data, CSVData(path=str(tmp_path / "x.csv"), symbols=["AAA"]).load())


def test_18_8_a_duckdb_query_gets_the_csvs_messages_and_its_own_one_line_errors(tmp_path):
    bad = long_frame()
    bad.loc[7, "close"] = -1.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    from_csv = one_line(lambda: CSVData(path=str(tmp_path / "bad.csv")).load())
    query = f"SELECT * FROM read_csv('{tmp_path / 'bad.csv'}')"
    assert one_line(lambda: DuckDBData(query=query).load()) == from_csv.replace(str(tmp_path / "bad.csv"),
                                                                                  "data.query")
    msg = one_line(lambda: DuckDBData(query="SELEC date FROM nowhere").load())
    assert msg.startswith("data.query='SELEC date FROM nowhere': DuckDB refused it (Parser Error: syntax error")
    msg = one_line(lambda: DuckDBData(query=f"{query} WHERE close > 1000").load())
    assert msg.endswith("returned no rows; widen its WHERE clause or check the files it reads")
    msg = one_line(lambda: DuckDBData(query="SELECT 1", database=str(tmp_path / "none.duckdb")).load())
    assert msg.startswith("data.database=") and "no such file" in msg
    assert not (tmp_path / "none.duckdb").exists()  # not created by asking
    # a NaN in the middle of a symbol's bars: the CSV's rule (data.fill) and message
    gap = long_frame()
    gap.loc[2, "close"] = np.nan
    gap.to_parquet(tmp_path / "gap.parquet", index=False)
    (tmp_path / "gap.csv").write_text(gap.to_csv(index=False))
    q = f"SELECT * FROM read_parquet('{tmp_path / 'gap.parquet'}')"
    assert one_line(lambda: DuckDBData(query=q).load()) == one_line(
        lambda: CSVData(path=str(tmp_path / "gap.csv")).load()).replace(str(tmp_path / "gap.csv"), "data.query")


@pytest.mark.slow
def test_18_8_run_py_backtests_from_data_duckdb(tmp_path):
    root = Path(__file__).resolve().parents[3]
    days = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(3)
    rows = pd.concat([pd.DataFrame({"date": days, "symbol": s, "close": 50 * np.cumprod(1 + rng.normal(0, 0.01, 300))})
                      for s in ("AAA", "BBB", "CCC")])
    rows.to_parquet(tmp_path / "prices", partition_cols=["symbol"], index=False)
    query = f"SELECT * FROM read_parquet('{tmp_path / 'prices'}/*/*.parquet', hive_partitioning=true) ORDER BY symbol, date"
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(root / "run.py"), "data=duckdb", f"data.query={json.dumps(query)}",
                           "strategy.momentum.lookback=60", f"out_dir={out}"], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stderr
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["data"]["name"] == "duckdb" and prov["data"]["symbols"] == ["AAA", "BBB", "CCC"]
    assert prov["config"]["data"]["query"] == query
    assert len(pd.read_csv(out / "equity.csv")) > 200
