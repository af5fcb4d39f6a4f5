"""Statistical arbitrage on Johansen-cointegrated baskets of several symbols."""

from __future__ import annotations

from typing import Literal, Optional, Union

import dataclasses

import numpy as np

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from plugins.strategy._common import band_positions, causal_view, check_rule, latest, refit_bars

LEVELS = {0.10: 0, 0.05: 1, 0.01: 2}  # columns of statsmodels' critical-value tables


class JohansenBasket(Strategy):
    """Trade the stationary combination of a basket of ``size`` symbols found by Johansen's
    test (Johansen 1991; ``statsmodels.tsa.vector_ar.vecm.coint_johansen``).

    **Formation** at the first bar of every ``reform`` period (first at ``warmup()``), on the
    log closes of the trailing ``formation`` bars ending at that bar: every symbol with a full
    window proposes the basket of itself and its ``size - 1`` most correlated peers (daily
    return correlation in the window); each distinct basket is tested with ``coint_johansen``
    (``det_order``, ``k_ar_diff``); it is cointegrated when the trace statistic for "rank 0"
    exceeds its critical value at ``alpha`` (0.10, 0.05 or 0.01). The most significant
    baskets (largest trace statistic over its critical value) are kept, at most
    ``max_baskets``, a symbol in one basket only.

    **Hedge weights** are the first Johansen eigenvector, scaled to a gross of 1; the spread is
    ``log close @ w`` and its z-score uses the mean and deviation of the spread in the
    formation window: all of it from the trailing window, fixed until the next formation.

    **Entry and exit**: short the spread (``-w``) at ``z >= entry``, long it at ``z <= -entry``,
    flat at ``|z| <= exit``, and with ``stop`` flat at ``|z| >= stop`` until it comes back to
    ``exit``; every formation starts flat. The signal per symbol is its weight in the
    spreads held.
    """

    rules = {"formation": "[30, inf)", "size": "[2, 12]", "max_baskets": "[1, inf)",
             "entry": "(0, inf)", "exit": "[0, inf)", "stop": "(0, inf)",
             "k_ar_diff": "[1, inf)"}

    def __init__(self, formation: int = 252, reform: Union[str, int] = "quarterly", size: int = 3,
                 max_baskets: int = 3, alpha: Literal[0.1, 0.05, 0.01] = 0.05,
                 det_order: Literal[-1, 0, 1] = 0, k_ar_diff: int = 1, entry: float = 2.0,
                 exit: float = 0.5, stop: Optional[float] = 3.5) -> None:
        check_rule(reform, "reform")
        if exit >= entry:
            raise ValueError(f"exit ({exit}) must be below entry ({entry})")
        if stop is not None and stop <= entry:
            raise ValueError(f"stop ({stop}) must be above entry ({entry})")
        self.formation = formation
        self.reform = reform
        self.size = size
        self.max_baskets = max_baskets
        self.alpha = alpha
        self.det_order = det_order
        self.k_ar_diff = k_ar_diff
        self.entry = entry
        self.exit = exit
        self.stop = stop

    def warmup(self) -> int:
        return self.formation

    def window(self, data: MarketData, r: int) -> np.ndarray:
        """Log closes of the ``formation`` bars ending at bar ``r`` (``formation x N``)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(data.close[r - self.formation + 1: r + 1])

    def candidates(self, logp: np.ndarray) -> list[tuple[int, ...]]:
        ok = np.flatnonzero(np.isfinite(logp).all(axis=0))
        if ok.size < self.size:
            return []
        corr = np.corrcoef(np.diff(logp[:, ok], axis=0), rowvar=False)
        out = set()
        for i in range(ok.size):
            peers = [p for p in np.argsort(-corr[i], kind="stable") if p != i][: self.size - 1]
            out.add(tuple(sorted(int(ok[p]) for p in [i, *peers])))
        return sorted(out)

    def johansen(self, logp: np.ndarray, basket: tuple[int, ...]) -> "Johansen":
        return johansen(logp[:, list(basket)], self.det_order, self.k_ar_diff)

    def form(self, data: MarketData, r: int) -> list[tuple[tuple[int, ...], np.ndarray, float, float, Johansen]]:
        """The baskets formed at bar ``r``: (symbols, weights, spread mean, spread deviation,
        the Johansen result), most significant first."""
        logp = self.window(data, r)
        level = LEVELS[float(self.alpha)]
        tested = []
        for basket in self.candidates(logp):
            res = self.johansen(logp, basket)
            margin = res.lr1[0] / res.cvt[0, level]
            if margin > 1.0:
                tested.append((margin, basket, res))
        tested.sort(key=lambda x: (-x[0], x[1]))
        used: set[int] = set()
        out = []
        for margin, basket, res in tested:
            if used.intersection(basket) or len(out) >= self.max_baskets:
                continue
            w = res.evec[:, 0] / np.abs(res.evec[:, 0]).sum()
            spread = logp[:, list(basket)] @ w
            sd = spread.std(ddof=1)
            if not sd > 0:
                continue
            used.update(basket)
            out.append((basket, w, float(spread.mean()), float(sd), res))
        return out

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        out = np.zeros((at.size, data.n_symbols))
        if at.size == 0:
            return out
        view = causal_view(data, at)
        reforms = refit_bars(view.index, self.reform, self.warmup())
        which = latest(reforms, at)
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = np.log(view.close)
        for f in np.unique(which[which >= 0]):
            r = int(reforms[f])
            stop = int(reforms[f + 1]) if f + 1 < reforms.size else view.n_bars
            rows = np.flatnonzero(which == f)
            for basket, w, mean, sd, _ in self.form(view, r):
                z = (logp[r:stop, list(basket)] @ w - mean) / sd
                pos = band_positions(z[:, None], self.entry, self.exit, self.stop)[:, 0]
                held = pos[at[rows] - r]
                out[np.ix_(rows, list(basket))] += held[:, None] * w[None, :]
        return out


@dataclasses.dataclass
class Johansen:
    """Johansen's test, as statsmodels' ``JohansenTestResult`` names it: eigenvalues ``eig``,
    eigenvectors ``evec`` (columns), trace and maximum-eigenvalue statistics ``lr1``/``lr2``
    for rank ``<= i``, and their 90/95/99 % critical values ``cvt``/``cvm``."""

    eig: np.ndarray
    evec: np.ndarray
    lr1: np.ndarray
    lr2: np.ndarray
    cvt: np.ndarray
    cvm: np.ndarray


def _detrend(y: np.ndarray, order: int) -> np.ndarray:
    if order == -1:
        return y
    if order == 0:  # OLS on a constant: the mean
        return y - y.mean(axis=0)
    x = np.vander(np.linspace(-1, 1, len(y)), order + 1)
    return y - x @ np.linalg.lstsq(x, y, rcond=None)[0]


def _resid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return y - x @ (np.linalg.pinv(x) @ y) if x.size else y


def johansen(endog: np.ndarray, det_order: int = 0, k_ar_diff: int = 1) -> Johansen:
    """Johansen's cointegration test on ``T x n`` levels, the computation of statsmodels'
    ``coint_johansen`` (reduced-rank regression of the differences on the lagged levels,
    both filtered of ``k_ar_diff`` lagged differences and the deterministic terms) in plain
    numpy: twenty times faster on a 252 x 3 window, and held equal to it by a test."""
    from statsmodels.tsa.coint_tables import c_sja, c_sjt

    y = _detrend(np.asarray(endog, dtype=float), det_order)
    f = 0 if det_order > -1 else det_order
    dx = np.diff(y, axis=0)
    n = y.shape[1]
    z = np.hstack([dx[k_ar_diff - i - 1: len(dx) - i - 1] for i in range(k_ar_diff)])
    z = _detrend(z, f)
    r0 = _resid(_detrend(dx[k_ar_diff:], f), z)
    rk = _resid(_detrend(y[1: len(y) - k_ar_diff], f), z)
    t = rk.shape[0]
    skk, sk0, s00 = rk.T @ rk / t, rk.T @ r0 / t, r0.T @ r0 / t
    au, du = np.linalg.eig(np.linalg.inv(skk) @ (sk0 @ np.linalg.inv(s00) @ sk0.T))
    dt = du @ np.linalg.inv(np.linalg.cholesky(du.T @ skk @ du))
    order = np.argsort(au)[::-1]
    eig, evec = au[order], dt[:, order]
    nonzero = evec.flat != 0
    if nonzero.any():
        evec = evec * np.sign(evec.flat[nonzero][0])
    logs = np.log(1 - eig)
    lr1 = -t * np.cumsum(logs[::-1])[::-1]
    lr2 = -t * logs
    cvt = np.array([c_sjt(n - i, det_order) for i in range(n)])
    cvm = np.array([c_sja(n - i, det_order) for i in range(n)])
    return Johansen(eig, evec, lr1, lr2, cvt, cvm)
