"""Iceberg: a limit order that shows only a slice of itself, refreshed until done."""

from __future__ import annotations

import numpy as np

from pipeline.core.contracts import ChildOrders, ExecutionAlgo, Orders, Session
from plugins.execution._common import WINDOW_RULES, check_window, limit_prices, slice_unit, window_of


class Iceberg(ExecutionAlgo):
    """Each parent becomes limit-order slices of ``display`` times its quantity (rounded down
    to whole ``min_slice`` units and lots, at least one), all released at the window's start.
    The broker works a parent's children first in, first out, so the market sees one slice
    at a time, never more than the display quantity, and the next shows once it has filled.
    A slice fills only on volume that trades at its limit or better (passively, at the limit,
    when the bin's average price does not reach it). What is left at the window's end is
    cancelled or swept, as the broker's ``unfilled`` says.

    ``limit_bps`` (default 0: the arrival price), ``start``, ``end`` and ``min_slice`` are
    those of every scheduling algorithm (``plugins/execution/_common.py``); the limit is
    required here (an iceberg is a limit order).
    """

    rules = {**WINDOW_RULES, "display": "[0.001, 1]"}

    def __init__(self, display: float = 0.1, limit_bps: float = 0.0, start: float = 0.0,
                 end: float = 1.0, min_slice: float = 0.0) -> None:
        check_window(start, end)
        self.display = display
        self.limit_bps = limit_bps
        self.start = start
        self.end = end
        self.min_slice = min_slice

    def slice(self, orders: Orders, session: Session) -> ChildOrders:
        window = window_of(session.bins.elapsed, self.start, self.end)
        size = np.abs(orders.quantity)
        unit = slice_unit(orders, session.lot, self.min_slice)
        show = self.display * size
        if unit is not None:
            show = np.maximum(np.floor(show / unit) * unit, unit)
        count = np.ceil(size / show - 1e-9).astype(np.int64)
        parent = np.repeat(np.arange(size.size), count)
        k = np.arange(parent.size) - np.repeat(np.cumsum(count) - count, count)
        quantity = np.minimum(show[parent], size[parent] - k * show[parent])
        return ChildOrders(parent=parent, bin=np.full(parent.size, np.argmax(window.mask)),
                           quantity=np.copysign(quantity, orders.quantity[parent]),
                           limit=limit_prices(orders, self.limit_bps)[parent],
                           expire=np.full(parent.size, window.last))
