"""Cap the book's net exposure by scaling its dominant side down."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext
from pipeline.core.errors import ConfigError
from plugins.risk.long_only import LongOnly


class MaxNetLeverage(Constraint):
    """``|sum w_i| <= limit``.

    A row whose net exposure is above ``+limit`` has its longs scaled down together until
    the net is ``+limit``; below ``-limit``, its shorts. The other side is left as it is,
    so the gross falls by exactly the excess net. ``limit=0`` asks for a dollar-neutral
    book: a row with one side only then goes to cash.

    Runs at order 70, after the shape constraints and the vol target, before
    ``max_gross_leverage`` (80); being a scale-down it keeps every cap applied before it.
    """

    order = 70.0
    primary = "limit"
    rules = {"limit": "[0, inf)"}

    def __init__(self, limit: float = 1.0) -> None:
        self.limit = limit

    def check_with(self, constraints: Sequence[tuple[str, Constraint]]) -> None:
        """A long-only book with a net cap of 0 can hold nothing: a ConfigError."""
        for name, other in constraints:
            if isinstance(other, LongOnly) and self.limit == 0:
                raise ConfigError(
                    f"risk.max_net_leverage=0 with risk.{name}: a long-only book with zero net "
                    f"exposure holds nothing; raise risk.max_net_leverage or remove risk.{name}")

    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        longs = np.where(weights > 0, weights, 0.0).sum(axis=1)
        shorts = np.where(weights < 0, -weights, 0.0).sum(axis=1)
        net = longs - shorts
        tol = 1e-12 * (longs + shorts)
        too_long = net > self.limit + tol
        too_short = net < -self.limit - tol
        bound = too_long | too_short
        if not bound.any():
            return weights, bound
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.where(too_long, (shorts + self.limit) / longs, 1.0)
            down = np.where(too_short, (longs + self.limit) / shorts, 1.0)
        out = np.where(weights > 0, weights * up[:, None], weights * down[:, None])
        return out, bound
