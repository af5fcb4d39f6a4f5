"""Issue 15, points 3-5: live trading in parts a newcomer can read, broker facts with the broker,
the fake gateway as a test double."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.live_broker import CANCELLED, FILLED, PENDING, REJECTED, WORKING, LiveBroker, OrderUpdate
from pipeline.live.execution import Executor
from pipeline.live.journal import Child, Journal
from pipeline.live.reconcile import journal_status
from pipeline.live.runner import run_live
from pipeline.live.safety import Safety, SafetyError
from plugins.broker.ib import IBBroker, codes

ROOT = Path(__file__).resolve().parents[2]
LIVE = sorted((ROOT / "pipeline" / "live").glob("*.py"))
GATEWAY = ROOT / "plugins" / "broker" / "ib" / "fake_gateway"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any level."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_15_3_no_live_class_over_300_lines_and_no_module_over_600():
    for path in LIVE:
        tree = ast.parse(path.read_text())
        assert len(path.read_text().splitlines()) <= 600, path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno + 1 <= 300, f"{path.name}: {node.name}"
    names = {p.stem for p in LIVE}
    assert {"schedule", "planning", "execution", "reconcile", "journal", "safety"} <= names


def test_15_3_live_imports_no_app_and_the_ib_plugins_only_pipeline_core():
    for path in LIVE:
        assert not [m for m in imports(path) if m.startswith("pipeline.app")], path.name
    plugin_files = [*(ROOT / "plugins" / "broker" / "ib").glob("*.py"), ROOT / "plugins" / "data" / "ib.py"]
    for path in plugin_files:
        wrong = [m for m in imports(path) if m.startswith("pipeline.") and not m.startswith("pipeline.core")]
        assert not wrong, f"{path}: {wrong}"


def test_15_3_run_live_makes_the_stages_with_the_builder_the_app_passes(tmp_path):
    mode = OmegaConf.create({"name": "paper", "bins": 1, "bin_seconds": 1.0, "every_seconds": None,
                             "at": None, "run_once": True, "tz": "America/New_York", "max_data_age": None})
    built = []

    def build(cfg):
        built.append(cfg)
        return SimpleNamespace(broker=object())

    cfg = OmegaConf.create({"mode": mode})
    with pytest.raises(ConfigError) as err:
        run_live(cfg, tmp_path, build)
    assert built == [cfg]
    assert str(err.value) == ("mode=paper trades through a broker gateway: add broker=ib "
                              "(broker=object only backtests)")
    assert (tmp_path / "error.txt").read_text() == f"ConfigError: {err.value}\n"  # recorded, as before


IB_WORDS = re.compile(r'"(Filled|Cancelled|ApiCancelled|Inactive|PreSubmitted|Submitted|PendingSubmit)"'
                      r'|REJECT_CODES|\b(1100|1101|1102|2103|2104)\b|startswith\("D')


def test_15_4_no_ib_error_code_status_word_ib_async_import_or_paper_rule_in_pipeline():
    for path in (ROOT / "pipeline").rglob("*.py"):
        text = path.read_text()
        assert not IB_WORDS.search(text), f"{path}: {IB_WORDS.search(text).group(0)}"
        assert not [m for m in imports(path) if m.split(".")[0] == "ib_async"], path


@pytest.mark.parametrize("word, code, filled, state", [
    ("PendingSubmit", 0, 0, PENDING), ("PreSubmitted", 0, 0, WORKING), ("Submitted", 0, 0, WORKING),
    ("PendingCancel", 0, 0, WORKING), ("Filled", 0, 100, FILLED), ("Cancelled", 202, 0, CANCELLED),
    ("Inactive", 201, 0, REJECTED), ("ApiCancelled", 0, 0, CANCELLED), ("Cancelled", 201, 40, CANCELLED),
    ("ValidationError", 0, 0, PENDING)])
def test_15_4_the_ib_plugin_maps_its_status_words_to_neutral_states(word, code, filled, state):
    assert codes.state(word, code, filled) == state


def test_15_4_a_refusal_after_journaled_fills_is_a_cancel_whatever_the_broker_says():
    child = Child(ref="r", decision="d", symbol="AAPL", child=0, quantity=10.0, limit_price=None,
                  release_at=0.0, expire_at=1.0)
    assert journal_status(OrderUpdate(ref="r", status=REJECTED), child) == "rejected"
    child.filled = 4.0
    assert journal_status(OrderUpdate(ref="r", status=REJECTED), child) == "cancelled"


class OtherBroker(LiveBroker):
    """A broker pipeline/ has never heard of: its own rule for paper accounts."""

    paper_rule = "paper accounts end in -SIM"
    paper_login = "a simulator login"
    account = None

    def is_paper(self, account):
        return account.endswith("-SIM")

    def managed_accounts(self):
        return ["ACME-1"]

    def where(self):
        return "acme:1"

    def use_account(self, account):
        self.used = account


def account_check(broker, tmp_path):
    runner = Safety()
    runner.broker, runner.mode = broker, SimpleNamespace(name="paper")
    runner.journal = Journal(tmp_path / "journal.sqlite")
    try:
        return runner._check_account()
    finally:
        runner.journal.close()


def test_15_4_the_broker_says_whether_an_account_is_a_paper_one(tmp_path):
    with pytest.raises(SafetyError) as err:
        account_check(OtherBroker(), tmp_path)
    assert str(err.value) == ("account ACME-1 is a live account (paper accounts end in -SIM): mode=paper does "
                              "not trade it; use a simulator login, or mode=live")
    ib = IBBroker()
    assert ib.is_paper("DU1234567") and ib.is_paper("DF77") and not ib.is_paper("U1234567")
    ib.ib_ = SimpleNamespace(managedAccounts=lambda: ["U1234567"])
    with pytest.raises(SafetyError) as err:
        account_check(ib, tmp_path)
    assert str(err.value) == ("account U1234567 is a live account (paper accounts start with DU or DF): "
                              "mode=paper does not trade it; use an IB paper login, or mode=live")


def test_15_4_the_kill_switch_command_needs_no_app(tmp_path):
    code = ("import sys; from pipeline.live.killswitch import main; main(['status']); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeline.app')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"kill switch: released ({Path('state/paper')})", "[]"]


def test_15_5_the_fake_gateway_is_a_package_of_its_own_not_a_plugin_nor_on_the_order_path():
    parts = {p.stem for p in GATEWAY.glob("*.py")}
    assert {"__init__", "__main__", "protocol", "state", "faults", "server"} <= parts
    assert all(len(p.read_text().splitlines()) <= 600 for p in GATEWAY.glob("*.py"))
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert not [v for group in entry_points.values() for v in group.values() if "fake_gateway" in v]
    ib = ROOT / "plugins" / "broker" / "ib"
    order_path = [*LIVE, *ib.glob("*.py"), *(ROOT / "pipeline" / "core").glob("*.py")]
    for path in order_path:
        assert not [m for m in imports(path) if "fake_gateway" in m], path


def test_15_5_no_environment_variable_is_read_on_the_live_order_path():
    ib = ROOT / "plugins" / "broker" / "ib"
    for path in [*LIVE, ib / "__init__.py", ib / "codes.py"]:
        text = path.read_text()
        assert "os.environ" not in text and "getenv" not in text, path


def test_15_5_a_crash_point_is_a_seam_the_test_installs(monkeypatch):
    seen = []
    executor = Executor()
    executor._passed("after_intent")  # nothing installed: nothing happens
    monkeypatch.setattr(Executor, "step", staticmethod(seen.append))
    executor._passed("after_intent")
    executor._passed("after_place")
    assert seen == ["after_intent", "after_place"]
