"""Multiruns end to end: launchers, the sweep summary, Optuna, walk-forward."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*args):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_basic_sweep_records_every_job_and_survives_a_failure(tmp_path):
    run("-m", "strategy.momentum.lookback=60,-5,120,180", f"hydra.sweep.dir={tmp_path}")
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert table["status"].tolist() == ["completed", "failed", "completed", "completed"]
    assert "strategy.momentum.lookback=-5" in table.loc[1, "error"]
    assert table.loc[[0, 2, 3], "sharpe"].notna().all()
    summary = (tmp_path / "summary.md").read_text()
    assert "Failed jobs" in summary and "Deflated Sharpe Ratio" in summary
    stats = json.loads((tmp_path / "overfitting.json").read_text())
    assert stats["n_trials"] == 3 and 0 <= stats["pbo"] <= 1 and 0 <= stats["dsr"] <= 1
    assert json.loads((tmp_path / "1" / "status.json").read_text())["status"] == "failed"


def test_joblib_launcher_loads_data_once_per_worker(tmp_path):
    run("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "strategy.momentum.lookback=60,120,180",
        "allocation=equal_weight,inverse_vol", f"hydra.sweep.dir={tmp_path}")
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert len(table) == 6 and (table["status"] == "completed").all()
    logs = [p.read_text() for p in tmp_path.glob("*/run.log")]
    loads = sum("data: loaded" in text for text in logs)
    assert 1 <= loads <= 2 and sum("data: reused" in text for text in logs) == 6 - loads


def test_joblib_results_equal_the_basic_launcher(tmp_path):
    args = ["strategy.momentum.lookback=60,120"]
    run("-m", *args, f"hydra.sweep.dir={tmp_path / 'basic'}")
    run("-m", "hydra/launcher=joblib", *args, f"hydra.sweep.dir={tmp_path / 'joblib'}")
    for job in ("0", "1"):
        assert (tmp_path / "basic" / job / "equity.csv").read_bytes() == \
            (tmp_path / "joblib" / job / "equity.csv").read_bytes()


def test_submitit_local_launcher(tmp_path):
    run("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
        "strategy.momentum.lookback=60,120", f"hydra.sweep.dir={tmp_path}")
    assert (pd.read_csv(tmp_path / "sweep.csv")["status"] == "completed").all()


def test_optuna_preset_maximises_the_objective(tmp_path):
    pytest.importorskip("optuna", minversion="3")  # the search (pipeline/app/search.py) needs optuna>=3
    run("hparams_search=momentum_optuna", "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={tmp_path}")
    import yaml
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert len(table) == 4
    assert best["best_value"] == pytest.approx(table["sharpe"].max())


def test_walk_forward_reports_out_of_sample_beside_in_sample(tmp_path):
    proc = run("walkforward=momentum_lookback",
               "walkforward.grid={strategy.momentum.lookback:[63,252],strategy.momentum.top_k:[5]}",
               f"out_dir={tmp_path}")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["candidates"] == 2 and metrics["folds"] > 20
    assert set(metrics["out_of_sample"]) >= {"sharpe", "cagr", "max_drawdown"}
    folds = pd.read_csv(tmp_path / "walkforward.csv")
    assert (pd.to_datetime(folds["test_start"], utc=True) > pd.to_datetime(folds["train_end"], utc=True)).all()
    oos = pd.read_csv(tmp_path / "oos_returns.csv")
    spans = pd.read_csv(tmp_path / "walkforward.csv")
    assert oos["time"].iloc[0] == spans["test_start"].iloc[0] and oos["time"].iloc[-1] == spans["test_end"].iloc[-1]
    assert set(oos["candidate"]) <= {0, 1} and "out of sample" in proc.stdout


def test_13_15_overfitting_json_sharpe_equals_the_jobs_metrics_json(tmp_path):
    # two lookbacks: two warm-ups, so the jobs start on different bars
    subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "strategy.momentum.lookback=60,120",
                    "data.start=2012-01-01", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stats = json.loads((tmp_path / "sweep" / "overfitting.json").read_text())
    table = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    best = table.sort_values("sharpe", ascending=False)["job"].iloc[0]
    metrics = json.loads((tmp_path / "sweep" / str(best) / "metrics.json").read_text())
    assert stats["best"] == str(best)
    assert abs(stats["sharpe_annual"] - metrics["sharpe"]) < 1e-12
    equity = pd.read_csv(tmp_path / "sweep" / str(best) / "equity.csv")
    assert stats["n_obs"] == len(equity) - 1
