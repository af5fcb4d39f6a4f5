"""Helpers for the strategy tests: the contract's causality checks, for any configuration."""

import dataclasses

import numpy as np
import pytest


def check_causal(make, data, at, checks: int = 8):
    """``make()`` builds a fresh strategy. The signal at ``at[i]`` from the data cut after
    ``at[i]`` equals the one from the full history, scrambling the future changes nothing,
    and two runs agree bit for bit."""
    full = make().signal(data, at)
    assert full.shape == (at.size, data.n_symbols) and np.isfinite(full).all()
    np.testing.assert_array_equal(make().signal(data, at), full)
    for i in np.unique(np.linspace(0, at.size - 1, checks).astype(int)):
        t = int(at[i])
        cut = make().signal(data.view(t + 1), at[: i + 1])
        np.testing.assert_array_equal(cut[-1], full[i], err_msg=f"looked ahead at bar {t}")
    mid = int(at[at.size // 2])
    close = data.close.copy()
    close[mid + 1:] = close[mid + 1:][::-1] * 1.7
    scrambled = dataclasses.replace(data, close=close)
    keep = at <= mid
    np.testing.assert_array_equal(make().signal(scrambled, at)[keep], full[keep])
    return full


@pytest.fixture
def causal():
    return check_causal


@pytest.fixture(scope="session")
def sp500_0508(sp500):
    return sp500.select(start="2005-01-01", end="2008-12-31")
