"""Walk-forward selection on hand-made candidate returns."""

import numpy as np
import pandas as pd
import pytest

from pipeline.research import walkforward as wf
from pipeline.core.errors import ConfigError

INDEX = (pd.bdate_range("2020-01-01", periods=400) + pd.Timedelta(hours=16)).tz_localize("America/New_York")


def test_folds_leave_the_embargo_between_train_and_test():
    folds = wf.folds(400, first=10, train=100, test=50, embargo=5)
    assert folds[0] == (10, 110, 115, 165)
    for a, b, c, d in folds:
        assert b - a == 100 and c - b == 5 and d <= 400
    assert [f[2] for f in folds] == list(range(115, 400, 50))


def test_the_better_training_candidate_is_chosen_and_only_its_test_returns_stitched():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (400, 2))
    returns = noise.copy()
    returns[:200, 0] += 0.004   # candidate 0 is good early
    returns[200:, 1] += 0.004   # candidate 1 is good late
    spec = {"train": 100, "test": 50, "embargo": 0, "metric": "sharpe"}
    result = wf.evaluate(returns, INDEX, spec, first=0)
    folds = result["folds"]
    assert folds["candidate"].tolist()[:2] == [0, 0]
    assert folds["candidate"].tolist()[-2:] == [1, 1]
    # every stitched return is exactly the chosen candidate's return on that bar
    np.testing.assert_array_equal(result["returns"], returns[100:, :][np.arange(300), result["chosen"]])


def test_a_choice_never_sees_its_test_window():
    """Changing returns inside the test windows cannot change which candidate was chosen."""
    rng = np.random.default_rng(1)
    returns = rng.normal(0.0005, 0.01, (400, 3))
    spec = {"train": 120, "test": 60, "embargo": 10, "metric": "sharpe"}
    base = wf.evaluate(returns, INDEX, spec, first=0)["folds"]["candidate"].tolist()
    for a, b, c, d in wf.folds(400, 0, 120, 60, 10):
        shocked = returns.copy()
        shocked[c:d] = rng.normal(0, 0.05, (d - c, 3))
        again = wf.evaluate(shocked, INDEX, spec, first=0)["folds"]
        row = [i for i, (s, _) in enumerate(zip(again["test_start"], again["candidate"])) if s == INDEX[c]][0]
        assert again["candidate"][row] == base[row]


def test_bad_specs_are_config_errors():
    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"strategy": {"momentum": {"lookback": 5}}})
    ok = {"grid": {"strategy.momentum.lookback": [1, 2]}, "train": 10, "test": 5}
    wf.parse(OmegaConf.create(ok), cfg, ("sharpe",))
    for bad, key in [({**ok, "grid": {"strategy.momentum.lookbak": [1]}}, "lookbak"),
                     ({**ok, "train": 0}, "train"), ({**ok, "metric": "luck"}, "metric"),
                     ({**ok, "tset": 5}, "tset")]:
        with pytest.raises(ConfigError, match=key):
            wf.parse(OmegaConf.create(bad), cfg, ("sharpe",))
