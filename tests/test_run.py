"""End to end: ``python run.py`` as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = ("metrics.json", "equity.csv", "returns.csv", "weights.csv", "orders.csv", "fills.csv",
         "attribution.csv", "sleeves.csv", "execution.csv", "financing.csv", "provenance.json")
pytestmark = pytest.mark.slow


def run(*args, cwd=None, env=None, check=True):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_default_run_writes_a_complete_run_folder(tmp_path):
    proc = run(f"out_dir={tmp_path}")
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("total_return", "cagr", "annual_vol", "sharpe", "sortino", "max_drawdown", "calmar",
                "turnover", "total_costs", "n_trades", "exposure"):
        assert key in metrics, key
    assert metrics["total_costs"] > 0 and metrics["n_trades"] > 0
    equity = pd.read_csv(tmp_path / "equity.csv")
    assert equity["equity"].iloc[-1] == pytest.approx(metrics["final_equity"])
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["seed"] == 7 and len(prov["data"]["sha256"]) == 64
    assert prov["packages"]["numpy"] and "git_commit" in prov["code_version"]
    assert "Sharpe" in proc.stdout and "max drawdown" in proc.stdout


def test_out_dir_holds_everything_the_run_writes(tmp_path):
    """With out_dir set, Hydra's run folder is out_dir: its .hydra/ and run.log land in the run
    folder and nothing appears under the working directory's outputs/."""
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    run("data.start=2018-01-01", "progress=false", f"out_dir={out}", cwd=cwd)
    assert list(cwd.iterdir()) == []
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "run.log", "metrics.json"):
        assert (out / name).is_file(), name


def test_same_config_and_seed_give_byte_identical_files(tmp_path):
    args = ["strategy=momentum", "allocation=inverse_vol", "schedule.rebalance=weekly"]
    run(*args, f"out_dir={tmp_path / 'a'}")
    run(*args, f"out_dir={tmp_path / 'b'}")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_several_strategies_run_as_sleeves(tmp_path):
    run("strategy=[momentum,buy_and_hold]", "portfolio=inverse_vol", "sleeve_caps={buy_and_hold:0.4}",
        f"out_dir={tmp_path}")
    assert pd.read_csv(tmp_path / "sleeves.csv")["weight:buy_and_hold"].max() <= 0.4 + 1e-12
    table = pd.read_csv(tmp_path / "attribution.csv", index_col=0)
    assert {"sleeve:momentum", "sleeve:buy_and_hold"} <= set(table.columns)
    total = table.filter(like="sleeve:").sum(axis=1) + table["commission"] + table["financing"]
    assert (total - table["portfolio"]).abs().max() < 1e-12


def test_every_stage_swaps_from_the_command_line(tmp_path):
    run("data=stocks", "strategy=buy_and_hold", "allocation=inverse_vol", "risk=none",
        "execution=market", "broker=sim", "broker.lot_size=1", "schedule.rebalance=5",
        "schedule.drift=0.02", f"out_dir={tmp_path}")
    fills = pd.read_csv(tmp_path / "fills.csv")
    assert set(fills["symbol"]) <= {"AAPL", "FB", "GOOG", "IBM", "MSFT"}
    assert (fills["quantity"] % 1 == 0).all()


@pytest.mark.parametrize("args, names", [
    (["allocation=inverse_vol", "allocation.lookbak=60"], ["allocation.lookbak", "lookback"]),
    (["allocation=inverse_vol", "+allocation.lookbak=60"], ["allocation.lookbak", "lookback"]),
    (["allocation.lookback=60"], ["allocation.lookback", "nothing can be set here"]),
    (["risk.max_weight=-1"], ["risk.max_weight=-1", "(0, 1]"]),
    (["risk.max_wieght=0.2"], ["risk.max_wieght", "max_weight"]),
    (["allocation=foo"], ["allocation=foo", "equal_weight", "inverse_vol"]),
    (["strategy.momentum.lookback=-5"], ["strategy.momentum.lookback=-5", "[1, inf)"]),
    (["strategy.momentum.lookback=abc"], ["strategy.momentum.lookback"]),
    (["capitl=5"], ["capitl", "capital"]),
    (["capital=-5"], ["capital"]),
    (["schedule.rebalance=fortnightly"], ["schedule.rebalance", "monthly"]),
    (["data.symbols=[AAPL,NOPE]"], ["NOPE", "AAPL"]),
    (["data=csv", "data.path=/nonexistent/prices.csv"], ["/nonexistent/prices.csv"]),
    (["data.start=2022-12-01"], ["warm-up"]),
    (["risk.min_weight=0.3", "risk.max_weight=0.2"], ["risk.min_weight", "risk.max_weight"]),
    (["strategy=[momentum,buy_and_hold]", "sleeve_caps={momentum:1.5}"], ["sleeve_caps.momentum=1.5"]),
])
def test_user_mistakes_give_one_clear_line(tmp_path, args, names):
    proc = run(*args, f"out_dir={tmp_path}", check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robo-trader: "), proc.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("arg, names", [
    ("hparams_search=momentum_optuner", ["hparams_search=momentum_optuner", "momentum_optuna",
                                         "did you mean 'momentum_optuna'?"]),
    ("walkforward=momentum_lookbak", ["walkforward=momentum_lookbak", "momentum_lookback",
                                      "did you mean 'momentum_lookback'?"]),
    ("experiment=long_shot", ["experiment=long_shot", "multi_sleeve", "did you mean 'long_short'?"]),
    ("experiment=foo", ["experiment=foo: no such option; available: long_short, multi_sleeve"]),
])
def test_13_9_a_misspelt_optional_group_is_one_line_not_a_plain_backtest(tmp_path, arg, names):
    proc = run(arg, f"out_dir={tmp_path}", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("robo-trader: config error: ") and proc.stderr.count("\n") == 1
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "metrics.json").exists()


