"""Every config option composes with Hydra and builds its stages (no data read)."""

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.app import registry
from pipeline.app.runner import build_stages

ROOT = Path(__file__).resolve().parent.parent
CONF = str(ROOT / "conf")
config.register()


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_default_config_builds():
    stages = build_stages(_compose())
    assert list(stages.strategies) == ["momentum"]
    assert [name for name, _ in stages.constraints] == ["max_weight", "max_gross_leverage"]


@pytest.mark.parametrize("group, option", [(g, o) for g in registry.STAGES if g != "risk"
                                           for o in registry.config_files(g)] +
                         [("risk", o) for o in registry.config_files("risk")])
def test_every_option_composes_and_builds(group, option):
    overrides = [f"{group}={option}"]
    if (group, option) in (("data", "csv"), ("data", "lobster")):
        overrides.append("data.path=prices.csv")  # a required key; no file is read here
    if (group, option) == ("data", "duckdb"):
        overrides.append("data.query='select 1'")  # likewise: nothing runs it here
    build_stages(_compose(*overrides))


def test_every_registered_plugin_has_a_schema_in_the_config_store():
    from hydra.core.config_store import ConfigStore

    repo = ConfigStore.instance().repo
    for stage, plugins in registry.registered().items():
        for name in plugins:
            assert f"{name}.yaml" in repo["schema"][stage], (stage, name)


def test_risk_order_is_declared_not_positional():
    cfg = _compose("risk.max_gross_leverage=0.5", "risk.max_weight=0.3")
    names = [n for n, _ in build_stages(cfg).constraints]
    assert names == ["max_weight", "max_gross_leverage"]
    cfg = _compose("risk.max_weight=null")
    assert [n for n, _ in build_stages(cfg).constraints] == ["max_gross_leverage"]


def test_13_8_experiment_presets_exist_and_set_the_groups_they_name():
    assert registry.config_files("experiment") == ["long_short", "multi_sleeve", "risk_parity_vwap"]
    stages = build_stages(_compose("experiment=risk_parity_vwap"))
    assert (type(stages.allocator).__name__, type(stages.algo).__name__) == ("RiskParity", "VWAP")
    stages = build_stages(_compose("experiment=long_short"))
    assert stages.strategies["momentum"].long_short is True
    assert [n for n, _ in stages.constraints][:2] == ["vol_target", "max_weight"]
    stages = build_stages(_compose("experiment=multi_sleeve"))
    assert list(stages.strategies) == ["momentum", "mean_reversion"]
    assert type(stages.portfolio.inner).__name__ == "RiskParity"
    assert stages.portfolio.caps == {"momentum": 0.7, "mean_reversion": 0.7}


def _fake_distribution(site, package, target):
    """An installed distribution as importlib.metadata finds it: a .dist-info folder."""
    info = site / f"{package.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\nstrategy.contrarian = {target}\n")


def test_13_11_one_plugin_name_from_two_packages_is_an_error_naming_both(tmp_path, monkeypatch):
    import subprocess
    import sys

    from pipeline.core.errors import ConfigError

    _fake_distribution(tmp_path, "alpha-signals", "alpha_signals:Contrarian")
    _fake_distribution(tmp_path, "beta-signals", "beta_signals.contrarian:Contrarian")
    expected = ("plugin strategy.contrarian is registered by two packages: alpha-signals "
                "(alpha_signals:Contrarian) and beta-signals (beta_signals.contrarian:Contrarian); "
                "uninstall one of them (pip uninstall <package>) or rename its entry point in "
                "robo_trader.plugins")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.registered.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            registry.registered()
        assert str(err.value) == expected
    finally:
        registry.registered.cache_clear()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    for command in (["-m", "pipeline.app.registry"], [str(ROOT / "run.py"), f"out_dir={tmp_path / 'out'}"]):
        proc = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=tmp_path,
                              timeout=120, env=env)
        assert proc.returncode == 2 and proc.stderr == f"robo-trader: config error: {expected}\n", command
    assert not (tmp_path / "out").exists()


def test_the_same_package_seen_twice_is_not_a_clash(tmp_path, monkeypatch):
    _fake_distribution(tmp_path / "a", "alpha-signals", "alpha_signals:Contrarian")
    _fake_distribution(tmp_path / "b", "alpha-signals", "alpha_signals:Contrarian")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    registry.registered.cache_clear()
    try:
        assert registry.target_path(registry.registered()["strategy"]["contrarian"]) == \
            "alpha_signals.Contrarian"
    finally:
        registry.registered.cache_clear()
