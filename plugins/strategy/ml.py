"""Machine-learning strategy: price features -> any scikit-learn estimator, walk-forward with purging."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

import numpy as np
import pandas as pd

from pipeline.core.contracts import Strategy
from pipeline.core.market import MarketData
from plugins.strategy._common import causal_view, check_rule, cross_sectional_top, latest, refit_bars
from plugins.strategy._expr import compile_formula


class ML(Strategy):
    """Forecast each symbol's forward return with a scikit-learn estimator, retrained
    walk-forward, and trade the forecasts.

    **Features** (per symbol and bar ``t``, from closes up to ``t``; volume only if the data has
    it): log returns over each of ``lookbacks``; their cross-sectional percentile ranks
    (centred on 0); the standard deviation of daily log returns over each of ``vol_windows``;
    the log distance from the highest close of the longest lookback; and, with volume, the log
    of the day's volume over its 21-bar mean. See ``features``. ``expressions`` adds named
    factor expressions (``plugins/strategy/_expr.py``; shared ones live in
    ``conf/strategy/features/``) as further inputs; ``price_features=false`` keeps only them.

    **Label** at bar ``s``: the log return over the next ``horizon`` bars,
    ``log(close[s + h] / close[s])``, minus its cross-sectional mean when
    ``label="excess"``. A classifier (``sklearn.base.is_classifier``) learns ``label > 0`` and
    scores ``2 P(up) - 1``; a regressor learns the label and scores its prediction.

    **Walk-forward with purging** (Lopez de Prado 2018, *Advances in Financial Machine
    Learning*, ch. 7). The model is refit at the first bar of every ``refit`` period (or every N
    bars), first at ``warmup()``. A fit at bar ``r`` uses samples ``s`` with
    ``s + horizon + embargo <= r``: every training label ends by ``r`` (purging: it cannot
    overlap the forward window of any decision at or after ``r``), ``embargo`` bars more are
    dropped against serial correlation between features, only every ``sample_every``-th bar is
    used (overlapping labels are nearly duplicates), and only the last ``train_window`` bars if
    set (else an expanding window). A decision at ``t`` uses the latest fit at or before ``t``
    and the features at ``t``. ``model`` is cloned (``sklearn.base.clone``) for every fit; an
    unset ``random_state`` is set to ``seed``; features are standardised with the training
    sample's mean and deviation when ``standardize``. ``model=null`` is a ridge regression.

    **Signal.** With ``top_k`` the ``top_k`` best scores get +1 (with ``long_short`` the
    ``top_k`` worst get -1), else the raw scores are the signal (sign = side, magnitude =
    conviction).
    """

    rules = {"horizon": "[1, inf)", "train_window": "[20, inf)", "min_train": "[20, inf)",
             "embargo": "[0, inf)", "sample_every": "[1, inf)", "top_k": "[1, inf)"}

    def __init__(self, model: Any = None, lookbacks: list[int] = [5, 21, 63, 126, 252],  # noqa: B006
                 vol_windows: list[int] = [21, 63], horizon: int = 21,  # noqa: B006
                 label: Literal["excess", "raw"] = "excess", refit: Union[str, int] = "monthly",
                 train_window: Optional[int] = None, min_train: int = 504, embargo: int = 5,
                 sample_every: int = 5, standardize: bool = True, top_k: Optional[int] = 5,
                 long_short: bool = False, seed: int = 0,
                 expressions: Optional[dict[str, str]] = None, price_features: bool = True) -> None:
        check_rule(refit, "refit")
        self.programs_ = [compile_formula(text, expressions, where=f"expressions.{name}")
                          for name, text in (expressions or {}).items()]
        if not price_features and not self.programs_:
            raise ValueError("price_features=false needs expressions: the model has no inputs")
        if not lookbacks or min(lookbacks) < 1:
            raise ValueError(f"lookbacks={lookbacks!r}: give one or more positive bar counts")
        if not vol_windows or min(vol_windows) < 2:
            raise ValueError(f"vol_windows={vol_windows!r}: give one or more windows of 2+ bars")
        if train_window is not None and train_window < min_train:
            raise ValueError(f"train_window ({train_window}) must be at least min_train "
                             f"({min_train})")
        if sample_every > min_train:
            raise ValueError(f"sample_every ({sample_every}) exceeds min_train ({min_train}): "
                             f"no training sample would remain")
        if model is not None and not (hasattr(model, "fit") and hasattr(model, "get_params")):
            raise ValueError(f"model={model!r} is not a scikit-learn estimator; give a node "
                             f"with _target_, e.g. {{_target_: sklearn.linear_model.Ridge}}")
        self.model = model
        self.lookbacks = lookbacks
        self.vol_windows = vol_windows
        self.horizon = horizon
        self.label = label
        self.refit = refit
        self.train_window = train_window
        self.min_train = min_train
        self.embargo = embargo
        self.sample_every = sample_every
        self.standardize = standardize
        self.top_k = top_k
        self.long_short = long_short
        self.seed = seed
        self.expressions = expressions
        self.price_features = price_features

    # ------------------------------------------------------------------ schedule
    def feature_warmup(self) -> int:
        price = max(max(self.lookbacks), max(self.vol_windows)) + 1 if self.price_features else 0
        return max([price] + [p.warmup for p in self.programs_])

    def warmup(self) -> int:
        return self.feature_warmup() + self.horizon + self.embargo + self.min_train

    def train_bars(self, r: int) -> np.ndarray:
        """Sample bars a fit at bar ``r`` may use: ``s + horizon + embargo <= r``."""
        hi = r - self.horizon - self.embargo
        lo = self.feature_warmup()
        if self.train_window is not None:
            lo = max(lo, hi - self.train_window + 1)
        first = lo + (-lo) % self.sample_every          # anchored at bar 0, whatever r is
        return np.arange(first, hi + 1, self.sample_every, dtype=np.int64)

    # ------------------------------------------------------------------ data
    def features(self, data: MarketData) -> np.ndarray:
        """T x N x F feature array; row t uses rows [0, t] only."""
        cache: dict = {}
        extra = [p.evaluate(data, cache=cache) for p in self.programs_]
        if not self.price_features:
            return np.stack(extra, axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = np.log(data.close)
        frame = pd.DataFrame(logp)
        ret1 = frame.diff()
        feats = []
        for lb in self.lookbacks:
            feats.append((frame - frame.shift(lb)).to_numpy())
        for lb in self.lookbacks:
            rank = frame.sub(frame.shift(lb)).rank(axis=1, pct=True)
            feats.append((rank - 0.5).to_numpy())
        for w in self.vol_windows:
            feats.append(ret1.rolling(w, min_periods=w).std().to_numpy())
        longest = max(self.lookbacks)
        feats.append((frame - frame.rolling(longest, min_periods=longest).max()).to_numpy())
        if data.volume is not None:
            vol = pd.DataFrame(np.where(data.volume > 0, data.volume, np.nan))
            with np.errstate(invalid="ignore", divide="ignore"):
                feats.append(np.log(vol / vol.rolling(21, min_periods=21).mean()).to_numpy())
        return np.stack(feats + extra, axis=2)

    def labels(self, data: MarketData) -> np.ndarray:
        """T x N forward log returns over ``horizon`` bars, NaN where ``s + horizon`` is past
        the data (``signal`` passes its causal view: no label reaches beyond the last decision)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            logp = np.log(data.close)
        h = self.horizon
        y = np.full(logp.shape, np.nan)
        if logp.shape[0] > h:
            y[:-h] = logp[h:] - logp[:-h]
        if self.label == "excess":
            ok = np.isfinite(y)
            count = ok.sum(axis=1, keepdims=True)
            mean = np.where(count > 0, np.where(ok, y, 0.0).sum(axis=1, keepdims=True)
                            / np.maximum(count, 1), np.nan)
            y = y - mean
        return y

    # ------------------------------------------------------------------ model
    def _estimator(self):
        from sklearn.base import clone

        if self.model is None:
            from sklearn.linear_model import Ridge

            est = Ridge(alpha=1.0)
        else:
            est = clone(self.model)
        params = est.get_params()
        if "random_state" in params and params["random_state"] is None:
            est.set_params(random_state=self.seed)
        return est

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        from sklearn.base import is_classifier

        at = np.asarray(at, dtype=np.int64)
        out = np.zeros((at.size, data.n_symbols))
        if at.size == 0:
            return out
        view = causal_view(data, at)
        X = self.features(view)
        y = self.labels(view)
        refits = refit_bars(view.index, self.refit, self.warmup())
        which = latest(refits, at)
        n_feat = X.shape[2]
        classify = is_classifier(self._estimator())
        for f in np.unique(which[which >= 0]):
            rows = np.flatnonzero(which == f)
            r = int(refits[f])
            s = self.train_bars(r)
            Xs = X[s].reshape(-1, n_feat)
            ys = y[s].reshape(-1)
            keep = np.isfinite(Xs).all(axis=1) & np.isfinite(ys)
            Xs, ys = Xs[keep], ys[keep]
            if ys.size < 2 * n_feat:
                continue
            mu, sd = self._scaler(Xs)
            est = self._estimator()
            target = (ys > 0).astype(np.int64) if classify else ys
            if classify and np.unique(target).size < 2:
                continue
            est.fit((Xs - mu) / sd, target)
            Xt = X[at[rows]]                    # K_f x N x F
            flat = Xt.reshape(-1, n_feat)
            ok = np.isfinite(flat).all(axis=1)
            score = np.full(flat.shape[0], np.nan)
            if ok.any():
                z = (flat[ok] - mu) / sd
                if classify:
                    proba = est.predict_proba(z)
                    up = list(est.classes_).index(1)
                    score[ok] = 2.0 * proba[:, up] - 1.0
                else:
                    score[ok] = est.predict(z)
            score = score.reshape(rows.size, data.n_symbols)
            score[~np.isfinite(view.close[at[rows]])] = np.nan
            out[rows] = self._to_signal(score)
        return out

    def _scaler(self, Xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.standardize:
            return np.zeros(Xs.shape[1]), np.ones(Xs.shape[1])
        mu = Xs.mean(axis=0)
        sd = Xs.std(axis=0)
        return mu, np.where(sd > 0, sd, 1.0)

    def _to_signal(self, score: np.ndarray) -> np.ndarray:
        if self.top_k is None:
            return np.nan_to_num(score, nan=0.0)
        sig = cross_sectional_top(score, self.top_k).astype(np.float64)
        if self.long_short:
            sig[cross_sectional_top(score, self.top_k, largest=False) & (sig == 0)] = -1.0
        return sig
