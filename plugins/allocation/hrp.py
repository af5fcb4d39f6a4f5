"""Hierarchical risk parity (Lopez de Prado, 2016)."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.core.estimators import CovarianceMethod, correlation, sample_covariance
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history


def recursive_bisection(cov: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Split ``order`` in halves, top-down; each half's inverse-variance portfolio has
    variance ``V``, and the halves get ``1 - V_left / (V_left + V_right)`` and the rest of
    their parent's weight (Lopez de Prado 2016, "Recursive bisection")."""
    # in leaf order every cluster is a contiguous block: slices instead of fancy indexing
    C = cov[np.ix_(order, order)]
    inv_var = 1.0 / np.diag(C)
    w = np.ones(order.size)
    stack = [(0, order.size)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        v = []
        for a, b in ((lo, mid), (mid, hi)):
            ivp = inv_var[a:b] / inv_var[a:b].sum()
            v.append(ivp @ C[a:b, a:b] @ ivp)
        alpha = 1.0 - v[0] / (v[0] + v[1])
        w[lo:mid] *= alpha
        w[mid:hi] *= 1.0 - alpha
        stack += [(lo, mid), (mid, hi)]
    out = np.empty_like(w)
    out[order] = w
    return out


class HRP(WindowAllocator):
    """Hierarchical risk parity: cluster, order, then split risk top-down.

    1. distance ``d_ij = sqrt((1 - rho_ij) / 2)`` from the Pearson (sample) correlation of
       the window's returns, whatever ``covariance`` says (skfolio's ``PearsonDistance``,
       which clusters on the returns, not on its prior's covariance);
    2. hierarchical clustering with ``linkage`` (scipy), then, with ``optimal_ordering``,
       the leaf order that puts similar columns next to each other
       (``scipy.cluster.hierarchy.optimal_leaf_ordering``; skfolio's default seriation);
    3. recursive bisection of that order (``recursive_bisection``) with the configured
       covariance (skfolio's prior).

    Lopez de Prado, "Building diversified portfolios that outperform out of sample", JPM
    42(4), 2016; Ward linkage and optimal ordering are skfolio's defaults (the paper used
    single linkage). With the same linkage this reproduces
    ``skfolio.optimization.HierarchicalRiskParity`` (risk measure variance, its default
    distance) given ``EmpiricalPrior(covariance_estimator=...)`` of the same covariance.
    Long-only, weights sum to 1.
    """

    rules = WINDOW_RULES

    def __init__(self, lookback: Window = 252, min_history: Window = 60,
                 covariance: CovarianceMethod = "ledoit_wolf", halflife: float = 63.0,
                 linkage: Literal["single", "complete", "average", "weighted", "centroid",
                                  "median", "ward"] = "ward",
                 optimal_ordering: bool = True) -> None:
        check_history(lookback, min_history)
        self.lookback = lookback
        self.min_history = min_history
        self.covariance = covariance
        self.halflife = halflife
        self.linkage = linkage
        self.optimal_ordering = optimal_ordering

    def _position_weights(self, P: np.ndarray, prev: Optional[np.ndarray],
                          budgets: Optional[np.ndarray]) -> np.ndarray:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        cov = self._covariance(P)
        if cov.shape[0] == 1:
            return np.ones(1)
        distance = np.sqrt(np.clip(0.5 * (1.0 - correlation(sample_covariance(P))), 0.0, 1.0))
        np.fill_diagonal(distance, 0.0)
        condensed = squareform(distance, checks=False)
        tree = hierarchy.linkage(condensed, method=self.linkage)
        if self.optimal_ordering:
            tree = hierarchy.optimal_leaf_ordering(tree, condensed)
        return recursive_bisection(cov, hierarchy.leaves_list(tree))
