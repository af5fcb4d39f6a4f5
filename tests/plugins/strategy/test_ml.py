import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import build
from pipeline.core.schedule import decision_bars
from plugins.strategy.ml import ML

SMALL = dict(lookbacks=[5, 21, 63], vol_windows=[21], min_train=252, top_k=None)


def market(persistence: float, n: int = 20, T: int = 3000, seed: int = 11) -> MarketData:
    """Daily returns ``r_t = persistence * mean(r_{t-21..t-1}) + 1 % noise`` per symbol:
    with persistence > 0 the past month's return predicts the next month's (a planted,
    learnable component); with 0 the prices are pure random walks."""
    rng = np.random.default_rng(seed)
    eps = 0.01 * rng.standard_normal((T, n))
    r = np.zeros((T, n))
    for t in range(T):
        r[t] = persistence * r[max(0, t - 21): t].sum(axis=0) / 21 + eps[t]
    index = pd.bdate_range("2000-01-03", periods=T).tz_localize("America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{j:02d}" for j in range(n)),
                      close=100 * np.exp(np.cumsum(r, axis=0)))


def out_of_sample_hits(strategy: ML, data: MarketData) -> np.ndarray:
    """Did the sign of each score match the sign of the next ``horizon`` bars' excess return?
    Decisions every ``horizon`` bars so the evaluated windows do not overlap."""
    h = strategy.horizon
    at = np.arange(strategy.warmup(), data.n_bars - h - 1, h)
    score = strategy.signal(data, at)
    logp = np.log(data.close)
    fwd = logp[at + h] - logp[at]
    fwd -= fwd.mean(axis=1, keepdims=True)
    return np.sign(score) == np.sign(fwd)


@pytest.mark.parametrize("seed", [11, 12])
def test_beats_chance_out_of_sample_on_a_planted_component(seed):
    from scipy.stats import binomtest

    hits = out_of_sample_hits(ML(**SMALL), market(0.5, seed=seed))
    assert hits.mean() > 0.57
    assert binomtest(int(hits.sum()), hits.size, alternative="greater").pvalue < 1e-6


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_does_not_beat_chance_on_pure_noise(seed):
    """The leakage test: with nothing to learn, a walk-forward model that never sees a label
    overlapping its test period is right half the time."""
    from scipy.stats import binomtest

    hits = out_of_sample_hits(ML(**SMALL), market(0.0, seed=seed))
    assert abs(hits.mean() - 0.5) < 0.03
    assert binomtest(int(hits.sum()), hits.size).pvalue > 0.01


def test_a_classifier_from_config_beats_chance_too():
    node = OmegaConf.create({"_target_": "plugins.strategy.ml.ML", **SMALL, "refit": "quarterly",
                             "model": {"_target_": "sklearn.linear_model.LogisticRegression",
                                       "C": 0.1}})
    strategy = build(node, "strategy.ml", Strategy, seed=7)
    from sklearn.linear_model import LogisticRegression

    assert isinstance(strategy.model, LogisticRegression) and strategy.seed == 7
    hits = out_of_sample_hits(strategy, market(0.5, seed=11))
    assert hits.mean() > 0.56
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(NotFittedError):              # every fit was on a clone
        check_is_fitted(strategy.model)


def test_purged_training_rows():
    m = ML(horizon=21, embargo=5, sample_every=5, train_window=None, **{**SMALL, "min_train": 300})
    for r in (m.warmup(), m.warmup() + 17, 2000):
        s = m.train_bars(r)
        assert s.max() + m.horizon + m.embargo <= r    # every label ends before the fit
        assert s.min() >= m.feature_warmup() and (s % 5 == 0).all()
    capped = ML(train_window=400, **SMALL).train_bars(2000)
    assert capped.min() >= 2000 - 21 - 5 - 400 + 1
    assert len(m.train_bars(m.warmup())) * 5 >= m.min_train - 5


def test_labels_are_forward_excess_log_returns():
    data = market(0.0, n=4, T=300)
    y = ML(horizon=10, **SMALL).labels(data)
    logp = np.log(data.close)
    fwd = logp[10:] - logp[:-10]
    np.testing.assert_allclose(y[:-10], fwd - fwd.mean(axis=1, keepdims=True), atol=1e-12)
    assert np.isnan(y[-10:]).all()


@pytest.mark.parametrize("model", [None, {"_target_": "sklearn.ensemble.RandomForestRegressor",
                                          "n_estimators": 10, "max_depth": 3}])
def test_causal_with_top_k(model, sp500_0508, causal):
    from hydra.utils import instantiate

    def make():
        return ML(model=None if model is None else instantiate(model), lookbacks=[5, 21, 60],
                  vol_windows=[21], min_train=250, refit="monthly", top_k=3, long_short=True)
    at = decision_bars(sp500_0508.index, "weekly", first=make().warmup())
    sig = causal(make, sp500_0508, at, checks=6)
    assert ((sig == 1).sum(axis=1) == 3).all() and ((sig == -1).sum(axis=1) == 3).all()


def test_parameters_are_checked_against_each_other():
    with pytest.raises(ValueError, match="train_window.*min_train"):
        ML(train_window=100, min_train=200)
    with pytest.raises(ValueError, match="refit"):
        ML(refit="hourly")
    with pytest.raises(ValueError, match="model"):
        ML(model="sklearn.linear_model.Ridge")
