"""The run folder's files as a reader meets them: time series that parse, one return series."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[3]
INDEXED = ("equity", "returns", "weights", "attribution", "sleeves")
TIME_COLUMNS = {"orders": "decision_time", "fills": "time", "execution": "session"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two sleeves over 1990-2022 (both sides of many DST changes), written once."""
    tmp = tmp_path_factory.mktemp("recorder")
    out = tmp / "run"
    subprocess.run([sys.executable, str(ROOT / "run.py"), f"out_dir={out}", f"hydra.run.dir={tmp / 'hydra'}",
                    "strategy=[momentum,buy_and_hold]", "portfolio=equal_weight"],
                   cwd=tmp, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return out


def test_13_17_every_time_indexed_csv_parses_as_a_datetime_index(folder):
    for name in INDEXED:
        frame = pd.read_csv(folder / f"{name}.csv", index_col=0, parse_dates=True)
        assert isinstance(frame.index, pd.DatetimeIndex), name
        assert str(frame.index.tz) == "UTC", name
        assert frame.index.is_monotonic_increasing and len(frame) > 1, name
    for name, column in TIME_COLUMNS.items():
        frame = pd.read_csv(folder / f"{name}.csv", parse_dates=[column])
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype), name
    # the bars are still the exchange's closes: 16:00 in New York, in winter and in summer
    local = pd.read_csv(folder / "equity.csv", index_col=0, parse_dates=True).index.tz_convert("America/New_York")
    assert set(local.hour) == {16} and set(local.month) == set(range(1, 13))


def test_13_15_returns_csv_is_the_series_the_metrics_use(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    returns = pd.read_csv(folder / "returns.csv", index_col=0, parse_dates=True)["return"].to_numpy()
    equity = pd.read_csv(folder / "equity.csv", index_col=0)["equity"].to_numpy()
    assert returns.size == equity.size - 1  # the start bar has no return
    sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert sharpe == pytest.approx(metrics["sharpe"], abs=1e-12)
