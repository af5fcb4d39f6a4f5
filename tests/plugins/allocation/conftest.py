"""Fixtures for the allocator tests: the S&P 500 sample bundled with skfolio, random inputs
(as fixtures returning generator functions, so tests can draw as many as they need)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sp500_frame():
    """Daily simple returns of skfolio's 20-stock S&P 500 sample (1990-2022), no NaN row."""
    from skfolio.datasets import load_sp500_dataset

    return load_sp500_dataset().pct_change().iloc[1:]


@pytest.fixture(scope="session")
def sp500_returns(sp500_frame):
    """The same returns as the engine hands them over: row 0 NaN (no previous close)."""
    X = sp500_frame.to_numpy()
    return np.vstack([np.full((1, X.shape[1]), np.nan), X])


def _random_returns(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """``n x m`` daily-like returns with a common factor and a spread of volatilities."""
    vol = rng.uniform(0.005, 0.04, m)
    beta = rng.uniform(-0.5, 1.5, m)
    common = rng.standard_normal((n, 1)) * 0.01
    return common * beta + rng.standard_normal((n, m)) * vol + rng.normal(0.0003, 0.0005, m)


def _random_covariance(rng: np.random.Generator, m: int) -> np.ndarray:
    """A random positive-definite covariance: random correlations, volatilities 0.5%-4%."""
    A = rng.standard_normal((m, m + int(rng.integers(0, 3 * m + 1))))
    S = A @ A.T + 1e-3 * np.eye(m)
    sd = np.sqrt(np.diag(S))
    vol = rng.uniform(0.005, 0.04, m)
    return S / np.outer(sd, sd) * np.outer(vol, vol)


@pytest.fixture(scope="session")
def random_returns():
    """``random_returns(rng, n, m)``: see ``_random_returns``."""
    return _random_returns


@pytest.fixture(scope="session")
def random_covariance():
    """``random_covariance(rng, m)``: see ``_random_covariance``."""
    return _random_covariance
