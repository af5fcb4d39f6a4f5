"""End to end: order-book runs through ``python run.py`` (issue 19, point 3)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.app.runner import run as run_in_process
from pipeline.core.errors import ConfigError
from plugins.data.lob_synthetic import synthetic_book
from plugins.data.lobster import write_lobster

ROOT = Path(__file__).resolve().parent.parent
FILES = ("orders.csv", "fills.csv", "equity.csv", "metrics.json", "provenance.json", "report.html")
SMALL = "data.n_events=4000"


def run(*args, cwd):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "progress=false"], cwd=cwd,
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert proc.returncode == 0, f"run.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_19_3_market_maker_runs_from_run_py_and_writes_the_run_folder(tmp_path):
    proc = run("data=lob_synthetic", "strategy=market_maker", SMALL, f"out_dir={tmp_path / 'a'}", cwd=tmp_path)
    out = tmp_path / "a"
    for name in FILES:
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    fills = pd.read_csv(out / "fills.csv")
    equity = pd.read_csv(out / "equity.csv")
    assert m["fills"] == len(fills) >= 5 and 0 < m["fill_ratio"] < 1
    for key in ("max_abs_inventory", "mean_abs_inventory", "final_inventory", "adverse_selection_1s",
                "adverse_selection_10s", "spread_capture", "inventory_pnl", "fees"):
        assert np.isfinite(m[key]), key
    for column in ("queue_ahead", "entry_latency", "response_latency", "known_time", "maker", "mid_1s", "mid_10s"):
        assert column in fills, column
    assert (fills["known_time"] - fills["time"]).round(9).eq(0.001).all()      # broker=lob's response latency
    # the P&L split, recomputed from the files: inventory P&L is what the fills' shares earned
    # from the mid at each fill to the final mark; the fills' mids are the book's
    signed = fills["side"] * fills["qty"]
    assert m["pnl"] == pytest.approx(equity["equity"].iloc[-1] - equity["equity"].iloc[0])
    assert m["inventory_pnl"] == pytest.approx(float((signed * (equity["mid"].iloc[-1] - fills["mid"])).sum()), abs=1e-6)
    assert m["spread_capture"] == pytest.approx(float((signed * (fills["mid"] - fills["price"])).sum()), abs=1e-6)
    book = synthetic_book(n_events=4000, seed=7)
    rows = np.searchsorted(book.time, fills["time"].to_numpy() - 1e-7) - 1       # the book before each fill (ns rounding)
    np.testing.assert_allclose(fills["mid"], book.mid[rows], atol=1e-9)
    assert equity["position"].abs().max() <= 1000 + 100                          # inventory limit (one quote past)
    assert "spread capture" in proc.stdout and "adverse selection" in proc.stdout
    assert "P&amp;L" in (out / "report.html").read_text()
    run("data=lob_synthetic", "strategy=market_maker", SMALL, f"out_dir={tmp_path / 'b'}", cwd=tmp_path)
    for name in FILES[:4]:
        assert (out / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.slow
def test_19_3_microstructure_taker_runs_on_lobster_files(tmp_path):
    book, messages = synthetic_book(n_events=3000, seed=4, messages=True)
    message, _ = write_lobster(tmp_path / "lobster", messages, book)
    run("data=lobster", f"data.path={message}", "data.chunk_rows=1000", "strategy=microstructure",
        f"out_dir={tmp_path / 'run'}", cwd=tmp_path)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    assert m["events"] == book.n_rows and m["fills"] > 0 and (orders["kind"] == "market").all()
    assert m["maker_fills"] == 0                                                # a taker


def _compose(*overrides):
    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.mark.parametrize("overrides, match", [
    (["data=lob_synthetic"], "strategy.momentum .Momentum. trades bars but data=LOBSynthetic holds order-book events"),
    (["strategy=market_maker"], "strategy.market_maker .MarketMaker. trades order-book events but data=SP500 holds bars"),
    (["broker=lob"], "broker=LOBExchange fills order-book events"),
])
def test_19_3_event_and_daily_stages_do_not_mix(tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
        run_in_process(_compose(*overrides, f"out_dir={tmp_path}"))
    assert not (tmp_path / "metrics.json").exists()
