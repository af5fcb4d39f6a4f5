"""Every command the README shows runs here, or is mapped to the test that runs it.

A README command is a line of a ```bash block, an indented example (``$ command`` followed by
the output it prints, or a bare indented ``python ...`` line) or an inline ``python ...``,
``pytest``, ``bash ...`` or ``pip ...`` span. Each is a key of COMMANDS, by its exact text:

- ``Run(check, args=...)``: run with cwd=tmp_path, as written or as the stated rewrite
  ``args``; run.py gets ``out_dir=`` (a multirun ``hydra.sweep.dir=``) under tmp_path. ``check``
  reads what it printed and wrote; a ``$`` example must print the output the README shows.
- ``Mapped(test, rewrite)``: a command that cannot run here as written (it installs, serves
  until stopped, or waits for a clock): the named test runs it, rewritten as ``rewrite`` says.

A README command that is not a key fails ``test_13_8_every_readme_command_is_run_or_mapped``:
whoever adds a command to the README adds its line here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:(?:python|bash|pip) [^`]+|pytest(?: [^`]+)?))`")
BARE = re.compile(r"(?:[A-Z_]+=\S+ )*(?:python|bash|pip|pytest)\b")


def _uncomment(line: str) -> str:
    return re.sub(r"\s+#(\s.*)?$", "", line.strip())


def readme_commands(text: str) -> dict[str, list[str]]:
    """command -> the output lines the README shows under it (none for most)."""
    out: dict[str, list[str]] = {}
    fence, prompt = None, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence, prompt = (None if fence is not None else stripped[3:].strip()), None
            continue
        if fence is not None:
            if fence in ("bash", "sh", "console") and stripped and not stripped.startswith("#"):
                out.setdefault(_uncomment(stripped), [])
            continue
        if line.startswith("    ") and stripped:
            if stripped.startswith("$ "):
                prompt = _uncomment(stripped[2:])
                out.setdefault(prompt, [])
            elif prompt is not None:
                out[prompt].append(stripped)
            elif BARE.match(stripped):
                out.setdefault(_uncomment(stripped), [])
            else:  # a list item's continuation line, indented like code
                for m in INLINE.finditer(line):
                    out.setdefault(m.group(1), [])
            continue
        prompt = None
        for m in INLINE.finditer(line):
            out.setdefault(m.group(1), [])
    return out


@dataclasses.dataclass(frozen=True)
class Result:
    procs: list[subprocess.CompletedProcess]
    tmp: Path
    shown: list[str]  # the output the README prints under the command

    @property
    def proc(self) -> subprocess.CompletedProcess:
        return self.procs[-1]

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    @property
    def sweep(self) -> Path:
        return self.tmp / "sweep"


@dataclasses.dataclass(frozen=True)
class Run:
    check: Callable[[Result], None]
    args: tuple[str, ...] = ()   # the commands run instead, when the README's cannot run as written
    gate: str | None = None      # an environment variable that must be 1 (long benchmark runs)


@dataclasses.dataclass(frozen=True)
class Mapped:
    test: str       # tests/<file>.py::<test>, or .ci/run (CI runs the command verbatim)
    rewrite: str


# ---------------------------------------------------------------------------------------------
# checks


def _ok(r: Result) -> None:
    for proc in r.procs:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _metrics(r: Result) -> dict:
    _ok(r)
    return json.loads((r.out / "metrics.json").read_text())


def _held(r: Result) -> pd.DataFrame:
    return pd.read_csv(r.out / "weights.csv", index_col=0).select_dtypes("number")


def _sweep_completed(n: int) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        _ok(r)
        table = pd.read_csv(r.sweep / "sweep.csv")
        assert len(table) == n and (table["status"] == "completed").all(), table[["status", "error"]]
    return check


def shows_its_output(r: Result) -> None:
    """A ``$`` example exits 2 and prints exactly the lines the README shows under it."""
    assert r.shown, "a $ example shows its output"
    assert r.proc.returncode == 2, r.proc.stdout + r.proc.stderr
    assert r.proc.stderr.splitlines() == r.shown
    assert not (r.out / "metrics.json").exists()


def default_run(r: Result) -> None:
    metrics = _metrics(r)
    equity = pd.read_csv(r.out / "equity.csv", index_col=0)
    # the first decision closes the warm-up on 1990-12-31; it trades in 1991's first session
    assert equity.index[0][:10] == "1990-12-31" and equity.index[1][:4] == "1991"
    assert equity.index[-1][:4] == "2022"
    held = _held(r)
    assert ((held > 0).sum(axis=1) == 5).all() and held.shape[1] == 20  # top 5 of 20, equal weight
    assert ((held[held > 0].max(axis=1) - held[held > 0].min(axis=1)) < 1e-12).all()
    assert metrics["total_costs"] > 0 and metrics["n_rebalances"] == len(held)
    assert "Sharpe" in r.proc.stdout


def weekly_inverse_vol(r: Result) -> None:
    metrics = _metrics(r)
    held = _held(r)
    assert metrics["n_rebalances"] > 1500  # weekly over 31 years, not monthly
    spread = held[held > 0].max(axis=1) - held[held > 0].min(axis=1)
    assert (spread > 1e-6).mean() > 0.9  # weighed by volatility, not equally


def bought_once(r: Result) -> None:
    assert _metrics(r)["n_rebalances"] == 1


def top_three(r: Result) -> None:
    _ok(r)
    assert ((_held(r) > 0).sum(axis=1) == 3).all()


def whole_shares_of_stocks(r: Result) -> None:
    _ok(r)
    fills = pd.read_csv(r.out / "fills.csv")
    assert set(fills["symbol"]) <= {"AAPL", "FB", "GOOG", "IBM", "MSFT"}
    assert len(fills) > 0 and (fills["quantity"] % 1 == 0).all()


def trades_on_drift(r: Result) -> None:
    metrics = _metrics(r)
    bars = len(pd.read_csv(r.out / "equity.csv"))
    assert 1 < metrics["n_rebalances"] < bars / 2  # checked daily, traded only when off target


def lists_plugins_and_options(r: Result) -> None:
    _ok(r)
    for row in ("strategy", "momentum", "risk_parity", "max_weight", "vwap", "sim", "sp500"):
        assert row in r.proc.stdout
    assert "experiment=  long_short, multi_sleeve, risk_parity_vwap" in r.proc.stdout


def walk_forward(r: Result) -> None:
    metrics = _metrics(r)
    assert metrics["candidates"] == 12 and metrics["folds"] > 20  # the preset's 4 x 3 grid
    assert "out of sample (stitched)" in r.proc.stdout and (r.out / "walkforward.csv").is_file()


def kill_switch_on_then_off(r: Result) -> None:
    _ok(r)
    on, status, off = (p.stdout.strip() for p in r.procs)
    assert on == status == "kill switch: ENGAGED: engaged by hand (state/paper)"
    assert off == "kill switch: released (state/paper)"
    assert (r.tmp / "state" / "paper" / "journal.sqlite").is_file()
    assert not (r.tmp / "state" / "paper" / "KILL").exists()


def help_lists_groups(r: Result) -> None:
    _ok(r)
    for text in ("Config groups", "allocation", "execution", "experiment", "risk_parity_vwap",
                 "Top-level keys", "Examples"):
        assert text in r.proc.stdout, text


def forest_of_depth_three(r: Result) -> None:
    metrics = _metrics(r)
    resolved = json.loads((r.out / "provenance.json").read_text())["config"]
    assert resolved["strategy"]["ml_forest"]["model"]["max_depth"] == 3 and metrics["n_trades"] > 0


def alpha_on_ohlcv(r: Result) -> None:
    _ok(r)
    resolved = json.loads((r.out / "provenance.json").read_text())["config"]
    assert resolved["strategy"]["alpha101_101"]["score"] == "(close - open) / ((high - low) + 0.001)"
    held = _held(r)
    assert (held > 0).to_numpy().any() and (held < 0).to_numpy().any()  # long the top, short the bottom


def long_short_preset(r: Result) -> None:
    _ok(r)
    held = _held(r)
    assert (held < 0).any(axis=None) and (held > 0).any(axis=None)


def benchmark_table(r: Result) -> None:
    _ok(r)
    assert len(r.proc.stdout.splitlines()) >= 3


def report_speed(r: Result) -> None:
    _ok(r)
    assert re.search(r"report.build, default run: best \d+\.\d{3} s", r.proc.stdout), r.proc.stdout


def order_book_run(r: Result) -> None:
    metrics = _metrics(r)
    assert "order-book run" in r.proc.stdout and "spread capture" in r.proc.stdout, r.proc.stdout
    assert metrics["events"] > 3000 and metrics["orders"] > 0 and (r.out / "report.html").is_file()


def collects_the_suite(r: Result) -> None:
    _ok(r)
    assert re.search(r"^(\d+) tests collected", r.proc.stdout, re.M), r.proc.stdout[-500:]


RAY = "tests/test_ray_launcher.py::test_ray_launcher_sweep_in_its_own_environment"
RAY_WHY = "ROBO_TEST_RAY=1: builds Ray's own venv with benchmarks/ray_env.sh and runs a 2-job sweep"
GATEWAY = "tests/live/test_paper.py::test_the_gateway_runs_from_the_command_line_for_a_dry_run"
BENCH = "ROBO_TEST_BENCH"

COMMANDS: dict[str, Run | Mapped] = {
    'pip install -e ".[test]" && python run.py': Mapped(".ci/run", "verbatim, on a clean clone"),
    "pytest": Run(collects_the_suite, ("python -m pytest --collect-only -q -p no:cacheprovider",)),
    "python run.py": Run(default_run),
    "python run.py allocation=inverse_vol schedule.rebalance=weekly": Run(weekly_inverse_vol),
    "python run.py strategy=buy_and_hold schedule.rebalance=once": Run(bought_once),
    "python run.py strategy.momentum.lookback=126 strategy.momentum.top_k=3": Run(top_three),
    "python run.py data=stocks broker.lot_size=1": Run(whole_shares_of_stocks),
    "python run.py schedule.rebalance=daily schedule.drift=0.05": Run(trades_on_drift),
    "python run.py -m strategy.momentum.lookback=63,126,252 allocation=equal_weight,inverse_vol":
        Run(_sweep_completed(6)),
    "python -m pipeline.app.registry": Run(lists_plugins_and_options),
    "python run.py allocation=inverse_vol allocation.lookbak=60": Run(shows_its_output),
    "python run.py risk.max_weight=-1": Run(shows_its_output),
    "python run.py experiment=long_short": Run(long_short_preset),
    "python run.py -m strategy.momentum.lookback=60,120,240 allocation=equal_weight,risk_parity":
        Run(_sweep_completed(6)),
    "python run.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 ...": Mapped(
        "tests/test_sweeps.py::test_joblib_launcher_loads_data_once_per_worker",
        "... = strategy.momentum.lookback=60,120,180 allocation=equal_weight,inverse_vol"),
    "python run.py -m hydra/launcher=submitit_local ...": Mapped(
        "tests/test_sweeps.py::test_submitit_local_launcher",
        "... = hydra.launcher.timeout_min=10 strategy.momentum.lookback=60,120"),
    "python run.py hparams_search=momentum_optuna": Mapped(
        "tests/test_sweeps.py::test_optuna_preset_maximises_the_objective",
        "hydra.sweeper.n_trials=4 instead of the preset's 20"),
    "python run.py walkforward=momentum_lookback": Run(walk_forward),
    "python run.py data=csv data.path=minutes.csv strategy=buy_and_hold execution=vwap schedule.rebalance=daily":
        Mapped("tests/pipeline/backtest/test_intraday_bars.py::test_19_1_run_py_on_a_csv_of_minute_bars",
               "minutes.csv: seeded 1-minute XNYS bars the test writes; allocation=equal_weight"),
    "python run.py -m hydra/launcher=batch strategy.momentum.lookback=60,120,240 allocation=equal_weight,risk_parity":
        Mapped("tests/test_batch_sweeps.py::test_17_1_a_batched_job_is_byte_identical_to_the_job_run_alone",
               "lookback=60,-5,120, allocation=equal_weight,inverse_vol, data.start=2016-01-01"),
    "python run.py -m hydra/launcher=batch hydra.launcher.engine=dask hydra.launcher.address=tcp://127.0.0.1:8786 ...":
        Mapped("tests/test_batch_sweeps.py::test_17_4_a_real_dask_cluster_of_two_workers_runs_the_sweep",
               "the address of a LocalCluster of 2 workers the test starts; ... = the same small grid"),
    "python -m pipeline.app.batch rerun outputs/2026-01-01/12-00-00 3": Mapped(
        "tests/test_batch_sweeps.py::test_17_2_rerun_rebuilds_any_job_byte_identical_to_a_plain_run",
        "the test's sweep folder and its worst job"),
    'pip install -e ".[ray]"': Mapped(RAY, RAY_WHY),
    "python run.py -m hydra/launcher=ray +hydra.launcher.ray.init.num_cpus=2 strategy.momentum.lookback=60,120":
        Mapped(RAY, RAY_WHY),
    "bash benchmarks/ray_env.sh": Mapped(RAY, RAY_WHY),
    "ROBO_TEST_RAY=1 pytest tests/test_ray_launcher.py": Mapped(RAY, RAY_WHY),
    "python -m plugins.broker.ib.fake_gateway --port 4002": Mapped(
        GATEWAY, "a free port for 4002; the gateway is stopped by SIGINT at the end"),
    "python run.py mode=paper broker=ib data=ib broker.port=4002 mode.run_once=true": Mapped(
        GATEWAY, "the fake gateway's free port for 4002, mode.state_dir and out_dir under tmp_path"),
    "python run.py mode=paper broker=ib data=ib mode.at=09:35": Mapped(
        "tests/live/test_paper.py::test_scheduled_ticks_every_n_seconds",
        "mode.every_seconds=1 mode.max_ticks=2 against the fake gateway instead of waiting for 09:35"),
    "python -m pipeline.live.killswitch on|off": Run(kill_switch_on_then_off, (
        "python -m pipeline.live.killswitch on", "python -m pipeline.live.killswitch status",
        "python -m pipeline.live.killswitch off")),
    "python run.py --help": Run(help_lists_groups),
    "pip install .": Mapped("tests/test_install.py::test_18_2_robo_trader_backtests_from_any_folder",
                            "the wheel pip builds from a copy of the tree, installed with --no-deps into a fresh "
                            "venv outside the checkout (its dependencies from this Python's site-packages)"),
    "robo-trader allocation=risk_parity": Mapped(
        "tests/test_install.py::test_18_2_robo_trader_backtests_from_any_folder",
        "the installed script, from a folder outside the checkout, with data.start=2018-01-01"),
    "robo-trader plugins": Mapped("tests/test_install.py::test_18_2_subcommands_and_help_read_the_installed_configs",
                                  "the installed script, from a folder outside the checkout"),
    "python -m pipeline.dashboard replay outputs/<date>/<time> --token secret": Mapped(
        "tests/report/test_dashboard.py::test_replay_command_line",
        "a finished run folder; --port 0 --speed 0 --wait 0 --exit-when-done so that it stops"),
    "python run.py strategy=ml_forest strategy.ml_forest.model.max_depth=3": Run(forest_of_depth_three, (
        # ten years of training on 32 years of data takes minutes: two years on fifteen
        "python run.py strategy=ml_forest strategy.ml_forest.model.max_depth=3 data.start=2008-01-01 "
        "strategy.ml_forest.train_window=504",)),
    "python run.py data=stocks strategy=alpha101_101": Run(alpha_on_ohlcv),
    "python run.py strategy=contrarian": Mapped(
        "tests/test_entry_points.py::test_installed_plugin_runs_by_name_without_yaml",
        "the plugin package pip-installed into a private --target folder on PYTHONPATH"),
    "python benchmarks/bench_pipeline.py": Run(benchmark_table, gate=BENCH),
    "python benchmarks/bench_allocation.py": Run(benchmark_table, ("python benchmarks/bench_allocation.py --quick",),
                                                 gate=BENCH),
    "python benchmarks/bench_execution.py": Run(benchmark_table, ("python benchmarks/bench_execution.py --repeat 1",),
                                                gate=BENCH),
    "python benchmarks/bench_strategies.py": Run(benchmark_table, gate=BENCH),
    "python benchmarks/bench_sweep.py": Run(benchmark_table, gate=BENCH),
    "python benchmarks/bench_report.py": Run(report_speed, gate=BENCH),
    "python benchmarks/bench_live.py": Run(benchmark_table, gate=BENCH),
    "python benchmarks/bench_exits.py": Run(benchmark_table, ("python benchmarks/bench_exits.py --repeat 1",),
                                            gate=BENCH),
    "python run.py 'exits=[stop_loss,take_profit]' exits.stop_loss.pct=0.08": Mapped(
        "tests/pipeline/results/test_exits.py::test_16_3_order_type_trigger_and_reason_in_every_table",
        "in-process runs with a list of exit rules and exits.stop_loss.pct set, on data.start=2012-01-01 "
        "and on data=stocks"),
    "python benchmarks/bench_lob.py": Run(benchmark_table, ("python benchmarks/bench_lob.py --quick",), gate=BENCH),
    "python run.py data=lob_synthetic strategy=market_maker": Run(order_book_run, (
        "python run.py data=lob_synthetic strategy=market_maker data.n_events=3000",)),
    "python run.py data=lob_synthetic strategy=microstructure broker=lob broker.queue=power_prob": Run(order_book_run, (
        "python run.py data=lob_synthetic strategy=microstructure broker=lob broker.queue=power_prob data.n_events=3000",)),
}


# ---------------------------------------------------------------------------------------------
# running a command in tmp_path


def _argv(command: str, tmp: Path) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "python", f"only python commands run here: {command}"
    argv = [sys.executable, *words[1:]]
    if argv[1] == "-m" and argv[2] == "pytest":
        return argv
    if argv[1] != "-m":
        argv[1] = str(ROOT / argv[1])
    if argv[1] == str(ROOT / "run.py") and "--help" not in argv:
        argv.append(f"hydra.sweep.dir={tmp / 'sweep'}" if "-m" in argv else f"out_dir={tmp / 'out'}")
    return argv


def run_readme_command(command: str, spec: Run, tmp: Path, shown: list[str]) -> Result:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    procs = []
    for args in spec.args or (command,):
        pytest_itself = shlex.split(args)[1:3] == ["-m", "pytest"]
        procs.append(subprocess.run(_argv(args, tmp), cwd=ROOT if pytest_itself else tmp, env=env,
                                    capture_output=True, text=True, timeout=1200))
    return Result(procs, tmp, shown)


SHOWN = readme_commands(README.read_text())


def _params():
    for command, spec in COMMANDS.items():
        if isinstance(spec, Run):
            marks = [pytest.mark.slow]
            if spec.gate:
                marks.append(pytest.mark.skipif(os.environ.get(spec.gate) != "1",
                                                reason=f"set {spec.gate}=1 to run the benchmark"))
            yield pytest.param(command, spec, marks=marks, id=command[:80])


# ---------------------------------------------------------------------------------------------
# the tests


def test_13_8_every_readme_command_is_run_or_mapped():
    missing = [c for c in SHOWN if c not in COMMANDS]
    assert not missing, f"README commands with no Run or Mapped entry in tests/test_readme.py: {missing}"
    stale = [c for c in COMMANDS if c not in SHOWN]
    assert not stale, f"COMMANDS entries the README no longer shows (update or remove them): {stale}"


def test_readme_mapped_commands_name_tests_that_exist():
    for command, spec in COMMANDS.items():
        if not isinstance(spec, Mapped):
            continue
        assert spec.rewrite, command
        path, _, name = spec.test.partition("::")
        text = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", text, re.M), (command, spec.test)
        else:  # CI's script runs the command as it is written
            assert command in text.splitlines(), (command, spec.test)


def test_readme_extraction_finds_each_kind_of_command():
    sample = ("```bash\npython a.py x=1   # a comment\n```\n\n    $ python b.py\n    it printed this\n\n"
              "    python c.py --flag\n\nsee `python d.py y=2` and `pytest`.\n```yaml\npython: no\n```\n")
    assert readme_commands(sample) == {"python a.py x=1": [], "python b.py": ["it printed this"],
                                       "python c.py --flag": [], "python d.py y=2": [], "pytest": []}


@pytest.mark.parametrize("command, spec", list(_params()))
def test_13_8_readme_command_runs_as_shown(command, spec, tmp_path):
    spec.check(run_readme_command(command, spec, tmp_path, SHOWN.get(command, [])))


def test_13_8_killswitch_defaults_to_the_state_dir_mode_paper_uses(tmp_path, monkeypatch, capsys):
    from hydra import compose, initialize_config_dir

    from pipeline.app import config
    from pipeline.live.killswitch import default_state_dir, main

    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for mode in ("paper", "live"):
            cfg = compose(config_name="config", overrides=[f"mode={mode}"])
            assert default_state_dir(mode) == cfg.mode.state_dir
    monkeypatch.chdir(tmp_path)
    assert main(["on", "--reason", "by a test"]) == 0
    assert (tmp_path / "state" / "paper" / "KILL").read_text() == "by a test\n"
    assert main(["status", "--mode", "live"]) == 0 and main(["off"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "kill switch: ENGAGED: by a test (state/paper)", "kill switch: released (state/live)",
        "kill switch: released (state/paper)"]
