"""The report's sections, one module each, chosen and ordered by ``report.sections``
(conf/report/default.yaml).

A section is a module of this package (its name is the name in the list and the page's
``#anchor``) or, for a section shipped elsewhere, a dotted module path. It holds:

- ``TITLE``: the heading (and the link in the page's navigation);
- ``body(run: Run) -> str | None``: the section's HTML, or None when the run has nothing for
  it (no fills: no costs section);
- optionally ``CLASS``: a CSS class of the ``<section>`` element.

Adding a chart is adding a module and naming it in the list.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from types import ModuleType
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pipeline.core.errors import ConfigError
from pipeline.core.params import suggest

# the page's order when a config names none (a run folder recorded before report.sections)
DEFAULT = ("metrics", "caveats", "equity", "drawdowns", "rolling", "monthly", "statistics", "weights",
           "attribution", "costs", "execution", "config")


@dataclasses.dataclass(frozen=True)
class Run:
    """What the sections draw from: a run's tables, metrics and provenance, and the series
    several sections share (time in UTC ns, equity, bar returns, the benchmark's levels
    scaled to the starting capital)."""
    frames: dict[str, pd.DataFrame]
    metrics: dict[str, Any]
    prov: dict[str, Any]
    t: np.ndarray
    equity: np.ndarray
    r: np.ndarray
    ppy: float
    bench_name: str | None
    bench_level: np.ndarray | None
    bstats: dict[str, float]

    @property
    def config(self) -> dict[str, Any]:
        return self.prov.get("config", {})

    @property
    def capital(self) -> float:
        return float(self.equity[0])


def available() -> list[str]:
    """The sections of this package, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def chosen(names: Sequence[str] | None) -> list[tuple[str, ModuleType]]:
    """The modules of ``report.sections`` in its order (None: ``DEFAULT``); an unknown or
    repeated name is a ConfigError naming it."""
    names = list(DEFAULT if names is None else names)
    known = available()
    out = []
    for name in map(str, names):
        if name in (n for n, _ in out):
            raise ConfigError(f"report.sections: {name!r} is named twice; name each section once")
        if "." not in name and name not in known:
            raise ConfigError(f"report.sections: no section {name!r}{suggest(name, known)} "
                              f"(the sections: {', '.join(known)}; or a module path)")
        try:
            module = importlib.import_module(name if "." in name else f"{__name__}.{name}")
        except ImportError as exc:
            raise ConfigError(f"report.sections: cannot import section {name!r} ({exc}); check the "
                              f"module path") from None
        if not (isinstance(getattr(module, "TITLE", None), str) and callable(getattr(module, "body", None))):
            raise ConfigError(f"report.sections: {name!r} ({module.__name__}) is not a section: it "
                              f"needs TITLE and body(run)")
        out.append((name, module))
    return out
