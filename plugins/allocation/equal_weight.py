"""Equal weight: the same gross weight on every eligible column."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import Allocator


class EqualWeight(Allocator):
    """``w_i = side_i / m`` over the ``m`` eligible columns; needs no history.

    Vectorised over decisions: one division for the whole ``K x N`` signal matrix.
    """

    def __init__(self) -> None:
        pass

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray) -> np.ndarray:
        side = np.sign(signals)
        count = np.count_nonzero(side, axis=1)[:, None]
        return np.divide(side, count, out=np.zeros(side.shape), where=count > 0)

    def weigh_one(self, returns: np.ndarray, side: np.ndarray) -> np.ndarray:
        side = np.asarray(side, dtype=np.float64)
        return side / side.size
