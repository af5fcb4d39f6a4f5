"""De-risk the book while it is in a drawdown deeper than a threshold."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.contracts import Book, Constraint

_TOL = 1e-12


class DrawdownControl(Constraint):
    """Scale the target weights to ``reduced`` of themselves while the book is de-risked.

    The drawdown at a decision is ``book.equity / book.peak_equity - 1`` (the peak over
    every close so far). The rule has two states, with hysteresis so it does not flip at
    every decision:

    - full exposure -> de-risked when the drawdown falls below ``-threshold``;
    - de-risked -> full exposure (re-entry) when the drawdown has recovered to ``-reentry``
      or better (``reentry <= threshold``; ``reentry=0`` waits for a new equity high).

    The state is decided at each decision from the book as it stands; it is reset when a
    new run starts (a decision bar not after the previous one). ``reduced=0`` goes to cash.
    Runs at order 90, first of the path-dependent constraints: a turnover cap after it may
    spread the de-risking over several rebalances. Binding where it scales a non-empty
    target.
    """

    order = 90.0
    primary = "threshold"
    stateful = True
    rules = {"threshold": "(0, 1)", "reduced": "[0, 1)", "reentry": "[0, 1)"}

    def __init__(self, threshold: float = 0.10, reduced: float = 0.5,
                 reentry: float = 0.05) -> None:
        if reentry > threshold:
            raise ValueError(f"reentry={reentry} exceeds threshold={threshold}: the book would "
                             f"re-enter at a drawdown deeper than the one that de-risks it; use "
                             f"reentry <= threshold")
        self.threshold = threshold
        self.reduced = reduced
        self.reentry = reentry
        self._derisked = False
        self._last_bar: Optional[int] = None

    @property
    def derisked(self) -> bool:
        """True while exposure is reduced (after the last ``apply_step``)."""
        return self._derisked

    def apply_step(self, target: np.ndarray, book: Book) -> tuple[np.ndarray, bool]:
        if self._last_bar is not None and book.bar <= self._last_bar:
            self._derisked = False  # a new run
        self._last_bar = book.bar
        drawdown = book.equity / book.peak_equity - 1.0 if book.peak_equity > 0 else 0.0
        # the tolerance makes a drawdown of exactly -threshold / -reentry behave as written
        # (95 / 100 - 1 is -0.05000000000000004 in floating point)
        if not self._derisked and drawdown < -self.threshold - _TOL:
            self._derisked = True
        elif self._derisked and drawdown >= -self.reentry - _TOL:
            self._derisked = False
        if not self._derisked or not np.any(target):
            return target, False
        return target * self.reduced, True
