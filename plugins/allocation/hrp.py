"""Hierarchical risk parity (Lopez de Prado, 2016)."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np

from pipeline.core import estimators
from pipeline.core.estimators import CovarianceMethod
from pipeline.core.params import Window
from plugins.allocation._common import WINDOW_RULES, WindowAllocator, check_history


class HRP(WindowAllocator):
    """Hierarchical risk parity: cluster, order, then split risk top-down.

    1. distance ``d_ij = sqrt((1 - rho_ij) / 2)`` from the Pearson (sample) correlation of
       the window's returns, whatever ``covariance`` says (skfolio's ``PearsonDistance``,
       which clusters on the returns, not on its prior's covariance);
    2. hierarchical clustering with ``linkage`` (scipy), then, with ``optimal_ordering``,
       the leaf order that puts similar columns next to each other
       (``scipy.cluster.hierarchy.optimal_leaf_ordering``; skfolio's default seriation);
    3. recursive bisection of that order with the configured covariance (skfolio's prior).

    Steps 1-3 run as one compiled call (``plugins/allocation/_hrp_kernel.py``, numba) that
    reproduces scipy's linkage and leaf order exactly: ~1 ms of scipy and Python per
    decision became tens of microseconds (benchmarks/bench_allocation.py).

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
        # numba loads with the first HRP decision, not with every run
        from plugins.allocation._hrp_kernel import METHODS, hrp_weights

        if P.shape[1] == 1:
            return np.ones(1)
        # row-major whatever the caller's layout: BLAS's bits depend on it, and on windows with
        # tied distances (duplicated columns) a last bit decides the leaf order
        sample, cov = estimators.sample_and_covariance(np.ascontiguousarray(P), self.covariance, self.halflife)
        return hrp_weights(sample, estimators.positive_definite(cov), METHODS[self.linkage],
                           self.optimal_ordering)
