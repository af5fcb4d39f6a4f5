"""Every exit rule (registered, or a file of conf/exits/): a schema from its signature, levels
of the contract's shape and types, long and short mirrored, no look-ahead, one-line errors;
and the exits group as a user composes it."""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config, registry
from pipeline.app.runner import build_stages
from pipeline.core.contracts import ExitRule
from pipeline.core.errors import ConfigError
from pipeline.core.exits import EXIT_TYPES
from pipeline.core.params import build, schema_for
from pipeline.core.orders import OrderType

ROOT = Path(__file__).resolve().parents[3]
CONF = str(ROOT / "conf")
config.register()
# the installed package's entry points, and the group's files (a checkout not yet reinstalled)
NAMES = sorted(set(registry.registered()["exits"]) | set(registry.config_files("exits")) - {"none"})


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def make(name: str) -> ExitRule:
    node = _compose(f"exits={name}").exits[name]
    return build(node, f"exits.{name}", ExitRule)


@pytest.fixture(scope="module")
def market(sp500):
    return sp500.select(start="2015-01-01", end="2016-12-31")


def test_16_1_the_group_lists_the_four_rules_and_none():
    assert registry.config_files("exits") == ["none", "stop_loss", "take_profit", "time_stop", "trailing_stop"]
    assert "exits" in registry.STAGES
    assert _compose().exits == {}  # the default: none


def test_16_1_every_rule_is_registered_under_its_file_name_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    for name in NAMES:
        cls = type(make(name))
        assert f'"exits.{name}" = "{cls.__module__}:{cls.__name__}"' in text


@pytest.mark.parametrize("name", NAMES)
def test_16_1_contract_schema_levels_and_mirror(name, market):
    rule = make(name)
    assert set(schema_for(type(rule)).__dataclass_fields__) >= {"sleeves", "cooldown"}
    rule.prepare(market)
    cols = np.arange(market.n_symbols)
    bar = np.full(cols.size, market.n_bars - 1)
    entry = market.close[-1]
    long, short = rule.levels(np.ones(cols.size), entry, bar, cols), rule.levels(-np.ones(cols.size), entry, bar, cols)
    assert long.type in EXIT_TYPES and long.type is short.type and long.rule == name
    for lv in (long, short):
        for field in ("stop", "limit", "trail_amount", "trail_percent", "after"):
            value = getattr(lv, field)
            assert value is None or np.shape(value) == (cols.size,), field
    # the level in force at entry: a long's stop below, a short's above, by the same distance
    up, down = long.trigger(np.ones(cols.size), entry), short.trigger(-np.ones(cols.size), entry)
    if long.type is OrderType.MARKET_ON_CLOSE:
        assert np.isnan(up).all() and (long.after >= 1).all()
        return
    below = long.type is not OrderType.LIMIT
    assert np.isfinite(up).all() and ((up < entry) if below else (up > entry)).all()
    np.testing.assert_allclose(entry - up, down - entry, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_16_1_contract_levels_read_no_data_after_the_entry_decision(name, market):
    full, cut = make(name), make(name)
    t = 300
    full.prepare(market)
    cut.prepare(market.select(end=market.index[t]))
    cols = np.arange(market.n_symbols)
    args = (np.ones(cols.size), market.close[t], np.full(cols.size, t), cols)
    a, b = full.levels(*args), cut.levels(*args)
    for field in ("stop", "limit", "trail_amount", "trail_percent", "after"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("name", NAMES)
def test_16_1_contract_a_bad_parameter_is_one_line_naming_the_key(name):
    key = "bars" if name == "time_stop" else "pct"
    with pytest.raises(ConfigError) as err:
        build_stages(_compose(f"exits={name}", f"exits.{name}.{key}=-1"))
    assert str(err.value).startswith(f"exits.{name}") and "\n" not in str(err.value)


def test_16_1_a_list_composes_several_rules_keyed_by_name():
    stages = build_stages(_compose("exits=[stop_loss,take_profit]", "exits.stop_loss.pct=0.08"))
    assert list(stages.exits) == ["stop_loss", "take_profit"]
    assert stages.exits["stop_loss"].pct == 0.08 and stages.exits["take_profit"].pct == 0.2


@pytest.mark.parametrize("overrides, says", [
    # a negative percentage: what would put a long's stop above its entry
    (["exits=stop_loss", "exits.stop_loss.pct=-0.05"], "exits.stop_loss.pct=-0.05: must be a positive number"),
    (["exits=stop_loss", "exits.stop_loss.pct=1.5"], "exits.stop_loss.pct=1.5: a fraction below 1"),
    (["exits=trailing_stop", "exits.trailing_stop.pct=null", "exits.trailing_stop.amount=0"],
     "exits.trailing_stop.amount=0.0: must be a positive number"),
    (["exits=take_profit", "exits.take_profit.atr=2"], "exits.take_profit: set exactly one of pct or atr"),
    (["exits=stop_loss", "exits.stop_loss.sleeves=[fast]"],
     "exits.stop_loss.sleeves names ['fast'], which are not sleeves; sleeves here: momentum"),
    (["exits=stop_loss", "exits.stop_loss.cooldown=0"], "exits.stop_loss.cooldown=0: a whole number of bars"),
    (["exits=stop_loss", "+exits.stop_loss.pct_stop=0.1"], "exits.stop_loss.pct_stop is not a parameter"),
])
def test_16_bad_input_one_line_before_any_work(overrides, says):
    with pytest.raises(ConfigError) as err:
        build_stages(_compose(*overrides))  # builds the stages only: no data is read
    assert str(err.value).startswith(says) and "\n" not in str(err.value)
