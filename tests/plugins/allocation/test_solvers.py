"""The box-constrained QP: feasibility and the KKT conditions on random problems."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.allocation._solvers import box_qp


def kkt_violation(Q, c, x, lo, hi, total):
    """Largest violation of stationarity + multiplier signs, relative to the problem's scale."""
    g = Q @ x - c
    at_lo, at_hi = x <= lo, x >= hi
    free = ~(at_lo | at_hi)
    if total is None:
        nu = 0.0
    elif free.any():
        nu = -g[free].mean()
    else:  # any nu in [max(-g) at lo, min(-g) at hi] will do: take the best
        nu = 0.5 * (np.max(-g[at_lo], initial=-1e300) + np.min(-g[at_hi], initial=1e300))
    lam = g + nu
    scale = max(np.diag(Q).mean(), np.abs(g).max(), np.abs(c).max())
    return max(np.abs(lam[free]).max(initial=0.0), np.max(-lam[at_lo], initial=0.0),
               np.max(lam[at_hi], initial=0.0)) / scale


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40), budget=st.booleans(),
       lo=st.sampled_from([-np.inf, -0.3, 0.0, 0.01]), hi=st.sampled_from([np.inf, 1.0, 0.2]),
       tilt=st.floats(0.0, 50.0))
def test_random_problems_are_solved_exactly(random_covariance, seed, m, budget, lo, hi, tilt):
    rng = np.random.default_rng(seed)
    Q = random_covariance(rng, m)
    c = tilt * rng.standard_normal(m) * np.sqrt(np.diag(Q)) * 0.05
    lo_ = min(lo, 1.0 / m)
    hi_ = max(hi, 1.0 / m)
    total = 1.0 if budget else None
    if budget:
        x0 = np.full(m, 1.0 / m)
    else:
        x0 = np.clip(np.zeros(m), lo_, hi_)
    if not budget and not (np.isfinite(lo_) or np.isfinite(hi_)):
        hi_ = 1.0  # an unbounded, unconstrained QP is just a linear solve: keep a bound
    x = box_qp(Q, c, np.full(m, lo_), np.full(m, hi_), x0, total)
    assert np.isfinite(x).all()
    assert np.all(x >= lo_) and np.all(x <= hi_)
    if budget:
        assert abs(x.sum() - 1.0) < 1e-13 * (1 + np.abs(x).sum())
    assert kkt_violation(Q, c, x, lo_, hi_, total) < 1e-9
