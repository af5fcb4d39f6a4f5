"""A strategy written as a formula in its config file: a factor expression and a position rule."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.core.contracts import Strategy
from pipeline.core.errors import DataError
from pipeline.core.market import MarketData
from plugins.strategy._common import causal_view, cross_sectional_top
from plugins.strategy._expr import compile_formula


class Expression(Strategy):
    """Score every symbol by ``score``, a formula over the data's fields (the grammar and the
    operators are in ``plugins/strategy/_expr.py`` and ``_ops.py``), and turn the scores into
    positions.

    ``features`` names formulas that ``score`` (and other features) use by name; a file under
    ``conf/strategy/features/`` shares them between strategies (see ``expression.yaml``).
    ``groups`` maps each symbol to a group (a sector) for the ``group_*`` operators.

    ``rule`` (a NaN score is never a position):

    - ``top_k``: +1 for the ``top_k`` highest scores (ties to the earlier column); with
      ``long_short``, -1 for the ``top_k`` lowest.
    - ``quantiles``: +1 for the top ``floor(quantile * n)`` of the ``n`` defined scores (at
      least one when ``n >= 2``; ties to the earlier column), with ``long_short`` -1 for as many
      at the bottom.
    - ``threshold``: +1 where ``score > upper``; with ``long_short``, -1 where ``score < lower``.
    - ``sign``: ``sign(score)`` (negative ones only with ``long_short``).
    - ``score``: the score itself, a conviction (negative ones only with ``long_short``).

    A formula that is NaN everywhere once the history covers its warm-up is an error naming it:
    on a shorter history it is no position, as are divisions by zero and logs of non-positive
    numbers.
    """

    rules = {"top_k": "[1, inf)", "quantile": "(0, 0.5]"}

    def __init__(self, score: str = "rank(ts_mean(returns, 252) - ts_mean(returns, 21))",
                 features: Optional[dict[str, str]] = None,
                 groups: Optional[dict[str, str]] = None,
                 rule: Literal["top_k", "quantiles", "threshold", "sign", "score"] = "top_k",
                 top_k: int = 5, quantile: float = 0.2, upper: float = 0.0,
                 lower: float = 0.0, long_short: bool = False) -> None:
        self.program_ = compile_formula(score, features, where="score")
        if self.program_.groups and not groups:
            raise ValueError("score uses a group_ operator: give groups, a mapping symbol -> "
                             "group (e.g. groups: {AAPL: tech, XOM: energy})")
        if rule == "threshold" and long_short and lower > upper:
            raise ValueError(f"lower ({lower}) must not be above upper ({upper})")
        self.score = score
        self.features = features
        self.groups = groups
        self.rule = rule
        self.top_k = top_k
        self.quantile = quantile
        self.upper = upper
        self.lower = lower
        self.long_short = long_short

    def warmup(self) -> int:
        return self.program_.warmup

    def group_codes(self, data: MarketData) -> Optional[np.ndarray]:
        if not self.groups:
            return None
        missing = [s for s in data.symbols if s not in self.groups]
        if missing:
            raise DataError(f"groups has no group for {', '.join(missing)}; add them to "
                            f"the strategy's groups mapping")
        names = sorted({str(self.groups[s]) for s in data.symbols})
        return np.array([names.index(str(self.groups[s])) for s in data.symbols])

    def scores(self, data: MarketData) -> np.ndarray:
        """The ``T x N`` score panel (NaN where undefined); row ``t`` reads rows ``[0, t]``."""
        out = self.program_.evaluate(data, self.group_codes(data))
        warm = self.program_.warmup
        if data.n_bars > warm and not np.isfinite(out[warm:]).any():
            raise DataError(f"score {self.score!r} is NaN on every bar after its warm-up of "
                            f"{warm} bars on {data.name!r}: check divisions, logs and windows")
        return out

    def signal(self, data: MarketData, at: np.ndarray) -> np.ndarray:
        at = np.asarray(at, dtype=np.int64)
        if at.size == 0:
            return np.zeros((0, data.n_symbols))
        view = causal_view(data, at)
        score = self.scores(view)[at]
        score[~np.isfinite(view.close[at])] = np.nan
        return self.positions(score)

    def positions(self, score: np.ndarray) -> np.ndarray:
        ok = np.isfinite(score)
        with np.errstate(invalid="ignore"):
            if self.rule == "top_k":
                long = cross_sectional_top(score, self.top_k)
                short = cross_sectional_top(score, self.top_k, largest=False) & ~long
            elif self.rule == "quantiles":
                count = ok.sum(axis=1, keepdims=True)
                order = np.argsort(np.argsort(np.where(ok, score, np.inf), axis=1, kind="stable"),
                                   axis=1, kind="stable")
                cut = np.maximum(np.floor(self.quantile * count), count >= 2)
                long = ok & (order >= count - cut)
                short = ok & (order < cut) & ~long
            elif self.rule == "threshold":
                long, short = ok & (score > self.upper), ok & (score < self.lower)
            else:
                long, short = ok & (score > 0), ok & (score < 0)
        out = np.zeros(score.shape)
        if self.rule == "score":
            out[long] = score[long]
            if self.long_short:
                out[short] = score[short]
            return out
        out[long] = 1.0
        if self.long_short:
            out[short] = -1.0
        return out
