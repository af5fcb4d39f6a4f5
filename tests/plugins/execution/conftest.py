"""Hand-made sessions for the execution algorithms: bins whose every number the test chose
(fixtures returning builder functions, so a test builds as many as it needs)."""

import numpy as np
import pytest

from pipeline.core.contracts import Bins, Orders, Session


def _bins(n_bins=13, m=3, seed=0, price=100.0, volume=1e5, sigma=0.02, half_spread=2e-4,
              forecast=None):
    """``n_bins x m`` bins: a random walk around ``price``, U-ish volume, forecast = volume."""
    rng = np.random.default_rng(seed)
    path = price * np.exp(np.cumsum(rng.normal(0, 0.002, (n_bins, m)), axis=0))
    shape = 1.0 + (2.0 * ((np.arange(n_bins) + 0.5) / n_bins) - 1.0) ** 2
    vol = np.outer(shape / shape.sum(), np.full(m, volume)) * rng.uniform(0.7, 1.3, (n_bins, m))
    return Bins(elapsed=np.arange(1, n_bins + 1) / n_bins, price=path, low=path * 0.999,
                high=path * 1.001, volume=vol, forecast=vol.copy() if forecast is None else forecast,
                sigma=np.full(m, sigma), half_spread=np.full(m, half_spread))


def _session(bins: Bins, lot=None) -> Session:
    m = bins.price.shape[1]
    return Session(bar=1, reference=bins.price[0], close=bins.price[-1], volume=None,
                   symbols=np.arange(m), lot=lot, source=lambda bar, symbols: bins)


def _orders(quantity, price=100.0) -> Orders:
    quantity = np.asarray(quantity, dtype=float)
    return Orders(symbol=np.arange(quantity.size), quantity=quantity,
                  arrival=np.full(quantity.size, price))


@pytest.fixture(scope="session")
def make_bins():
    return _bins


@pytest.fixture(scope="session")
def make_session():
    return _session


@pytest.fixture(scope="session")
def make_orders():
    return _orders
