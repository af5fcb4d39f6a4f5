"""Formatting of numbers and text for the report's HTML: escaping, percentages, money, ticks."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}%}" if finite(x) else "n/a"


def num(x: Any, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if finite(x) else "n/a"


def money(x: Any) -> str:
    if not finite(x):
        return "n/a"
    a = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{x / div:,.{2 if a < 10 * div else 1}f}{suffix}"
    return f"{x:,.0f}"


def tick_label(v: float, kind: str) -> str:
    if kind == "pct":
        return f"{v:.0%}" if abs(v) >= 0.1 or v == 0 else f"{v:.1%}"
    if kind == "money":
        return money(v)
    if kind == "x":
        return f"{v:g}x"
    return f"{v:g}"


def share(v: float) -> str:
    """0.0001 -> 0.01%: a share printed as a percentage with the digits it needs."""
    digits = max(0, -math.floor(math.log10(v)) - 2) if v > 0 else 0
    return f"{v:.{digits}%}"


def day(ns: int) -> str:
    """A UTC nanosecond stamp as its date."""
    return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d")
