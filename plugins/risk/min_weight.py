"""A floor on the absolute weight of every held symbol."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext
from pipeline.core.errors import ConfigError
from plugins.risk.max_weight import MaxWeight

_TOL = 1e-12


class MinWeight(Constraint):
    """``|w_i| >= limit`` for every held symbol (``w_i != 0``); the row's gross is kept.

    - ``mode="drop"`` (the default): names too small to hold are sold and their gross is
      spread over the names kept, in proportion to their weights. The names kept are the
      largest ``k`` (ties: the earlier column) for the largest ``k`` whose smallest name,
      once the row's gross is spread over those ``k`` names, reaches the floor: a name just
      under the floor survives when dropping the smaller ones lifts it over. Always
      feasible; a row whose whole gross is below the floor goes to cash.
    - ``mode="raise"``: names below the floor are raised to it and the others are scaled
      down together (``w_i = max(limit, c |w_i|)`` with one ``c`` per row) to keep the gross.
      Infeasible, a ``ConfigError``, when ``holdings x limit`` exceeds the row's gross.

    Signs are kept. Runs at order 15, before ``max_weight`` (20), whose redistribution only
    raises names and so keeps them above the floor. A later scale-down of the whole book
    (group caps, net or gross leverage, drawdown control) scales the floor with it.
    """

    order = 15.0
    primary = "limit"
    rules = {"limit": "(0, 1]"}

    def __init__(self, limit: float = 0.01, mode: Literal["drop", "raise"] = "drop") -> None:
        self.limit = limit
        self.mode = mode

    def check_with(self, constraints: Sequence[tuple[str, Constraint]]) -> None:
        """Raise ConfigError when another constraint of the set makes the floor impossible."""
        for name, other in constraints:
            if isinstance(other, MaxWeight) and other.limit < self.limit:
                raise ConfigError(
                    f"risk.min_weight={self.limit} exceeds risk.{name}={other.limit}: no holding "
                    f"can be both at least the floor and at most the cap; lower risk.min_weight "
                    f"or raise risk.{name}")

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        absw = np.abs(weights)
        floor = self.limit * (1 - _TOL)
        bound = ((absw > 0) & (absw < floor)).any(axis=1)
        if not bound.any():
            return weights, bound
        W = absw[bound]
        gross = W.sum(axis=1, keepdims=True)
        if self.mode == "drop":
            new = self._drop(W, gross, floor)
        else:
            bars = ctx.at[bound] if ctx.at.size == bound.size else None
            new = self._raise(W, gross, floor, bars)
        out = weights.copy()
        out[bound] = np.sign(weights[bound]) * new
        return out, bound

    @staticmethod
    def _drop(W: np.ndarray, gross: np.ndarray, floor: float) -> np.ndarray:
        order = np.argsort(-W, axis=1, kind="stable")
        ranked = np.take_along_axis(W, order, axis=1)
        cum = np.cumsum(ranked, axis=1)
        # the smallest of the top k once the gross is spread over them; decreasing in k
        smallest = np.divide(ranked * gross, cum, out=np.zeros_like(ranked), where=cum > 0)
        keep_ranked = (ranked > 0) & (smallest >= floor)
        k = keep_ranked.sum(axis=1)
        kept_sum = np.where(k > 0, np.take_along_axis(cum, np.maximum(k - 1, 0)[:, None], axis=1)[:, 0], 1.0)
        keep = np.zeros_like(keep_ranked)
        np.put_along_axis(keep, order, keep_ranked, axis=1)
        return np.where(keep, W * (gross / kept_sum[:, None]), 0.0)

    def _raise(self, W: np.ndarray, gross: np.ndarray, floor: float,
               bars: np.ndarray | None) -> np.ndarray:
        held = W > 0
        n = held.sum(axis=1, keepdims=True)
        short = (n * self.limit > gross * (1 + _TOL))[:, 0]
        if short.any():
            i = int(np.flatnonzero(short)[0])
            where = f" at decision bar {int(bars[i])}" if bars is not None else ""
            raise ConfigError(
                f"risk.min_weight={self.limit} cannot hold: {int(n[i, 0])} holdings at the floor "
                f"need a gross of {float(n[i, 0] * self.limit):.4g}, more than the book's "
                f"{float(gross[i, 0]):.4g}{where}; lower risk.min_weight, hold fewer names, or "
                f"set risk.min_weight.mode=drop")
        at_floor = held & (W < floor)
        new = W
        for _ in range(W.shape[1]):  # each pass floors at least one more name
            rest = held & ~at_floor
            room = np.where(rest, W, 0.0).sum(axis=1, keepdims=True)
            budget = gross - self.limit * at_floor.sum(axis=1, keepdims=True)
            c = np.divide(budget, room, out=np.zeros_like(room), where=room > 0)
            new = np.where(at_floor, self.limit, np.where(rest, c * W, 0.0))
            newly = rest & (new < floor)
            if not newly.any():
                break
            at_floor |= newly
        return new
