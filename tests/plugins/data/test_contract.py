"""Every data loader: the time contract, and its YAML file mirrors its signature."""

import inspect
import pathlib

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import DataSource
from pipeline.core.market import MarketData
from pipeline.core.params import build, import_target

CONF = pathlib.Path(__file__).resolve().parents[3] / "conf" / "data"
NAMES = ["sp500", "stocks", "csv", "duckdb", "synthetic"]


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"date": ["2024-01-02", "2024-01-03", "2024-01-04"],
                  "AAA": [1.0, 2.0, 3.0], "BBB": [np.nan, 5.0, 6.0]}).to_csv(path, index=False)
    return str(path)


def node(name: str, **overrides):
    root = OmegaConf.create({"seed": 7, "data": OmegaConf.load(CONF / f"{name}.yaml")})
    for key, value in overrides.items():
        root.data[key] = value
    return root.data


@pytest.mark.parametrize("name", NAMES)
def test_load_returns_tz_aware_strictly_increasing_index(name, csv_file):
    given = {"csv": {"path": csv_file}, "duckdb": {"query": f"SELECT * FROM read_csv('{csv_file}')"}}
    source = build(node(name, **given.get(name, {})), "data", DataSource)
    data = source.load()
    assert isinstance(data, MarketData) and data.n_bars >= 2
    assert data.index.tz is not None and data.index.is_monotonic_increasing and data.index.is_unique
    assert data.close.dtype == np.float64
    for j in range(data.n_symbols):  # NaN only before a symbol's first price
        col = data.close[:, j]
        assert not np.isnan(col[np.argmax(~np.isnan(col)):]).any()


@pytest.mark.parametrize("name", NAMES)
def test_yaml_lists_every_parameter_with_its_default(name):
    raw = OmegaConf.load(CONF / f"{name}.yaml")
    cls = import_target(raw["_target_"], "data")
    assert issubclass(cls, DataSource)
    assert [k for k in raw if k != "_target_"] == cls.param_names()
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
    values = OmegaConf.to_container(raw, resolve=False)
    for key in cls.param_names():
        if values[key] not in ("???", "${seed}"):  # required, or interpolated from the run
            assert values[key] == defaults[key], key


def test_synthetic_follows_the_run_seed():
    assert build(node("synthetic"), "data", DataSource).seed == 7
