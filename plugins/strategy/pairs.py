"""Pairs trading: cointegrated pairs chosen on a formation window, traded on their spread's z-score."""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from plugins.strategy._common import band_positions, check_rule, latest, refit_bars


class Pairs(Strategy):
    """Statistical-arbitrage pairs (Gatev, Goetzmann & Rouwenhorst 2006; Vidyamurthy 2004)
    with cointegration-based selection (Engle & Granger 1987).

    **Formation.** At each re-formation bar ``r`` (the first bar of every ``reform`` period, or
    every N bars; the first one at bar ``formation``) the log closes of the ``formation`` bars
    ending at ``r`` are tested, for every pair of symbols with prices throughout the window,
    with the Engle-Granger two-step test: OLS of one log price on the other plus a constant,
    then an ADF test without deterministic terms on the residual, with ``adf_lags`` lagged
    differences. The p-value is MacKinnon's (1994, 2010) surface from statsmodels
    (``statsmodels.tsa.adfvalues.mackinnonp``, the one ``statsmodels.tsa.stattools.coint``
    uses). Both directions are tested and the larger p-value kept (the test is not symmetric;
    keeping the worse is conservative). With ``adf_lags`` set the statistic is computed for all
    pairs at once in numpy and equals ``coint(y, x, maxlag=adf_lags, autolag=None)``; with
    ``adf_lags=null`` each pair goes through ``statsmodels.tsa.stattools.coint`` with the lag
    chosen by AIC (slower). ``johansen=true`` additionally requires Johansen's trace test
    (``coint_johansen``) to reject "no cointegration" at the 90/95/99 % level nearest ``alpha``.

    **Multiple testing.** ``m = n (n - 1) / 2`` pairs are tested at once, so at a 5 % level
    about ``0.05 m`` unrelated pairs would pass by chance. ``correction="bh"`` keeps the pairs
    the Benjamini-Hochberg (1995) step-up procedure rejects at false discovery rate ``alpha``
    (under the global null, where no pair is cointegrated, it also bounds the chance of
    selecting any pair by ``alpha``); ``"bonferroni"`` keeps ``p <= alpha / m`` (family-wise
    error); ``"none"`` keeps ``p <= alpha``. Of the kept pairs, the ``max_pairs`` with the
    smallest p-values are traded, a symbol in at most one pair.

    **Trading.** For a pair (y, x) the spread is ``s = log y - a - b log x`` with the hedge ratio
    ``b`` from:

    - ``hedge="ols"``: the formation-window OLS, fixed until the next formation; the z-score
      uses the formation residuals' mean and standard deviation (Gatev et al.).
    - ``hedge="rolling"``: OLS over the ``hedge_window`` bars ending at each bar (default
      ``formation``); z is the last residual over the window residuals' standard deviation.
    - ``hedge="kalman"``: ``(a, b)`` follow a random walk observed through
      ``log y = a + b log x + e`` (Chan 2013, ch. 3), started at the formation OLS and its
      covariance, with observation variance the formation residual variance ``s2`` and state
      noise ``kalman_delta * s2 * (X'X / n)^-1`` per bar (unit-free: each bar adds about
      ``2 kalman_delta s2`` to the forecast variance; see ``kalman_zscores``); z is the
      one-step forecast error over its standard deviation. The filter is a few lines of
      numpy, run across pairs at once.

    From the formation bar on, each bar's z drives the band rule: open at ``|z| >= entry``
    (short the rich leg, long the cheap one), close at ``|z| <= exit``, and close at
    ``|z| >= stop`` without re-entering until ``|z|`` has come back to ``exit``. Positions are
    dollar-neutral per pair: +1 on one leg and -1 on the other (equal dollars, as in Gatev et
    al.; the hedge ratio shapes the spread, not the leg sizes), so an equal-weight allocator
    keeps every pair, and the sleeve, dollar-neutral.
    """

    rules = {"formation": "[20, inf)", "alpha": "(0, 1)", "max_pairs": "[1, inf)",
             "entry": "(0, inf)", "exit": "[0, inf)", "stop": "(0, inf)", "adf_lags": "[0, inf)",
             "hedge_window": "[10, inf)", "kalman_delta": "(0, 1)"}

    def __init__(self, formation: int = 252, reform: Union[str, int] = "quarterly",
                 alpha: float = 0.05, correction: Literal["bh", "bonferroni", "none"] = "bh",
                 max_pairs: int = 5, hedge: Literal["ols", "rolling", "kalman"] = "ols",
                 hedge_window: Optional[int] = None, entry: float = 2.0, exit: float = 0.5,
                 stop: Optional[float] = 3.5, adf_lags: Optional[int] = 1,
                 johansen: bool = False, kalman_delta: float = 1e-4) -> None:
        check_rule(reform, "reform")
        if exit >= entry:
            raise ValueError(f"exit ({exit}) must be below entry ({entry}): a trade opens at "
                             f"|z| >= entry and closes at |z| <= exit")
        if stop is not None and stop <= entry:
            raise ValueError(f"stop ({stop}) must be above entry ({entry})")
        if hedge_window is not None and hedge_window > formation:
            raise ValueError(f"hedge_window ({hedge_window}) cannot exceed formation "
                             f"({formation}): the rolling hedge starts at the formation bar")
        if adf_lags is not None and adf_lags > formation // 4:
            raise ValueError(f"adf_lags ({adf_lags}) is too large for formation ({formation}): "
                             f"keep it below formation / 4")
        self.formation = formation
        self.reform = reform
        self.alpha = alpha
        self.correction = correction
        self.max_pairs = max_pairs
        self.hedge = hedge
        self.hedge_window = hedge_window
        self.entry = entry
        self.exit = exit
        self.stop = stop
        self.adf_lags = adf_lags
        self.johansen = johansen
        self.kalman_delta = kalman_delta

    def warmup(self) -> int:
        return self.formation

    # ------------------------------------------------------------------ formation
    def formation_bars(self, data: MarketData) -> np.ndarray:
        return refit_bars(data.index, self.reform, self.formation)

    def select(self, data: MarketData, r: int) -> pd.DataFrame:
        """Test every pair on the formation window ending at bar ``r`` (rows r-formation+1..r).

        One row per tested pair: ``y``, ``x`` (column numbers), ``stat`` (the larger ADF
        statistic of the two directions), ``pvalue``, ``significant`` (after the multiple-testing
        correction, and Johansen when asked), ``selected`` (traded), and the formation OLS
        ``a``, ``b``, residual mean and standard deviation of log y on log x.
        """
        lo = r - self.formation + 1
        if lo < 0:
            raise ValueError(f"formation window ending at bar {r} needs {self.formation} bars")
        with np.errstate(invalid="ignore", divide="ignore"):
            window = np.log(data.close[lo: r + 1])
        ok = np.flatnonzero(np.isfinite(window).all(axis=0) & (np.ptp(window, axis=0) > 0))
        if ok.size < 2:
            return _empty_table()
        Y = window[:, ok]
        i, j = np.triu_indices(ok.size, k=1)
        stat_ij, fit_ij = eg_statistic(Y, i, j, self.adf_lags)
        stat_ji, fit_ji = eg_statistic(Y, j, i, self.adf_lags)
        stat = np.maximum(stat_ij, stat_ji)
        pvalue = mackinnon_p(stat)
        significant = reject(pvalue, self.alpha, self.correction)
        # trade y on x in the direction with the stronger (more negative) statistic
        flip = stat_ji < stat_ij
        y = np.where(flip, j, i)
        x = np.where(flip, i, j)
        a = np.where(flip, fit_ji[0], fit_ij[0])
        b = np.where(flip, fit_ji[1], fit_ij[1])
        sd = np.where(flip, fit_ji[2], fit_ij[2])
        table = pd.DataFrame({"y": ok[y], "x": ok[x], "stat": stat, "pvalue": pvalue,
                              "significant": significant, "a": a, "b": b, "resid_sd": sd})
        if self.johansen and significant.any():
            table.loc[significant, "significant"] = [
                _johansen_rejects(window[:, [yy, xx]], self.alpha, self.adf_lags)
                for yy, xx in zip(table.y[significant], table.x[significant])]
        table = table.sort_values(["pvalue", "stat", "y", "x"], kind="stable").reset_index(drop=True)
        used: set[int] = set()
        selected = np.zeros(len(table), dtype=bool)
        for k in np.flatnonzero(table["significant"].to_numpy()):
            if selected.sum() >= self.max_pairs:
                break
            yy, xx = int(table.y[k]), int(table.x[k])
            if yy in used or xx in used:
                continue
            used.update((yy, xx))
            selected[k] = True
        table["selected"] = selected
        return table

    # ------------------------------------------------------------------ trading
    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        out = np.zeros((at.size, data.n_symbols))
        if at.size == 0:
            return out
        refits = self.formation_bars(data)
        which = latest(refits, at)
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = np.log(data.close)
        for f in np.unique(which[which >= 0]):
            rows = np.flatnonzero(which == f)
            r, end = int(refits[f]), int(at[rows].max())
            pairs = self.select(data, r)
            pairs = pairs[pairs.selected]
            if pairs.empty:
                continue
            z = self._zscores(logp, pairs, r, end)  # (end - r + 1) x P
            state = band_positions(z, self.entry, self.exit, self.stop)
            st = state[at[rows] - r]                 # K_f x P, side of the y leg
            y, x = pairs.y.to_numpy(), pairs.x.to_numpy()
            block = np.zeros((rows.size, data.n_symbols))
            np.add.at(block.T, y, st.T)
            np.add.at(block.T, x, -st.T)
            out[rows] = block
        return out

    def _zscores(self, logp: np.ndarray, pairs: pd.DataFrame, r: int, end: int) -> np.ndarray:
        y = logp[:, pairs.y.to_numpy()]
        x = logp[:, pairs.x.to_numpy()]
        a, b = pairs.a.to_numpy(), pairs.b.to_numpy()
        if self.hedge == "ols":
            sd = pairs.resid_sd.to_numpy()
            return (y[r: end + 1] - a - b * x[r: end + 1]) / sd
        if self.hedge == "rolling":
            w = self.hedge_window or self.formation
            lo = r - w + 1
            ys, xs = pd.DataFrame(y[lo: end + 1]), pd.DataFrame(x[lo: end + 1])
            ry, rx = ys.rolling(w, min_periods=w), xs.rolling(w, min_periods=w)
            mx, my = rx.mean().to_numpy(), ry.mean().to_numpy()
            vx, vy = rx.var().to_numpy(), ry.var().to_numpy()
            cxy = ys.rolling(w, min_periods=w).cov(xs).to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                beta = cxy / vx
                resid = (ys.to_numpy() - my) - beta * (xs.to_numpy() - mx)
                var_e = (vy - beta * cxy) * (w - 1) / (w - 2)
                z = resid / np.sqrt(np.where(var_e > 0, var_e, np.nan))
            return z[w - 1:]
        return kalman_zscores(y[r: end + 1], x[r: end + 1], a, b,
                              pairs.resid_sd.to_numpy() ** 2, self.kalman_delta,
                              x[r - self.formation + 1: r + 1])


