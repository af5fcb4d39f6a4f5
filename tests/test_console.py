"""Issue 18.1: the ``robo-trader`` console script is ``python run.py`` (same command line, help,
errors and run folder) plus the ``python -m`` tools as subcommands. The script itself is what
pyproject.toml's ``robo-trader = "pipeline.app.cli:main"`` calls; tests/test_install.py runs the
installed one, here it is called the way the script calls it."""

import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["data.start=2018-01-01", "progress=false"]
SCRIPT = "import sys; sys.argv[0] = 'robo-trader'; from pipeline.app.cli import main; main()"


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def robo(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"robo-trader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_py(*args, cwd, check=True):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True,
                          text=True, env=_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_18_1_robo_trader_writes_the_run_folder_python_run_py_writes(tmp_path):
    a, b = tmp_path / "script", tmp_path / "run_py"
    robo("allocation=risk_parity", *SHORT, f"out_dir={a}", f"hydra.run.dir={a}", cwd=tmp_path)
    run_py("allocation=risk_parity", *SHORT, f"out_dir={b}", f"hydra.run.dir={b}", cwd=tmp_path)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert "run.log" in files and "metrics.json" in files  # one log name for both (hydra.job.name)
    differ = [f for f in files if not filecmp.cmp(a / f, b / f, shallow=False)]
    # Hydra's own record of the run holds its folder and the calling module, the log its clock,
    # the sweep callback's status.json the overrides (out_dir); every file the recorder writes
    # is byte-identical
    assert set(differ) <= {".hydra/hydra.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml", "run.log",
                           "status.json"}, differ
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "status.json", "run.log"):
        assert (re.sub(r"^\[[^]]*\]", "", (a / name).read_text().replace(str(a), "X"), flags=re.M)
                == re.sub(r"^\[[^]]*\]", "", (b / name).read_text().replace(str(b), "X"), flags=re.M)), name

def test_18_1_robo_trader_help_and_errors_are_run_py_s(tmp_path):
    # Hydra's shell-completion lines name the program
    helped = run_py("--help", cwd=tmp_path).stdout
    assert robo("--help", cwd=tmp_path).stdout == helped.replace(f"python {ROOT / 'run.py'}", "robo-trader")
    for sub in ("plugins", "report", "dashboard", "killswitch", "fake-gateway"):
        assert f"  robo-trader {sub} ..." in helped, sub
    bad = robo("allocation=risk_pariti", cwd=tmp_path, check=False)
    same = run_py("allocation=risk_pariti", cwd=tmp_path, check=False)
    assert (bad.returncode, bad.stderr) == (same.returncode, same.stderr) == (
        2, same.stderr.splitlines()[0] + "\n")
    assert "did you mean 'risk_parity'" in bad.stderr


def test_18_1_subcommands_are_the_python_m_tools(tmp_path):
    plugins = robo("plugins", cwd=tmp_path).stdout
    assert plugins == subprocess.run([sys.executable, "-m", "pipeline.app.registry"], cwd=tmp_path,
                                     capture_output=True, text=True, env=_env(), check=True).stdout
    assert "plugins.allocation.risk_parity.RiskParity" in plugins
    state = tmp_path / "state"
    assert "ENGAGED: by hand" in robo("killswitch", "on", "--state-dir", str(state), "--reason", "by hand",
                                      cwd=tmp_path).stdout
    assert "released" in robo("killswitch", "off", "--state-dir", str(state), cwd=tmp_path).stdout
    run = tmp_path / "run"
    robo(*SHORT, f"out_dir={run}", f"hydra.run.dir={run}", cwd=tmp_path)
    before = (run / "report.html").read_bytes()
    (run / "report.html").unlink()
    assert robo("report", str(run), cwd=tmp_path).stdout.strip() == str(run / "report.html")
    assert (run / "report.html").read_bytes() == before
    for sub, words in (("dashboard", "replay"), ("fake-gateway", "TWS API protocol")):
        proc = robo(sub, "--help", cwd=tmp_path)
        assert words in proc.stdout, (sub, proc.stdout)
    unknown = robo("report", cwd=tmp_path, check=False)  # the tool's own usage error, exit 2
    assert unknown.returncode == 2 and "usage:" in unknown.stderr


def test_18_1_registry_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    # python -m pipeline.app.registry | head: the reader is gone before the listing is written
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "pipeline.app.registry"], cwd=tmp_path, stdout=write,
                              stderr=subprocess.PIPE, text=True, env=_env(), timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr == "", proc.stderr
