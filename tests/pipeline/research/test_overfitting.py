"""Overfitting statistics against hand computations, Monte Carlo and a published example.

The references are written out here with scipy.stats and plain loops, independently of the
vectorised code in ``pipeline.research.overfitting``.
"""

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import norm

from pipeline.research import overfitting as of

GAMMA = 0.5772156649015329  # Euler-Mascheroni


def _sr0_by_hand(n, var):
    return math.sqrt(var) * ((1 - GAMMA) * norm.ppf(1 - 1 / n) + GAMMA * norm.ppf(1 - 1 / (n * math.e)))


# ---------------------------------------------------------------- Sharpe, PSR, expected max


def test_sharpe_ratio_textbook():
    r = [0.01, -0.02, 0.03, -0.01, 0.02]
    mean = sum(r) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in r) / 4)
    assert of.sharpe_ratio(r) == pytest.approx(mean / sd, rel=1e-12)
    two = np.column_stack([r, np.ones(5)])  # second column constant: undefined
    out = of.sharpe_ratio(two)
    assert out[0] == pytest.approx(mean / sd, rel=1e-12) and math.isnan(out[1])
    assert math.isnan(of.sharpe_ratio([0.01]))


def test_psr_by_hand():
    sr, sr_star, t, g3, g4 = 0.1, 0.02, 500, -0.5, 5.0
    z = (0.1 - 0.02) * math.sqrt(499) / math.sqrt(1 - (-0.5) * 0.1 + (5.0 - 1) / 4 * 0.1**2)
    assert of.probabilistic_sharpe_ratio(sr, sr_star, t, g3, g4) == pytest.approx(norm.cdf(z), rel=1e-12)
    # normal returns (g3 = 0, g4 = 3): the denominator is sqrt(1 + SR^2 / 2)
    z_normal = 0.08 * math.sqrt(499) / math.sqrt(1 + 0.1**2 / 2)
    assert of.probabilistic_sharpe_ratio(sr, sr_star, t) == pytest.approx(norm.cdf(z_normal), rel=1e-12)
    # at the benchmark the probability is one half
    assert of.probabilistic_sharpe_ratio(0.05, 0.05, 100, 1.0, 9.0) == pytest.approx(0.5)


def test_psr_undefined_is_nan():
    assert math.isnan(of.probabilistic_sharpe_ratio(0.1, 0.0, 1))
    # 1 - g3 SR + (g4 - 1)/4 SR^2 = 1 - 5 * 0.5 + 0.5 * 0.25 < 0
    assert math.isnan(of.probabilistic_sharpe_ratio(0.5, 0.0, 100, 5.0, 3.0))


def test_expected_max_sharpe_by_hand_and_one_trial():
    assert of.expected_max_sharpe(50, 0.3) == pytest.approx(_sr0_by_hand(50, 0.3), rel=1e-12)
    assert of.expected_max_sharpe(1, 0.3) == 0.0
    with pytest.raises(ValueError, match="n_trials"):
        of.expected_max_sharpe(0, 0.3)
    with pytest.raises(ValueError, match="var_sharpe"):
        of.expected_max_sharpe(10, -1.0)


@pytest.mark.parametrize("n, reps, rel", [(100, 20_000, 0.02), (1000, 4_000, 0.02),
                                          # the approximation is asymptotic: ~2.3 % high at N = 10
                                          (10, 50_000, 0.03)])
def test_expected_max_sharpe_against_monte_carlo(n, reps, rel):
    var = 0.04
    rng = np.random.default_rng(12345)
    simulated = math.sqrt(var) * rng.standard_normal((reps, n)).max(axis=1).mean()
    assert of.expected_max_sharpe(n, var) == pytest.approx(simulated, rel=rel)


# ---------------------------------------------------------------- Deflated Sharpe Ratio


