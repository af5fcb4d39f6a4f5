"""Issue 20.1, 20.2, 20.6 (its memory) and its bad input: the factor-expression language and strategy."""

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from scipy.stats import rankdata

from pipeline.app import config
from pipeline.core.contracts import Strategy
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.market import MarketData
from pipeline.core.params import build
from plugins.strategy import _ops
from plugins.strategy._expr import compile_formula
from plugins.strategy.expression import Expression
from plugins.strategy.ml import ML

ROOT = Path(__file__).resolve().parents[3]


def market(t=400, n=6, seed=3, nan=True) -> MarketData:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (t, n)), axis=0))
    if nan:
        close[:40, 1] = np.nan       # a late listing
        close[200, 2] = np.nan       # a missing bar
    spread = np.abs(rng.normal(0, 0.01, (t, n))) * close
    index = pd.date_range("2001-01-01", periods=t, freq="B", tz="America/New_York") + pd.Timedelta(hours=16)
    return MarketData(index=index, symbols=tuple(f"S{i}" for i in range(n)), close=close,
                      open=close * (1 + rng.normal(0, 0.005, (t, n))), high=close + spread,
                      low=close - spread, volume=rng.integers(1_000, 100_000, (t, n)).astype(float))


@pytest.mark.parametrize("formula, column, words", [
    ("rank(ts_maen(returns, 21))", 6, "unknown operator 'ts_maen'; did you mean 'ts_mean'?"),
    ("ts_mean(returns)", 1, "ts_mean takes 2 arguments (ts_mean(x, n)), got 1"),
    ("ts_corr(close, volume, 5, 2)", 1, "ts_corr takes 3 arguments"),
    ("ts_mean(retruns, 5) * 2", 9, "unknown field 'retruns'"),
    ("close - ts_delay(close, -1)", 25, "delay -1 is negative and would read the future"),
    ("ts_delta(close, -5)", 17, "look-ahead"),
    ("ts_mean(close, -20)", 16, "would read the future"),
    ("close.shift(-1)", 6, "attribute access is not allowed"),
    ("__import__('os').system('ls')", 12, "unexpected \"'\""),
    ("ts_mean(close, volume)", 16, "must be a number written in the formula"),
    ("rank(close", 11, "expected ')', found the end"),
])
def test_20_1_a_bad_formula_is_one_line_naming_its_column(formula, column, words):
    with pytest.raises(ValueError) as err:
        compile_formula(formula, where="score")
    text = str(err.value)
    assert "\n" not in text and words in text and f"column {column}:" in text, text
    assert text.startswith(f"score {formula!r}, column {column}: ")


def test_20_1_errors_come_from_the_config_before_any_data_is_read():
    node = {"_target_": "plugins.strategy.expression.Expression", "score": "rank(ts_sum(close, 0))"}
    with pytest.raises(ConfigError, match=r"strategy\.mine: score 'rank\(ts_sum\(close, 0\)\)', "
                                          r"column 20: ts_sum: window 0 must be a whole number"):
        build(node, "strategy.mine", Strategy)


def test_20_1_the_grammar_follows_precedence_and_the_ternary():
    data = market(nan=False)
    c = data.close
    got = compile_formula("-close ^ 2 * 3 + 1 < 0 ? 1 : close > 50 ? 2 : 3").evaluate(data)
    want = np.where(-(c ** 2) * 3 + 1 < 0, 1.0, np.where(c > 50, 2.0, 3.0))
    np.testing.assert_array_equal(got, want)
    two = compile_formula("2 ^ 3 ^ 2 - 10 - 4 / 2 / 2").evaluate(data)
    assert np.all(two == 2 ** 9 - 10 - 1)


