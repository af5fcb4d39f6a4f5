"""A new strategy is one YAML file: a new momentum variant, and a new scikit-learn model by
``_target_``, each dropped in a folder added to Hydra's search path and run by ``run.py``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.app import config
from pipeline.core.contracts import Strategy
from pipeline.core.params import build

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

MOMENTUM_VARIANT = """\
# two-month momentum, long the best two and short the worst two
two_month:
  _target_: plugins.strategy.momentum.Momentum
  lookback: 42
  skip: 2
  top_k: 2
  long_short: true
"""

NEW_MODEL = """\
# the ml strategy's features and walk-forward with a different estimator
extra_trees:
  _target_: plugins.strategy.ml.ML
  model:
    _target_: sklearn.ensemble.ExtraTreesRegressor
    n_estimators: 20
    max_depth: 3
    min_samples_leaf: 100
  lookbacks: [5, 21, 63]
  vol_windows: [21]
  refit: quarterly
  min_train: 252
  top_k: 3
"""


def run(tmp_path: Path, name: str, *extra: str) -> Path:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), f"hydra.searchpath=[file://{tmp_path}]",
                           f"strategy={name}", f"out_dir={out}", "progress=false", *extra],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "metrics.json").is_file()
    return out


def test_a_momentum_variant_from_a_yaml_file_alone(tmp_path):
    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "two_month.yaml").write_text(MOMENTUM_VARIANT)
    out = run(tmp_path, "two_month", "data.start=2015-01-01", "risk=none")
    weights = pd.read_csv(out / "weights.csv", index_col=0)
    held = weights.select_dtypes("number")
    assert ((held > 0).sum(axis=1) == 2).all() and ((held < 0).sum(axis=1) == 2).all()
    resolved = json.loads((out / "provenance.json").read_text())
    assert "two_month" in json.dumps(resolved)


def test_a_new_model_by_target_from_a_yaml_file_alone(tmp_path):
    (tmp_path / "strategy").mkdir()
    (tmp_path / "strategy" / "extra_trees.yaml").write_text(NEW_MODEL)
    out = run(tmp_path, "extra_trees", "data.start=2012-01-01")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_trades"] > 0


@pytest.mark.parametrize("name", ["fast_momentum", "ml_forest"])
def test_the_shipped_examples_build(name):
    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"strategy={name}"])
    strategy = build(cfg.strategy[name], f"strategy.{name}", Strategy, seed=7)
    if name == "fast_momentum":
        assert (strategy.lookback, strategy.skip, strategy.top_k) == (63, 5, 3)
    else:
        from sklearn.ensemble import RandomForestClassifier

        assert isinstance(strategy.model, RandomForestClassifier) and strategy.seed == 7
