"""The operators of the factor-expression language (``plugins.strategy._expr``), on ``T x N``
float64 panels, vectorised over the whole panel.

Every operator is causal: its row ``t`` reads rows ``[0, t]`` only, through a trailing window
or a forward recursion, so a prefix of the data gives bit-identical rows. A window that is not
full (history too short, or a NaN inside it) gives NaN, as do a division by zero and the log of
a non-positive number; a NaN never becomes a position.

Conventions (the 101 Formulaic Alphas' words, Kakushadze 2016, appendix A):
``ts_std`` is the sample deviation (ddof 1), ``ts_rank`` the rank of today's value in its
window over the window length (ties averaged, in ``(0, 1]``), ``ts_argmax``/``ts_argmin`` the
position of the extreme in the window, 1 the oldest bar and ``n`` today (first one on ties),
``decay_linear`` weights ``n, n-1, ..., 1`` from today back, normalised; ``rank`` the
cross-sectional percentile (ties averaged, rank over the count of defined values), ``zscore``
uses the population deviation, ``scale(x, a)`` makes ``sum |x| = a`` per row,
``winsorize(x, q)`` clips each row to its ``q`` and ``1 - q`` quantiles, ``ewm(x, n)`` is the
exponential mean of span ``n`` (pandas ``adjust=True``). Fields: ``returns`` is
``close / close[t-1] - 1``, ``vwap`` the typical price ``(high + low + close) / 3`` (the data
has no intraday volume profile), ``adv<d>`` the mean of ``close * volume`` over ``d`` bars.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import bottleneck as bn
import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pipeline.core.market import MarketData

CHUNK = 1 << 21  # window elements per block: bounds the memory of the sliding-window operators


def panel(value, data: MarketData) -> np.ndarray:
    return np.full(data.close.shape, float(value)) if np.ndim(value) == 0 else value


def field(data: MarketData, name: str) -> np.ndarray:
    if name == "returns":
        close = data.close
        out = np.empty(close.shape)
        out[0] = np.nan
        np.divide(close[1:], close[:-1], out=out[1:])
        out[1:] -= 1.0
        return out
    if name == "vwap":
        return (data.high + data.low + data.close) / 3.0
    if name.startswith("adv"):
        return ts_mean(data.close * data.volume, int(name[3:]))
    return np.asarray(getattr(data, name), dtype=np.float64)


def _finite(x: np.ndarray) -> np.ndarray:
    """``x`` with NaN for its infinities, in place: every caller passes an array it has just
    made, and a new panel costs fresh pages (page faults are most of an operator's time)."""
    if np.ndim(x) == 0:
        return np.where(np.isfinite(x), x, np.nan)
    x[~np.isfinite(x)] = np.nan
    return x


def _compare(fn: Callable) -> Callable:
    def run(a, b):
        out = fn(a, b).astype(np.float64)
        return np.where(np.isnan(a) | np.isnan(b), np.nan, out)
    return run


def _logic(fn: Callable) -> Callable:
    def run(a, b):
        out = fn(np.asarray(a) != 0, np.asarray(b) != 0).astype(np.float64)
        return np.where(np.isnan(a) | np.isnan(b), np.nan, out)
    return run


BINARY = {
    "+": np.add, "-": np.subtract, "*": np.multiply,
    "/": lambda a, b: _finite(np.divide(a, b)),
    "^": lambda a, b: _finite(np.power(a, b)),
    "<": _compare(np.less), "<=": _compare(np.less_equal), ">": _compare(np.greater),
    ">=": _compare(np.greater_equal), "==": _compare(np.equal), "!=": _compare(np.not_equal),
    "&": _logic(np.logical_and), "&&": _logic(np.logical_and),
    "|": _logic(np.logical_or), "||": _logic(np.logical_or),
}


def binary(op: str, a, b):
    return BINARY[op](a, b)


def where(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(c), np.nan, np.where(c != 0, a, b))


# ---------------------------------------------------------------- time series

def _moving(fn: Callable) -> Callable:
    """A bottleneck moving-window function, NaN until ``n`` defined values fill the window: a
    forward recursion, 10x faster than pandas' rolling on a panel and, like it, causal."""
    def run(x, n):
        n = int(n)
        if n > x.shape[0]:
            return np.full(x.shape, np.nan)
        return fn(x, n, min_count=n, axis=0)
    return run


ts_mean = _moving(bn.move_mean)
ts_sum = _moving(bn.move_sum)
ts_min = _moving(bn.move_min)
ts_max = _moving(bn.move_max)
ts_std = _moving(functools.partial(bn.move_std, ddof=1))


def ts_delay(x, d):
    d = int(d)
    out = np.full(x.shape, np.nan)
    if d < x.shape[0]:
        out[d:] = x[: x.shape[0] - d]
    return out


def ts_delta(x, d):
    return x - ts_delay(x, d)


def ewm(x, n):
    return pd.DataFrame(x).ewm(span=n, min_periods=int(n)).mean().to_numpy()


def _windows(fn: Callable, n: int, *xs: np.ndarray) -> np.ndarray:
    """``fn`` over ``(rows, N, n)`` trailing windows of each ``x``, block by block; row ``t``
    of the result is ``fn`` of rows ``[t - n + 1, t]`` (NaN for ``t < n - 1``)."""
    n = int(n)
    t, m = xs[0].shape
    out = np.full((t, m), np.nan)
    if t < n:
        return out
    views = [sliding_window_view(x, n, axis=0) for x in xs]   # (t - n + 1, N, n)
    step = max(CHUNK // max(m * n, 1), 1)
    for lo in range(0, t - n + 1, step):
        hi = min(lo + step, t - n + 1)
        out[lo + n - 1: hi + n - 1] = fn(*(v[lo:hi] for v in views))
    return out


def _cov(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    da = a - a.mean(axis=-1, keepdims=True)
    db = b - b.mean(axis=-1, keepdims=True)
    return (da * db).sum(axis=-1) / (a.shape[-1] - 1)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    da = a - a.mean(axis=-1, keepdims=True)
    db = b - b.mean(axis=-1, keepdims=True)
    ssa, ssb = (da * da).sum(axis=-1), (db * db).sum(axis=-1)
    # a constant window (three ranks of 1/3 do not average back exactly) has a variance of
    # rounding errors only: its correlation is undefined, not noise
    n = a.shape[-1]
    flat = (ssa <= n * (1e-13 * np.abs(a).max(axis=-1)) ** 2) | \
        (ssb <= n * (1e-13 * np.abs(b).max(axis=-1)) ** 2)
    return np.where(flat, np.nan, _finite((da * db).sum(axis=-1) / np.sqrt(ssa * ssb)))


def _rank_last(w: np.ndarray) -> np.ndarray:
    last = w[..., -1:]
    rank = (w < last).sum(axis=-1) + ((w == last).sum(axis=-1) + 1) / 2.0
    return np.where(np.isnan(w).any(axis=-1), np.nan, rank / w.shape[-1])


def _arg(fn: Callable) -> Callable:
    def run(w: np.ndarray) -> np.ndarray:
        bad = np.isnan(w).any(axis=-1)
        return np.where(bad, np.nan, fn(np.where(np.isnan(w), 0.0, w), axis=-1) + 1.0)
    return run


def _decay(w: np.ndarray) -> np.ndarray:
    weights = np.arange(1, w.shape[-1] + 1, dtype=np.float64)
    return w @ (weights / weights.sum())


def ts_cov(x, y, n):
    return _windows(_cov, n, x, y)


def ts_corr(x, y, n):
    return _windows(_corr, n, x, y)


def ts_rank(x, n):
    return _windows(_rank_last, n, x)


def ts_argmax(x, n):
    return _windows(_arg(np.argmax), n, x)


def ts_argmin(x, n):
    return _windows(_arg(np.argmin), n, x)


def decay_linear(x, n):
    return _windows(_decay, n, x)


# ---------------------------------------------------------------- cross-section

def rank(x):
    t, n = x.shape
    ok = np.isfinite(x)
    # undefined values sort last: NaN does so itself, an infinity is made one (a copy only then)
    v = np.where(ok, x, np.inf) if np.isinf(x).any() else x
    order = np.argsort(v, axis=1)
    order += np.arange(t)[:, None] * n  # flat positions: one gather and one scatter
    s = v.ravel()[order]
    tied = ((s[:, 1:] == s[:, :-1]) & np.isfinite(s[:, 1:])).any(axis=1)
    del s  # its pages serve the ranks
    ranks = np.empty(x.shape)
    ranks.ravel()[order] = np.arange(1.0, n + 1)
    if tied.any():  # average the ranks of equal values only where there are some (rarely)
        from scipy.stats import rankdata  # scipy.stats: 0.85 s of every run.py start otherwise

        ranks[tied] = rankdata(np.where(ok[tied], x[tied], np.inf), axis=1, method="average")
    ranks /= np.maximum(ok.sum(axis=1, keepdims=True), 1)
    ranks[~ok] = np.nan
    return ranks


def _row_stats(x):
    ok = np.isfinite(x)
    count = ok.sum(axis=1, keepdims=True)
    mean = np.where(ok, x, 0.0).sum(axis=1, keepdims=True) / np.where(count > 0, count, np.nan)
    return ok, count, mean


def demean(x):
    return x - _row_stats(x)[2]


def zscore(x):
    ok, count, mean = _row_stats(x)
    var = np.where(ok, (x - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / np.where(count > 0, count, np.nan)
    return _finite((x - mean) / np.sqrt(var))


def scale(x, a=1.0):
    gross = np.where(np.isfinite(x), np.abs(x), 0.0).sum(axis=1, keepdims=True)
    return _finite(x * a / gross)


def winsorize(x, q=0.05):
    """Clip each row to its ``q`` and ``1 - q`` quantiles (linear interpolation, numpy's
    default), computed from one sort of the rows."""
    ok = np.isfinite(x)
    s = np.sort(np.where(ok, x, np.inf), axis=1)
    count = ok.sum(axis=1)
    rows = np.arange(x.shape[0])

    def quantile(p):
        pos = p * np.maximum(count - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        a, b = s[rows, lo], s[rows, hi]
        with np.errstate(invalid="ignore"):
            out = np.where(hi == lo, a, a + (b - a) * (pos - lo))
        return np.where(count > 0, out, np.nan)[:, None]

    return np.where(ok, np.clip(x, quantile(q), quantile(1 - q)), np.nan)


def _grouped(fn: Callable) -> Callable:
    def run(x, groups: np.ndarray):
        out = np.full(x.shape, np.nan)
        for g in np.unique(groups):
            cols = np.flatnonzero(groups == g)
            out[:, cols] = fn(x[:, cols])
        return out
    return run


# ---------------------------------------------------------------- the table

@dataclasses.dataclass(frozen=True)
class Op:
    fn: Callable
    args: tuple          # x: a panel expression; window (>= min_window) / delay (>= 0) / number:
    signature: str       # literals written in the formula; a trailing ? marks an optional one
    kind: str = "point"  # point | window | delay | cross: how the warm-up grows
    min_window: int = 1
    groups: bool = False
    limits: tuple = (-np.inf, np.inf)  # [low, high) of a number argument


OPERATORS: dict[str, Op] = {
    "abs": Op(np.abs, ("x",), "abs(x)"),
    "log": Op(lambda x: _finite(np.log(np.where(x > 0, x, np.nan))), ("x",), "log(x)"),
    "sqrt": Op(lambda x: np.sqrt(np.where(x >= 0, x, np.nan)), ("x",), "sqrt(x)"),
    "sign": Op(np.sign, ("x",), "sign(x)"),
    "signed_power": Op(lambda x, a: _finite(np.sign(x) * np.abs(x) ** a), ("x", "number"),
                       "signed_power(x, a)"),
    "where": Op(where, ("x", "x", "x"), "where(condition, x, y)"),
    "ts_mean": Op(ts_mean, ("x", "window"), "ts_mean(x, n)", "window"),
    "ts_sum": Op(ts_sum, ("x", "window"), "ts_sum(x, n)", "window"),
    "ts_std": Op(ts_std, ("x", "window"), "ts_std(x, n)", "window", 2),
    "ts_min": Op(ts_min, ("x", "window"), "ts_min(x, n)", "window"),
    "ts_max": Op(ts_max, ("x", "window"), "ts_max(x, n)", "window"),
    "ts_rank": Op(ts_rank, ("x", "window"), "ts_rank(x, n)", "window"),
    "ts_argmax": Op(ts_argmax, ("x", "window"), "ts_argmax(x, n)", "window"),
    "ts_argmin": Op(ts_argmin, ("x", "window"), "ts_argmin(x, n)", "window"),
    "ts_corr": Op(ts_corr, ("x", "x", "window"), "ts_corr(x, y, n)", "window", 2),
    "ts_cov": Op(ts_cov, ("x", "x", "window"), "ts_cov(x, y, n)", "window", 2),
    "ts_delta": Op(ts_delta, ("x", "delay"), "ts_delta(x, d)", "delay"),
    "ts_delay": Op(ts_delay, ("x", "delay"), "ts_delay(x, d)", "delay"),
    "decay_linear": Op(decay_linear, ("x", "window"), "decay_linear(x, n)", "window"),
    "ewm": Op(ewm, ("x", "window"), "ewm(x, span)", "window"),
    "rank": Op(rank, ("x",), "rank(x)", "cross"),
    "zscore": Op(zscore, ("x",), "zscore(x)", "cross"),
    "demean": Op(demean, ("x",), "demean(x)", "cross"),
    "scale": Op(scale, ("x", "number?"), "scale(x, a=1)", "cross"),
    "winsorize": Op(winsorize, ("x", "number?"), "winsorize(x, q=0.05)", "cross",
                    limits=(0.0, 0.5)),
    "group_demean": Op(_grouped(demean), ("x",), "group_demean(x)", "cross", groups=True),
    "group_rank": Op(_grouped(rank), ("x",), "group_rank(x)", "cross", groups=True),
    "group_zscore": Op(_grouped(zscore), ("x",), "group_zscore(x)", "cross", groups=True),
}
