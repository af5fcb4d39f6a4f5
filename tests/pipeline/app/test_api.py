"""Issue 18.3 and "Bad input": the Python API (``pipeline.app.api``) is ``python run.py`` in
memory: the same config, the same runner, the recorder's tables on a tz-aware DatetimeIndex;
``save`` writes the run folder run.py writes, byte for byte; mistakes raise the command line's
one-line errors as ConfigError / DataError, never SystemExit."""

import filecmp
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.app.api import Result, backtest, sweep
from pipeline.core.errors import ConfigError, DataError, UserError

ROOT = Path(__file__).resolve().parents[3]
ARGS = ("allocation=risk_parity", "execution=vwap", "data.start=2018-01-01")
TABLES = ("equity", "returns", "weights", "positions", "shares", "orders", "fills", "execution",
          "attribution", "sleeves", "financing")


def run_py(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, "progress=false"], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same run from the API and from run.py."""
    folder = tmp_path_factory.mktemp("run_py")
    run_py(*ARGS, f"out_dir={folder}", f"hydra.run.dir={folder}", cwd=folder.parent)
    return backtest(*ARGS), folder


def test_18_3_backtest_composes_with_no_hidden_registration_and_writes_nothing(tmp_path):
    # a fresh interpreter, as a notebook starts: no register() call, no file written anywhere here
    code = ("from pipeline.app.api import backtest; r = backtest('strategy=buy_and_hold', "
            "'data.start=2020-01-01'); print(r.metrics['final_equity'], type(r.equity.index).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    final, kind = proc.stdout.split()
    assert float(final) > 0 and kind == "DatetimeIndex"
    assert list(tmp_path.iterdir()) == []


def test_18_3_frames_are_the_run_folders_tables_on_a_tz_aware_datetimeindex(pair):
    result, folder = pair
    assert isinstance(result, Result)
    for name in TABLES:
        frame = getattr(result, name)
        assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "America/New_York", name
        written = pd.read_csv(folder / f"{name}.csv")
        key = written.columns[0] if name not in ("orders", "fills", "execution") else {
            "orders": "decision_time", "fills": "time", "execution": "session"}[name]
        stamps = pd.DatetimeIndex(pd.to_datetime(written.pop(key), utc=True))
        assert (stamps == frame.index).all(), name
        pd.testing.assert_frame_equal(written, frame.reset_index(drop=True), check_dtype=False, obj=name)
    on_file = json.loads((folder / "metrics.json").read_text())
    assert on_file["sharpe"] == result.metrics["sharpe"] and on_file["final_equity"] == result.metrics["final_equity"]
    assert result.config.allocation._target_.endswith("RiskParity")


def test_18_3_save_writes_the_files_run_py_writes_byte_for_byte(pair, tmp_path):
    result, folder = pair
    out = result.save(tmp_path / "saved")
    mine = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    # Hydra's own hydra.yaml, its log and the sweep callback's status.json are Hydra's, not the run's
    assert set(theirs) - set(mine) == {".hydra/hydra.yaml", "run.log", "status.json"}
    for name in mine:
        if name.startswith(".hydra/"):
            continue
        assert filecmp.cmp(out / name, folder / name, shallow=False), name
    drop = re.compile(r"^(out_dir: .*|- out_dir=.*|- hydra\.run\.dir=.*|- progress=false)\n", re.M)
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
        assert drop.sub("", (out / name).read_text()) == drop.sub("", (folder / name).read_text()).replace(
            "progress: false", "progress: true"), name


def test_18_3_report_is_report_html(pair):
    result, folder = pair
    assert result.report() == (folder / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_18_3_sweep_is_a_dataframe_of_the_jobs_run_py_m_runs(tmp_path):
    grid = ("strategy.momentum.lookback=63,126", "allocation=equal_weight,inverse_vol", "data.start=2019-01-01")
    table = sweep(*grid)
    run_py("-m", *grid, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    on_file = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert list(table.index) == [0, 1, 2, 3] and (table["status"] == "completed").all()
    assert list(table["strategy.momentum.lookback"]) == ["63", "63", "126", "126"]
    assert list(table["allocation"]) == ["equal_weight", "inverse_vol"] * 2
    by_overrides = on_file.set_index(on_file["overrides"].str.replace(" progress=False", ""))
    for _, row in table.iterrows():
        assert row["sharpe"] == pytest.approx(by_overrides.loc[row["overrides"], "sharpe"], rel=1e-12)
        assert row["result"].metrics["sharpe"] == row["sharpe"]


def test_18_3_a_job_failing_on_a_user_error_is_a_failed_row():
    table = sweep("risk.max_weight=0.5,-1", "strategy=buy_and_hold", "data.start=2021-01-01")
    assert list(table["status"]) == ["completed", "failed"]
    assert table.loc[1, "error"] == "risk.max_weight=-1 is not allowed: expected a float in (0, 1]"
    assert table.loc[1, "result"] is None and table.loc[0, "result"].metrics["n_trades"] > 0


def test_18_3_a_users_config_folder_joins_by_hydra_searchpath(tmp_path):
    (tmp_path / "mine" / "strategy").mkdir(parents=True)
    (tmp_path / "mine" / "strategy" / "slow_momentum.yaml").write_text(
        "defaults: [momentum]\nmomentum:\n  lookback: 200\n")
    result = backtest(f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "strategy=slow_momentum",
                      "data.start=2019-01-01")
    assert result.config.strategy.momentum.lookback == 200


# ------------------------------------------------------------------------------- bad input

@pytest.mark.slow  # a run.py per case, to hold the API's message to the command line's
@pytest.mark.parametrize("override", ["allocation=risk_pariti", "allocation=inverse_vol allocation.lookbak=60",
                                      "risk.max_weight=-1", "record.format=xml", "strategy.momentum.lookback=["])
def test_18_bad_input_the_api_raises_the_command_lines_one_line_error(override, tmp_path):
    printed = run_py(*override.split(), f"out_dir={tmp_path}", cwd=tmp_path, check=False)
    assert printed.returncode == 2
    kind, _, line = printed.stderr.strip().removeprefix("robo-trader: ").partition(": ")
    with pytest.raises(UserError) as raised:
        backtest(*override.split())
    assert type(raised.value) is ConfigError and kind == raised.value.kind
    assert str(raised.value) == line
    # no chain of Hydra's internals under the one line
    assert raised.value.__cause__ is None and (raised.value.__context__ is None or raised.value.__suppress_context__)


def test_18_bad_input_is_never_systemexit():
    with pytest.raises(ConfigError, match="mode=paper: the Python API backtests"):
        backtest("mode=paper")
    with pytest.raises(ConfigError, match="expected a pandas DataFrame"):
        backtest(data=[1.0, 2.0])
    with pytest.raises(ConfigError, match="data=stocks and data=<DataFrame> both choose the data"):
        backtest("data=stocks", data=pd.DataFrame({"A": [1.0]}))


def _prices(n=300, symbols="ABCD"):
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, len(symbols))), axis=0))
    return pd.DataFrame(closes, index=pd.bdate_range("2015-01-01", periods=n, name="date"), columns=list(symbols))


def _no_datetimeindex(f):
    return f.reset_index(drop=True)


def _nan(f):
    f = f.copy()
    f.iloc[100, 2] = np.nan
    return f


def _negative(f):
    f = f.copy()
    f.iloc[50, 1] = -3.0
    return f


def _text_dates(f):
    f = f.copy()
    f.index = pd.Index(["yesterday"] + list(f.index.strftime("%Y-%m-%d")[1:]), name="date")
    return f


@pytest.mark.parametrize("spoil", [_no_datetimeindex, _nan, _negative, _text_dates], ids=lambda f: f.__name__)
def test_18_bad_input_a_dataframe_gets_the_message_a_csv_gets(spoil, tmp_path):
    frame = spoil(_prices())
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=not isinstance(frame.index, pd.RangeIndex))
    with pytest.raises(DataError) as from_csv:
        backtest("data=csv", f"data.path={path}", "strategy=buy_and_hold")
    with pytest.raises(DataError) as from_frame:
        backtest("strategy=buy_and_hold", data=frame)
    # the same message; it names the source (the file, or "DataFrame") and a CSV's line is the
    # frame's row + 1 (the header)
    expected = re.sub(r"line (\d+)", lambda m: f"row {int(m.group(1)) - 1}", str(from_csv.value))
    assert str(from_frame.value) == expected.replace(str(path), "DataFrame")


def test_18_3_a_dataframe_runs_as_the_same_prices_from_a_csv_file(tmp_path):
    wide = _prices(400)
    path = tmp_path / "wide.csv"
    wide.to_csv(path)
    args = ("strategy.momentum.lookback=60", "strategy.momentum.top_k=2")
    from_frame = backtest(*args, data=wide)
    from_file = backtest(*args, "data=csv", f"data.path={path}")
    pd.testing.assert_frame_equal(from_frame.equity, from_file.equity, check_exact=True)
    assert from_frame.metrics["sharpe"] == from_file.metrics["sharpe"]
    long = wide.stack().rename("close").rename_axis(["date", "symbol"]).reset_index().set_index("date")
    assert backtest(*args, data=long).metrics["sharpe"] == from_file.metrics["sharpe"]
    shifted = wide * 2  # a second frame in one process is read, not a cached copy of the first
    assert backtest(*args, data=shifted).equity.index.equals(from_frame.equity.index)
    assert backtest(*args, data=shifted).ledger.data.close[0, 0] == 2 * wide.iloc[0, 0]


@pytest.mark.slow
def test_18_3_the_readmes_python_example_runs(tmp_path, monkeypatch):
    """README's ten lines, executed with ``closes`` a frame of prices; every backtest gets
    data.start=2016-01-01 (the full history with VWAP slicing costs CI minutes, not truth)."""
    import pipeline.app.api as api

    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    short = lambda f: lambda *o, **k: f(*o, "data.start=2016-01-01", **k)  # noqa: E731
    monkeypatch.setattr(api, "backtest", short(api.backtest))
    monkeypatch.setattr(api, "sweep", short(api.sweep))
    scope = {"closes": _prices(400)}
    exec(compile(block, "README.md", "exec"), scope)
    assert (tmp_path / "runs" / "risk_parity" / "metrics.json").is_file()
    assert scope["html"] == (tmp_path / "runs" / "risk_parity" / "report.html").read_text(encoding="utf-8")
    assert scope["mine"].ledger.data.name == "DataFrame" and scope["mine"].metrics["n_trades"] > 0
    assert list(scope["jobs"]["status"]) == ["completed"] * 4
