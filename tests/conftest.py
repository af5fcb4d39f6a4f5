"""Shared fixtures: the bundled data, loaded once per session; a headless browser.

``browser``: headless Debian Chromium driven by Selenium through the system chromedriver
(``apt-get install chromium chromium-driver``, done by ``.ci/run``); the tests that need it
are skipped, saying why, only when Chromium, chromedriver or Selenium is missing. Nothing is
downloaded: the driver path is given, so Selenium Manager never runs.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from plugins.data.sp500 import SP500


@pytest.fixture(scope="session", autouse=True)
def _session_in_tmp(tmp_path_factory):
    """Session fixtures (a default run shared by the report tests) work in a folder of their own too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("session"))
        yield


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch):
    """Every test, and every run.py or python -m it starts, works in its own folder: Hydra's outputs/,
    journals and caches land under tmp_path, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def sp500():
    return SP500().load()


# Property tests draw from a fixed sequence so CI is reproducible: the same examples every run.
# No example database, and Hypothesis' own cache in a temporary folder: by default both are
# written into the working folder, the checkout (tests write only under tmp_path).
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="robo-trader-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True, database=None)
settings.load_profile("repeatable")


CHROMIUM = os.environ.get("ROBO_TRADER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ROBO_TRADER_CHROMEDRIVER", "/usr/bin/chromedriver")


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
def errors_of():
    """``errors_of(driver)``: the console errors logged since the last call."""
    return console_errors


ROOT = Path(__file__).resolve().parents[1]
# Python's own byte-code caches are not test output; everything else new in the checkout is.
_NOT_OUTPUT = ("__pycache__/", ".egg-info/")


def _untracked() -> set[str] | None:
    """Paths in the checkout git does not track, ignored ones included (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not any(part in p for part in _NOT_OUTPUT)}


def pytest_sessionstart(session):
    session.config._checkout_before = _untracked()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a test wrote into the checkout (outputs/, a journal, a cache) instead of tmp_path."""
    shutil.rmtree(_HYPOTHESIS_HOME, ignore_errors=True)
    before = getattr(session.config, "_checkout_before", None)
    after = _untracked()
    if before is None or after is None:
        return
    written = sorted(after - before)
    if written:
        shown = ", ".join(written[:10]) + (f" (+{len(written) - 10} more)" if len(written) > 10 else "")
        session.config.get_terminal_writer().line(
            f"tests wrote into the checkout (write under tmp_path instead): {shown}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
