"""Overfitting statistics for a parameter sweep: the number of trials, the Deflated Sharpe Ratio
of the best configuration and the Probability of Backtest Overfitting.

Pure functions of return series (numpy; scipy for the normal distribution). Conventions:

- returns are simple returns per bar, the risk-free rate is 0;
- every Sharpe ratio here is *per period* (per bar, not annualised) unless a name says
  ``annual``: the formulas below are stated in per-period units, with ``T`` the number of bars;
- the sample Sharpe ratio is ``mean(r) / std(r, ddof=1)`` (as ``pipeline.results.metrics.sharpe``);
- skewness and kurtosis are the sample (biased, moment) estimates ``m3 / m2^1.5`` and
  ``m4 / m2^2`` with ``m_k = mean((r - mean(r))^k)``; the kurtosis is the plain (non-excess)
  one, 3 for a normal distribution.

References
----------
- Bailey, D. H. and M. Lopez de Prado (2012). "The Sharpe Ratio Efficient Frontier".
  Journal of Risk 15(2), 3-44. https://ssrn.com/abstract=1821643  (Probabilistic Sharpe Ratio)
- Bailey, D. H. and M. Lopez de Prado (2014). "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality". Journal of Portfolio Management
  40(5), 94-107. https://ssrn.com/abstract=2460551
- Bailey, D. H., J. M. Borwein, M. Lopez de Prado and Q. J. Zhu (2014). "Pseudo-Mathematics
  and Financial Charlatanism: The Effects of Backtest Overfitting on Out-of-Sample
  Performance". Notices of the AMS 61(5), 458-471. https://ssrn.com/abstract=2308659
  (expected maximum Sharpe ratio of N trials)
- Bailey, D. H., J. M. Borwein, M. Lopez de Prado and Q. J. Zhu (2015/2017). "The Probability
  of Backtest Overfitting". Journal of Computational Finance 20(4), 39-69 (2017); working paper
  2013-2015. https://ssrn.com/abstract=2326253  (CSCV and PBO)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

EULER_GAMMA = 0.5772156649015329  # Euler-Mascheroni constant
MAX_COMBINATIONS = 2_000_000  # C(S, S/2) above this is refused (S = 24 gives 2,704,156)
_ZERO_VAR_RTOL = 1e-12  # a variance below this fraction of the mean square counts as zero


# --------------------------------------------------------------------------------------------
# Sharpe ratio, Probabilistic Sharpe Ratio, expected maximum Sharpe ratio
# --------------------------------------------------------------------------------------------


def sharpe_ratio(returns: Any) -> Any:
    """Per-period Sharpe ratio ``SR = mean(r) / std(r, ddof=1)`` (Sharpe 1994, risk-free 0).

    Not annualised: multiply by ``sqrt(periods per year)`` (``sqrt(252)`` for daily bars) for
    the usual annual figure. A 1-D input gives a float; a 2-D input (T x N) gives one Sharpe
    ratio per column. NaN where it is undefined: fewer than 2 observations or zero variance
    (a variance below 1e-12 of the mean square ``mean(r^2)`` counts as zero: the rounding
    residue of a constant series).
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim not in (1, 2):
        raise ValueError(f"returns must be 1-D or 2-D (T x N), got shape {r.shape}")
    n = r.shape[0]
    if n < 2:
        out = np.full(r.shape[1:], np.nan)
    else:
        mean = r.mean(axis=0)
        sd = r.std(axis=0, ddof=1)
        ok = sd**2 > _ZERO_VAR_RTOL * np.mean(r**2, axis=0)  # constant up to rounding counts as 0
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(ok, mean / np.where(ok, sd, 1.0), np.nan)
    return float(out) if r.ndim == 1 else out