def test_20_1_operators_equal_pandas_on_a_panel_with_gaps():
    data = market()
    x, y = (pd.DataFrame(a) for a in (data.close, data.volume))
    r = x.pct_change(fill_method=None)

    def ev(formula):
        return compile_formula(formula).evaluate(data)

    def wma(a):
        w = np.arange(1, a.size + 1)
        return (a * w).sum() / w.sum()

    cases = {
        "ts_mean(close, 10)": x.rolling(10).mean(), "ts_sum(returns, 7)": r.rolling(7).sum(),
        "ts_std(returns, 21)": r.rolling(21).std(), "ts_min(close, 5)": x.rolling(5).min(),
        "ts_max(close, 5)": x.rolling(5).max(), "ts_rank(close, 9)": x.rolling(9).rank(pct=True),
        "ts_corr(close, volume, 12)": x.rolling(12).corr(y), "ts_cov(close, volume, 12)": x.rolling(12).cov(y),
        "ts_delta(close, 3)": x - x.shift(3), "ts_delay(close, 4)": x.shift(4),
        "ts_argmax(close, 6)": x.rolling(6).apply(np.argmax, raw=True) + 1,
        "ts_argmin(close, 6)": x.rolling(6).apply(np.argmin, raw=True) + 1,
        "decay_linear(close, 8)": x.rolling(8).apply(wma, raw=True),
        "ewm(close, 10)": x.ewm(span=10, min_periods=10).mean(),
        "rank(returns)": r.rank(axis=1, pct=True), "demean(close)": x.sub(x.mean(axis=1), axis=0),
        "zscore(close)": x.sub(x.mean(axis=1), axis=0).div(x.std(axis=1, ddof=0), axis=0),
        "scale(returns, 2)": r.mul(2).div(r.abs().sum(axis=1), axis=0),
        "winsorize(returns, 0.2)": r.clip(r.quantile(0.2, axis=1), r.quantile(0.8, axis=1), axis=0),
        "abs(returns) + sign(returns) + log(close) + sqrt(volume)":
            r.abs() + np.sign(r) + np.log(x) + np.sqrt(y),
        "where(returns > 0, close, volume)": x.where(r > 0, y).where(r.notna()),
    }
    for formula, ref in cases.items():
        got, want = ev(formula), ref.to_numpy(dtype=float)
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want), err_msg=formula)
        ok = np.isfinite(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-10, atol=1e-12, err_msg=formula)


def test_20_1_group_neutral_by_a_sector_mapping():
    data = market(nan=False)
    groups = {"S0": "a", "S1": "a", "S2": "b", "S3": "b", "S4": "b", "S5": "c"}
    s = Expression(score="group_demean(returns)", groups=groups, rule="score", long_short=True)
    out = s.scores(data)[1:]
    for members in ([0, 1], [2, 3, 4], [5]):
        np.testing.assert_allclose(out[:, members].sum(axis=1), 0.0, atol=1e-15)
    ranks = Expression(score="group_rank(close)", groups=groups).scores(data)
    assert set(np.unique(ranks[:, 5])) == {1.0} and set(np.unique(ranks[:, :2])) == {0.5, 1.0}
    with pytest.raises(ValueError, match="give groups"):
        Expression(score="group_rank(close)")
    with pytest.raises(DataError, match="no group for S5"):
        Expression(score="group_rank(close)", groups={k: v for k, v in groups.items() if k != "S5"}).scores(data)


def test_20_1_position_rules_on_a_hand_case():
    score = np.array([[0.3, -0.2, np.nan, 0.9, -0.8, 0.1]])
    rules = {
        ("top_k", False): [0, 0, 0, 1, 0, 0], ("top_k", True): [0, 0, 0, 1, -1, 0],
        ("quantiles", True): [0, 0, 0, 1, -1, 0], ("threshold", True): [1, 0, 0, 1, -1, 0],
        ("sign", False): [1, 0, 0, 1, 0, 1], ("sign", True): [1, -1, 0, 1, -1, 1],
        ("score", True): [0.3, -0.2, 0, 0.9, -0.8, 0.1],
    }
    for (rule, ls), want in rules.items():
        s = Expression(score="close", rule=rule, top_k=1, quantile=0.2, upper=0.2, lower=-0.5,
                       long_short=ls)
        np.testing.assert_array_equal(s.positions(score)[0], want, err_msg=rule)


def test_20_1_the_issue_example_runs_on_the_default_data(sp500):
    s = Expression(score="rank(ts_mean(returns, 252) - ts_mean(returns, 21)) * (ts_std(returns, 63) < 0.4)",
                   top_k=5)
    assert s.warmup() == 252
    at = np.arange(300, sp500.n_bars, 21)
    sig = s.signal(sp500, at)
    assert ((sig == 1).sum(axis=1) == 5).all()


def test_20_bad_input_division_log_and_long_windows_are_no_position_never_an_error():
    data = market()
    data.close[100:110, 3] = 0.0    # log(0) and a division by a zero close
    at = np.arange(0, data.n_bars)
    s = Expression(score="log(close - 49) / (close - ts_delay(close, 1)) + ts_mean(returns, 5000)",
                   rule="sign")
    short = data.view(300)            # history shorter than the 5000-bar window: flat, no error
    assert not s.signal(short, np.arange(300)).any()
    s = Expression(score="log(close - 49) + 1 / ts_delta(close, 1)", rule="sign", long_short=True)
    sig = s.signal(data, at)
    x = s.scores(data)
    assert np.isnan(x).any() and np.isfinite(x).any()
    assert (sig[~np.isfinite(x)] == 0).all() and np.isfinite(sig).all()


