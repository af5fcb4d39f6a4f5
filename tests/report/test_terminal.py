"""The terminal: --help that explains the groups and their options, a progress bar on long runs,
a summary table at the end."""

import io
import re
import sys

import pytest

from pipeline.report import console


@pytest.mark.slow
def test_help_explains_every_group_and_its_options(run_cli):
    out = run_cli("--help").stdout
    assert out.startswith("robo-trader: a declarative trading pipeline")
    # every group, with what it is for, its options (the current one starred) and their parameters
    for group, about in (("data", "where the prices come from"), ("strategy", "the signal"),
                         ("allocation", "weighs the assets"), ("portfolio", "weighs the sleeves"),
                         ("risk", "constraints"), ("execution", "parent order"), ("broker", "fills")):
        block = re.search(rf"^{group}\n(.*?)(?=^\S|\Z)", out, re.M | re.S)
        assert block, group
        assert about in block.group(1), group
    assert re.search(r"^  \* sp500\s+skfolio's bundled S&P 500 sample", out, re.M)
    assert re.search(r"^  \* momentum\s+Cross-sectional momentum", out, re.M)
    assert re.search(r"^\s+lookback=252 skip=21 top_k=5$", out, re.M)
    assert re.search(r"^    risk_parity\s+Risk parity", out, re.M)
    assert "commission_bps=1.0" in out and "max_weight=0.25 max_gross_leverage=1.0" in out
    assert "constraints (risk.<name>=value" in out and "vol_target" in out
    # the top-level keys with what they do, the composed config and Hydra's flags
    assert re.search(r"^  seed=7\s+every random draw", out, re.M)
    assert re.search(r"^  schedule.rebalance=monthly\s+daily \| weekly", out, re.M)
    assert "python run.py -m" in out and "--multirun,-m" in out
    assert "\ncapital: 1000000.0\n" in out


@pytest.mark.slow
def test_help_marks_the_options_the_overrides_choose(run_cli):
    out = run_cli("--help", "allocation=risk_parity", "execution=vwap").stdout
    assert re.search(r"^  \* risk_parity\s", out, re.M) and re.search(r"^    equal_weight\s", out, re.M)
    assert re.search(r"^  \* vwap\s", out, re.M)
    assert "_target_: plugins.allocation.risk_parity.RiskParity" in out


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    bar = console.Progress("backtest", delay=0.0)
    for done in range(0, 101, 25):
        bar.update(done, 100)
    bar.close()
    text = screen.getvalue()
    assert "\rbacktest [" in text and "100/100" in text and text.endswith("\n")
    assert "#" * 30 in text  # full at the end
    assert re.search(r"25/100 .* eta", text)


def test_progress_bar_stays_silent_off_a_terminal_and_on_short_runs(monkeypatch):
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    bar = console.Progress("backtest", delay=0.0)
    bar.update(50, 100)
    bar.close()
    assert pipe.getvalue() == ""
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    quick = console.Progress("backtest", delay=60.0)  # a run shorter than the delay shows nothing
    quick.update(50, 100)
    quick.close()
    assert screen.getvalue() == ""


def test_job_counter(monkeypatch):
    monkeypatch.setenv("ROBO_TRADER_SWEEP_JOBS", "12")
    assert console.job_counter(0) == "[ 1/12] "
    assert console.job_counter(11) == "[12/12] "
    monkeypatch.delenv("ROBO_TRADER_SWEEP_JOBS")
    assert console.job_counter(3) == ""


@pytest.mark.slow
def test_a_run_ends_with_its_summary_table(run_cli, tmp_path):
    out = run_cli(f"out_dir={tmp_path}").stdout
    for row in ("period", "final equity", "CAGR", "Sharpe", "max drawdown", "turnover / yr", "costs", "output"):
        assert re.search(rf"^{re.escape(row)}\s+\S", out, re.M), row


@pytest.mark.slow
def test_13_16_the_summary_names_a_constraint_that_shapes_the_run_and_the_cash_it_left(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def run(*args):
        return subprocess.run([sys.executable, str(root / "run.py"), *args, f"hydra.run.dir={tmp_path / 'hydra'}"],
                              cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(root)}).stdout

    # three names at 1/3 each against the default max_weight=0.25: a quarter of the book in cash
    out = run("strategy.momentum.top_k=3", f"out_dir={tmp_path / 'capped'}")
    lines = re.search(r"^risk\s+(.*)\n\s+(.*)$", out, re.M).groups()
    assert lines == ("max_weight bound at 384 of 384 decisions",
                     "the targets left 25.00% in cash on average (0.00% before risk)")
    # five names at 1/5 never reach the cap: nothing to say
    assert not re.search(r"^risk\s", run(f"out_dir={tmp_path / 'free'}"), re.M)


def test_13_16_binding_notes_only_past_a_tenth_of_the_decisions():
    metrics = {"n_decisions": 100, "risk_binding": {"max_weight": 10, "vol_target": 11, "long_only": 0},
               "cash_after_risk": 0.125, "cash_before_risk": 0.0}
    assert console.binding_notes(metrics) == [
        "vol_target bound at 11 of 100 decisions", "the targets left 12.50% in cash on average (0.00% before risk)"]
    assert console.binding_notes({**metrics, "risk_binding": {"max_weight": 10}}) == []
