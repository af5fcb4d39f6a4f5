"""Statistical arbitrage on residuals against principal components (Avellaneda & Lee 2010)."""

from __future__ import annotations

from typing import Union

import numpy as np

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from pipeline.core.params import Window
from plugins.strategy._common import causal_view, check_rule, latest, refit_bars

BARS_PER_YEAR = 252
BLOCK = 256  # bars per batch of regressions: bounds the memory of the windows


class PCAResidual(Strategy):
    """Trade each symbol's idiosyncratic residual when its s-score is stretched (Avellaneda &
    Lee 2010, "Statistical arbitrage in the US equities market", sections 2-4).

    **Factors.** At the first bar of every ``refit`` period (first at ``warmup()``), the
    correlation matrix of the symbols' daily returns over the trailing ``window`` bars gives
    the first ``components`` eigenvectors ``v_j``; the eigenportfolios hold ``v_ji / sigma_i``
    (``sigma_i`` the symbol's deviation in that window), and their returns are the factors.

    **Residual and s-score** at bar ``t``: each symbol's returns over the trailing ``estimation``
    bars are regressed on the factors (with an intercept); the cumulated residuals ``X`` are
    fitted by an AR(1), ``X[k+1] = a + b X[k] + e``, giving the mean-reversion speed
    ``kappa = -log(b) * 252``, the equilibrium ``m = a / (1 - b)``, its deviation
    ``sigma_eq = sqrt(var(e) / (1 - b^2))`` and ``s = (X[last] - m) / sigma_eq``. A symbol
    with ``b`` outside ``(0, 1)`` or ``kappa < min_kappa`` (too slow to revert within the
    window; the paper's 252/30) has no s-score.

    **Entry and exit** (the paper's thresholds): buy to open at ``s < -open_long`` (1.25), sell
    to open at ``s > open_short`` (1.25), close a long at ``s > -close_long`` (0.50), close a
    short at ``s < close_short`` (0.75); an undefined s-score closes. With ``hedge`` each
    open position also holds ``-beta_ij`` of eigenportfolio ``j`` (betas from the same trailing
    regression), so the signal is the net exposure per symbol of the stock plus its hedge.
    """

    rules = {"window": "[20, inf)", "components": "[1, inf)", "estimation": "[10, inf)",
             "open_long": "(0, inf)", "open_short": "(0, inf)", "close_long": "[0, inf)",
             "close_short": "[0, inf)", "min_kappa": "[0, inf)"}

    def __init__(self, window: Window = 252, components: int = 3, estimation: Window = 60,
                 refit: Union[str, int] = "monthly", open_long: float = 1.25,
                 open_short: float = 1.25, close_long: float = 0.5, close_short: float = 0.75,
                 min_kappa: float = BARS_PER_YEAR / 30, hedge: bool = True) -> None:
        check_rule(refit, "refit")
        if close_long >= open_long or close_short >= open_short:
            raise ValueError("close thresholds must be inside the open ones: close_long < "
                             "open_long and close_short < open_short")
        self.window = window
        self.components = components
        self.estimation = estimation
        self.refit = refit
        self.open_long = open_long
        self.open_short = open_short
        self.close_long = close_long
        self.close_short = close_short
        self.min_kappa = min_kappa
        self.hedge = hedge

    def warmup(self) -> int:
        return max(self.window, self.estimation) + 1

    @staticmethod
    def returns(data: MarketData) -> np.ndarray:
        r = np.full(data.close.shape, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            r[1:] = data.close[1:] / data.close[:-1] - 1.0
        return np.where(np.isfinite(r), r, np.nan)

    def eigenportfolios(self, returns: np.ndarray, r: int) -> np.ndarray:
        """``N x k`` eigenportfolio weights from the ``window`` returns ending at bar ``r``
        (symbols without a full window get weight 0)."""
        win = returns[r - self.window + 1: r + 1]
        ok = np.isfinite(win).all(axis=0)
        q = np.zeros((returns.shape[1], self.components))
        k = min(self.components, int(ok.sum()) - 1)
        if k < 1:
            return q
        w = win[:, ok]
        sd = w.std(axis=0, ddof=1)
        good = sd > 0
        cols = np.flatnonzero(ok)[good]
        z = (w[:, good] - w[:, good].mean(axis=0)) / sd[good]
        vals, vecs = np.linalg.eigh(np.corrcoef(z, rowvar=False))
        top = vecs[:, np.argsort(vals)[::-1][:k]]
        top *= np.where(top.sum(axis=0) < 0, -1.0, 1.0)  # a sign convention: net long
        q[cols, :k] = top / sd[good][:, None]
        return q

    def scores(self, data: MarketData) -> dict[str, np.ndarray]:
        """``s`` (s-score), ``kappa``, and ``beta`` (``T x N x k``) per bar, NaN where undefined,
        with ``weights`` (refit x N x k) and the ``refits`` bars."""
        ret = self.returns(data)
        t, n = ret.shape
        k, L = self.components, self.estimation
        s = np.full((t, n), np.nan)
        kappa = np.full((t, n), np.nan)
        beta = np.full((t, n, k), np.nan)
        refits = refit_bars(data.index, self.refit, self.warmup())
        weights = np.stack([self.eigenportfolios(ret, int(r)) for r in refits]) if refits.size \
            else np.zeros((0, n, k))
        which = latest(refits, np.arange(t))
        for f, r in enumerate(refits):
            bars = np.flatnonzero(which == f)
            first = int(bars[0]) - L + 1
            factors = np.zeros((t, k))                             # this fit's factor returns
            # einsum, not @: BLAS picks its kernel by the row count, so a bar's factor return
            # would change in the last bit with how many bars follow it (truncation invariance)
            factors[first: bars[-1] + 1] = np.einsum("tn,nk->tk", np.nan_to_num(ret[first: bars[-1] + 1]),
                                                     weights[f])
            for lo in range(0, bars.size, BLOCK):
                rows = bars[lo: lo + BLOCK]
                idx = rows[:, None] + np.arange(-L + 1, 1)[None, :]        # B x L
                y = ret[idx]                                               # B x L x N
                d = np.concatenate([np.ones(idx.shape + (1,)), factors[idx]], axis=2)
                dt = np.swapaxes(d, 1, 2)
                coef = np.linalg.pinv(dt @ d) @ (dt @ np.nan_to_num(y))      # B x (k+1) x N
                resid = y - d @ coef
                x = np.cumsum(resid, axis=1)
                x0, x1 = x[:, :-1], x[:, 1:]
                m0, m1 = x0.mean(axis=1, keepdims=True), x1.mean(axis=1, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    b = ((x0 - m0) * (x1 - m1)).sum(axis=1) / ((x0 - m0) ** 2).sum(axis=1)
                    a = m1[:, 0] - b * m0[:, 0]
                    e = x1 - a[:, None] - b[:, None] * x0
                    kap = -np.log(b) * BARS_PER_YEAR
                    m = a / (1 - b)
                    sig = np.sqrt(e.var(axis=1) / (1 - b * b))
                    sc = (x[:, -1] - m) / sig
                valid = (b > 0) & (b < 1) & (kap >= self.min_kappa) & np.isfinite(sc) & \
                    np.isfinite(y).all(axis=1)
                s[rows] = np.where(valid, sc, np.nan)
                kappa[rows] = np.where(valid, kap, np.nan)
                beta[rows] = np.where(valid[:, :, None], np.swapaxes(coef[:, 1:], 1, 2), np.nan)
        return {"s": s, "kappa": kappa, "beta": beta, "weights": weights, "refits": refits}

    def positions(self, s: np.ndarray) -> np.ndarray:
        """The paper's open/close rule along the s-score path: +1 long, -1 short, 0 flat."""
        pos = np.zeros(s.shape)
        state = np.zeros(s.shape[1])
        with np.errstate(invalid="ignore"):
            for i in range(s.shape[0]):
                z = s[i]
                undefined = np.isnan(z)
                state = np.where(undefined | ((state > 0) & (z > -self.close_long))
                                 | ((state < 0) & (z < self.close_short)), 0.0, state)
                state = np.where((state == 0) & (z < -self.open_long), 1.0, state)
                state = np.where((state == 0) & (z > self.open_short), -1.0, state)
                pos[i] = state
        return pos

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        if at.size == 0:
            return np.zeros((0, data.n_symbols))
        view = causal_view(data, at)
        sc = self.scores(view)
        pos = self.positions(sc["s"])[at]
        if not self.hedge or sc["refits"].size == 0:
            return pos
        which = latest(sc["refits"], at)
        q = sc["weights"][np.maximum(which, 0)]                   # K x N x k
        beta = np.nan_to_num(sc["beta"][at])                      # K x N x k
        # stock i held pos_i, hedged by -pos_i * beta_ij of eigenportfolio j (weights q_.j)
        hedge = np.einsum("kn,knj,kmj->km", pos, beta, q)
        return np.where(which[:, None] >= 0, pos - hedge, 0.0)