def test_20_bad_input_a_formula_nan_everywhere_is_an_error_naming_it():
    data = market()
    s = Expression(score="log(-close)")
    with pytest.raises(DataError, match=r"score 'log\(-close\)' is NaN on every bar"):
        s.signal(data, np.array([100, 200]))
    with pytest.raises(DataError, match="reads 'volume' but the data"):
        Expression(score="rank(volume)").signal(MarketData(data.index, data.symbols, data.close),
                                                np.array([10]))


def test_20_2_shared_features_feed_the_expression_strategy_and_the_ml_inputs(sp500):
    config.register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["strategy=[expression,ml_expressions]"])
    expr = build(cfg.strategy.expression, "strategy.expression", Strategy)
    ml = build(cfg.strategy.ml_expressions, "strategy.ml_expressions", Strategy, seed=7)
    assert expr.features == ml.expressions and "momentum_12_1" in ml.expressions
    data = sp500.select(start="2000-01-01", end="2006-12-31")
    X = ml.features(data)
    assert X.shape[2] == len(ml.expressions)
    for k, name in enumerate(ml.expressions):
        np.testing.assert_array_equal(X[:, :, k], compile_formula(ml.expressions[name]).evaluate(data))
    mom = Expression(score="momentum_12_1", features=ml.expressions, rule="score").scores(data)
    np.testing.assert_array_equal(mom, X[:, :, 0])
    at = np.arange(ml.warmup(), data.n_bars, 63)
    assert (ml.signal(data, at) == 1).sum() > 0
    assert isinstance(ml, ML) and ml.feature_warmup() == 252


def test_20_2_features_may_use_features_and_a_cycle_is_named():
    data = market(nan=False)
    feats = {"mom": "close / ts_delay(close, 5) - 1", "mom_z": "zscore(mom)"}
    got = Expression(score="mom_z * 2", features=feats, rule="score").scores(data)
    np.testing.assert_array_equal(got, compile_formula("zscore(close / ts_delay(close, 5) - 1) * 2").evaluate(data))
    with pytest.raises(ValueError, match="features a -> b -> a refer to each other in a cycle"):
        compile_formula("a", {"a": "b + 1", "b": "a * 2"})
    with pytest.raises(ValueError, match="feature 'close' shadows a field"):
        compile_formula("close", {"close": "open"})


def test_20_1_chunked_windows_equal_one_block(monkeypatch):
    data = market(t=300, n=4)
    whole = compile_formula("ts_corr(close, volume, 30) + ts_rank(close, 40)").evaluate(data)
    monkeypatch.setattr(_ops, "CHUNK", 97)
    np.testing.assert_array_equal(compile_formula("ts_corr(close, volume, 30) + ts_rank(close, 40)")
                                  .evaluate(data), whole)


def test_20_6_rank_equals_rankdata_with_ties_gaps_and_infinities():
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(size=(300, 17)), 1)          # many ties
    u = rng.random(x.shape)
    x[u < 0.1], x[(u >= 0.1) & (u < 0.13)], x[(u >= 0.13) & (u < 0.15)] = np.nan, np.inf, -np.inf
    x[7], x[8, 1:] = np.nan, np.nan                       # an empty row, a row of one value
    got = _ops.rank(x)
    want = np.full(x.shape, np.nan)
    for t, row in enumerate(x):
        ok = np.isfinite(row)
        want[t, ok] = rankdata(row[ok], method="average") / max(ok.sum(), 1)
    np.testing.assert_array_equal(got, want)


def _peak_panels(fn, like: np.ndarray) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / like.nbytes
    finally:
        tracemalloc.stop()


def test_20_6_five_operators_hold_few_panels_at_once():
    """A fresh panel costs page faults, most of the time of a cheap operator: the evaluator
    drops a subexpression once read (unless repeated or shared), rank copies nothing it need
    not (before: a peak of 10.2 panels, rank alone 6.2)."""
    data = market(t=2000, n=20)
    five = compile_formula("rank(ts_mean(returns, 21) / ts_std(returns, 63))")
    assert _peak_panels(lambda: five.evaluate(data), data.close) < 5.0
    assert _peak_panels(lambda: _ops.rank(data.close), data.close) < 3.0
    cache = {}
    np.testing.assert_array_equal(five.evaluate(data, cache=cache), five.evaluate(data))
    assert {n.value for n in cache} >= {"returns", "ts_mean", "ts_std", "/", "rank"}
