"""Typed schemas generated from signatures, and building components with clear errors."""

from typing import Literal, Optional

import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import Strategy
from pipeline.core.errors import ConfigError
from pipeline.core.params import Component, build, check_rule, schema_for


class Toy(Component):
    rules = {"lookback": "[1, inf)", "weight": "(0, 1]"}

    def __init__(self, lookback: int = 20, weight: float = 0.5, mode: Literal["a", "b"] = "a",
                 name: Optional[str] = None, tags: list[str] = ["x"], need: int = 3):
        self.lookback, self.weight, self.mode, self.name, self.tags, self.need = (
            lookback, weight, mode, name, tags, need)


TARGET = f"{__name__}.Toy"


@pytest.mark.parametrize("value, rule, ok", [
    (1, "[1, inf)", True), (0, "[1, inf)", False), (1.0, "(0, 1]", True), (0.0, "(0, 1]", False),
    (float("nan"), "(0, 1]", False), (True, "[0, 1]", False), ("1", "[0, 1]", False), (None, "[0, 1]", True),
])
def test_rules(value, rule, ok):
    assert check_rule(value, rule) is ok


def test_schema_mirrors_the_signature():
    schema = OmegaConf.structured(schema_for(Toy))
    assert schema._target_ == TARGET
    assert schema.lookback == 20 and schema.mode == "a" and schema.name is None and list(schema.tags) == ["x"]
    with pytest.raises(Exception):
        schema.lookback = "abc"  # typed: int


def test_build_fills_defaults_and_converts():
    toy = build({"_target_": TARGET, "lookback": 5}, "g")
    assert toy.get_params() == {"lookback": 5, "weight": 0.5, "mode": "a", "name": None, "tags": ["x"], "need": 3}
    assert isinstance(toy.tags, list)


@pytest.mark.parametrize("node, message", [
    ({"lookbak": 5}, "g.lookbak is not a parameter of Toy; allowed: lookback, weight, mode, name, tags, need; did you mean 'lookback'?"),
    ({"lookback": 0}, "g.lookback=0 is not allowed: expected an int in [1, inf)"),
    ({"weight": 2.0}, "g.weight=2.0 is not allowed: expected a float in (0, 1]"),
    ({"mode": "c"}, "g.mode='c' is not allowed: expected one of a, b"),
    ({"lookback": "abc"}, "g.lookback='abc' is not allowed"),
])
def test_build_errors_name_the_key(node, message):
    with pytest.raises(ConfigError) as err:
        build({"_target_": TARGET, **node}, "g")
    assert message in str(err.value)


def test_unimportable_target_and_wrong_kind():
    with pytest.raises(ConfigError, match=r"g._target_: cannot import 'nope.Nope'"):
        build({"_target_": "nope.Nope"}, "g")
    with pytest.raises(ConfigError, match="is not a Strategy"):
        build({"_target_": TARGET}, "g", Strategy)


def test_constructor_value_errors_become_config_errors():
    with pytest.raises(ConfigError, match="strategy.momentum: skip"):
        build({"_target_": "plugins.strategy.momentum.Momentum", "lookback": 10, "skip": 10},
              "strategy.momentum")


def test_extra_runtime_values_only_where_accepted():
    class Seeded(Component):
        def __init__(self, seed: int = 0):
            self.seed = seed
    globals()["Seeded"] = Seeded
    assert build({"_target_": f"{__name__}.Seeded"}, "g", seed=11).seed == 11
    assert build({"_target_": f"{__name__}.Seeded", "seed": 3}, "g", seed=11).seed == 3
    assert build({"_target_": TARGET}, "g", seed=11).lookback == 20
