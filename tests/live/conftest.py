"""The fake IB gateway in a thread, and ``python run.py mode=paper broker=ib`` as a user runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.broker.ib.fake_gateway import FakeGateway, load_market

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["AAPL", "JPM", "KO", "MSFT"]


@pytest.fixture(scope="session")
def market():
    """The bundled sp500 closes as the gateway's market (the runner reads the same data)."""
    return load_market("sp500", history=400)


@pytest.fixture
def gateway(market):
    gw = FakeGateway(market=market, fill_delay=0.03, partial=2).start_in_thread()
    yield gw
    gw.stop_thread()


# The bundled sample ends on 2022-12-28 and paper mode refuses data that old by default: the
# runs on it say so. The gateway serves the same closes as today's prices (``market``).
SAMPLE = ("data=sp500", "mode.max_data_age=null")


def paper_args(gw: FakeGateway, tmp: Path, *extra: str) -> list[str]:
    """A fast paper run: buy-and-hold four symbols, TWAP over 3 bins of 0.3 s, one tick."""
    return ["mode=paper", "broker=ib", f"broker.port={gw.port}", "broker.reconnect_delay=0.1",
            "mode.run_once=true", "mode.bins=3", "mode.bin_seconds=0.5", "mode.ack_timeout=2",
            "mode.settle_seconds=10", f"mode.state_dir={tmp / 'state'}", f"out_dir={tmp / 'out'}",
            "mode.pretrade.max_orders_per_second=100", "strategy=buy_and_hold", "execution=twap",
            "schedule.rebalance=daily", *SAMPLE, f"data.symbols=[{','.join(SYMBOLS)}]",
            "progress=false", *extra]


def run_py(*args: str, timeout: float = 120, env: dict | None = None,
           crash: str | None = None) -> subprocess.CompletedProcess:
    """``python run.py *args``; with ``crash="after_intent:3"`` the process kills itself (SIGKILL)
    the third time a child passes that step (``tests/live/crash_at.py``)."""
    script = [str(ROOT / "run.py")]
    if crash is not None:
        script = [str(Path(__file__).with_name("crash_at.py")), crash]
    # stdin is not a terminal, as under cron or systemd: nothing can be confirmed by typing
    return subprocess.run([sys.executable, *script, *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)


def start_py(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def journal(tmp: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(tmp / "state" / "journal.sqlite"))
    db.row_factory = sqlite3.Row
    return db


def targets(db: sqlite3.Connection) -> dict[str, float]:
    return {r["symbol"]: r["target"] for r in db.execute("SELECT symbol, target FROM parents")}


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout
