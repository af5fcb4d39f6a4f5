"""summary.html at the end of a sweep: the jobs, a heatmap over two swept parameters, the
overfitting statistics; and the terminal's per-job counter and best-jobs table."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.research import sweep


def fake_sweep(root, grid, failing=()):
    """Job folders as a sweep leaves them: overrides, metrics and daily returns."""
    rng = np.random.default_rng(3)
    times = pd.Index(pd.date_range("2015-01-01", periods=400, freq="B", tz="UTC").astype(str), name="time")
    for num, overrides in enumerate(grid):
        job = root / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        if num in failing:
            (job / "error.txt").write_text("ConfigError: bad value\n")
            continue
        r = rng.normal(0.0003 * (num + 1), 0.01, len(times))
        pd.DataFrame({"return": r}, index=times).to_csv(job / "returns.csv")
        sharpe = float(r.mean() / r.std(ddof=1) * np.sqrt(252))
        (job / "metrics.json").write_text(json.dumps({"sharpe": sharpe, "cagr": 0.1, "max_drawdown": -0.2,
                                                      "turnover": 2.0, "total_costs": 10.0}))
        (job / "report.html").write_text("<html></html>")
    return root


GRID = [[f"strategy.momentum.lookback={lb}", f"allocation={al}", "seed=7"]
        for lb in (60, 120, 250) for al in ("equal_weight", "inverse_vol")]


def test_summary_page_has_jobs_heatmap_and_overfitting_stats(tmp_path, capsys):
    fake_sweep(tmp_path, GRID, failing={3})
    sweep.write_summary(tmp_path, "sharpe")
    html = (tmp_path / "summary.html").read_text()
    # the heatmap: lookback (3 values) across, allocation (2) down; the failed job's cell empty
    assert "sharpe by strategy.momentum.lookback and allocation" in html
    cells = re.findall(r'<rect class="cell"[^>]*data-value="([^"]+)"', html)
    assert len(cells) == 5
    table = pd.read_csv(tmp_path / "sweep.csv")
    job0 = table.loc[table["job"] == 0, "sharpe"].item()
    assert f"{job0:.6g}" in cells
    # every job in the table, completed ones linked to their report, the failure with its error
    for num in range(6):
        assert f">{num}<" in html
    assert '<a href="0/report.html">0</a>' in html and "ConfigError: bad value" in html
    # the overfitting statistics, as in overfitting.json
    stats = json.loads((tmp_path / "overfitting.json").read_text())
    assert stats["n_trials"] == 5
    assert "Deflated Sharpe Ratio" in html and f"{stats['dsr']:,.3f}" in html
    assert "Probability of Backtest Overfitting" in html and f"{stats['pbo']:,.3f}" in html
    assert "<script" not in html and not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    # the terminal: the best jobs as an aligned table, then where the page is
    out = capsys.readouterr().out
    assert re.search(r"^job\s+sharpe\s+cagr\s+max_drawdown\s+turnover\s+overrides$", out, re.M)
    assert "best 5 by sharpe" in out and "summary.html" in out and "failed: job 3" in out


def test_heatmap_axes_are_the_two_parameters_that_vary_most():
    params = {str(i): {"a": str(i % 2), "b": str(i % 3), "c": str(i % 4), "d": "x"} for i in range(12)}
    assert sweep.heatmap_axes(params) == ["c", "b"]
    assert sweep.heatmap_axes({"0": {"a": "1"}, "1": {"a": "2"}}) == ["a"]
    assert sweep.heatmap_axes({"0": {"a": "1"}}) == []


def test_heatmap_cells_average_jobs_that_share_them(tmp_path):
    grid = [[f"x={x}", f"y={y}", f"z={z}"] for x in (1, 2) for y in (10, 20, 30) for z in (0, 1)]
    fake_sweep(tmp_path, grid)
    table = sweep.collect(tmp_path)
    params = sweep.job_overrides(tmp_path, list(table["job"]))
    axes = sweep.heatmap_axes(params)
    assert axes == ["y", "x"]
    xs, ys, mean, count = sweep.heatmap_grid(table, params, axes, "sharpe")
    assert xs == ["10", "20", "30"] and ys == ["1", "2"] and (count == 2).all()
    first = table[table["overrides"].str.contains("x=1 y=10 ")]["sharpe"].mean()
    assert mean[0, 0] == pytest.approx(first)


def test_a_sweep_without_a_second_value_says_there_is_nothing_to_map(tmp_path):
    fake_sweep(tmp_path, [["seed=7"]])
    sweep.write_summary(tmp_path, "sharpe")
    html = (tmp_path / "summary.html").read_text()
    assert "nothing to map" in html
    # one job still has a Sharpe ratio and a DSR (against zero); PBO needs a second job to choose
    stats = json.loads((tmp_path / "overfitting.json").read_text())
    assert stats["n_trials"] == 1 and stats["best"] == "0" and stats["sr0"] == 0.0
    assert "a single trial: nothing was selected" in html


def test_planned_jobs_counts_the_basic_sweepers_combinations():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"hydra": {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                                  "params": None},
                                      "overrides": {"task": ["a=1,2,3", "b=x,y", "c=5"]}}})
    assert sweep.planned_jobs(cfg) == 6
    optuna = OmegaConf.create({"hydra": {"sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
                                                     "n_trials": 20}, "overrides": {"task": []}}})
    assert sweep.planned_jobs(optuna) == 20


@pytest.mark.slow
def test_a_real_sweep_counts_its_jobs_and_ends_with_the_best(tmp_path, run_cli):
    proc = run_cli("-m", "strategy.momentum.lookback=60,120", "allocation=equal_weight,inverse_vol",
                   "data.start=2010-01-01", f"hydra.sweep.dir={tmp_path}")
    for k in range(1, 5):
        assert re.search(rf"^\[{k}/4\] job {k - 1}: sharpe", proc.stdout, re.M), proc.stdout
    assert "best 4 by sharpe" in proc.stdout and "deflated Sharpe ratio" in proc.stdout
    html = (tmp_path / "summary.html").read_text()
    assert len(re.findall(r'<rect class="cell"', html)) == 4
    for job in range(4):
        assert (tmp_path / str(job) / "report.html").is_file()


def test_13_12_one_best_job_in_the_table_the_overfitting_line_and_summary_md(tmp_path, capsys):
    # job 1 starts late and has the higher Sharpe over its own bars (its metrics.json); job 0 is
    # better on the bars both have: the best is job 1 everywhere, and every output says why
    rng = np.random.default_rng(5)
    times = pd.date_range("2015-01-01", periods=400, freq="B", tz="UTC")
    early, late = rng.normal(-0.002, 0.01, 250), rng.normal(0.006, 0.01, 150)
    series = {0: pd.Series(np.append(early, late), index=times),
              1: pd.Series(rng.normal(0.002, 0.01, 150), index=times[250:])}
    own = {}
    for num, r in series.items():
        job = tmp_path / str(num)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"strategy.momentum.lookback={60 + 190 * num}"]))
        r.rename("return").rename_axis("time").to_frame().to_csv(job / "returns.csv")
        own[num] = float(r.mean() / r.std(ddof=1) * np.sqrt(252))
        (job / "metrics.json").write_text(json.dumps({"sharpe": own[num], "cagr": 0.1}))
    common = {num: float(r.iloc[-150:].mean() / r.iloc[-150:].std(ddof=1)) for num, r in series.items()}
    assert own[1] > own[0] and common[0] > common[1]  # the two rankings disagree
    sweep.write_summary(tmp_path, "sharpe")
    stats = json.loads((tmp_path / "overfitting.json").read_text())
    table = pd.read_csv(tmp_path / "sweep.csv").sort_values("sharpe", ascending=False)
    assert stats["best"] == str(table["job"].iloc[0]) == "1"
    assert stats["sharpe_annual"] == pytest.approx(own[1], abs=1e-12)
    assert stats["n_obs"] == 150 and stats["pbo_n_obs"] == 150
    md = (tmp_path / "summary.md").read_text()
    assert "The best job is the first of the table ranked by sharpe" in md and "- best: job 1 " in md
    assert "The best job is the first of the table ranked by sharpe" in (tmp_path / "summary.html").read_text()
    assert "best job 1 (the first above;" in capsys.readouterr().out
