"""Every config option composes with Hydra and builds its stages (no data read)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from pipeline import config, registry
from pipeline.runner import build_stages

CONF = str(Path(__file__).resolve().parent.parent / "conf")
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
    if (group, option) == ("data", "csv"):
        overrides.append("data.path=prices.csv")  # a required key; no file is read here
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
