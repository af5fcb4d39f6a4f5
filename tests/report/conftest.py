"""Fixtures for the report, sweep page, dashboard and terminal tests.

``browser``: headless Debian Chromium driven by Selenium through the system chromedriver
(``apt-get install chromium chromium-driver``, done by ``.ci/run``); the tests that need it
are skipped, saying why, only when Chromium, chromedriver or Selenium is missing. Nothing is
downloaded: the driver path is given, so Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ROBO_TRADER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ROBO_TRADER_CHROMEDRIVER", "/usr/bin/chromedriver")


def run_py(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True,
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


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; it is in the test extra)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install -y {package}; .ci/run installs it)"
    return None


@pytest.fixture(scope="session")
def browser():
    why = _missing_browser()
    if why:
        pytest.skip(f"no headless Chromium for browser tests: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="robo-trader-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[dict]:
    """Browser console entries at error level since the last call."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, check=True)``: python run.py as a user runs it."""
    return run_py


@pytest.fixture(scope="session")
def errors_of():
    """``errors_of(driver)``: the console errors logged since the last call."""
    return console_errors