def test_dsr_published_example():
    """Bailey and Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example.

    Inputs as recalled from the paper (not checked against its text here): N = 100 independent
    trials, variance of their annualised Sharpe ratios 1/2, best annualised Sharpe 2.5, T = 1250
    daily observations (5 years of 250 days), skewness -3, kurtosis 10. The paper reports (as
    recalled) E[max SR] ~= 0.1132 per day and DSR ~= 0.9004. The expected values are computed
    by hand below; the recalled figures are asserted only to their printed precision, and the
    hand computation lands on them independently.
    """
    n, var_annual, sr_annual, t, g3, g4, days = 100, 0.5, 2.5, 1250, -3.0, 10.0, 250
    sr, var = sr_annual / math.sqrt(days), var_annual / days  # per-day units
    sr0 = math.sqrt(var) * ((1 - GAMMA) * norm.ppf(1 - 1 / n) + GAMMA * norm.ppf(1 - 1 / (n * math.e)))
    dsr = norm.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))

    assert of.expected_max_sharpe(n, var) == pytest.approx(sr0, rel=1e-12)
    assert of.probabilistic_sharpe_ratio(sr, of.expected_max_sharpe(n, var), t, g3, g4) == pytest.approx(dsr, rel=1e-12)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_dsr_from_returns_by_hand():
    rng = np.random.default_rng(7)
    r = 0.0008 + 0.01 * rng.standard_t(4, 1500)  # fat-tailed daily returns
    trials = np.array([0.01, -0.02, 0.035, 0.005, 0.02, -0.01, 0.0, 0.015])
    sr = np.mean(r) / np.std(r, ddof=1)
    g3 = stats.skew(r)  # biased moment estimate
    g4 = stats.kurtosis(r, fisher=False)  # non-excess
    var = np.var(trials, ddof=1)
    sr0 = _sr0_by_hand(8, var)
    dsr = norm.cdf((sr - sr0) * math.sqrt(1500 - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))

    res = of.deflated_sharpe_ratio(r, trials)
    assert res.reason is None
    assert res.n_trials == 8 and res.n_obs == 1500
    assert res.sr_best == pytest.approx(sr, rel=1e-12)
    assert res.skew == pytest.approx(g3, rel=1e-10)
    assert res.kurtosis == pytest.approx(g4, rel=1e-10)
    assert res.var_sharpe == pytest.approx(var, rel=1e-12)
    assert res.sr0 == pytest.approx(sr0, rel=1e-12)
    assert res.dsr == pytest.approx(dsr, rel=1e-10)
    # an effective number of independent trials replaces the count
    res3 = of.deflated_sharpe_ratio(r, trials, n_trials=3)
    assert res3.sr0 == pytest.approx(_sr0_by_hand(3, var), rel=1e-12) and res3.dsr > res.dsr


def test_dsr_one_trial_is_psr_against_zero():
    rng = np.random.default_rng(1)
    r = 0.0005 + 0.01 * rng.standard_normal(300)
    res = of.deflated_sharpe_ratio(r, [of.sharpe_ratio(r)])
    assert res.sr0 == 0.0 and res.n_trials == 1 and res.reason is None
    expected = of.probabilistic_sharpe_ratio(res.sr_best, 0.0, 300, stats.skew(r), stats.kurtosis(r, fisher=False))
    assert res.dsr == pytest.approx(expected, rel=1e-12)


def test_dsr_falls_with_more_trials():
    rng = np.random.default_rng(2)
    r = 0.001 + 0.01 * rng.standard_normal(1000)
    dsrs = [of.deflated_sharpe_ratio(r, [0.0, 0.02], n_trials=k).dsr for k in (1, 10, 100, 1000)]
    assert all(a > b for a, b in zip(dsrs, dsrs[1:]))


def test_dsr_degenerate_inputs_give_nan_with_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        flat = of.deflated_sharpe_ratio(np.full(100, 0.001), [0.1, 0.2, 0.3])
        assert math.isnan(flat.dsr) and "constant" in flat.reason
        zero = of.deflated_sharpe_ratio(np.zeros(100), [0.1, 0.2])
        assert math.isnan(zero.dsr) and "constant" in zero.reason
        short = of.deflated_sharpe_ratio([0.01], [0.1, 0.2])
        assert math.isnan(short.dsr) and "fewer than 2" in short.reason
        no_var = of.deflated_sharpe_ratio([0.01, 0.02, -0.01], [np.nan, 0.1])
        assert math.isnan(no_var.dsr) and "trial Sharpe" in no_var.reason
    with pytest.raises(ValueError, match="trial_sharpes is empty"):
        of.deflated_sharpe_ratio([0.01, 0.02], [])
    # NaN entries (a warm-up bar) are dropped, not propagated
    r = np.array([np.nan, 0.01, -0.005, 0.02, 0.0, 0.01])
    res = of.deflated_sharpe_ratio(r, [0.1, 0.3])
    assert res.n_obs == 5 and res.dsr == pytest.approx(of.deflated_sharpe_ratio(r[1:], [0.1, 0.3]).dsr)


