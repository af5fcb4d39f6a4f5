"""Issue 18.2: robo-trader is installable. A wheel built from the tree carries the configs (the
package ``robo_trader_conf``, Hydra's ``pkg://`` search path); installed into a fresh venv
outside the checkout, ``robo-trader`` backtests from any folder, a user's config folder joins
with ``hydra.searchpath``, and the Python API works. The venv gets the dependencies from this
Python's site-packages through a path file (no download), not robo-trader itself: the wheel is
the only robo-trader on its path (the editable install's finder is not loaded)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
IGNORE = shutil.ignore_patterns(".git", "__pycache__", "outputs", "multirun", "build", "dist", "*.egg-info",
                                "state", ".pytest_cache", ".hypothesis", ".benchmarks", "cache")


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    src = base / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, src, ignore=IGNORE)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(base / "dist"), str(src)], check=True, timeout=600)
    wheel = next((base / "dist").glob("robo_trader-*.whl"))
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=300)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_robo_trader_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=600)
    work = base / "work"  # from any folder: nowhere near a checkout
    work.mkdir()
    return {"bin": env / "bin", "wheel": wheel, "work": work, "env": env}


def _run(venv, *args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([*args], cwd=venv["work"], capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_18_2_the_wheel_carries_every_config_as_the_package_robo_trader_conf(venv):
    names = set(zipfile.ZipFile(venv["wheel"]).namelist())
    confs = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert confs and {f"robo_trader_conf/{c}" for c in confs} <= names
    assert "robo_trader_conf/__init__.py" in names and not any(n.startswith("conf/") for n in names)


def test_18_2_the_installed_code_and_configs_are_the_venvs(venv):
    where = _run(venv, venv["bin"] / "python", "-c",
                 "import pipeline, robo_trader_conf; from pipeline.core import configs; "
                 "print(pipeline.__file__); print(robo_trader_conf.__file__); print(configs.search_path())").stdout.split()
    assert all(str(venv["env"]) in p for p in where[:2]), where
    assert where[2] == "pkg://robo_trader_conf"


def test_18_2_robo_trader_backtests_from_any_folder(venv):
    out = venv["work"] / "rp"
    proc = _run(venv, venv["bin"] / "robo-trader", "allocation=risk_parity", "data.start=2018-01-01",
                f"out_dir={out}", f"hydra.run.dir={out}", "progress=false")
    assert "Sharpe" in proc.stdout and (out / "metrics.json").is_file() and (out / "report.html").is_file()
    hydra = (out / ".hydra" / "hydra.yaml").read_text()
    assert "path: robo_trader_conf\n      schema: pkg" in hydra
    assert "allocation: risk_parity" in hydra
    bad = _run(venv, venv["bin"] / "robo-trader", "allocation=risk_pariti", check=False)
    assert bad.returncode == 2 and "did you mean 'risk_parity'" in bad.stderr and "Traceback" not in bad.stderr


def test_18_2_a_users_config_folder_joins_with_hydra_searchpath(venv):
    mine = venv["work"] / "my_conf" / "strategy"
    mine.mkdir(parents=True)
    (mine / "slow_momentum.yaml").write_text("defaults: [momentum]\nmomentum:\n  lookback: 200\n")
    out = venv["work"] / "mine"
    _run(venv, venv["bin"] / "robo-trader", f"hydra.searchpath=[file://{mine.parent}]", "strategy=slow_momentum",
         "data.start=2018-01-01", f"out_dir={out}", f"hydra.run.dir={out}", "progress=false")
    assert "lookback: 200" in (out / ".hydra" / "config.yaml").read_text()


def test_18_2_subcommands_and_help_read_the_installed_configs(venv):
    assert "risk_parity" in _run(venv, venv["bin"] / "robo-trader", "plugins").stdout
    helped = _run(venv, venv["bin"] / "robo-trader", "--help").stdout
    assert "risk_parity" in helped and "vwap" in helped
    state = venv["work"] / "state"
    shown = _run(venv, venv["bin"] / "robo-trader", "killswitch", "status", "--mode", "paper",
                 "--state-dir", str(state)).stdout
    assert "kill switch: released" in shown


def test_18_2_the_python_api_works_installed(venv):
    code = ("from pipeline.app.api import backtest; r = backtest('strategy=buy_and_hold', 'data.start=2020-01-01'); "
            "print(r.metrics['n_trades'], r.config.strategy.buy_and_hold._target_)")
    n_trades, target = _run(venv, venv["bin"] / "python", "-c", code).stdout.split()
    assert int(n_trades) > 0 and target == "plugins.strategy.buy_and_hold.BuyAndHold"
