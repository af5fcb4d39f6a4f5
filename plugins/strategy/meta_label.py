"""Meta-labelling: a classifier learns which of a primary strategy's entries to take."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

import numpy as np

from pipeline.core.contracts import ExitRule, Strategy
from pipeline.core.exits import first_exit
from pipeline.core.market import MarketData
from pipeline.core.orders import OrderType
from plugins.strategy._common import causal_view, check_rule, latest, refit_bars
from plugins.strategy._expr import compile_formula
from plugins.strategy.mean_reversion import MeanReversion

FEATURES = {
    "ret_5": "close / ts_delay(close, 5) - 1",
    "ret_21": "close / ts_delay(close, 21) - 1",
    "vol_21": "ts_std(returns, 21)",
    "z_20": "(close - ts_mean(close, 20)) / ts_std(close, 20)",
}


class MetaLabel(Strategy):
    """Take (or size) each entry of ``primary`` by a classifier's probability that it wins
    (Lopez de Prado 2018, *Advances in Financial Machine Learning*, ch. 3).

    **Entries.** The primary strategy is evaluated at every bar; an entry is a bar ``s`` where
    its side (the sign of its signal) becomes non-zero or flips, per symbol.

    **Triple-barrier labels.** Each entry is filled at the next bar's reference price (its
    open, the close without opens) and followed with ``pipeline.core.exits.first_exit`` over the
    bars from that fill, with ``barriers``: exit rules (``plugins/exits``, e.g. a take-profit,
    a stop-loss and a time stop, ``atr`` options for volatility-scaled barriers), the same
    objects and fill convention as the exits of a run. One barrier must be a time stop (the
    vertical barrier). The label is 1 when the exit price beats the entry on the entry's
    side. An entry is labelled at its barrier bar ``e`` (the exit's bar) from bars up to ``e``
    only; before ``e`` it has no label.

    **Walk-forward, purged and embargoed.** The classifier (``model``, a scikit-learn
    classifier, cloned per fit; null: a logistic regression) is refit at the first bar of
    every ``refit`` period; a fit at bar ``r`` learns from the entries with
    ``e + embargo <= r`` (within the last ``train_window`` bars if set), at least
    ``min_train`` of them with both outcomes, else the previous fit stands. Its inputs are the
    ``features`` (factor expressions, ``plugins/strategy/_expr.py``) at the entry bar and the
    entry's side.

    **Signal.** An entry decided at ``s`` gets the probability of the latest fit at or before
    ``s``; while the primary holds that position its signal is kept when the probability is at
    least ``threshold`` (``sizing="take"``), or multiplied by it (``sizing="size"``), and
    zeroed otherwise. Entries before the first fit are not taken.
    """

    rules = {"min_train": "[10, inf)", "embargo": "[0, inf)", "threshold": "[0, 1]",
             "train_window": "[20, inf)"}

    def __init__(self, primary: Any = None, barriers: Optional[list] = None, model: Any = None,
                 features: dict[str, str] = FEATURES,  # noqa: B006
                 refit: Union[str, int] = "quarterly", min_train: int = 50, embargo: int = 5,
                 train_window: Optional[int] = None, threshold: float = 0.5,
                 sizing: Literal["take", "size"] = "take", seed: int = 0) -> None:
        check_rule(refit, "refit")
        if primary is not None and not isinstance(primary, Strategy):
            raise ValueError(f"primary={primary!r} is not a Strategy; give a node with _target_, "
                             f"e.g. {{_target_: plugins.strategy.mean_reversion.MeanReversion}}")
        if not barriers or not all(isinstance(b, ExitRule) for b in barriers):
            raise ValueError("barriers: give a list of exit rules, each a node with _target_ "
                             "(plugins.exits.take_profit.TakeProfit, ...stop_loss.StopLoss, "
                             "...time_stop.TimeStop)")
        self.horizon_ = max((_bars_held(b) for b in barriers), default=0)
        if self.horizon_ < 1:
            raise ValueError("barriers need a time barrier: add {_target_: "
                             "plugins.exits.time_stop.TimeStop, bars: 20}")
        if model is not None and not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
            raise ValueError(f"model={model!r} is not a scikit-learn classifier with "
                             f"predict_proba; e.g. {{_target_: sklearn.linear_model.LogisticRegression}}")
        self.programs_ = [compile_formula(text, features, where=f"features.{name}")
                          for name, text in features.items()]
        self.primary = primary
        self.barriers = barriers
        self.model = model
        self.features = features
        self.refit = refit
        self.min_train = min_train
        self.embargo = embargo
        self.train_window = train_window
        self.threshold = threshold
        self.sizing = sizing
        self.seed = seed

    def _primary(self) -> Strategy:
        return self.primary if self.primary is not None else MeanReversion()

    def feature_warmup(self) -> int:
        return max([self._primary().warmup()] + [p.warmup for p in self.programs_])

    def warmup(self) -> int:
        return self.feature_warmup() + self.horizon_ + self.embargo + 1

    # ------------------------------------------------------------------ events and labels
    def events(self, data: MarketData) -> dict[str, np.ndarray]:
        """Every entry of the primary strategy in ``data``, with its triple-barrier outcome:
        ``bar`` (decision), ``col``, ``side``, ``entry`` price, ``exit_bar`` (-1: no barrier
        reached within the data), ``exit`` price, ``label`` (1 win, 0 loss, -1 unknown) and
        ``value`` (the primary's signal per bar, ``T x N``)."""
        primary = self._primary()
        t, n = data.close.shape
        value = np.zeros((t, n))
        first = primary.warmup()
        if first < t:
            value[first:] = primary.signal(data, np.arange(first, t))
        side = np.sign(value)
        prev = np.vstack([np.zeros((1, n)), side[:-1]])
        bar, col = np.nonzero((side != 0) & (side != prev))
        sgn = side[bar, col]
        ref = data.open if data.open is not None else data.close
        # an entry decided at the last bar is known (the signal holds it) but not filled yet
        entry = np.where(bar + 1 < t, ref[np.minimum(bar + 1, t - 1), col], np.nan)
        h = self.horizon_
        rows = bar[None, :] + 1 + np.arange(h)[:, None]          # h x M: the bars from the fill
        inside = rows < t

        def path(field):
            a = getattr(data, field) if getattr(data, field) is not None else data.close
            return np.where(inside, a[np.minimum(rows, t - 1), col[None, :]], np.nan)

        for rule in self.barriers:
            rule.prepare(data)
        levels = [rule.levels(sgn, entry, bar, col) for rule in self.barriers]
        hits = first_exit(path("open"), path("high"), path("low"), path("close"), sgn, levels,
                          extreme=entry)
        exit_bar = np.where(hits.bar >= 0, bar + 1 + hits.bar, -1)
        resolved = (exit_bar >= 0) & (exit_bar < t) & np.isfinite(hits.price) & np.isfinite(entry)
        exit_bar = np.where(resolved, exit_bar, -1)
        win = sgn * (hits.price / entry - 1.0) > 0
        label = np.where(resolved, win.astype(np.int64), -1)
        return {"bar": bar, "col": col, "side": sgn, "entry": entry, "exit_bar": exit_bar,
                "exit": np.where(resolved, hits.price, np.nan), "label": label, "value": value}

    def _inputs(self, data: MarketData, ev: dict) -> np.ndarray:
        cache: dict = {}
        cols = [p.evaluate(data, cache=cache)[ev["bar"], ev["col"]] for p in self.programs_]
        return np.column_stack(cols + [ev["side"]])

    def _estimator(self):
        from sklearn.base import clone

        if self.model is None:
            from sklearn.linear_model import LogisticRegression

            # Newton steps: a few exact iterations on these small problems, ten times faster
            # than the default L-BFGS here
            est = LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=100)
        else:
            est = clone(self.model)
        if "random_state" in est.get_params() and est.get_params()["random_state"] is None:
            est.set_params(random_state=self.seed)
        return est

    def probabilities(self, data: MarketData, ev: Optional[dict] = None) -> np.ndarray:
        """Per entry, the probability of a win by the latest fit at or before its bar (NaN
        before the first fit)."""
        ev = self.events(data) if ev is None else ev
        X = self._inputs(data, ev)
        proba = np.full(ev["bar"].size, np.nan)
        refits = refit_bars(data.index, self.refit, self.warmup())
        which = latest(refits, ev["bar"])
        fitted = None
        for f, r in enumerate(refits):
            use = (ev["label"] >= 0) & (ev["exit_bar"] + self.embargo <= r)
            if self.train_window is not None:
                use &= ev["bar"] > r - self.train_window
            use &= np.isfinite(X).all(axis=1)
            y = ev["label"][use]
            if y.size >= self.min_train and np.unique(y).size == 2:
                mu, sd = X[use].mean(axis=0), X[use].std(axis=0)
                sd = np.where(sd > 0, sd, 1.0)
                est = self._estimator().fit((X[use] - mu) / sd, y)
                fitted = (est, mu, sd)
            now = np.flatnonzero(which == f)
            if fitted is None or now.size == 0:
                continue
            est, mu, sd = fitted
            ok = now[np.isfinite(X[now]).all(axis=1)]
            if ok.size:
                up = list(est.classes_).index(1)
                proba[ok] = est.predict_proba((X[ok] - mu) / sd)[:, up]
        return proba

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        out = np.zeros((at.size, data.n_symbols))
        if at.size == 0:
            return out
        view = causal_view(data, at)
        ev = self.events(view)
        proba = self.probabilities(view, ev)
        # the entry each bar's position belongs to: the last entry bar at or before it
        which = np.full(ev["value"].shape, -1, dtype=np.int64)
        which[ev["bar"], ev["col"]] = np.arange(ev["bar"].size)
        which = np.maximum.accumulate(which, axis=0)
        p = np.where(which >= 0, proba[np.maximum(which, 0)], np.nan)[at]
        value = ev["value"][at]
        with np.errstate(invalid="ignore"):
            take = np.isfinite(p) & (p >= self.threshold)
        gate = np.where(take, p if self.sizing == "size" else 1.0, 0.0)
        return value * gate


def _bars_held(rule: ExitRule) -> int:
    """The bars a time barrier holds a position (0 for a price barrier, whose levels may need
    ``prepare``: an ATR)."""
    one, zero = np.ones(1), np.zeros(1, dtype=np.int64)
    try:
        levels = rule.levels(one, one, zero, zero)
    except RuntimeError:
        return 0
    if levels.type is not OrderType.MARKET_ON_CLOSE or levels.after is None:
        return 0
    return int(np.max(levels.after))