# ---------------------------------------------------------------- PBO by CSCV

# Three trials (a, b, c), S = 4 blocks of one row each, metric = mean (ranks as block sums).
HAND = np.array([[-3.0, 0.0, 3.0],   # block 0
                 [3.0, 2.0, 0.0],    # block 1
                 [-2.0, -3.0, 0.0],  # block 2
                 [-3.0, 3.0, 1.0]])  # block 3


def test_pbo_hand_enumerated_s4():
    """The C(4, 2) = 6 combinations worked by hand (sums over the two blocks):

    IS blocks | IS sums a, b, c | pick | OOS sums a, b, c | OOS rank | omega | lambda
    (0, 1)    |  0,  2,  3      | c    | -5,  0,  1       | 3        | 3/4   | ln 3
    (0, 2)    | -5, -3,  3      | c    |  0,  5,  1       | 2        | 2/4   | 0
    (0, 3)    | -6,  3,  4      | c    |  1, -1,  0       | 2        | 2/4   | 0
    (1, 2)    |  1, -1,  0      | a    | -6,  3,  4       | 1        | 1/4   | -ln 3
    (1, 3)    |  0,  5,  1      | b    | -5, -3,  3       | 2        | 2/4   | 0
    (2, 3)    | -5,  0,  1      | c    |  0,  2,  3       | 3        | 3/4   | ln 3

    lambda <= 0 in 4 of 6 combinations: PBO = 2/3 (the median rank counts as overfit).
    """
    res = of.pbo(HAND, n_splits=4, metric="mean")
    ln3 = math.log(3)
    assert res.n_combinations == 6
    np.testing.assert_array_equal(res.in_sample_blocks, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    np.testing.assert_array_equal(res.chosen, [2, 2, 2, 0, 1, 2])
    np.testing.assert_allclose(res.relative_ranks, [3 / 4, 2 / 4, 2 / 4, 1 / 4, 2 / 4, 3 / 4])
    np.testing.assert_allclose(res.logits, [ln3, 0, 0, -ln3, 0, ln3], atol=1e-15)
    assert res.pbo == pytest.approx(4 / 6)
    np.testing.assert_allclose(res.is_performance, np.array([3, 3, 4, 1, 5, 1]) / 2)
    np.testing.assert_allclose(res.oos_performance, np.array([1, 1, 0, -6, -3, 3]) / 2)
    assert res.prob_oos_loss == pytest.approx(2 / 6)
    slope, intercept = np.polyfit([3, 3, 4, 1, 5, 1], [1, 1, 0, -6, -3, 3], 1)  # units cancel in the slope
    assert res.degradation_slope == pytest.approx(slope)
    assert res.degradation_intercept == pytest.approx(intercept / 2)


def test_pbo_hand_s2():
    """S = 2: IS block 0 picks c (3); OOS block 1 is a=3, b=1, c=2, c ranks 2 of 3: omega 1/2,
    lambda 0. IS block 1 picks a (3); OOS block 0 is a=1, b=2, c=3: rank 1, omega 1/4,
    lambda ln(1/3). Both <= 0: PBO = 1."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    res = of.pbo(x, n_splits=2, metric="mean")
    np.testing.assert_array_equal(res.chosen, [2, 0])
    np.testing.assert_allclose(res.logits, [0.0, math.log(1 / 3)], atol=1e-15)
    assert res.pbo == 1.0


def test_relative_rank_convention():
    """omega = rank / (N + 1), rank ascending (1 = worst OOS, N = best), ties averaged."""
    # N = 4; IS (block 0) picks trial 3; OOS (block 1) trial 3 is the best of 4: omega = 4/5
    x = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    res = of.pbo(x, n_splits=2, metric="mean")
    assert res.chosen[0] == 3 and res.relative_ranks[0] == pytest.approx(4 / 5)
    assert res.logits[0] == pytest.approx(math.log(4))
    assert res.pbo == 0.0
    # OOS: trial 3 tied at the top with trial 2 -> ranks 3 and 4 share 3.5: omega 0.7
    x = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 3.0, 3.0]])
    res = of.pbo(x, n_splits=2, metric="mean")
    assert res.chosen[0] == 3 and res.relative_ranks[0] == pytest.approx(3.5 / 5)
    assert res.logits[0] == pytest.approx(math.log(0.7 / 0.3))
    # second combination: IS block 1 ties trials 2 and 3 -> the first (2) is picked; OOS block 0
    # has it at rank 3 of 4
    assert res.chosen[1] == 2 and res.relative_ranks[1] == pytest.approx(3 / 5)


def _pbo_brute_force(x, s):
    """Reference CSCV written with loops, np.std and scipy's average ranks."""
    t, n = x.shape
    block = t // s
    blocks = [x[i * block:(i + 1) * block] for i in range(s)]
    logits = []
    for J in itertools.combinations(range(s), s // 2):
        is_rows = np.vstack([blocks[i] for i in J])
        oos_rows = np.vstack([blocks[i] for i in range(s) if i not in J])
        is_sr = is_rows.mean(0) / is_rows.std(0, ddof=1)
        oos_sr = oos_rows.mean(0) / oos_rows.std(0, ddof=1)
        best = int(np.argmax(is_sr))
        omega = stats.rankdata(oos_sr)[best] / (n + 1)
        logits.append(math.log(omega / (1 - omega)))
    return np.array(logits)


def test_pbo_matches_brute_force_reference():
    rng = np.random.default_rng(11)
    x = 0.0002 * np.arange(5) + 0.01 * rng.standard_normal((203, 5))  # 203 = 6 * 33 + 5
    res = of.pbo(x, n_splits=6)
    assert res.n_dropped == 5 and res.n_obs_used == 198
    ref = _pbo_brute_force(x[:198], 6)
    np.testing.assert_allclose(res.logits, ref, rtol=1e-9)
    assert res.pbo == pytest.approx(np.mean(ref <= 0))


def test_callable_metric_matches_builtin():
    rng = np.random.default_rng(5)
    x = 0.01 * rng.standard_normal((96, 4))
    builtin = of.pbo(x, 8)
    custom = of.pbo(x, 8, metric=lambda r: r.mean(0) / r.std(0, ddof=1))
    np.testing.assert_allclose(custom.logits, builtin.logits)
    np.testing.assert_allclose(custom.is_performance, builtin.is_performance, rtol=1e-9)


def test_pbo_noise_is_about_one_half():
    """Pure noise: the in-sample pick's out-of-sample rank is uniform, so PBO ~ 1/2 (N even, no
    ties: exactly 1/2 in expectation). One sample's PBO varies a lot (the combinations share
    data), so average over 30 seeded samples."""
    values, slopes = [], []
    for seed in range(30):
        x = 0.01 * np.random.default_rng(seed).standard_normal((480, 10))
        res = of.pbo(x, n_splits=8)
        values.append(res.pbo)
        slopes.append(res.degradation_slope)
    assert 0.4 < np.mean(values) < 0.6
    assert np.median(slopes) < 0  # overfit selection: better in sample, worse out of sample


def test_pbo_genuine_edge_is_near_zero():
    rng = np.random.default_rng(3)
    x = 0.01 * rng.standard_normal((4000, 20))
    x[:, 7] += 0.0015  # daily Sharpe 0.15 (2.4 a year) among 19 zero-mean trials
    res = of.pbo(x, n_splits=16)
    assert res.n_combinations == 12870
    assert res.pbo < 0.05
    assert np.mean(res.chosen == 7) > 0.9
    assert np.median(res.logits) == pytest.approx(math.log(20), rel=1e-12)  # picked and best OOS


def test_pbo_flat_and_riskless_trials():
    """Zero variance: Sharpe 0 for a flat-at-zero trial, +inf for a constant gain."""
    rng = np.random.default_rng(4)
    x = 0.01 * rng.standard_normal((160, 4)) - 0.005
    x[:, 0] = 0.0  # never trades: Sharpe 0 beats the negative-drift trials
    res = of.pbo(x, n_splits=8)
    assert np.all(np.isfinite(res.logits)) and np.mean(res.chosen == 0) > 0.9
    x[:, 1] = 0.0001  # riskless gain: Sharpe +inf, always picked, always the best OOS
    res = of.pbo(x, n_splits=8)
    np.testing.assert_array_equal(res.chosen, 1)
    assert res.pbo == 0.0 and np.all(res.relative_ranks == 4 / 5)


def test_pbo_rejects_bad_inputs():
    x = np.zeros((64, 3))
    with pytest.raises(ValueError, match="even integer"):
        of.pbo(x, n_splits=5)
    with pytest.raises(ValueError, match="even integer"):
        of.pbo(x, n_splits=0)
    with pytest.raises(ValueError, match="at least 2 trials"):
        of.pbo(x[:, :1], n_splits=4)
    with pytest.raises(ValueError, match="cannot be split"):
        of.pbo(x[:3], n_splits=4)
    with pytest.raises(ValueError, match="2 rows per half"):
        of.pbo(x[:2], n_splits=2)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        of.pbo(bad, n_splits=4)
    with pytest.raises(ValueError, match="combinations"):
        of.pbo(np.zeros((64, 2)), n_splits=32)
    with pytest.raises(ValueError, match="metric"):
        of.pbo(x, n_splits=4, metric="sortino")


def test_pbo_drops_remainder_rows():
    rng = np.random.default_rng(8)
    x = 0.01 * rng.standard_normal((1003, 6))
    res = of.pbo(x, n_splits=10)
    assert res.n_dropped == 3
    np.testing.assert_array_equal(res.logits, of.pbo(x[:1000], n_splits=10).logits)


# ---------------------------------------------------------------- summary


def test_summary_for_a_sweep():
    rng = np.random.default_rng(9)
    x = 0.01 * rng.standard_normal((1500, 8))
    x[:, 2] += 0.001
    frame = pd.DataFrame(x, columns=[f"job{i}" for i in range(8)])
    frame.iloc[0] = np.nan  # a warm-up bar
    out = of.summary(frame)
    assert out["n_trials"] == 8 and out["n_obs"] == 1499 and out["best"] == "job2"
    sharpes = of.sharpe_ratio(x[1:])
    assert out["sharpe"] == pytest.approx(sharpes[2])
    assert out["sharpe_annual"] == pytest.approx(sharpes[2] * math.sqrt(252))
    assert out["dsr"] == pytest.approx(of.deflated_sharpe_ratio(x[1:, 2], sharpes).dsr)
    assert out["pbo"] == pytest.approx(of.pbo(x[1:], 16).pbo) and out["pbo_splits"] == 16
    assert out["dsr_reason"] is None and out["pbo_reason"] is None
    # the sweep callback's call: a plain array and a list of names
    assert of.summary(x[1:], list(frame.columns))["best"] == "job2"


def test_summary_degenerate():
    one = of.summary(np.arange(10.0)[:, None] / 100, ["only"])
    assert one["n_trials"] == 1 and one["best"] == "only" and math.isnan(one["pbo"])
    assert "single trial" in one["pbo_reason"] and one["sr0"] == 0.0
    short = of.summary(0.01 * np.random.default_rng(0).standard_normal((12, 3)))
    assert short["pbo_splits"] == 6 and math.isfinite(short["pbo"])  # 16 splits reduced to 6
    flat = of.summary(np.zeros((50, 3)))
    assert flat["best"] is None and math.isnan(flat["dsr"]) and "constant" in flat["dsr_reason"]
    with pytest.raises(ValueError, match="names"):
        of.summary(np.zeros((10, 2)), ["a"])


def test_17_3_the_compiled_cscv_choice_equals_numpy_on_every_combination():
    """pipeline/research/cscv_kernel.py against the same arithmetic written in numpy: the
    metric of every trial in and out of sample, the in-sample best, its out-of-sample rank;
    with flat trials (zero variance, zero mean and not) and exact ties among the trials."""
    from pipeline.research.cscv_kernel import choose

    rng = np.random.default_rng(3)
    x = rng.normal(0.0004, 0.01, size=(96, 30))
    x[:, 4] = 0.0           # flat at zero
    x[:, 7] = 0.001         # flat, positive mean
    x[:, 9] = x[:, 2]       # a tie with another trial
    s, rows = 8, 48
    sum1, sum2 = of.block_sums(x, s)
    mask = of._masks(s).astype(float)
    s1, s2 = mask @ sum1, mask @ sum2
    tot1, tot2 = sum1.sum(axis=0), sum2.sum(axis=0)

    def metric(a, b):
        mean = a / rows
        var = np.maximum(b - rows * mean**2, 0.0) / (rows - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sr = mean / np.sqrt(var)
        return np.where(var <= of._ZERO_VAR_RTOL * b / rows, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)), sr)

    expected = of._choose(metric(s1, s2), metric(tot1 - s1, tot2 - s2))
    c = mask.shape[0]
    got = (np.empty(c, np.int64), np.empty(c), np.empty(c), np.empty(c))
    choose(s1, s2, tot1, tot2, rows, True, of._ZERO_VAR_RTOL, *got)
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)
    assert np.isinf(got[2]).any()  # the flat positive trial wins some in-sample halves