def _moments(r: np.ndarray) -> tuple[float, float]:
    """Sample skewness ``m3 / m2^1.5`` and (non-excess) kurtosis ``m4 / m2^2``."""
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 <= _ZERO_VAR_RTOL * float(np.mean(r**2)):
        return math.nan, math.nan
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float = 0.0, n_obs: int = 0,
                               skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Probabilistic Sharpe Ratio (Bailey and Lopez de Prado 2012, eq. 11):

        PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

    the probability that the true Sharpe ratio exceeds the benchmark ``SR*`` given an observed
    per-period Sharpe ratio ``SR`` over ``T = n_obs`` observations whose skewness is ``g3`` and
    (non-excess) kurtosis ``g4`` (3 for normal returns, where the denominator reduces to the
    familiar ``sqrt(1 + SR^2 / 2)``). Phi is the standard normal CDF. Both Sharpe ratios are
    per period (not annualised).

    Returns NaN where it is undefined: ``n_obs < 2``, a non-finite input, or a non-positive
    quantity under the square root (possible with extreme skewness).
    """
    from scipy.stats import norm

    radicand = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    values = (sr, sr_benchmark, skew, kurtosis)
    if n_obs < 2 or not all(math.isfinite(v) for v in values) or not radicand > 0:
        return math.nan
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(radicand)
    return float(norm.cdf(z))


def expected_max_sharpe(n_trials: float, var_sharpe: float) -> float:
    """Expected maximum of ``N`` Sharpe ratios whose true value is 0 (Bailey, Borwein, Lopez de
    Prado and Zhu 2014, Proposition 1; Bailey and Lopez de Prado 2014, eq. 2):

        E[max SR_n] ~= sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    with ``V`` the variance of the trials' Sharpe ratios, ``gamma`` ~= 0.5772 the
    Euler-Mascheroni constant, ``e`` Euler's number and Phi^-1 the standard normal quantile
    function. It is the rejection threshold ``SR_0`` of the Deflated Sharpe Ratio. The
    approximation is for large ``N`` (it comes from extreme value theory): it overstates the
    exact expectation by about 2 % at N = 10, 1 % at N = 100 and 0.4 % at N = 1000.

    ``N = 1`` gives 0 (no selection, the formula's limit is -inf). ``N`` may be fractional (an
    effective number of independent trials); ``N < 1`` or ``V < 0`` raise ValueError.
    """
    from scipy.stats import norm

    if not n_trials >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if not var_sharpe >= 0:
        raise ValueError(f"var_sharpe must be >= 0, got {var_sharpe}")
    if n_trials == 1:
        return 0.0
    z = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * norm.ppf(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(var_sharpe) * z)


# --------------------------------------------------------------------------------------------
# Deflated Sharpe Ratio
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeflatedSharpe:
    """Result of :func:`deflated_sharpe_ratio`; per-period Sharpe ratios.

    ``dsr`` is NaN when it is undefined, with ``reason`` saying why (otherwise ``reason`` is
    None): fewer than 2 finite returns, constant returns (zero variance: the Sharpe ratio and
    the moments are undefined), fewer than 2 finite trial Sharpe ratios when ``n_trials > 1``,
    or a non-positive quantity under the PSR's square root.
    """

    dsr: float
    sr_best: float
    sr0: float  # expected maximum Sharpe ratio of n_trials zero-skill trials
    n_trials: float
    var_sharpe: float  # variance (ddof=1) of the trials' Sharpe ratios
    skew: float
    kurtosis: float  # non-excess
    n_obs: int
    reason: str | None = None


def deflated_sharpe_ratio(returns_of_best: Any, trial_sharpes: Any, *,
                          n_trials: float | None = None) -> DeflatedSharpe:
    """Deflated Sharpe Ratio of the configuration picked as best among a sweep's trials
    (Bailey and Lopez de Prado 2014, eq. 2):

        DSR = PSR(SR_0) = Phi( (SR - SR_0) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )
        SR_0 = sqrt(V[SR_n]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    the probability that the best configuration's true Sharpe ratio is positive after
    correcting for selection among ``N`` trials (``SR_0`` is the Sharpe ratio the best of N
    zero-skill trials would show, see :func:`expected_max_sharpe`), for short samples (``T``)
    and for non-normal returns (skewness ``g3``, kurtosis ``g4`` of the best's returns).
    ``SR``, ``g3``, ``g4`` and ``T`` come from ``returns_of_best`` (per-period returns; NaN
    entries, e.g. a warm-up bar, are dropped); ``V[SR_n]`` is the sample variance (ddof=1) of
    the finite values in ``trial_sharpes`` (per-period Sharpe ratios of every trial, the best
    included). ``N`` is ``len(trial_sharpes)`` unless ``n_trials`` is given: the paper asks for
    the number of *independent* trials, so pass an effective number (e.g. from clustering the
    trials' returns) when many configurations are near duplicates; the raw count overstates
    N and so understates the DSR. With one trial ``SR_0 = 0`` and the DSR is the PSR against 0.

    Undefined inputs give ``dsr = NaN`` and a ``reason`` (see :class:`DeflatedSharpe`), never
    an exception; an empty ``trial_sharpes`` (a caller's error) raises ValueError.
    """
    return deflated_from_moments(own_moments(returns_of_best), trial_sharpes, n_trials=n_trials)


def own_moments(returns: Any) -> tuple[float, float, float, int]:
    """``(SR, skew, kurtosis, T)`` of one trial's per-period returns (NaN entries dropped):
    what the DSR needs of the chosen trial, as :func:`deflated_sharpe_ratio` computes it. A
    sweep store keeps them per job, computed from the exact returns."""
    r = np.asarray(returns, dtype=float).ravel()
    r = r[np.isfinite(r)]
    if r.size < 2:
        return math.nan, math.nan, math.nan, int(r.size)
    return sharpe_ratio(r), *_moments(r), int(r.size)


def deflated_from_moments(best: tuple[float, float, float, int], trial_sharpes: Any, *,
                          n_trials: float | None = None) -> DeflatedSharpe:
    """:func:`deflated_sharpe_ratio` from the chosen trial's :func:`own_moments`."""
    sr, skew, kurt, size = best
    trials = np.asarray(trial_sharpes, dtype=float).ravel()
    if trials.size == 0 and n_trials is None:
        raise ValueError("trial_sharpes is empty: pass the Sharpe ratio of every trial (the best included)")
    n = float(trials.size if n_trials is None else n_trials)
    if not n >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n}")
    finite = trials[np.isfinite(trials)]
    var = float(np.var(finite, ddof=1)) if finite.size > 1 else (0.0 if n == 1 else math.nan)

    sr0 = expected_max_sharpe(n, var) if math.isfinite(var) else math.nan
    result = dict(sr_best=sr, sr0=sr0, n_trials=n if n_trials is not None else int(n), var_sharpe=var,
                  skew=skew, kurtosis=kurt, n_obs=size)
    if size < 2:
        return DeflatedSharpe(dsr=math.nan, reason="fewer than 2 finite returns", **result)
    if not math.isfinite(sr):
        return DeflatedSharpe(dsr=math.nan, reason="constant returns: Sharpe ratio undefined", **result)
    if not math.isfinite(sr0):
        return DeflatedSharpe(dsr=math.nan, reason="fewer than 2 finite trial Sharpe ratios", **result)
    dsr = probabilistic_sharpe_ratio(sr, sr0, size, skew, kurt)
    if math.isnan(dsr):
        return DeflatedSharpe(dsr=math.nan, reason="1 - skew SR + (kurtosis - 1)/4 SR^2 <= 0", **result)
    return DeflatedSharpe(dsr=dsr, **result)


# --------------------------------------------------------------------------------------------
# Probability of Backtest Overfitting by combinatorially symmetric cross-validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBOResult:
    """Result of :func:`pbo`. Arrays have one entry per combination, in the order of
    ``itertools.combinations(range(n_splits), n_splits // 2)`` (``in_sample_blocks``)."""

    pbo: float
    logits: np.ndarray  # lambda_c = ln(omega_c / (1 - omega_c))
    relative_ranks: np.ndarray  # omega_c = rank / (N + 1)
    chosen: np.ndarray  # index of the in-sample best trial
    is_performance: np.ndarray  # its in-sample metric
    oos_performance: np.ndarray  # its out-of-sample metric
    in_sample_blocks: np.ndarray = field(repr=False)  # (C, S/2) block numbers
    degradation_slope: float  # OLS slope of oos_performance on is_performance
    degradation_intercept: float
    prob_oos_loss: float  # fraction of combinations where the chosen trial's OOS metric < 0
    n_splits: int
    n_trials: int
    n_obs_used: int
    n_dropped: int  # rows left off the end so that the S blocks are equal

    @property
    def n_combinations(self) -> int:
        return int(self.logits.size)


def pbo(returns_matrix: Any, n_splits: int = 16,
        metric: str | Callable[[np.ndarray], np.ndarray] = "sharpe") -> PBOResult:
    """Probability of Backtest Overfitting by combinatorially symmetric cross-validation
    (CSCV; Bailey, Borwein, Lopez de Prado and Zhu 2015/2017, section 2).

    ``returns_matrix`` is T x N: the per-period returns of N trials (configurations) on the same
    T dates. The procedure:

    1. split the rows, in time order, into ``S = n_splits`` (even) blocks of equal length
       ``T // S``; the last ``T mod S`` rows are dropped (``n_dropped``);
    2. for each of the ``C(S, S/2)`` ways of choosing S/2 blocks as the in-sample set J (the
       other S/2 blocks, in time order, are the out-of-sample set J-bar; e.g. 12,870 for S = 16):
       a. compute the metric of every trial on J and on J-bar;
       b. pick the in-sample best trial ``n*`` (the first one on ties);
       c. its relative rank out of sample ``omega_c = rank(n*) / (N + 1)``, where ``rank`` is
          its ascending rank among the N out-of-sample metrics (1 = worst, N = best; ties get
          their average rank), so ``omega_c`` lies in (0, 1);
       d. the logit ``lambda_c = ln(omega_c / (1 - omega_c))``: positive when the in-sample
          choice is above the out-of-sample median, 0 at the median, negative below;
    3. ``PBO = #{c : lambda_c <= 0} / C(S, S/2)``, the estimate of
       ``integral_{-inf}^{0} f(lambda) d lambda``: the probability that the configuration
       chosen in sample performs at or below the median out of sample.

    Also the performance degradation (section 2.3 of the paper): the OLS line
    ``oos_performance = intercept + slope * is_performance`` across combinations (a negative
    slope: the better it looks in sample, the worse it does out of sample) and the probability
    of loss, the fraction of combinations where the chosen trial's out-of-sample metric is < 0.

    ``metric``: ``"sharpe"`` (per-period Sharpe ratio, the default), ``"mean"`` (mean return),
    or a callable taking a (rows x N) array of returns and giving N scores (higher is better),
    evaluated combination by combination (slow: C x 2 calls). The built-in metrics are
    vectorised from per-block sums and sums of squares. A trial with zero variance on a subset
    (e.g. flat, never trading) has Sharpe 0 there if its mean is 0, and +/-inf by the sign of
    its mean otherwise (a riskless gain beats any risky one).

    Under pure noise the in-sample choice has a uniformly random out-of-sample rank, so PBO is
    about 1/2 (slightly more for odd N, since the median rank counts as overfit); a genuinely
    better trial drives PBO towards 0.

    Raises ValueError: ``n_splits`` odd or < 2, fewer than 2 trials, fewer rows than splits (or,
    for Sharpe, fewer than 2 rows per half), non-finite returns, or more than
    ``MAX_COMBINATIONS`` combinations.
    """
    x = np.asarray(returns_matrix, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (T dates x N trials), got shape {x.shape}")
    s = int(n_splits)
    if s != n_splits or s < 2 or s % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits}")
    t_all, n = x.shape
    if n < 2:
        raise ValueError(f"PBO needs at least 2 trials (columns), got {n}")
    if not np.all(np.isfinite(x)):
        raise ValueError("returns_matrix contains NaN or inf: align the trials on common dates first")
    block = t_all // s
    if block < 1:
        raise ValueError(f"{t_all} rows cannot be split into {s} blocks")
    half_rows = block * s // 2
    if metric == "sharpe" and half_rows < 2:
        raise ValueError(f"Sharpe ratio needs at least 2 rows per half: {t_all} rows in {s} blocks give {half_rows}")
    n_comb = math.comb(s, s // 2)
    if n_comb > MAX_COMBINATIONS:
        raise ValueError(f"n_splits={s} gives {n_comb} combinations (max {MAX_COMBINATIONS}); use fewer splits")

    used = block * s
    x = x[:used]
    if metric in ("sharpe", "mean"):
        sum1, sum2 = block_sums(x, s)
        return pbo_from_sums(sum1, sum2, block, metric, n_dropped=t_all - used)
    if not callable(metric):
        raise ValueError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")
    is_perf, oos_perf = _callable_metric(x, _masks(s), block, metric)
    parts = _choose(is_perf, oos_perf)
    return _result(parts, s, n, used, t_all - used)


def _masks(s: int) -> np.ndarray:
    """(C(S, S/2) x S): True on the blocks of each combination's in-sample half."""
    n_comb = math.comb(s, s // 2)
    blocks_in = np.array(list(combinations(range(s), s // 2)), dtype=np.int64).reshape(n_comb, s // 2)
    mask = np.zeros((n_comb, s), dtype=bool)
    mask[np.arange(n_comb)[:, None], blocks_in] = True
    return mask


def block_sums(x: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block sums and sums of squares (S x N) of the T x N returns (T a multiple of S):
    all CSCV's built-in metrics need, so a sweep's store is read once, a chunk of trials at a
    time (pipeline/research/store.py), without holding every trial's series."""
    xb = x.reshape(s, x.shape[0] // s, x.shape[1])
    return xb.sum(axis=1), np.einsum("sbn,sbn->sn", xb, xb)


def pbo_from_sums(sum1: np.ndarray, sum2: np.ndarray, block: int, metric: str = "sharpe",
                  n_dropped: int = 0) -> PBOResult:
    """:func:`pbo` from :func:`block_sums` (S x N, blocks of ``block`` rows), the combinations
    taken in chunks: memory is O(S x N) plus the per-combination results, never C x N."""
    s, n = sum1.shape
    if n < 2:
        raise ValueError(f"PBO needs at least 2 trials (columns), got {n}")
    from pipeline.research import cscv_kernel  # numba, loaded when a sweep is summarised

    mask = _masks(s)
    tot1, tot2 = sum1.sum(axis=0), sum2.sum(axis=0)
    rows = block * s // 2  # rows in each half
    step = max(1, (1 << 20) // max(n, 1))  # about 8 MB per array of block sums
    m = mask.astype(float)
    c = mask.shape[0]
    joined = (np.empty(c, np.int64), np.empty(c), np.empty(c), np.empty(c))
    for start in range(0, c, step):
        mc = m[start:start + step]
        cscv_kernel.choose(mc @ sum1, mc @ sum2, tot1, tot2, rows, metric == "sharpe", _ZERO_VAR_RTOL,
                           *(part[start:start + step] for part in joined))
    return _result(joined, s, n, block * s, n_dropped)


def _choose(is_perf: np.ndarray, oos_perf: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per combination: the in-sample best trial, its relative out-of-sample rank, its in- and
    out-of-sample metric."""
    n = is_perf.shape[1]
    chosen = np.argmax(is_perf, axis=1)
    rows = np.arange(is_perf.shape[0])
    oos_chosen = oos_perf[rows, chosen]
    below = np.sum(oos_perf < oos_chosen[:, None], axis=1)
    ties = np.sum(oos_perf == oos_chosen[:, None], axis=1)  # includes the chosen trial itself
    rank = below + (ties + 1) / 2.0
    return chosen, rank / (n + 1), is_perf[rows, chosen], oos_chosen


def _result(parts: tuple[np.ndarray, ...], s: int, n: int, used: int, n_dropped: int) -> PBOResult:
    chosen, omega, is_chosen, oos_chosen = parts
    logits = np.log(omega / (1 - omega))
    slope = intercept = math.nan
    ok = np.isfinite(is_chosen) & np.isfinite(oos_chosen)
    if ok.sum() >= 2 and np.ptp(is_chosen[ok]) > 0:
        slope, intercept = (float(v) for v in np.polyfit(is_chosen[ok], oos_chosen[ok], 1))
    return PBOResult(
        pbo=float(np.mean(logits <= 0)), logits=logits, relative_ranks=omega, chosen=chosen,
        is_performance=is_chosen, oos_performance=oos_chosen, in_sample_blocks=np.argwhere(_masks(s))[:, 1].reshape(-1, s // 2),
        degradation_slope=slope, degradation_intercept=intercept,
        prob_oos_loss=float(np.mean(oos_chosen < 0)), n_splits=s, n_trials=n,
        n_obs_used=used, n_dropped=n_dropped)


def _callable_metric(x: np.ndarray, mask: np.ndarray, block: int,
                     metric: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    s, n = mask.shape[1], x.shape[1]
    xb = x.reshape(s, block, n)
    is_perf = np.empty((mask.shape[0], n))
    oos_perf = np.empty_like(is_perf)
    for c, row in enumerate(mask):
        is_perf[c] = np.asarray(metric(xb[row].reshape(-1, n)), dtype=float)
        oos_perf[c] = np.asarray(metric(xb[~row].reshape(-1, n)), dtype=float)
    if np.isnan(is_perf).any() or np.isnan(oos_perf).any():
        raise ValueError("the metric returned NaN on some combination")
    return is_perf, oos_perf


# --------------------------------------------------------------------------------------------
# Summary for a sweep
# --------------------------------------------------------------------------------------------


def summary(returns_matrix: Any, names: Sequence[str] | None = None, *, n_splits: int = 16,
            periods_per_year: float = 252.0, best: int | str | None = None) -> dict[str, Any]:
    """Overfitting statistics across a sweep's trials, for the sweep callback.

    ``returns_matrix``: T x N per-period returns, one column per trial (a DataFrame's columns
    name the trials when ``names`` is None; otherwise they are numbered from 0), NaN where a
    trial has no return (before its first decision). Each trial's Sharpe ratio is taken over
    its own finite rows, the series its ``metrics.json`` Sharpe is computed from. ``best``
    (an index or a name) is the selected trial, the one the sweep's table ranks first; None
    selects the highest Sharpe ratio. Returns a dict of plain Python values (floats are NaN
    when undefined, with a ``*_reason``):

    - ``n_trials``; ``n_obs``: the best trial's rows; ``pbo_n_obs``: the rows every trial has;
    - ``best``: the best trial's name; ``sharpe`` its per-period Sharpe ratio and
      ``sharpe_annual`` = ``sharpe * sqrt(periods_per_year)``;
    - ``dsr``, ``sr0``, ``var_sharpe``, ``skew``, ``kurtosis``, ``dsr_reason``: its Deflated
      Sharpe Ratio on its own rows, with every trial counted (:func:`deflated_sharpe_ratio`);
    - ``pbo``, ``pbo_splits``, ``pbo_logit_median``, ``pbo_degradation_slope``,
      ``pbo_prob_oos_loss``, ``pbo_reason``: CSCV (:func:`pbo`) on the Sharpe ratio over the
      rows every trial has (CSCV compares the trials on the same dates). The number of splits
      is ``n_splits``, reduced to the largest even number leaving at least 2 rows per block on
      short histories; PBO is NaN for a single trial.
    """
    if names is None and hasattr(returns_matrix, "columns"):
        names = [str(c) for c in returns_matrix.columns]
    x = np.asarray(returns_matrix, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (T dates x N trials), got shape {x.shape}")
    names = [str(i) for i in range(x.shape[1])] if names is None else [str(v) for v in names]
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} names for {x.shape[1]} trials")
    own = [x[np.isfinite(x[:, j]), j] for j in range(x.shape[1])]
    x = x[~np.isnan(x).any(axis=1)]
    sharpes = np.array([sharpe_ratio(r) if r.size >= 2 else math.nan for r in own])
    chosen = _chosen(names, sharpes, best)
    splits = cscv_splits(x.shape[0], n_splits)
    return from_parts(names, sharpes, chosen, None if chosen is None else own_moments(own[chosen]), x.shape[0], splits,
                      lambda: pbo(x, splits), periods_per_year)


def cscv_splits(t: int, n_splits: int = 16) -> int:
    """The splits CSCV uses on ``t`` common rows: ``n_splits``, reduced to the largest even
    number leaving at least 2 rows per block on short histories."""
    return min(int(n_splits), (t // 2) // 2 * 2)


def _chosen(names: list[str], sharpes: np.ndarray, best: int | str | None) -> int | None:
    if best is not None:
        return names.index(str(best)) if isinstance(best, str) else int(best)
    return int(np.nanargmax(sharpes)) if np.isfinite(sharpes).any() else None


def from_parts(names: list[str], sharpes: np.ndarray, chosen: int | None,
               best: tuple[float, float, float, int] | None, t: int, splits: int,
               cscv: Callable[[], PBOResult], periods_per_year: float) -> dict[str, Any]:
    """:func:`summary` from its parts: every trial's Sharpe ratio on its own rows, the chosen
    trial's :func:`own_moments`, the number ``t`` of rows every trial has and CSCV on them (a
    callable, run only when there are enough trials and rows); the sweep store streams these."""
    n = len(names)
    out: dict[str, Any] = {"n_trials": n, "n_obs": 0, "pbo_n_obs": t, "best": None, "sharpe": math.nan,
                           "sharpe_annual": math.nan, "dsr": math.nan, "sr0": math.nan,
                           "var_sharpe": math.nan, "skew": math.nan, "kurtosis": math.nan,
                           "dsr_reason": None, "pbo": math.nan, "pbo_splits": None,
                           "pbo_logit_median": math.nan, "pbo_degradation_slope": math.nan,
                           "pbo_prob_oos_loss": math.nan, "pbo_reason": None}
    if n == 0:
        out["dsr_reason"] = out["pbo_reason"] = "no trials"
        return out
    if chosen is None:
        out["dsr_reason"] = "no trial has a defined Sharpe ratio (fewer than 2 rows or constant returns)"
    else:
        d = deflated_from_moments(best, sharpes)
        out.update(best=names[chosen], n_obs=d.n_obs, sharpe=d.sr_best,
                   sharpe_annual=d.sr_best * math.sqrt(periods_per_year),
                   dsr=d.dsr, sr0=d.sr0, var_sharpe=d.var_sharpe, skew=d.skew, kurtosis=d.kurtosis,
                   dsr_reason=d.reason)
    if n < 2:
        out["pbo_reason"] = "a single trial: nothing was selected"
    elif splits < 2:
        out["pbo_reason"] = f"{t} rows are too few for CSCV"
    else:
        try:
            p = cscv()
        except ValueError as exc:
            out["pbo_reason"] = str(exc)
        else:
            out.update(pbo=p.pbo, pbo_splits=splits, pbo_logit_median=float(np.median(p.logits)),
                       pbo_degradation_slope=p.degradation_slope, pbo_prob_oos_loss=p.prob_oos_loss)
    return out
