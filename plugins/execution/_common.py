"""What the execution algorithms share: the window of bins, limit prices, slice sizes, and
turning a schedule (the share of each parent per bin) into child orders.

Parameters every scheduling algorithm takes (each lists them in its own signature):

- ``start``, ``end``: the window, as fractions of the session (0 the open, 0.5 midday, 1 the
  close; on intraday data, of the bars from the decision to its horizon, ``Session``). A
  bin is in the window when it overlaps it; a window inside one bin uses that bin. The
  horizon is the window's last bin: what is unfilled there is cancelled or swept (the
  broker's ``unfilled``).
- ``limit_bps``: null for market children; otherwise the worst price accepted, in bps from
  the arrival price: a buy pays at most ``arrival * (1 + limit_bps / 1e4)``, a sell receives
  at least ``arrival * (1 - limit_bps / 1e4)`` (negative: better than arrival, a passive
  order).
- ``max_participation``: null, or the most the order may take of each bin's volume (the
  broker enforces it on the volume as it prints; what a capped bin leaves rolls into the
  next bins of the window).
- ``min_slice``: the smallest child worth sending, in the account's currency at the arrival
  price: children are whole multiples of it (and of the broker's lot), the last one taking
  the remainder; a parent smaller than it goes as one child.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from pipeline.core.contracts import Bins, ChildOrders, ExecutionAlgo, Orders, Session

WINDOW_RULES = {"start": "[0, 1]", "end": "[0, 1]", "limit_bps": "(-10000, 10000)",
                "max_participation": "(0, 1]", "min_slice": "[0, inf)"}
# a schedule's shares below this are dust, not orders
FINEST = 1e-9


def check_window(start: float, end: float) -> None:
    if not start < end:
        raise ValueError(f"start={start} is not before end={end}: the window is a span of the "
                         f"session, e.g. start=0.0 end=0.5 for the morning")


@dataclasses.dataclass(frozen=True)
class Window:
    """The bins a parent may trade in: ``mask`` (``B``), ``even`` each bin's share of the
    window's duration (``B x 1``, zero outside), and ``last``, the horizon bin."""

    mask: np.ndarray
    even: np.ndarray
    last: int


def window_of(elapsed: np.ndarray, start: float, end: float) -> Window:
    """Bins overlapping ``[start, end]`` (``elapsed``: each bin's end as a share of the day)."""
    began = np.concatenate([[0.0], elapsed[:-1]])
    mask = (elapsed > start) & (began < end)
    if not mask.any():
        mask[min(int(np.searchsorted(elapsed, start)), elapsed.size - 1)] = True
    duration = (elapsed - began) * mask
    return Window(mask=mask, even=(duration / duration.sum())[:, None],
                  last=int(np.flatnonzero(mask)[-1]))


def shares(amounts: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Columns of ``amounts`` over their sums; ``fallback`` for columns summing to zero."""
    total = np.add.reduce(amounts, 0)
    return np.where(total > 0, amounts / np.where(total > 0, total, 1.0), fallback)


def volume_weights(bins: Bins, window: Window) -> np.ndarray:
    """The forecast volume profile over the window (even in time where none is forecast)."""
    return shares(bins.forecast * window.mask[:, None], window.even)


def limit_prices(orders: Orders, limit_bps: Optional[float]) -> np.ndarray:
    if limit_bps is None:
        return np.full(len(orders), np.nan)
    return orders.arrival * (1.0 + np.sign(orders.quantity) * (limit_bps * 1e-4))


def slice_unit(orders: Orders, lot: Optional[float], min_slice: float) -> Optional[np.ndarray]:
    """Shares per smallest child of each parent: ``min_slice`` at arrival, in whole lots (None
    when neither is set: any size goes)."""
    if not lot and not min_slice:
        return None
    unit = min_slice / orders.arrival
    return np.maximum(np.ceil(unit / lot), 1.0) * lot if lot else unit


def to_children(orders: Orders, session: Session, weights: np.ndarray, limit: np.ndarray,
                participation: np.ndarray, min_slice: float, expire: int) -> ChildOrders:
    """Child orders from a ``B x M`` schedule whose columns sum to at most 1.

    Shares below ``FINEST`` are dropped (a trajectory's far tail, not worth an order); a
    schedule that comes within ``FINEST`` a bin of the whole parent completes it there. With
    ``min_slice`` or a lot, cumulative quantities are rounded to whole slice units, so children
    are whole units and still sum exactly to the parent.
    """
    size = np.abs(orders.quantity)
    unit = slice_unit(orders, session.lot, min_slice)
    cum = np.where(weights > FINEST, weights, 0.0).cumsum(0) * size
    if unit is not None:
        cum = np.minimum(np.floor(cum / unit + 0.5) * unit, size)
    done = np.where(cum >= size * (1.0 - FINEST * cum.shape[0]), size, cum).T
    sizes = done.copy()
    sizes[:, 1:] -= done[:, :-1]
    parent, bin_ = np.nonzero(sizes > 0)
    return ChildOrders(parent=parent, bin=bin_,
                       quantity=np.copysign(sizes[parent, bin_], orders.quantity[parent]),
                       limit=limit[parent], participation=participation[parent],
                       expire=np.full(parent.size, expire))


class Scheduled(ExecutionAlgo):
    """An algorithm that spreads each parent over the window by a schedule (``schedule``)."""

    start: float = 0.0
    end: float = 1.0
    limit_bps: Optional[float] = None
    max_participation: Optional[float] = None
    min_slice: float = 0.0

    def schedule(self, orders: Orders, bins: Bins, window: Window) -> np.ndarray:
        """``B x M`` (or ``B x 1``) share of each parent per bin, zero outside the window."""
        raise NotImplementedError

    def participation(self) -> Optional[float]:
        return self.max_participation

    def window(self, elapsed: np.ndarray) -> Window:
        # simulated sessions share one ``elapsed`` array: their window is worked out once
        if getattr(self, "window_", (None,))[0] is not elapsed:
            self.window_ = (elapsed, window_of(elapsed, self.start, self.end))
        return self.window_[1]

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        bins = session.bins
        window = self.window(bins.elapsed)
        cap = self.participation()
        return to_children(orders, session, self.schedule(orders, bins, window),
                           limit_prices(orders, self.limit_bps),
                           np.full(len(orders), np.nan if cap is None else cap),
                           self.min_slice, window.last)
