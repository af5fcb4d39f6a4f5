"""The compiled kernels: numba loads only with the first estimate, failures become errors.

Their numbers are held equal to the numpy implementation they replaced in
tests/plugins/allocation/test_compiled_equals_numpy.py.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plugins.allocation._solvers import box_qp, risk_budget_weights, solve_pd

ROOT = Path(__file__).resolve().parents[3]

LAZY = """
import sys
import numpy as np
import pipeline.core.estimators as est
import plugins.allocation._solvers, plugins.allocation.min_variance, plugins.allocation.risk_parity
import plugins.allocation.inverse_vol, plugins.allocation.kelly, plugins.allocation.mean_variance
from plugins.allocation.equal_weight import EqualWeight
R = np.random.default_rng(0).normal(0, 0.01, (300, 5))
EqualWeight().weigh(R, np.ones((3, 5)), np.array([100, 200, 299]))
est.sample_covariance(R), est.ewma_covariance(R, 63.0), est.complete_rows(R)
print('numba' in sys.modules)
plugins.allocation.min_variance.MinVariance().weigh_one(R, np.ones(5))
print('numba' in sys.modules)
"""


def test_numba_loads_only_with_the_first_compiled_estimate():
    run = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert run.stdout.split() == ["False", "True"]


def test_not_positive_definite_is_an_error_not_garbage():
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        solve_pd(singular, np.ones(2))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        box_qp(np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros(2), np.zeros(2), np.ones(2),
               np.full(2, 0.5), total=1.0)


def test_inputs_are_left_alone_and_shapes_kept():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 9))
    Q = A @ A.T / 9 + 0.1 * np.eye(6)
    x0 = np.full(6, 1 / 6)
    kept = Q.copy(), x0.copy()
    x = box_qp(Q, np.zeros(6), np.zeros(6), np.ones(6), x0, total=1.0)
    risk_budget_weights(Q, np.ones(6), x0=x)
    np.testing.assert_array_equal(Q, kept[0])
    np.testing.assert_array_equal(x0, kept[1])
    assert solve_pd(Q, np.ones(6)).shape == (6,)
    assert solve_pd(Q, np.ones((6, 2))).shape == (6, 2)
    # the upper triangle is what is read, as LAPACK's dposv reads it
    lower_garbage = np.triu(Q) + np.tril(np.full((6, 6), 7.0), -1)
    np.testing.assert_allclose(solve_pd(lower_garbage, np.ones(6)), np.linalg.solve(Q, np.ones(6)),
                               rtol=1e-12)