# ---------------------------------------------------------------------- statistics

def eg_statistic(Y: np.ndarray, i: np.ndarray, j: np.ndarray, lags: Optional[int]
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Engle-Granger ADF statistic of column ``i`` on column ``j`` for each pair, and the
    cointegrating regression's intercept, slope and residual standard deviation.

    With ``lags`` an integer this is ``coint(Y[:, i], Y[:, j], trend="c", maxlag=lags,
    autolag=None)[0]``, batched; with ``None`` each pair calls statsmodels' ``coint`` with
    ``autolag="aic"``.
    """
    n_obs = Y.shape[0]
    mean = Y.mean(axis=0)
    C = Y - mean
    cov = C.T @ C
    b = cov[i, j] / cov[j, j]
    a = mean[i] - b * mean[j]
    resid = (C[:, i] - b * C[:, j]).T                     # P x n_obs
    ss_res = (resid * resid).sum(axis=1)
    rsq = 1.0 - ss_res / cov[i, i]
    sd = np.sqrt(ss_res / (n_obs - 2))
    if lags is None:
        from statsmodels.tsa.stattools import coint
        import warnings

        stat = np.empty(i.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in range(i.size):
                stat[k] = coint(Y[:, i[k]], Y[:, j[k]], trend="c", autolag="aic")[0]
        return stat, (a, b, sd)
    stat = adf_tstat(resid, lags)
    # statsmodels' guard: (almost) perfectly collinear series get -inf (p-value 0)
    stat[rsq >= 1 - 100 * np.sqrt(np.finfo(float).eps)] = -np.inf
    return stat, (a, b, sd)


def adf_tstat(e: np.ndarray, lags: int) -> np.ndarray:
    """ADF t-statistic without constant, ``lags`` lagged differences, for each row of ``e``
    (P x n): the regression ``de_t = g e_{t-1} + sum_l c_l de_{t-l}`` as in
    ``statsmodels.tsa.stattools.adfuller(regression="n", maxlag=lags, autolag=None)``."""
    de = np.diff(e, axis=1)
    n = de.shape[1]
    nobs = n - lags
    X = np.empty((e.shape[0], nobs, lags + 1))
    X[:, :, 0] = e[:, lags: n]
    for lag in range(1, lags + 1):
        X[:, :, lag] = de[:, lags - lag: n - lag]
    target = de[:, lags:]
    Xt = X.transpose(0, 2, 1)
    inv = np.linalg.inv(Xt @ X)
    coef = (inv @ (Xt @ target[:, :, None]))[:, :, 0]
    res = target - (X @ coef[:, :, None])[:, :, 0]
    s2 = (res * res).sum(axis=1) / (nobs - (lags + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return coef[:, 0] / np.sqrt(s2 * inv[:, 0, 0])


def mackinnon_p(stat: np.ndarray) -> np.ndarray:
    """MacKinnon's approximate asymptotic p-values for the two-variable Engle-Granger test
    with a constant: statsmodels' ``mackinnonp(stat, regression="c", N=2)``, evaluated for
    all statistics at once from the same coefficient tables (one call per value otherwise
    costs more than the tests themselves). Falls back to the per-value call if statsmodels
    reorganises its tables."""
    from statsmodels.tsa import adfvalues

    stat = np.asarray(stat, dtype=float)
    try:
        k = 1                                            # N = 2 variables
        hi, lo = adfvalues._tau_maxs["c"][k], adfvalues._tau_mins["c"][k]
        star = adfvalues._tau_stars["c"][k]
        small = np.asarray(adfvalues._tau_smallps["c"][k], dtype=float)
        large = np.asarray(adfvalues._tau_largeps["c"][k], dtype=float)
    except (AttributeError, KeyError, IndexError, TypeError):  # pragma: no cover
        return np.array([adfvalues.mackinnonp(v, regression="c", N=2) if np.isfinite(v)
                         else (0.0 if v < 0 else 1.0) for v in stat], dtype=float)
    from scipy.special import ndtr

    with np.errstate(invalid="ignore", over="ignore"):
        poly = np.where(stat <= star, np.polyval(small[::-1], stat), np.polyval(large[::-1], stat))
        p = ndtr(poly)
    p = np.where(stat > hi, 1.0, np.where(stat < lo, 0.0, p))
    return np.where(np.isnan(stat), 1.0, p)


def reject(pvalue: np.ndarray, alpha: float, correction: str) -> np.ndarray:
    """Which hypotheses a multiple-testing procedure rejects at level ``alpha``."""
    p = np.nan_to_num(np.asarray(pvalue, dtype=float), nan=1.0)
    m = p.size
    if m == 0:
        return np.zeros(0, dtype=bool)
    if correction == "none":
        return p <= alpha
    if correction == "bonferroni":
        return p <= alpha / m
    if correction == "bh":
        order = np.argsort(p, kind="stable")
        passed = np.flatnonzero(p[order] <= alpha * np.arange(1, m + 1) / m)
        out = np.zeros(m, dtype=bool)
        if passed.size:
            out[order[: passed[-1] + 1]] = True
        return out
    raise ValueError(f"correction={correction!r}: expected bh, bonferroni or none")


def _johansen_rejects(window: np.ndarray, alpha: float, lags: Optional[int]) -> bool:
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    col = 2 if alpha <= 0.01 else (1 if alpha <= 0.05 else 0)   # 99 %, 95 %, 90 %
    res = coint_johansen(window, det_order=0, k_ar_diff=max(lags or 1, 1))
    return bool(res.lr1[0] > res.cvt[0, col])


def kalman_zscores(y: np.ndarray, x: np.ndarray, a0: np.ndarray, b0: np.ndarray,
                   r_var: np.ndarray, delta: float, x_formation: np.ndarray) -> np.ndarray:
    """Kalman filter of ``y_t = a_t + b_t x_t + e_t`` with random-walk ``(a, b)``, for P pairs
    at once (columns). Returns the standardised one-step forecast errors (n x P).

    ``e ~ N(0, r_var)``; the state starts at the formation OLS ``(a0, b0)`` with its OLS
    covariance ``r_var (X'X)^-1`` and moves by ``w ~ N(0, delta r_var (X'X / n)^-1)`` per bar,
    ``X = [1, x]`` over the formation window ``x_formation`` (n x P). Scaling the state noise
    by the regression's own geometry makes ``delta`` unit-free: each bar adds about
    ``2 delta r_var`` to the forecast variance, whatever the price level, so the filter
    remembers roughly ``1 / sqrt(2 delta)`` bars.
    """
    n, P = y.shape
    m = x_formation.shape[0]
    m1 = x_formation.mean(axis=0)
    m2 = (x_formation ** 2).mean(axis=0)
    det = m2 - m1 ** 2                         # the formation variance of x (ddof 0)
    i11, i12, i22 = m2 / det, -m1 / det, 1.0 / det   # (X'X / m)^-1
    q11, q12, q22 = delta * r_var * i11, delta * r_var * i12, delta * r_var * i22
    p11, p12, p22 = r_var * i11 / m, r_var * i12 / m, r_var * i22 / m
    a, b = a0.astype(float).copy(), b0.astype(float).copy()
    z = np.full((n, P), np.nan)
    for t in range(n):
        yt, xt = y[t], x[t]
        ok = np.isfinite(yt) & np.isfinite(xt)
        xt = np.where(ok, xt, 0.0)
        # predict: P += Q
        p11, p12, p22 = p11 + q11, p12 + q12, p22 + q22
        # innovation e = y - h theta, h = (1, x); its variance f = h P h' + r
        e = np.where(ok, yt, 0.0) - (a + b * xt)
        ph1 = p11 + p12 * xt                   # (P h')_1
        ph2 = p12 + p22 * xt                   # (P h')_2
        f = ph1 + ph2 * xt + r_var
        z[t] = np.where(ok, e / np.sqrt(f), np.nan)
        k1, k2 = ph1 / f, ph2 / f
        # update (only where observed): theta += K e, P -= K h P
        a = np.where(ok, a + k1 * e, a)
        b = np.where(ok, b + k2 * e, b)
        p11 = np.where(ok, p11 - k1 * ph1, p11)
        p12 = np.where(ok, p12 - k1 * ph2, p12)
        p22 = np.where(ok, p22 - k2 * ph2, p22)
    return z


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({"y": pd.Series(dtype=np.int64), "x": pd.Series(dtype=np.int64),
                         "stat": pd.Series(dtype=float), "pvalue": pd.Series(dtype=float),
                         "significant": pd.Series(dtype=bool), "a": pd.Series(dtype=float),
                         "b": pd.Series(dtype=float), "resid_sd": pd.Series(dtype=float),
                         "selected": pd.Series(dtype=bool)})
