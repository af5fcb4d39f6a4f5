"""Issue 15.6: report sections are modules chosen and ordered by ``report.sections``; the
stylesheet and the dashboard page are package-data files; the report stays small and reads
results only."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.core.errors import ConfigError
from pipeline.dashboard import server
from pipeline.report import page, sections, tearsheet

from tests.report.test_report import _frames, chart_points

ROOT = Path(__file__).resolve().parents[2]
config.register()


def _compose(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _anchors(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def test_15_6_report_sections_choose_and_order_the_page():
    frames, metrics, prov = _frames()
    everything = tearsheet.build(frames, metrics, prov, None)
    assert _anchors(everything) == list(sections.DEFAULT)  # no report.sections: all, in the default order
    prov["config"]["report"] = {"sections": ["drawdowns", "metrics", "execution"]}
    html = tearsheet.build(frames, metrics, prov, None)
    assert _anchors(html) == ["drawdowns", "metrics", "execution"]
    assert re.findall(r'<a href="#([^"]+)">', html) == ["drawdowns", "metrics", "execution"]
    assert "chart-drawdown" in chart_points(html) and "chart-equity" not in chart_points(html)


def test_15_6_an_unknown_or_repeated_section_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as err:
        sections.chosen(["metrics", "drawdwns"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("report.sections: no section 'drawdwns'; did you mean 'drawdowns'?")
    with pytest.raises(ConfigError, match="report.sections: 'equity' is named twice"):
        sections.chosen(["equity", "metrics", "equity"])
    with pytest.raises(ConfigError, match="cannot import section 'no_such_pkg.beta'"):
        sections.chosen(["no_such_pkg.beta"])


def test_15_6_a_misspelt_section_fails_on_the_command_line_before_the_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "report.sections=[metrics,equty]",
                           f"out_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'run'}", "progress=false"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["robo-trader: config error: report.sections: no section 'equty'; did you mean 'equity'? "
                      "(the sections: " + ", ".join(sections.available()) + "; or a module path)"]
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_15_6_the_report_group_keeps_report_benchmark_and_adds_report_sections():
    cfg = _compose()
    assert cfg.report.benchmark is None and list(cfg.report.sections) == list(sections.DEFAULT)
    cfg = _compose("report.benchmark=KO", "report.sections=[metrics,equity]")
    assert cfg.report.benchmark == "KO" and list(cfg.report.sections) == ["metrics", "equity"]
    with pytest.raises(Exception, match="sections"):  # the schema types it: a list of names
        _compose("report.sections={a: 1}")


@pytest.mark.slow
def test_15_6_report_benchmark_and_sections_from_the_command_line(tmp_path, run_cli):
    run_cli("report.benchmark=KO", "report.sections=[equity,metrics]", "data.start=2015-01-01",
            f"out_dir={tmp_path}", f"hydra.run.dir={tmp_path}")
    html = (tmp_path / "report.html").read_text()
    assert _anchors(html) == ["equity", "metrics"]
    assert "benchmark: KO (buy-and-hold, no costs)" in html
    # the rebuild reads the choice back from the folder's resolved config
    (tmp_path / "report.html").unlink()
    subprocess.run([sys.executable, "-m", "pipeline.report", str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "report.html").read_text() == html


def test_15_6_adding_a_chart_is_adding_a_module_and_naming_it(tmp_path, monkeypatch):
    package = tmp_path / "my_report_extras"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pnl_histogram.py").write_text(
        "import numpy as np\n"
        "TITLE = 'Daily returns'\n"
        "def body(run):\n"
        "    counts, _ = np.histogram(run.r[1:], bins=10)\n"
        "    return '<p>' + ' '.join(str(c) for c in counts) + '</p>'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    frames, metrics, prov = _frames()
    prov["config"]["report"] = {"sections": ["metrics", "my_report_extras.pnl_histogram"]}
    html = tearsheet.build(frames, metrics, prov, None)
    assert _anchors(html) == ["metrics", "pnl_histogram"]
    counts = re.search(r'<section id="pnl_histogram"><h2>Daily returns</h2><p>([\d ]+)</p>', html).group(1)
    assert sum(map(int, counts.split())) == len(frames["equity"]) - 1  # every bar's return counted
    (package / "not_a_section.py").write_text("X = 1\n")
    with pytest.raises(ConfigError, match="is not a section: it needs TITLE and body"):
        sections.chosen(["my_report_extras.not_a_section"])


def test_15_6_conf_report_default_lists_every_section_module():
    node = yaml.safe_load((ROOT / "conf" / "report" / "default.yaml").read_text())
    assert node["sections"] == list(sections.DEFAULT)
    assert sorted(sections.DEFAULT) == sections.available()
    assert "report" not in yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())  # folded into the group


def test_15_6_the_stylesheet_and_the_dashboard_page_are_package_data_files():
    css = (ROOT / "pipeline" / "report" / "assets" / "report.css").read_text()
    frames, metrics, prov = _frames()
    html = tearsheet.build(frames, metrics, prov, None)
    assert f"<style>\n{css}</style>" in html and page.stylesheet() == css  # inlined: still one offline file
    static = ROOT / "pipeline" / "dashboard" / "static"
    index, dcss, js = ((static / n).read_text() for n in ("index.html", "dashboard.css", "dashboard.js"))
    served = server.page()
    assert f"<style>\n{dcss}</style>" in served and f"<script>\n{js}</script>" in served
    assert server.STYLESHEET in index and server.SCRIPT in index
    assert not re.search(r'<link rel="stylesheet"|<script src=', served)  # nothing the token would not cover
    assert "<!DOCTYPE" not in (ROOT / "pipeline" / "dashboard" / "server.py").read_text()
    for path in _python_files("report", "dashboard"):  # no stylesheet left in a Python string
        assert "box-sizing" not in path.read_text(), path
    data = {pkg: globs for pkg, globs in tomllib.loads((ROOT / "pyproject.toml").read_text())
            ["tool"]["setuptools"]["package-data"].items() if pkg.startswith("pipeline.")}
    shipped = {p.relative_to(ROOT / "pipeline" / pkg.split(".")[1]).as_posix()
               for pkg, globs in data.items() for g in globs for p in (ROOT / "pipeline" / pkg.split(".")[1]).glob(g)}
    assert shipped == {"assets/report.css", "assets/report.js", "static/index.html", "static/dashboard.css",
                       "static/dashboard.js"}


def _python_files(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / "pipeline" / pkg).rglob("*.py"))


def test_15_6_report_modules_and_functions_stay_small():
    for path in _python_files("report", "dashboard"):
        source = path.read_text()
        assert source.count("\n") <= 600, f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines"
        for fn in ast.walk(ast.parse(source)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = fn.end_lineno - fn.lineno + 1
                assert length <= 80, f"{path.relative_to(ROOT)}: {fn.name} is {length} lines"


def test_15_6_report_and_dashboard_import_no_engine():
    engines = ("pipeline.backtest", "pipeline.live", "pipeline.app")
    for path in _python_files("report", "dashboard"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names for e in engines if n == e or n.startswith(e + ".")]
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_15_6_python_m_pipeline_report_and_dashboard_still_answer(tmp_path):
    for package in ("pipeline.report", "pipeline.dashboard"):
        proc = subprocess.run([sys.executable, "-m", package, "--help"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0 and f"python -m {package}" in proc.stdout, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pipeline.report", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a finished run folder (no metrics.json)" in proc.stderr
