"""Third-party plugins: a tiny package, installed by pip into a private folder, adds a
strategy through the ``robo_trader.plugins`` entry-point group with no change in pipeline/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-robo-plugin"
version = "0.1.0"

[project.entry-points."robo_trader.plugins"]
"strategy.contrarian" = "tiny_robo_plugin:Contrarian"
"""

MODULE = '''\
import numpy as np
from pipeline.core.contracts import Strategy


class Contrarian(Strategy):
    """Long the symbols with the worst return over ``lookback`` bars."""

    rules = {"lookback": "[1, inf)", "top_k": "[1, inf)"}

    def __init__(self, lookback: int = 21, top_k: int = 4):
        self.lookback = lookback
        self.top_k = top_k

    def warmup(self):
        return self.lookback

    def signal(self, data, at):
        r = data.close[at] / data.close[at - self.lookback] - 1
        out = np.zeros_like(r)
        np.put_along_axis(out, np.argsort(r, axis=1)[:, : self.top_k], 1.0, axis=1)
        return out
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    src = tmp_path_factory.mktemp("tiny_src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "tiny_robo_plugin.py").write_text(MODULE)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, timeout=300)
    return target


def _run(site, *args):
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_installed_plugin_is_listed(site):
    proc = _run(site, "-m", "pipeline.app.registry")
    assert proc.returncode == 0, proc.stderr
    assert "contrarian" in proc.stdout and "tiny-robo-plugin" in proc.stdout


def test_installed_plugin_runs_by_name_without_yaml(site, tmp_path):
    proc = _run(site, str(ROOT / "run.py"), "strategy=contrarian", "strategy.contrarian.top_k=3", f"out_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "metrics.json").is_file()
    bad = _run(site, str(ROOT / "run.py"), "strategy=contrarian", "strategy.contrarian.lookbak=3", f"out_dir={tmp_path}")
    assert bad.returncode == 2 and "lookback" in bad.stderr
