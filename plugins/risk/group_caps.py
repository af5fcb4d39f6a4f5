"""Cap the gross exposure of groups of symbols (sectors, countries, ...) named in config."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from pipeline.core.contracts import Constraint, RiskContext
from pipeline.core.errors import ConfigError

_TOL = 1e-12


class GroupCaps(Constraint):
    """``sum_{i in g} |w_i| <= cap_g`` for every group ``g``.

    Config::

        group_caps:
          limit: 0.3                      # the cap of every group not in ``limits``
          limits: {energy: 0.15}          # optional per-group caps
          groups: {tech: [AAPL, MSFT], energy: [CVX, XOM]}
          redistribute: false

    A group above its cap has its names scaled down together to the cap. The gross this
    frees goes to cash by default (``redistribute: false``): no weight is raised, so every
    constraint applied before (``max_weight``) still holds. With ``redistribute: true`` it
    is spread over the other held names in proportion to their weights, repeatedly, like
    ``max_weight``'s excess, until no group is above its cap; ungrouped names take any
    amount. This can raise a name above an earlier ``max_weight``. When the held names all
    sit in groups whose caps together are below the row's gross, the book cannot be held
    and redistribution raises a ``ConfigError``.

    Groups must not overlap. Symbols named in ``groups`` but absent from the data are
    ignored (groups may describe a larger universe than ``data.symbols``), but at least one
    must be in the data. Exposure is gross (``|w|``); signs are kept. Without ``groups``
    (the default, as after a bare ``risk.group_caps=0.3``) there is nothing to cap: a
    ``ConfigError`` naming ``risk.group_caps.groups`` as soon as the data's symbols arrive.

    The groups are mapped onto the columns by name, from ``RiskContext.symbols`` (the
    engine passes the data's symbols); a caller without them calls ``bind(symbols)`` before
    ``apply``. Runs at order 30, after ``max_weight``.
    """

    order = 30.0
    primary = "limit"
    rules = {"limit": "(0, inf)"}

    def __init__(self, limit: float = 0.3, groups: Optional[dict[str, list[str]]] = None,
                 limits: Optional[dict[str, float]] = None, redistribute: bool = False) -> None:
        self.limit = limit
        self.groups = groups
        self.limits = limits
        self.redistribute = redistribute
        seen: dict[str, str] = {}
        for name, members in (groups or {}).items():
            if isinstance(members, str) or not members or \
                    not all(isinstance(s, str) for s in members):
                raise ValueError(f"groups.{name}={members!r}: expected a non-empty list of symbols")
            for sym in members:
                if sym in seen:
                    raise ValueError(f"groups: {sym} is in both {seen[sym]} and {name}; a symbol "
                                     f"may belong to one group only")
                seen[sym] = name
        for name, cap in (limits or {}).items():
            if name not in (groups or {}):
                raise ValueError(f"limits.{name}: no such group in groups "
                                 f"({', '.join(groups or {}) or 'none given'})")
            if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0 < cap < np.inf:
                raise ValueError(f"limits.{name}={cap!r}: expected a positive number")
        self._symbols: Optional[tuple[str, ...]] = None
        self._member: Optional[np.ndarray] = None

    # -- symbols ------------------------------------------------------------------------
    def bind(self, symbols: Sequence[str]) -> None:
        """Map the configured groups onto the data's columns; called before ``apply``."""
        if not self.groups:
            raise ConfigError("risk.group_caps.groups is empty: name the groups to cap, e.g. "
                              "risk.group_caps={limit: 0.3, groups: {tech: [AAPL, MSFT]}}")
        symbols = tuple(str(s) for s in symbols)
        column = {s: i for i, s in enumerate(symbols)}
        member = np.full(len(symbols), -1, dtype=np.int64)
        for g, names in enumerate(self.groups.values()):
            for sym in names:
                if sym in column:
                    member[column[sym]] = g
        if (member < 0).all():
            named = sorted({s for names in self.groups.values() for s in names})
            raise ConfigError(f"risk.group_caps.groups: none of the grouped symbols "
                              f"({', '.join(named[:8])}{', ...' if len(named) > 8 else ''}) is "
                              f"in the data ({', '.join(symbols[:8])}"
                              f"{', ...' if len(symbols) > 8 else ''}); name the data's symbols")
        self._symbols, self._member = symbols, member

    def _caps(self) -> np.ndarray:
        return np.array([float((self.limits or {}).get(g, self.limit)) for g in self.groups])

    # -- constraint ---------------------------------------------------------------------
    def apply(self, weights: np.ndarray, ctx: RiskContext) -> tuple[np.ndarray, np.ndarray]:
        symbols = tuple(getattr(ctx, "symbols", ()) or ())
        if symbols and symbols != self._symbols:
            self.bind(symbols)
        if self._member is None:
            raise RuntimeError("risk.group_caps needs the data's symbol names: pass them in "
                               "RiskContext.symbols, or call bind(symbols) before apply")
        if self._member.size != weights.shape[1]:
            raise RuntimeError(f"risk.group_caps was bound to {self._member.size} symbols but "
                               f"received {weights.shape[1]} columns of weights")
        caps = self._caps()
        grouped = self._member >= 0
        M = np.zeros((weights.shape[1], caps.size))
        M[np.flatnonzero(grouped), self._member[grouped]] = 1.0
        absw = np.abs(weights)
        exposure = absw @ M
        over = exposure > caps * (1 + _TOL)
        bound = over.any(axis=1)
        if not bound.any():
            return weights, bound
        out = weights.copy()
        if not self.redistribute:
            scale = np.where(over, caps / np.where(over, exposure, 1.0), 1.0)
            col = np.ones_like(weights)
            col[:, grouped] = scale[:, self._member[grouped]]
            out[bound] = (weights * col)[bound]
            return out, bound
        bars = ctx.at if ctx.at.size == weights.shape[0] else np.arange(weights.shape[0])
        for i in np.flatnonzero(bound):
            out[i] = np.sign(weights[i]) * self._redistribute(absw[i], caps, int(bars[i]))
        return out, bound

    def _redistribute(self, w: np.ndarray, caps: np.ndarray, bar: int) -> np.ndarray:
        w = w.copy()
        member = self._member
        grouped = member >= 0
        gross = w.sum()
        capped = np.zeros(caps.size, dtype=bool)
        for _ in range(caps.size + 1):  # each pass caps at least one more group
            exposure = np.bincount(member[grouped], weights=w[grouped], minlength=caps.size)
            over = exposure > caps * (1 + _TOL)
            if not over.any():
                break
            capped |= over
            cols = grouped & np.isin(member, np.flatnonzero(over))
            w[cols] *= (caps / np.where(over, exposure, 1.0))[member[cols]]
            excess = gross - w.sum()
            free = (w > 0) & ~(grouped & capped[np.maximum(member, 0)])
            room = w[free].sum()
            if room <= 0:
                if excess > _TOL * 1e3 * gross:
                    held = np.unique(member[(w > 0) & grouped])
                    raise ConfigError(
                        f"risk.group_caps cannot hold the book at decision bar {bar}: its names "
                        f"sit in groups ({', '.join(list(self.groups)[g] for g in held)}) capped "
                        f"at {caps[held].sum():.4g} in total, below its gross {gross:.4g}; raise "
                        f"risk.group_caps.limit or risk.group_caps.limits, or set "
                        f"risk.group_caps.redistribute=false to keep the excess in cash")
                break
            w[free] += excess * w[free] / room
        return w
