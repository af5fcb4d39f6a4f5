import numpy as np
import pytest

from pipeline.core.market import FIELDS
from plugins.data.synthetic import Synthetic


def test_same_seed_same_arrays_different_seed_differs():
    a, b, c = Synthetic(seed=1).load(), Synthetic(seed=1).load(), Synthetic(seed=2).load()
    assert a.digest() == b.digest()
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.allclose(a.close, c.close)


def test_shape_names_calendar():
    d = Synthetic(n_symbols=3, n_bars=300, first_date="2021-01-01").load()
    assert d.symbols == ("S000", "S001", "S002") and d.n_bars == 300
    assert d.index[0].date().isoformat() == "2021-01-01"
    assert (d.index.day_of_week < 5).all()
    assert (d.index.hour == 16).all() and str(d.index.tz) == "America/New_York"
    for f in FIELDS:
        assert getattr(d, f).dtype == np.float64 and np.isfinite(getattr(d, f)).all()


def test_closes_do_not_depend_on_ohlcv():
    full, bare = Synthetic(seed=3).load(), Synthetic(seed=3, ohlcv=False).load()
    np.testing.assert_array_equal(full.close, bare.close)
    assert bare.open is None and bare.volume is None


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8])
def test_correlation_and_volatility_near_target(rho):
    d = Synthetic(n_symbols=8, n_bars=5000, correlation=rho, vol=0.25, seed=11).load()
    r = np.diff(np.log(d.close), axis=0)
    c = np.corrcoef(r.T)[np.triu_indices(8, 1)]
    # The mean of 28 pairwise estimates from 5000 days has a standard error near 0.01.
    assert abs(c.mean() - rho) < 0.05
    assert abs(r.std(axis=0).mean() * np.sqrt(252) - 0.25) < 0.01


def test_ohlcv_consistency():
    d = Synthetic(n_symbols=5, n_bars=2000, vol=0.6, seed=5).load()
    assert (d.high >= np.maximum(d.open, d.close)).all()
    assert (d.low <= np.minimum(d.open, d.close)).all()
    assert (d.low > 0).all() and (d.volume > 0).all()
    # the open gaps from the previous close, but only a little
    gap = np.log(d.open[1:] / d.close[:-1])
    assert 0 < np.abs(gap).mean() < np.abs(np.log(d.close[1:] / d.open[1:])).mean()


def test_zero_vol_gives_flat_bars():
    d = Synthetic(n_symbols=2, n_bars=10, vol=0.0, drift=0.0).load()
    np.testing.assert_allclose(d.close, 100.0)
    np.testing.assert_allclose(d.high, d.low)


def test_slicing_applies():
    d = Synthetic(start="2010-02-01", end="2010-02-05", symbols=["S002"]).load()
    assert d.symbols == ("S002",) and d.n_bars == 5
