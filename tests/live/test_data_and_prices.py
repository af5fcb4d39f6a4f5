"""Paper trading on the data and prices of now: the data's age (13.6), decisions keyed by the
config that made them (13.7), sizing on the gateway's quotes (14.8)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from pipeline.errors import ConfigError
from pipeline.live import _max_age
from tests.live.conftest import ROOT, SAMPLE, ok, paper_args, run_py

pytestmark = pytest.mark.slow


def one_line(proc) -> str:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ------------------------------------------------------------ 13.6 the data's age

def test_13_6_paper_refuses_the_bundled_sample_by_default_naming_source_last_bar_and_data_ib(gateway, tmp_path):
    args = [a for a in paper_args(gateway, tmp_path) if a not in SAMPLE[1:]]  # no age override
    line = one_line(run_py(*args))
    assert line.startswith("robo-trader: data error: data sp500: its last bar is 2022-12-28 16:00 EST, ")
    assert "older than mode.max_data_age=2 (business days)" in line and "use data=ib" in line
    assert gateway.snapshot()["received"] == []  # nothing was sent


def test_13_6_the_age_limit_is_business_days_or_a_duration(gateway, tmp_path):
    assert _max_age("2") == 2 and _max_age(None) is None
    assert _max_age("36h") == pd.Timedelta(hours=36)
    for bad in ("soon", "-1h", "0s"):
        with pytest.raises(ConfigError, match="mode.max_data_age="):
            _max_age(bad)
    args = [a for a in paper_args(gateway, tmp_path, "mode.max_data_age=36h") if a not in SAMPLE[1:]]
    line = one_line(run_py(*args))
    assert re.search(r"2022-12-28 16:00 EST, \d+\.\d hours ago, older than mode.max_data_age=36h", line)
    # IB's bars are today's: the default limit lets them through
    args = [a for a in paper_args(gateway, tmp_path, "data=ib", f"data.cache_dir={tmp_path / 'cache'}",
                                  "data.duration=3 M") if a not in SAMPLE]
    assert "positions match targets" in ok(run_py(*args))


def test_13_6_the_readme_paper_commands_trade_on_live_data():
    text = (ROOT / "README.md").read_text()
    commands = [line for line in text.splitlines() if line.startswith("python run.py mode=paper")]
    assert commands and all("data=ib" in line for line in commands)
