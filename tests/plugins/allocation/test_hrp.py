"""Hierarchical risk parity against skfolio's HierarchicalRiskParity."""

import numpy as np
import pytest

from plugins.allocation.hrp import HRP, recursive_bisection

LINKAGES = ["single", "complete", "average", "weighted", "ward"]


def skfolio_hrp(X, linkage, optimal_ordering, covariance_estimator=None):
    from skfolio import RiskMeasure
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import CovarianceDistance
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.prior import EmpiricalPrior
    from skfolio.seriation import HierarchicalSeriation

    seriation = HierarchicalSeriation(
        hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod(linkage)),
        optimal_ordering=optimal_ordering)
    kwargs = {}
    if covariance_estimator is not None:
        # the distance from the same covariance's correlation, as HRP computes it
        kwargs = dict(prior_estimator=EmpiricalPrior(covariance_estimator=covariance_estimator),
                      distance_estimator=CovarianceDistance(covariance_estimator=covariance_estimator))
    model = HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE, seriation_estimator=seriation,
                                   **kwargs)
    return model.fit(X).weights_


@pytest.mark.parametrize("linkage", LINKAGES)
@pytest.mark.parametrize("start", [0, 4700, 7800])
def test_matches_skfolio_sample_covariance(sp500_frame, linkage, start):
    X = sp500_frame.to_numpy()[start: start + 252]
    for ordering in (True, False):
        ours = HRP(covariance="sample", linkage=linkage, optimal_ordering=ordering).weigh_one(X, np.ones(20))
        np.testing.assert_allclose(ours, skfolio_hrp(X, linkage, ordering), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("linkage", ["single", "ward"])
def test_matches_skfolio_ledoit_wolf(sp500_frame, linkage):
    from skfolio.moments import LedoitWolf

    X = sp500_frame.to_numpy()[3000:3252]
    ours = HRP(covariance="ledoit_wolf", linkage=linkage).weigh_one(X, np.ones(20))
    np.testing.assert_allclose(ours, skfolio_hrp(X, linkage, True, LedoitWolf()), rtol=1e-10,
                               atol=1e-12)


def test_bisection_of_uncorrelated_columns_is_inverse_variance():
    """With no correlation every split is inverse-variance, so HRP is inverse-variance."""
    var = np.array([1.0, 4.0, 2.0, 0.5, 3.0])
    w = recursive_bisection(np.diag(var), np.arange(5))
    np.testing.assert_allclose(w, (1 / var) / np.sum(1 / var), rtol=1e-12)
