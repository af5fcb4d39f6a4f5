"""Fixtures for the report, sweep page, dashboard and terminal tests.

The ``browser`` and ``errors_of`` fixtures live in ``tests/conftest.py`` (the live tests use
them too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_py(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The default backtest (python run.py), written once for the session."""
    out = tmp_path_factory.mktemp("default_run")
    run_py(f"out_dir={out}")
    return out


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, check=True)``: python run.py as a user runs it."""
    return run_py


