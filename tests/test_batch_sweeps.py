"""hydra/launcher=batch (issue 17): batched jobs, the sweep store, its summary, engines, search,
and bad input (failing jobs, killed workers, interrupted sweeps)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.research import store
from pipeline.research.overfitting import block_sums, own_moments, pbo, pbo_from_sums, summary
from pipeline.results.metrics import periods_per_year

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
GRID = ["strategy.momentum.lookback=60,-5,120", "allocation=equal_weight,inverse_vol", "data.start=2016-01-01",
        "sweep.keep=2", "progress=false"]
BATCH = ["-m", "hydra/launcher=batch", "hydra.launcher.workers=2", "hydra.launcher.batch_size=2"]
RECORDED = ("metrics.json", "equity.csv", "returns.csv", "weights.csv", "orders.csv", "fills.csv", "execution.csv",
            "attribution.csv", "sleeves.csv", "financing.csv", "provenance.json", "report.html")


def run(*args, cwd, check=True, env=None, module=None):
    cmd = [sys.executable, *(["-m", module] if module else [str(ROOT / "run.py")]), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "sweep"
    run(*BATCH, *GRID, f"hydra.sweep.dir={out}", cwd=out.parent)
    return out


@pytest.fixture(scope="module")
def alone(tmp_path_factory, sweep):
    """Job number -> the folder of the same job run alone with python run.py (made on demand)."""
    held, folders = store.held_jobs(sweep), {}

    def get(job):
        if job not in folders:
            folder = tmp_path_factory.mktemp(f"alone{job}")
            folders[job] = (folder, run(*held[job], f"out_dir={folder}", cwd=folder, check=False))
        return folders[job]
    return get


def table(sweep):
    return store.read_table(sweep).set_index("job")


def test_17_1_a_batched_job_is_byte_identical_to_the_job_run_alone(sweep, alone):
    rows = pd.read_parquet(sweep / "store").set_index("job")
    for job in (1, 4):  # two group choices (inverse_vol, equal_weight), two lookbacks
        folder, proc = alone(job)
        assert proc.returncode == 0, proc.stderr
        assert rows.loc[job, "metrics"] == (folder / "metrics.json").read_text()
        plain = pd.read_csv(folder / "returns.csv", index_col=0, parse_dates=True)["return"]
        # the store holds the returns in float32 and their moments exactly
        mine = np.asarray(rows.loc[job, "returns"])
        assert mine.dtype == np.float32 and mine.tobytes() == plain.to_numpy().astype(np.float32).tobytes()
        sharpe, skew, kurtosis, n = own_moments(plain.to_numpy())
        assert (rows.loc[job, "sharpe"], rows.loc[job, "skew"], rows.loc[job, "kurtosis"]) == (sharpe, skew, kurtosis)
        times = store.read_calendar(sweep, rows.loc[job, "calendar"])
        first, n = int(rows.loc[job, "first"]), int(rows.loc[job, "n"])
        assert len(plain) == n and (times[first:first + n] == plain.index).all()


def test_17_1_a_failing_job_fails_with_the_same_line_as_alone_and_the_others_go_on(sweep, alone):
    rows = table(sweep)
    assert list(rows["status"]) == ["completed", "completed", "failed", "failed", "completed", "completed"]
    _, proc = alone(2)
    assert proc.returncode == 2
    line = "strategy.momentum.lookback=-5 is not allowed: expected an int (bars) or a duration"
    assert line in proc.stderr and line in rows.loc[2, "error"]
    assert line in (sweep / "2" / "error.txt").read_text()


def test_17_2_the_store_is_one_columnar_read_and_only_the_best_keep_folders(sweep, alone):
    frame = pd.read_parquet(sweep / "store", columns=["job", "status", "objective"])
    assert sorted(frame["job"]) == list(range(6))
    done = table(sweep).query("status == 'completed'")
    best = list(done.sort_values("objective", ascending=False).index[:2])
    for job in range(6):
        assert (sweep / str(job) / "report.html").is_file() == (job in best)
    job = best[0]
    folder, _ = alone(job)
    for name in RECORDED:
        assert (sweep / str(job) / name).read_bytes() == (folder / name).read_bytes(), name
    size = sum(p.stat().st_size for p in (sweep / "store").glob("*.parquet"))
    assert size / 6 < 50_000


def test_17_2_rerun_rebuilds_any_job_byte_identical_to_a_plain_run(sweep, alone):
    done = table(sweep).query("status == 'completed'")
    job = int(done.sort_values("objective").index[0])  # the worst: not kept
    assert not (sweep / str(job) / "metrics.json").exists()
    proc = run("rerun", str(sweep), str(job), cwd=sweep.parent, module="pipeline.app.batch")
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rerun": str(sweep / str(job))}
    folder, _ = alone(job)
    for name in RECORDED:
        assert (sweep / str(job) / name).read_bytes() == (folder / name).read_bytes(), name
    bad = run("rerun", str(sweep), "99", cwd=sweep.parent, module="pipeline.app.batch", check=False)
    last = bad.stderr.strip().splitlines()[-1]
    assert bad.returncode == 2 and last.startswith("robo-trader: config error: job 99 is not in the store")


DSR_KEYS = ("best", "n_obs", "sharpe", "sharpe_annual", "dsr", "sr0", "var_sharpe", "skew", "kurtosis",
            "dsr_reason", "n_trials")


def test_17_3_summary_from_the_store_equals_the_statistics_on_the_whole_matrix(sweep, alone):
    sweep_csv = pd.read_csv(sweep / "sweep.csv")
    assert len(sweep_csv) == 6 and (sweep_csv["status"] == "completed").sum() == 4
    stats = json.loads((sweep / "overfitting.json").read_text())
    rows = pd.read_parquet(sweep / "store").query("status == 'completed'")
    stored, exact = {}, {}
    for job, cal, first, n, r in zip(rows["job"], rows["calendar"], rows["first"], rows["n"], rows["returns"]):
        times = store.read_calendar(sweep, cal)[int(first):int(first) + int(n)]
        stored[str(job)] = pd.Series(np.asarray(r, dtype=np.float64), index=times)
        folder, _ = alone(int(job))
        exact[str(job)] = pd.read_csv(folder / "returns.csv", index_col=0, parse_dates=True)["return"]
    # the DSR from the exact returns, as a plain sweep computes it; PBO from the store's float32
    for matrix, keys in ((pd.DataFrame(exact), DSR_KEYS), (pd.DataFrame(stored), [k for k in stats if k not in DSR_KEYS])):
        expected = summary(matrix.to_numpy(), list(matrix.columns), best=stats["best"],
                           periods_per_year=periods_per_year(matrix.index))
        assert_same({k: stats[k] for k in keys}, {k: expected[k] for k in keys})
    # one job's returns at a time gives the same figures as all of them at once (up to the
    # order of floating-point sums)
    assert_same(store.overfitting(sweep, list(stored), chunk=1), store.overfitting(sweep, list(stored)))


def assert_same(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15, nan_ok=True), key
        else:
            assert got[key] == value, key


def test_17_3_pbo_from_block_sums_equals_cscv_on_the_matrix():
    rng = np.random.default_rng(17)
    x = rng.normal(0.0005, 0.01, size=(160, 40))
    x[:, 3] += 0.02  # one trial far better than the rest
    whole = pbo(x, 8)
    sum1, sum2 = block_sums(x, 8)
    parts = pbo_from_sums(sum1, sum2, 20)
    assert parts.pbo == whole.pbo and np.array_equal(parts.chosen, whole.chosen)
    assert np.allclose(parts.logits, whole.logits)
    # by hand: with one dominant trial, CSCV picks it in every combination and PBO is 0
    assert whole.pbo == 0.0 and (whole.chosen == 3).all()


def test_17_4_a_real_dask_cluster_of_two_workers_runs_the_sweep(sweep, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        run(*BATCH, "hydra.launcher.engine=dask", f"hydra.launcher.address={cluster.scheduler_address}",
            *GRID, f"hydra.sweep.dir={tmp_path / 'dask'}", cwd=tmp_path)
    theirs, ours = table(tmp_path / "dask"), table(sweep)
    assert theirs["metrics"].equals(ours["metrics"]) and theirs["status"].equals(ours["status"])


def test_17_4_slurm_job_arrays_through_submitit_local_executor(sweep, tmp_path):
    pytest.importorskip("submitit")
    run(*BATCH, "hydra.launcher.engine=slurm", "hydra.launcher.submitit.cluster=local", *GRID,
        f"hydra.sweep.dir={tmp_path / 'slurm'}", cwd=tmp_path)
    assert table(tmp_path / "slurm")["metrics"].equals(table(sweep)["metrics"])
    assert list((tmp_path / "slurm" / ".submitit").iterdir())  # submitit's job folders


@pytest.mark.skipif(os.environ.get("ROBO_TEST_RAY_ENGINE") != "1",
                    reason="set ROBO_TEST_RAY_ENGINE=1: a local Ray takes 25-35 s to start here, too much for CI")
def test_17_4_ray_engine_runs_the_sweep(sweep, tmp_path):
    pytest.importorskip("ray")
    run(*BATCH, "hydra.launcher.engine=ray", *GRID, f"hydra.sweep.dir={tmp_path / 'ray'}", cwd=tmp_path)
    assert table(tmp_path / "ray")["metrics"].equals(table(sweep)["metrics"])


def test_17_5_optuna_searches_through_the_batched_path_into_the_store(tmp_path):
    pytest.importorskip("optuna", minversion="3")
    run("hparams_search=momentum_optuna", "hydra.sweeper.n_trials=4", "hydra.launcher.workers=2",
        "data.start=2016-01-01", "sweep.keep=1", f"hydra.sweep.dir={tmp_path}", cwd=tmp_path)
    import yaml

    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    rows = table(tmp_path)
    assert len(rows) == 4 and (rows["status"] == "completed").all()
    assert best["best_value"] == pytest.approx(rows["objective"].max())
    assert json.loads((tmp_path / "overfitting.json").read_text())["n_trials"] == 4
    sweeper = yaml.safe_load((tmp_path / "multirun.yaml").read_text())["hydra"]["sweeper"]
    assert sweeper["_target_"] == "hydra_plugins.robo_trader_batch.BatchSweeper"  # not hydra-optuna-sweeper


KILLER = "strategy.momentum._target_=tests.batch_helpers.KillsItsWorker"


def test_17_bad_input_a_killed_worker_is_retried_once_then_its_jobs_fail(tmp_path):
    run(*BATCH, "hydra.launcher.batch_size=1", KILLER, "strategy.momentum.lookback=60,120,180",
        "data.start=2016-01-01", "sweep.keep=0", f"hydra.sweep.dir={tmp_path / 's'}", cwd=tmp_path,
        env={"ROBO_TEST_KILL_LOOKBACK": "120"})
    rows = table(tmp_path / "s")
    assert list(rows["status"]) == ["completed", "failed", "completed"]
    assert "lost twice" in rows.loc[1, "error"] and "terminated abruptly" in rows.loc[1, "error"]


def test_17_bad_input_a_worker_killed_once_is_retried_and_the_sweep_completes(tmp_path):
    run(*BATCH, "hydra.launcher.batch_size=1", KILLER, "strategy.momentum.lookback=60,120,180",
        "data.start=2016-01-01", "sweep.keep=0", f"hydra.sweep.dir={tmp_path / 's'}", cwd=tmp_path,
        env={"ROBO_TEST_KILL_LOOKBACK": "120", "ROBO_TEST_KILL_ONCE": str(tmp_path / "killed")})
    assert (tmp_path / "killed").exists()
    assert (table(tmp_path / "s")["status"] == "completed").all()


def test_17_bad_input_a_sigkilled_sweep_resumes_skipping_the_jobs_stored(tmp_path):
    out = tmp_path / "s"
    args = [*BATCH, "hydra.launcher.workers=1", "hydra.launcher.batch_size=1",
            "strategy.momentum.lookback=40,60,80,100,120,140", "data.start=2016-01-01", "sweep.keep=0",
            f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"})
    try:
        deadline = time.monotonic() + 300
        while len(store.batch_files(out)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, as a SIGKILL of the sweep
        proc.wait()
    before = {p.name: p.read_bytes() for p in store.batch_files(out)}
    assert 2 <= len(before) < 6
    again = run(*args, cwd=tmp_path, check=False)
    last = again.stderr.strip().splitlines()[-1]  # one line (after any warning about other plugins)
    assert again.returncode == 2 and last.startswith("robo-trader: config error: ") and "pass sweep.resume=true" in last
    run(*args, "sweep.resume=true", cwd=tmp_path)
    assert all((out / "store" / name).read_bytes() == data for name, data in before.items())
    assert len(store.batch_files(out)) == 6  # the jobs stored were not run again
    rows = table(out)
    assert list(rows.index) == list(range(6)) and (rows["status"] == "completed").all()


def test_17_5_the_counter_knows_the_batch_grid_and_the_search_in_advance():
    from omegaconf import OmegaConf

    from pipeline.research.sweep import planned_jobs

    target = "hydra_plugins.robo_trader_batch.BatchSweeper"
    grid = OmegaConf.create({"hydra": {"sweeper": {"_target_": target, "params": None, "n_trials": None},
                                       "overrides": {"task": ["a=1,2,3", "b=x,y", "c=5"]}}})
    search = OmegaConf.create({"hydra": {"sweeper": {"_target_": target, "n_trials": 20}, "overrides": {"task": []}}})
    assert planned_jobs(grid) == 6 and planned_jobs(search) == 20
