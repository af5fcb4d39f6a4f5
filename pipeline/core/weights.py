"""Weight arithmetic shared by the risk stage and the sleeve level."""

from __future__ import annotations

import numpy as np


def cap(weights: np.ndarray, limits: np.ndarray | float, redistribute: bool = True) -> np.ndarray:
    """``|w_i| <= limit_i`` for every row of ``weights`` (K x N), signs kept.

    With ``redistribute`` the excess of capped columns is handed to the uncapped ones in
    proportion to their weights, repeatedly, so each row keeps its gross whenever the limits
    allow it (the usual index-capping method); what cannot be placed is left out (cash).
    Without it, weights are only clipped.
    """
    limits = np.broadcast_to(np.asarray(limits, dtype=np.float64), weights.shape[1:])
    w = np.abs(weights)
    gross = w.sum(axis=1, keepdims=True)
    capped = w >= limits
    w = np.minimum(w, limits)
    if redistribute:
        # each pass caps at least one more column, so N passes always suffice
        for _ in range(w.shape[1]):
            excess = gross - w.sum(axis=1, keepdims=True)
            free = np.where(capped, 0.0, w)
            room = free.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                w = np.where(capped | (room <= 0), w, w + excess * free / room)
            over = w > limits
            if not over.any():
                break
            capped |= over
            w = np.minimum(w, limits)
    return np.sign(weights) * w
