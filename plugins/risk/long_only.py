"""Long-only: remove short positions."""

from __future__ import annotations

from typing import Literal

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext


class LongOnly(Constraint):
    """Every weight ``>= 0``: negative weights are set to 0.

    ``freed`` says where the gross the shorts held goes:

    - ``"cash"`` (the default): nowhere -- the book's gross falls by the shorts' gross. A
      short the strategy wanted is not turned into more of its longs.
    - ``"redistribute"``: to the longs, in proportion to their weights, so the row keeps
      its gross (``sum |w|``). A row with no long is left in cash either way.

    Runs first in the risk stage (order 10), so every later constraint sees a long-only book.
    Config: ``risk.long_only=cash`` or ``risk.long_only=redistribute``.
    """

    order = 10.0
    primary = "freed"

    def __init__(self, freed: Literal["cash", "redistribute"] = "cash") -> None:
        self.freed = freed

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        short = weights < 0
        bound = short.any(axis=1)
        if not bound.any():
            return weights, bound
        out = weights.copy()
        rows = out[bound]
        gross = np.abs(rows).sum(axis=1)
        rows[short[bound]] = 0.0
        if self.freed == "redistribute":
            longs = rows.sum(axis=1)
            scale = np.divide(gross, longs, out=np.ones_like(gross), where=longs > 0)
            rows *= scale[:, None]
        out[bound] = rows
        return out, bound
