"""One name everywhere (DESIGN.md): ``conf/<group>/<name>.yaml`` <-> ``plugins/<group>/<name>.py``
<-> entry point ``"<group>.<name>"`` in pyproject.toml; the experiment presets run; no module
grows past about 600 lines."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("data", "strategy", "allocation", "risk", "execution", "broker")
# The documented exceptions, name -> why it breaks the one-name rule.
YAML_ONLY = {  # a conf file whose _target_ is another plugin's class, with other parameters
    ("strategy", "fast_momentum"): "momentum over three months",
    ("strategy", "ml_forest"): "ml with a random forest classifier",
    ("strategy", "ml_expressions"): "ml with shared factor expressions as its inputs",
    **{("strategy", f"alpha101_{k}"): f"Alpha#{int(k)} of the 101 Formulaic Alphas, an expression"
       for k in ("002", "004", "005", "006", "009", "012", "025", "101")},
}
PYTHON_ONLY: dict = {}  # a plugin module with no conf file and no entry point (none since issue 19)
# conf/risk/<name>.yaml are presets: ordered lists of constraints, each key a risk plugin.
PRESET_GROUPS = ("risk",)
MAX_LINES = 600


def entry_points(root: Path = ROOT) -> dict[tuple[str, str], str]:
    with (root / "pyproject.toml").open("rb") as f:
        eps = tomllib.load(f)["project"]["entry-points"]["robo_trader.plugins"]
    return {tuple(name.split(".", 1)): value for name, value in eps.items()}


def modules(group: str, root: Path = ROOT) -> set[str]:
    """Public plugin modules of a stage: ``<name>.py`` or a ``<name>/`` package; the IB fake
    gateway (plugins/broker/ib/fake_gateway) sits inside ``ib/`` and is a test double, not one."""
    folder = root / "plugins" / group
    found = {p.stem for p in folder.glob("*.py")} | {p.parent.name for p in folder.glob("*/__init__.py")}
    return {name for name in found if not name.startswith("_")}


def confs(group: str, root: Path = ROOT) -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) or {} for p in sorted((root / "conf" / group).glob("*.yaml"))}


def _target(group: str, name: str, node: dict) -> str | None:
    node = node.get(name, {}) if group == "strategy" else node  # strategies are keyed by name
    return node.get("_target_")


def name_problems(group: str, root: Path = ROOT) -> list[str]:
    """Where conf/<group>/, plugins/<group>/ and the entry points disagree on a name."""
    eps = {name: value for (g, name), value in entry_points(root).items() if g == group}
    plugins = modules(group, root)
    problems = []
    for name in sorted(plugins - {n for g, n in PYTHON_ONLY if g == group}):
        if name not in eps:
            problems.append(f"plugins/{group}/{name}.py has no entry point \"{group}.{name}\" in pyproject.toml")
    for name, value in sorted(eps.items()):
        if name not in plugins:
            problems.append(f"entry point \"{group}.{name}\" has no module plugins/{group}/{name}.py")
        elif not value.startswith(f"plugins.{group}.{name}:"):
            problems.append(f"entry point \"{group}.{name}\" = {value!r} is not in plugins.{group}.{name}")
    if group in PRESET_GROUPS:
        for preset, constraints in confs(group, root).items():
            problems += [f"conf/{group}/{preset}.yaml: {key} is no {group} plugin" for key in constraints
                         if key not in eps]
    else:
        for name, node in confs(group, root).items():
            target = _target(group, name, node)
            if (group, name) in YAML_ONLY:
                if target not in {v.replace(":", ".") for v in eps.values()}:
                    problems.append(f"conf/{group}/{name}.yaml (YAML-only) targets {target}, no registered plugin")
            elif name not in eps:
                problems.append(f"conf/{group}/{name}.yaml has no entry point \"{group}.{name}\"")
            elif target != eps[name].replace(":", "."):
                problems.append(f"conf/{group}/{name}.yaml targets {target}, its entry point {eps[name]}")
        problems += [f"plugin {group}.{name} has no conf/{group}/{name}.yaml" for name in sorted(eps)
                     if name not in confs(group, root)]
    return problems


@pytest.mark.parametrize("group", STAGES)
def test_15_8_conf_file_plugin_module_and_entry_point_share_one_name(group):
    problems = name_problems(group)
    assert not problems, "\n".join(problems)


def test_15_8_a_name_that_differs_between_conf_plugin_and_entry_point_is_named(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project.entry-points."robo_trader.plugins"]\n'
        '"execution.twap" = "plugins.execution.twap:TWAP"\n'
        '"execution.vwap" = "plugins.execution.volume:VWAP"\n'
        '"risk.max_weight" = "plugins.risk.max_weight:MaxWeight"\n')
    for name in ("twap", "volume", "pov"):
        (tmp_path / "plugins" / "execution").mkdir(parents=True, exist_ok=True)
        (tmp_path / "plugins" / "execution" / f"{name}.py").write_text("")
    (tmp_path / "plugins" / "risk").mkdir()
    (tmp_path / "plugins" / "risk" / "max_weight.py").write_text("")
    (tmp_path / "conf" / "execution").mkdir(parents=True)
    (tmp_path / "conf" / "execution" / "twap.yaml").write_text("_target_: plugins.execution.twap.TWAP\n")
    (tmp_path / "conf" / "execution" / "iceberg.yaml").write_text("_target_: plugins.execution.iceberg.Iceberg\n")
    (tmp_path / "conf" / "risk").mkdir()
    (tmp_path / "conf" / "risk" / "default.yaml").write_text("max_weight: 0.2\nmax_wieght: 0.1\n")
    assert name_problems("execution", tmp_path) == [
        'plugins/execution/pov.py has no entry point "execution.pov" in pyproject.toml',
        'plugins/execution/volume.py has no entry point "execution.volume" in pyproject.toml',
        'entry point "execution.vwap" has no module plugins/execution/vwap.py',
        'conf/execution/iceberg.yaml has no entry point "execution.iceberg"',
        "plugin execution.vwap has no conf/execution/vwap.yaml"]
    assert name_problems("risk", tmp_path) == ["conf/risk/default.yaml: max_wieght is no risk plugin"]


def test_15_8_the_documented_exceptions_are_still_exceptions():
    eps = entry_points()
    for group, name in YAML_ONLY:
        assert name not in modules(group) and (group, name) not in eps, (group, name)
        assert name in confs(group), f"conf/{group}/{name}.yaml is gone: drop it from YAML_ONLY"
    for group, name in PYTHON_ONLY:
        assert name in modules(group) and (group, name) not in eps, (group, name)
        assert name not in confs(group), (group, name)


@pytest.mark.slow
def test_15_8_every_experiment_preset_runs_in_one_multirun(tmp_path):
    presets = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
    assert len(presets) >= 3, presets
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "experiment=glob(*)",
                           f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${hydra.job.override_dirname}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    done = {p.parent.name: json.loads(p.read_text()) for p in tmp_path.glob("*/metrics.json")}
    assert sorted(done) == [f"experiment={name}" for name in presets], proc.stdout
    for name, metrics in done.items():
        assert metrics["sharpe"] == metrics["sharpe"], f"{name}: sharpe is NaN"  # a real run, not an empty book


def test_15_10_no_module_in_pipeline_or_plugins_is_over_600_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for top in ("pipeline", "plugins") for p in (ROOT / top).rglob("*.py")}
    over = sorted(((n, path) for path, n in sizes.items() if n > MAX_LINES), reverse=True)
    assert not over, f"modules over {MAX_LINES} lines (split them by concern):\n" + "\n".join(
        f"{path}: {n}" for n, path in over)


def test_15_8_the_registry_reads_the_stage_names_from_the_repositorys_conf_folder():
    # pipeline/app/registry.py sits two packages deep: conf/ is three folders up, not two
    from pipeline.app import registry

    assert registry.CONF_DIR == ROOT / "conf"
    for group in STAGES:
        assert registry.config_files(group) == sorted(confs(group)), group