def _one_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robo-trader: "), proc.stderr
    return lines[0]


def test_13_10_a_yaml_syntax_error_in_a_strategy_file_names_file_line_and_column(tmp_path):
    (tmp_path / "conf" / "strategy").mkdir(parents=True)
    broken = tmp_path / "conf" / "strategy" / "mine.yaml"
    broken.write_text("mine:\n  _target_: plugins.strategy.momentum.Momentum\n  lookback: [63\n  top_k: 3\n")
    line = _one_line(run(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "strategy=mine",
                         f"out_dir={tmp_path / 'out'}", check=False))
    assert line == (f"robo-trader: config error: {broken}, line 4, column 8: invalid YAML: expected ',' "
                    f"or ']', but got ':' (while parsing a flow sequence at line 3, column 13); fix the "
                    f"file's syntax there")


def test_13_10_a_misspelt_launcher_key_is_one_line_with_did_you_mean(tmp_path):
    line = _one_line(run("-m", "hydra/launcher=joblib", "hydra.launcher.n_job=2",
                         "strategy.momentum.lookback=60,120", f"hydra.sweep.dir={tmp_path}", check=False))
    assert line.startswith("robo-trader: config error: hydra.launcher.n_job is not a known key; "
                           "allowed here: n_jobs, backend")
    assert line.endswith("did you mean 'n_jobs'?") and "_target_" not in line
    assert not list(tmp_path.glob("*/metrics.json"))


def test_13_10_report_on_a_walk_forward_or_sweep_folder_says_what_it_is(tmp_path):
    wf = tmp_path / "wf"
    run("walkforward=momentum_lookback",
        "walkforward.grid={strategy.momentum.lookback:[63,252],strategy.momentum.top_k:[5]}", f"out_dir={wf}")
    proc = subprocess.run([sys.executable, "-m", "pipeline.report", str(wf)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    line = _one_line(proc)
    assert f"{wf} is a walk-forward folder (28 folds, 2 candidates)" in line
    assert line.endswith("the best with hindsight: python run.py strategy.momentum.lookback=252 "
                         "strategy.momentum.top_k=5")
    assert not (wf / "report.html").exists()
    sweep = tmp_path / "sweep"
    run("-m", "strategy.momentum.lookback=60", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=${hydra.job.num}")
    proc = subprocess.run([sys.executable, "-m", "pipeline.report", str(sweep)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert f"{sweep} is a sweep folder: its page is {sweep / 'summary.html'}" in _one_line(proc)
    job = subprocess.run([sys.executable, "-m", "pipeline.report", str(sweep / "0")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert job.returncode == 0 and job.stdout.strip() == str(sweep / "0" / "report.html"), job.stderr


def test_a_strategy_added_by_yaml_and_target_alone(tmp_path):
    """A new YAML on Hydra's search path, pointing _target_ at a user's own class."""
    (tmp_path / "conf" / "strategy").mkdir(parents=True)
    (tmp_path / "conf" / "strategy" / "fast_momentum.yaml").write_text(
        "fast_momentum:\n  _target_: plugins.strategy.momentum.Momentum\n  lookback: 63\n  top_k: 3\n")
    (tmp_path / "conf" / "strategy" / "mine.yaml").write_text("mine:\n  _target_: my_signals.Contrarian\n")
    (tmp_path / "my_signals.py").write_text(
        "import numpy as np\nfrom pipeline.core.contracts import Strategy\n\n"
        "class Contrarian(Strategy):\n    def __init__(self, lookback: int = 20):\n"
        "        self.lookback = lookback\n    def warmup(self):\n        return self.lookback\n"
        "    def signal(self, data, at):\n"
        "        r = data.close[at] / data.close[at - self.lookback] - 1\n"
        "        return (r < np.nanmedian(r, axis=1, keepdims=True)).astype(float)\n")
    search = f"hydra.searchpath=[file://{tmp_path / 'conf'}]"
    run(search, "strategy=fast_momentum", f"out_dir={tmp_path / 'a'}")
    weights = pd.read_csv(tmp_path / "a" / "weights.csv", index_col=0)
    assert ((weights > 0).sum(axis=1) == 3).all()
    run(search, "strategy=mine", "+strategy.mine.lookback=10", f"out_dir={tmp_path / 'b'}",
        env={"PYTHONPATH": str(tmp_path)})
    assert (tmp_path / "b" / "metrics.json").is_file()
    hint = run(search, "strategy=mine", "strategy.mine.lookback=10", f"out_dir={tmp_path / 'c'}",
               env={"PYTHONPATH": str(tmp_path)}, check=False)
    assert hint.returncode == 2 and "+strategy.mine.lookback=" in hint.stderr


def test_multirun_sweeps_into_its_folder(tmp_path):
    run("-m", "strategy.momentum.lookback=60,120", "allocation=equal_weight,inverse_vol",
        f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.num}")
    done = sorted(p.parent.name for p in tmp_path.glob("*/metrics.json"))
    assert done == ["0", "1", "2", "3"]


def test_listing_plugins():
    proc = subprocess.run([sys.executable, "-m", "pipeline.app.registry"], capture_output=True,
                          text=True, check=True)
    for name in ("momentum", "buy_and_hold", "equal_weight", "inverse_vol", "max_weight",
                 "max_gross_leverage", "market", "sim", "sp500", "csv", "synthetic"):
        assert name in proc.stdout
