"""Hierarchical risk parity against skfolio's HierarchicalRiskParity, and its compiled kernel
against scipy's public clustering functions and the Python bisection it replaced."""

import numpy as np
import pytest

from pipeline.core import estimators
from plugins.allocation import _hrp_kernel as kernel
from plugins.allocation.hrp import HRP

LINKAGES = ["single", "complete", "average", "weighted", "ward"]
ALL_LINKAGES = list(kernel.METHODS)  # every method HRP's ``linkage`` accepts


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
    w = kernel.recursive_bisection(np.diag(var), np.arange(5))
    np.testing.assert_allclose(w, (1 / var) / np.sum(1 / var), rtol=1e-12)


# ---------------------------------------------------------------- the kernel against scipy

def python_bisection(cov, order):
    """The recursive bisection as HRP computed it before the kernel, in numpy."""
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


def scipy_order(condensed, linkage, optimal):
    from scipy.cluster import hierarchy

    return hierarchy.leaves_list(hierarchy.linkage(condensed, linkage, optimal_ordering=optimal))


def scipy_condensed(P):
    """HRP's distances through numpy and scipy's ``squareform``."""
    from scipy.spatial.distance import squareform

    corr = estimators.correlation(estimators.sample_covariance(P))
    distance = np.sqrt(np.clip(0.5 * (1.0 - corr), 0.0, 1.0))
    np.fill_diagonal(distance, 0.0)
    return squareform(distance, checks=False)


def scipy_hrp(P, covariance, linkage, optimal):
    """HRP's weights of a clean window by scipy's public API and the Python bisection."""
    cov = estimators.positive_definite(estimators.covariance(P, covariance))
    return python_bisection(cov, scipy_order(scipy_condensed(P), linkage, optimal))


def random_condensed(rng, n, kind):
    k = n * (n - 1) // 2
    if kind == "uniform":
        return rng.random(k)
    if kind == "ties":  # four distinct values: most merges and leaf costs tie
        return rng.integers(0, 4, k) / 4.0
    if kind == "zeros":  # duplicated points: zero distances among a few
        d = rng.random(k)
        d[rng.random(k) < 0.3] = 0.0
        return d
    X = rng.standard_normal((40, n))  # "correlation": HRP's own kind of distance
    return scipy_condensed(X)


@pytest.mark.parametrize("kind", ["uniform", "ties", "zeros", "correlation"])
def test_kernel_linkage_and_leaf_order_are_scipys(kind):
    """The linkage matrix bit for bit and the leaf order itself, every method, with and without
    optimal ordering, 2 to 25 points (a different order would move the weights by far more
    than rounding)."""
    from scipy.cluster import hierarchy

    rng = np.random.default_rng(["uniform", "ties", "zeros", "correlation"].index(kind))
    for _ in range(40):
        n = int(rng.integers(2, 26))
        d = random_condensed(rng, n, kind)
        for linkage in ALL_LINKAGES:
            code = kernel.METHODS[linkage]
            np.testing.assert_array_equal(kernel.linkage(d, n, code), hierarchy.linkage(d, linkage))
            for optimal in (False, True):
                np.testing.assert_array_equal(kernel.leaf_order(d, n, code, optimal),
                                              scipy_order(d, linkage, optimal),
                                              err_msg=f"{kind} n={n} {linkage} optimal={optimal}")


def test_kernel_distances_are_numpys_bit_for_bit(sp500_frame):
    X = sp500_frame.to_numpy()[1000:1252]
    np.testing.assert_array_equal(kernel.distances(estimators.sample_covariance(X)), scipy_condensed(X))


def windows():
    """Real windows of the bundled S&P 500 data, and random ones with duplicated columns."""
    from plugins.data.sp500 import SP500

    returns = SP500().load().returns[1:]
    for start in range(0, returns.shape[0] - 252, 700):
        yield f"sp500[{start}]", returns[start: start + 252]
    rng = np.random.default_rng(11)
    for i in range(6):
        m = int(rng.integers(3, 21))
        X = rng.standard_normal((120, m)) * rng.uniform(0.005, 0.03, m) + rng.standard_normal((120, 1)) * 0.01
        dup = rng.choice(m, size=max(1, m // 3), replace=False)
        X[:, dup] = X[:, rng.integers(0, m, dup.size)]  # ties: identical columns
        yield f"random duplicated[{i}]", X


@pytest.mark.parametrize("linkage", ALL_LINKAGES)
def test_weights_equal_scipy_and_python_bisection(linkage):
    """HRP's leaf order is scipy's and its weights equal the scipy path's to 1e-12, on real
    windows and on windows with duplicated columns, for each covariance and with optimal
    ordering on and off."""
    code = kernel.METHODS[linkage]
    for name, X in windows():
        condensed = kernel.distances(estimators.sample_covariance(X))
        for optimal in (True, False):
            np.testing.assert_array_equal(kernel.leaf_order(condensed, X.shape[1], code, optimal),
                                          scipy_order(scipy_condensed(X), linkage, optimal),
                                          err_msg=f"{name} optimal={optimal}")
        for covariance in ("ledoit_wolf", "sample", "ewma"):
            for optimal in (True, False):
                ours = HRP(covariance=covariance, linkage=linkage, optimal_ordering=optimal).weigh_one(
                    X, np.ones(X.shape[1]))
                np.testing.assert_allclose(ours, scipy_hrp(X, covariance, linkage, optimal), rtol=0,
                                           atol=1e-12, err_msg=f"{name} {covariance} optimal={optimal}")
