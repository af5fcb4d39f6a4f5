"""Sleeves: several strategies side by side, each weighed inside, then weighed against each other.

For each sleeve ``s`` the strategy's signals become asset weights ``w_s`` through the
allocation stage. Each sleeve's return stream is what its weights earned, frictionless:
``r_s[t] = sum_i w_s[k, i] * r_i[t]`` for bars ``t`` in ``(at[k], at[k+1]]`` (the weights
decided at the close of ``at[k]``, held at constant weight until the next decision). At
decision ``k`` the portfolio allocator sees sleeve returns up to ``at[k]`` only (NaN before
the first decision, so its ``min_history`` fallback applies) and returns the sleeves' weights
``u[k]`` (``Capped`` adds per-sleeve caps to any allocator); the book's target is ``sum_s u[k, s] * w_s[k]``. With a single sleeve ``u = 1``.

Allocators whose ``weigh`` accepts a ``columns`` keyword (risk budgets by name) receive the
column names: symbols at the asset level, sleeve names at the sleeve level.

Windows given as durations (``lookback: 20d``, ``2h``: ``pipeline.core.params.Window``) are
turned into bars of the data by ``in_data_bars`` before anything else reads them: the
backtest and live call it first.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Mapping, Optional, Sequence

import numpy as np

from pipeline.core.contracts import Allocator, Constraint, Strategy
from pipeline.core.errors import ConfigError
from pipeline.core.market import MarketData
from pipeline.core.windows import in_bars
from pipeline.core.schedule import decision_bars
from pipeline.core.weights import cap


@dataclasses.dataclass
class Targets:
    names: list[str]               # sleeve names
    asset_weights: np.ndarray      # S x K x N: each sleeve's weights inside it
    sleeve_weights: np.ndarray     # K x S: the portfolio's weight on each sleeve
    sleeve_returns: np.ndarray     # T x S: each sleeve's frictionless bar returns
    weights: np.ndarray            # K x N: the combined target before risk


def first_decision(strategies: Mapping[str, Strategy]) -> int:
    return max(max(int(s.warmup()), 0) for s in strategies.values())


def last_decision(index, rule: str | int, strategies: Mapping[str, Strategy],
                  sessions: np.ndarray | None = None) -> np.ndarray:
    """The decisions whose targets the decision at the last bar of ``index`` depends on (live
    decides there): with several sleeves, the earlier ones by ``rule`` from the warm-up on too,
    whose sleeve returns weigh the sleeves as the backtest weighs them; else the last bar."""
    last = len(index) - 1
    if len(strategies) == 1:
        return np.array([last], dtype=np.int64)
    earlier = decision_bars(index, rule, first_decision(strategies), sessions=sessions)
    return np.append(earlier[earlier < last], last)


def targets(data: MarketData, strategies: Mapping[str, Strategy], allocator: Allocator,
            portfolio: Optional[Allocator], at: np.ndarray) -> Targets:
    returns = data.returns
    n_sym = data.n_symbols
    names = list(strategies)
    asset_weights = np.empty((len(names), at.size, n_sym))
    for s, name in enumerate(names):
        signals = np.asarray(strategies[name].signal(data, at), dtype=np.float64)
        _expect_shape(signals, (at.size, n_sym), f"strategy.{name} ({type(strategies[name]).__name__}.signal)")
        signals = np.where(np.isfinite(signals) & np.isfinite(data.close[at]), signals, 0.0)
        weights = np.asarray(_weigh(allocator, returns, signals, at, data.symbols), dtype=np.float64)
        _expect_shape(weights, (at.size, n_sym), f"allocation ({type(allocator).__name__}.weigh)")
        asset_weights[s] = weights
    sleeve_returns = _sleeve_returns(np.nan_to_num(returns), asset_weights, at)
    if len(names) == 1:
        sleeve_weights = np.ones((at.size, 1))
    else:
        if portfolio is None:
            raise ValueError("several strategies need a portfolio allocator to weigh the sleeves")
        sleeve_weights = np.asarray(_weigh(portfolio, sleeve_returns, np.ones((at.size, len(names))),
                                           at, names), dtype=np.float64)
        _expect_shape(sleeve_weights, (at.size, len(names)), f"portfolio ({type(portfolio).__name__}.weigh)")
    combined = np.einsum("ks,skn->kn", sleeve_weights, asset_weights)
    if not (np.isfinite(combined).all() and np.isfinite(sleeve_weights).all()):
        raise RuntimeError("the allocation stage produced non-finite weights: a plugin bug")
    return Targets(names=names, asset_weights=asset_weights, sleeve_weights=sleeve_weights,
                   sleeve_returns=sleeve_returns, weights=combined)


def in_data_bars(data: MarketData, strategies: Mapping[str, Strategy], allocator: Allocator,
                 portfolio: Optional[Allocator], constraints: Sequence[tuple[str, Constraint]]
                 ) -> tuple[dict[str, Strategy], Allocator, Optional[Allocator], list[tuple[str, Constraint]]]:
    """The stages with their windows in bars of ``data`` (``pipeline.core.windows.in_bars``);
    a stage whose windows are all bars already is returned as it is."""
    strategies = {name: in_bars(s, data, f"strategy.{name}") for name, s in strategies.items()}
    if isinstance(portfolio, Capped):
        portfolio = Capped(in_bars(portfolio.inner, data, "portfolio"), portfolio.caps)
    elif portfolio is not None:
        portfolio = in_bars(portfolio, data, "portfolio")
    constraints = [(name, in_bars(c, data, f"risk.{name}")) for name, c in constraints]
    return strategies, in_bars(allocator, data, "allocation"), portfolio, constraints


class Capped(Allocator):
    """Any allocator with per-column caps by name (``sleeve_caps`` in config): the excess of a
    capped column goes to the others in proportion to their weights (``pipeline.core.weights.cap``)."""

    def __init__(self, inner: Allocator, caps: Mapping[str, float]) -> None:
        self.inner = inner
        self.caps = dict(caps)

    def weigh(self, returns: np.ndarray, signals: np.ndarray, at: np.ndarray,
              columns: Sequence[str] = ()) -> np.ndarray:
        unknown = sorted(set(self.caps) - set(columns))
        if unknown:
            raise ConfigError(f"sleeve_caps names {unknown}, which are not sleeves; sleeves here: "
                              f"{', '.join(columns)}")
        limits = np.array([float(self.caps.get(c, np.inf)) for c in columns])
        if limits.sum() < 1 - 1e-12:
            raise ConfigError(f"sleeve_caps add up to {limits.sum():g} < 1: the sleeves cannot hold "
                              f"the whole book; raise a cap or add a sleeve")
        return cap(_weigh(self.inner, returns, signals, at, columns), limits)


def _weigh(allocator: Allocator, returns: np.ndarray, signals: np.ndarray, at: np.ndarray,
           columns: Sequence[str]) -> np.ndarray:
    if "columns" in inspect.signature(allocator.weigh).parameters:
        return allocator.weigh(returns, signals, at, columns=list(columns))
    return allocator.weigh(returns, signals, at)


def _sleeve_returns(returns: np.ndarray, asset_weights: np.ndarray, at: np.ndarray) -> np.ndarray:
    """T x S returns of each sleeve holding its latest decided weights (NaN before the first)."""
    n_bars = returns.shape[0]
    held = np.searchsorted(at, np.arange(n_bars), side="left") - 1  # last decision before bar t
    out = np.full((n_bars, asset_weights.shape[0]), np.nan)
    live = held >= 0
    for s in range(asset_weights.shape[0]):
        out[live, s] = np.einsum("tn,tn->t", asset_weights[s][held[live]], returns[live])
    return out


def _expect_shape(arr: np.ndarray, shape: tuple, who: str) -> None:
    if arr.shape != shape:
        raise RuntimeError(f"{who} returned shape {arr.shape}, expected {shape}: a plugin bug")
