"""How far from the entry an exit sits: a fraction of the entry price or a multiple of the ATR
known at the entry's decision. Shared by the exit rules of this folder."""

from __future__ import annotations

from typing import Optional

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.estimators import average_true_range
from pipeline.core.market import MarketData


class Distance:
    """Exactly one of ``pct`` (a fraction, 0.08 = 8 %) or ``atr`` (a multiple of Wilder's ATR
    over ``atr_window`` bars) for rule ``name``; ``amount`` (a price distance) where the rule
    allows it."""

    def __init__(self, name: str, pct: Optional[float], atr: Optional[float], atr_window: int,
                 amount: Optional[float] = None, allow_amount: bool = False) -> None:
        given = {k: v for k, v in (("pct", pct), ("atr", atr), ("amount", amount)) if v is not None}
        keys = "pct, atr or amount" if allow_amount else "pct or atr"
        if len(given) != 1:
            raise ConfigError(f"exits.{name}: set exactly one of {keys} "
                              f"(e.g. exits.{name}.pct=0.08), not {sorted(given) or 'none'}")
        key, value = next(iter(given.items()))
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise ConfigError(f"exits.{name}.{key}={value!r}: must be a positive number")
        if key == "pct" and value >= 1:
            raise ConfigError(f"exits.{name}.pct={value!r}: a fraction below 1 (0.08 is 8%)")
        if key == "amount" and not allow_amount:
            raise ConfigError(f"exits.{name}: amount is not an option here; use pct or atr")
        if not (isinstance(atr_window, int) and atr_window >= 1):
            raise ConfigError(f"exits.{name}.atr_window={atr_window!r}: a whole number of bars >= 1")
        self.name, self.key, self.value, self.window = name, key, float(value), atr_window
        self.atr_: Optional[np.ndarray] = None
        self.close_only_ = False

    def prepare(self, data: MarketData) -> None:
        if self.key == "atr":
            self.close_only_ = data.high is None or data.low is None
            self.atr_ = average_true_range(data.high, data.low, data.close, self.window)

    def price(self, entry: np.ndarray, bar: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """The distance in price per position (NaN where the ATR is not known yet)."""
        if self.key == "pct":
            return self.value * np.asarray(entry, dtype=float)
        if self.key == "amount":
            return np.full(np.shape(entry), self.value)
        if self.atr_ is None:
            raise RuntimeError(f"exits.{self.name}: prepare(data) before levels()")
        return self.value * self.atr_[np.asarray(bar), np.asarray(columns)]
