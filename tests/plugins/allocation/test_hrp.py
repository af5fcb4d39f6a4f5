"""Hierarchical risk parity against skfolio's HierarchicalRiskParity."""

import numpy as np
import pytest

from plugins.allocation.hrp import HRP, recursive_bisection

LINKAGES = ["single", "complete", "average", "weighted", "ward"]


def skfolio_hrp(X, linkage, optimal_ordering, covariance_estimator=None, cluster_on_it=False):
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
        # skfolio's own choice: the covariance in the prior, its default PearsonDistance on the
        # returns for the clusters; ``cluster_on_it`` clusters on that covariance's correlation
        kwargs = dict(prior_estimator=EmpiricalPrior(covariance_estimator=covariance_estimator))
        if cluster_on_it:
            kwargs["distance_estimator"] = CovarianceDistance(covariance_estimator=covariance_estimator)
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


def test_13_13_default_hrp_clusters_on_the_returns_correlation_as_skfolio_does(sp500_frame):
    """``allocation=hrp`` as configured (Ledoit-Wolf, Ward, optimal ordering) against skfolio's
    HierarchicalRiskParity with a Ledoit-Wolf prior and its default distance, over windows
    where clustering on the shrunk correlation instead moves the weights."""
    from skfolio.moments import LedoitWolf

    returns = sp500_frame.to_numpy()
    moved = 0.0
    for start in range(0, returns.shape[0] - 252, 800):
        X = returns[start: start + 252]
        ours = HRP().weigh_one(X, np.ones(20))
        np.testing.assert_allclose(ours, skfolio_hrp(X, "ward", True, LedoitWolf()), rtol=1e-10, atol=1e-12)
        moved = max(moved, np.abs(ours - skfolio_hrp(X, "ward", True, LedoitWolf(), cluster_on_it=True)).max())
    assert moved > 0.01  # the windows tell the two choices apart


def test_bisection_of_uncorrelated_columns_is_inverse_variance():
    """With no correlation every split is inverse-variance, so HRP is inverse-variance."""
    var = np.array([1.0, 4.0, 2.0, 0.5, 3.0])
    w = recursive_bisection(np.diag(var), np.arange(5))
    np.testing.assert_allclose(w, (1 / var) / np.sum(1 / var), rtol=1e-12)
