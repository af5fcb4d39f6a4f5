"""The execution algorithms on hand-made sessions: each one's defining property, and the
contract every algorithm (every YAML under conf/execution and every registered one) keeps."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.app import registry
from pipeline.core.contracts import AUCTION, AuctionCosts, Bins
from pipeline.core.params import import_target
from plugins.broker.sim import SimBroker
from plugins.execution.adaptive import Adaptive
from plugins.execution.iceberg import Iceberg
from plugins.execution.implementation_shortfall import ImplementationShortfall, ac_kappa
from plugins.execution.pov import POV
from plugins.execution.smart import Smart
from plugins.execution.twap import TWAP
from plugins.execution.vwap import VWAP

CONF = Path(__file__).resolve().parents[3] / "conf" / "execution"
FREE = dict(commission_bps=0.0, commission_min=0.0, half_spread_bps=0.0, impact_coef=0.0)


def all_algorithms():
    """name -> instance: every YAML option (with its settings) and every registered plugin."""
    from omegaconf import OmegaConf

    out = {}
    for name in registry.config_files("execution"):
        node = OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))
        out[name] = import_target(node.pop("_target_"), name)(**node)
    for name, ep in registry.registered()["execution"].items():
        out.setdefault(name, ep.load()())
    return out


ALGORITHMS = all_algorithms()


def per_bin(children, m, n_bins):
    """Scheduled quantity per bin and parent (``n_bins x m``), auction children excluded."""
    out = np.zeros((n_bins, m))
    keep = children.bin >= 0
    np.add.at(out, (children.bin[keep], children.parent[keep]), children.quantity[keep])
    return out


# ---------------------------------------------------------------- TWAP, VWAP

def test_twap_slices_are_equal(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([1000.0, -777.0, 3.0])
    for start, end, n in [(0.0, 1.0, 13), (0.25, 0.75, 7)]:
        children = TWAP(start=start, end=end).slice(orders, make_session(bins))
        sched = per_bin(children, 3, 13)
        used = np.flatnonzero(sched[:, 0])
        assert used.size == n
        np.testing.assert_allclose(sched[used], orders.quantity / n * np.ones((n, 1)), rtol=1e-8)
        np.testing.assert_allclose(sched.sum(axis=0), orders.quantity, rtol=1e-12)


def test_vwap_slices_by_the_forecast_never_by_the_realised_volume(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([5000.0, -300.0, 12.0])
    children = VWAP().slice(orders, make_session(bins))
    expected = bins.forecast / bins.forecast.sum(axis=0) * orders.quantity
    np.testing.assert_allclose(per_bin(children, 3, 13), expected, rtol=1e-8)
    # the same forecast, another realised day: the same children
    other = Bins(**{**bins.__dict__, "volume": bins.volume[::-1] * 3.0})
    again = VWAP().slice(orders, make_session(other))
    np.testing.assert_array_equal(again.quantity, children.quantity)
    np.testing.assert_array_equal(again.bin, children.bin)


def test_vwap_average_price_is_within_1bp_of_the_interval_vwap(make_bins, make_session, make_orders):
    """Impact off: a VWAP order's average price against the VWAP of the same bins."""
    for seed in range(20):
        bins = make_bins(seed=seed, half_spread=0.0)
        bins = Bins(**{**bins.__dict__, "forecast": bins.volume * 1.7})  # a good forecast of the shape
        orders = make_orders([2000.0, -1500.0, 50.0])
        for start, end in [(0.0, 1.0), (0.1, 0.6)]:
            session = make_session(bins)
            algo = VWAP(start=start, end=end)
            fills = SimBroker(**FREE).execute(orders, algo.slice(orders, session), session)
            avg = (np.bincount(fills.parent, fills.quantity * fills.price, 3)
                   / np.bincount(fills.parent, fills.quantity, 3))
            window = algo.window(bins.elapsed).mask
            vwap = (bins.price * bins.volume)[window].sum(axis=0) / bins.volume[window].sum(axis=0)
            assert np.abs(avg / vwap - 1).max() < 1e-4
            np.testing.assert_allclose(fills.report.vwap, vwap, rtol=1e-12)


# ---------------------------------------------------------------- POV

def test_pov_never_exceeds_its_rate_in_any_bin(make_bins, make_session, make_orders):
    bins = make_bins(volume=1e4)
    orders = make_orders([3000.0, -200.0, 10.0])  # the first order is 30% of the day's volume
    session = make_session(bins)
    for rate in (0.05, 0.1, 0.3):
        children = POV(rate=rate).slice(orders, session)
        assert (np.abs(per_bin(children, 3, 13)) <= rate * bins.volume * (1 + 1e-12)).all()
        fills = SimBroker(**FREE, participation_cap=1.0).execute(orders, children, session)
        traded = np.zeros((13, 3))
        np.add.at(traded, (fills.bin, fills.parent), np.abs(fills.quantity))
        assert (traded <= rate * bins.volume * (1 + 1e-12)).all()
        # the rate binds for the big order, and it is reported unfilled, not dropped
        filled = np.bincount(fills.parent, fills.quantity, 3)
        np.testing.assert_allclose(filled + fills.report.cancelled, orders.quantity, rtol=1e-12)
    assert abs(filled[0]) == pytest.approx(min(3000.0, 0.3 * bins.volume[:, 0].sum()))


# ---------------------------------------------------------------- iceberg

def test_iceberg_never_shows_more_than_its_display_quantity(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([1000.0, -333.0, 7.0])
    for display in (0.05, 0.1, 0.3, 1.0):
        algo = Iceberg(display=display, limit_bps=20.0, start=0.2, end=0.8)
        children = algo.slice(orders, make_session(bins))
        shown = np.abs(children.quantity)
        assert (shown <= display * np.abs(orders.quantity[children.parent]) * (1 + 1e-12)).all()
        np.testing.assert_allclose(np.bincount(children.parent, children.quantity, 3), orders.quantity)
        assert (children.bin == children.bin[0]).all() and children.bin[0] == 2  # released at the start
        # a limit order: buys no higher, sells no lower than arrival -/+ 20 bp
        side = np.sign(orders.quantity[children.parent])
        np.testing.assert_allclose(children.limit, 100.0 * (1 + side * 20e-4))


def test_iceberg_slices_fill_one_after_another_at_the_limit_or_better(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([800.0, -800.0, 800.0])
    children = Iceberg(display=0.1, limit_bps=5.0).slice(orders, make_session(bins))
    fills = SimBroker(**FREE).execute(orders, children, make_session(bins))
    limit = 100.0 * (1 + np.sign(orders.quantity) * 5e-4)
    side = np.sign(fills.quantity)
    assert (side * (fills.price - limit[fills.parent]) <= 1e-9).all()
    filled = np.bincount(fills.parent, fills.quantity, 3)
    np.testing.assert_allclose(filled + fills.report.cancelled, orders.quantity)


# ---------------------------------------------------------------- implementation shortfall

def test_is_trajectory_is_the_almgren_chriss_closed_form(make_bins, make_session, make_orders):
    bins = make_bins(n_bins=10, sigma=0.03, volume=2e5)
    orders = make_orders([20000.0, -5000.0, 800.0], price=50.0)
    for lam in (1e-7, 1e-6, 1e-5):
        children = ImplementationShortfall(risk_aversion=lam, impact_coef=0.4).slice(
            orders, make_session(bins))
        sched = np.abs(per_bin(children, 3, 10))
        X = np.abs(orders.quantity)
        T, n = 1.0, 10
        tau = T / n
        sigma = 0.03 * 50.0                                   # price volatility, per share per day
        adv = bins.forecast.sum(axis=0)
        eta = 0.4 * 0.03 * 50.0 / np.sqrt(X / T * adv)        # linearised square-root impact
        kappa = np.arccosh(1 + 0.5 * lam * sigma ** 2 / eta * tau ** 2) / tau
        t = np.arange(n + 1)[:, None] * tau
        x = X * np.sinh(kappa * (T - t)) / np.sinh(kappa * T)  # Almgren & Chriss (2000)
        np.testing.assert_allclose(sched, x[:-1] - x[1:], rtol=1e-7, atol=1e-9 * X.max())
        # and it is the minimum of E + lambda V over every trajectory (a quadratic: solve it)
        for j in range(3):
            a = eta[j] / tau
            b = lam * sigma ** 2 * tau
            # d/dx_k of sum a (x_(k-1) - x_k)^2 + b x_k^2 = 0 for k = 1..n-1, x_0 = X, x_n = 0
            A = np.diag(np.full(n - 1, 2 * a + b)) - a * (np.eye(n - 1, k=1) + np.eye(n - 1, k=-1))
            rhs = np.zeros(n - 1)
            rhs[0] = a * X[j]
            best = np.concatenate([[X[j]], np.linalg.solve(A, rhs), [0.0]])
            np.testing.assert_allclose(x[:, j], best, rtol=1e-9, atol=1e-9 * X[j])


def test_is_front_loads_more_with_risk_aversion_and_is_twap_without(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([10000.0, -10000.0, 10000.0])
    first = []
    for lam in (0.0, 1e-6, 1e-5, 1e-4):
        sched = per_bin(ImplementationShortfall(risk_aversion=lam).slice(orders, make_session(bins)), 3, 13)
        first.append(abs(sched[0, 0]) / 10000.0)
    assert first[0] == pytest.approx(1 / 13)
    assert first == sorted(first) and first[-1] > first[0]
    assert ac_kappa(1e-6, np.array([1.0]), np.array([0.0]), 0.1)[0] > 0  # no impact: all at once


# ---------------------------------------------------------------- adaptive

def test_adaptive_neutral_is_vwap(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([4000.0, -900.0, 77.0])
    neutral = Adaptive(urgency=0.5, price_weight=0.0, vol_weight=0.0, spread_weight=0.0)
    np.testing.assert_allclose(per_bin(neutral.slice(orders, make_session(bins)), 3, 13),
                               per_bin(VWAP().slice(orders, make_session(bins)), 3, 13), rtol=1e-9)


def test_adaptive_never_looks_at_the_bin_it_decides(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([4000.0, -900.0, 77.0])
    base = per_bin(Adaptive().slice(orders, make_session(bins)), 3, 13)
    for b in range(13):
        moved = bins.price.copy()
        moved[b:] *= 1.05
        later = Bins(**{**bins.__dict__, "price": moved, "volume": bins.volume * 2})
        sched = per_bin(Adaptive().slice(orders, make_session(later)), 3, 13)
        np.testing.assert_array_equal(sched[:b + 1], base[:b + 1])


def test_adaptive_urgency_follows_price_volatility_and_spread(make_bins, make_session, make_orders):
    bins = make_bins()
    orders = make_orders([1000.0, 1000.0, 1000.0])

    def early(b, **params):  # the share done in the first half of the day
        return per_bin(Adaptive(**params).slice(orders, make_session(b)), 3, 13)[:6].sum(axis=0) / 1000.0

    flat = Bins(**{**bins.__dict__, "price": np.full((13, 3), 100.0)})
    cheaper = Bins(**{**bins.__dict__, "price": np.full((13, 3), 99.0)})   # a buy got cheaper
    dearer = Bins(**{**bins.__dict__, "price": np.full((13, 3), 101.0)})
    assert (early(cheaper) > early(flat)).all() and (early(dearer) < early(flat)).all()
    wide = Bins(**{**bins.__dict__, "half_spread": np.full(3, 0.01)})
    assert (early(wide) < early(bins)).all()
    assert (early(bins, urgency=0.9) > early(bins, urgency=0.1)).all()
    wild = bins.price * np.exp(np.where(np.arange(13)[:, None] % 2, 0.02, -0.02))
    volatile = Bins(**{**bins.__dict__, "price": wild})
    assert (early(volatile, price_weight=0.0) > early(flat, price_weight=0.0)).all()


# ---------------------------------------------------------------- smart

def test_smart_routes_by_size_and_urgency(make_bins, make_session, make_orders):
    bins = make_bins(volume=1e6)  # forecast ADV: a million shares
    orders = make_orders([100.0, -20000.0, 200000.0])  # 0.01%, 2%, 20% of ADV
    session = make_session(bins)
    smart = Smart(market_below=0.001, pov_above=0.05, pov_rate=0.1)
    np.testing.assert_array_equal(smart.route(orders, session), [0, 1, 2])
    children = smart.slice(orders, session)
    assert (children.bin[children.parent == 0] == AUCTION).all()
    np.testing.assert_allclose(per_bin(children, 3, 13)[:, 1],
                               per_bin(VWAP().slice(orders, session), 3, 13)[:, 1], rtol=1e-9)
    np.testing.assert_allclose(per_bin(children, 3, 13)[:, 2],
                               per_bin(POV(rate=0.1).slice(orders, session), 3, 13)[:, 2], rtol=1e-9)
    urgent = Smart(urgency=0.9, urgent_above=0.7).slice(orders, session)
    np.testing.assert_allclose(per_bin(urgent, 3, 13)[:, 1],
                               per_bin(ImplementationShortfall().slice(orders, session), 3, 13)[:, 1],
                               rtol=1e-9)


# ---------------------------------------------------------------- every algorithm

@st.composite
def sessions(draw):
    n_bins = draw(st.integers(1, 20))
    m = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    bins = _random_bins(rng, n_bins, m, draw(st.sampled_from(["normal", "quiet", "halted", "no_forecast"])))
    magnitude = draw(st.sampled_from([1e-9, 1e-3, 1.0, 1e3, 1e7]))
    quantity = rng.choice([-1.0, 1.0], m) * magnitude * rng.uniform(0.1, 10.0, m)
    lot = draw(st.sampled_from([None, None, 1.0, 100.0]))
    if lot:
        quantity = np.round(quantity / lot) * lot
        quantity[quantity == 0] = lot
    return bins, quantity, lot


def _random_bins(rng, n_bins, m, kind):
    price = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bins, m)), axis=0))
    volume = rng.uniform(0, 1e5, (n_bins, m)) * (rng.uniform(size=(n_bins, m)) > 0.2)
    forecast = np.full((n_bins, m), 1e5 / n_bins)
    if kind == "quiet":
        volume[:] = 0.0
    if kind == "halted":
        volume[:, 0] = 0.0
        price[:, 0] = 100.0
    if kind == "no_forecast":
        forecast[:] = 0.0
    return Bins(elapsed=np.arange(1, n_bins + 1) / n_bins, price=price, low=price * 0.995,
                high=price * 1.005, volume=volume, forecast=forecast,
                sigma=rng.uniform(0, 0.05, m), half_spread=rng.uniform(0, 1e-3, m))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
@settings(max_examples=60)
@given(case=sessions())
def test_no_child_is_ever_nan_infinite_zero_or_wrong_side(name, case, make_session, make_orders):
    """Tiny, huge, lot-sized orders; quiet bins, halted symbols, no forecast: children stay
    finite, on the parent's side, nonzero, within its quantity; fills sum to what filled."""
    bins, quantity, lot = case
    orders = make_orders(quantity)
    session = make_session(bins, lot=lot)
    children = ALGORITHMS[name].slice(orders, session)
    q, parent = children.quantity, children.parent
    assert np.isfinite(q).all() and (q != 0).all()
    assert (np.sign(q) == np.sign(quantity[parent])).all()
    scheduled = np.bincount(parent, np.abs(q), quantity.size)
    assert (scheduled <= np.abs(quantity) * (1 + 1e-9)).all()
    assert ((children.bin >= AUCTION) & (children.bin < bins.price.shape[0])).all()
    assert np.all(np.isnan(children.limit) | (children.limit > 0))
    if lot:
        np.testing.assert_allclose(q / lot, np.round(q / lot), atol=1e-6)
    broker = SimBroker(lot_size=lot, unfilled="sweep" if quantity.size % 2 else "cancel")
    broker.auction_ = AuctionCosts(  # as prepared, without impact in the auction
        impact_scale=np.zeros((2, quantity.size)), half_spread=2e-4, impact_in_shares=True,
        commission=broker._commission(), volume=None, assumed_dollar_volume=5e8)
    fills = broker.execute(orders, children, session)
    for field in ("quantity", "price", "commission", "spread_cost", "impact_cost"):
        assert np.isfinite(getattr(fills, field)).all(), field
    assert (fills.quantity != 0).all() and (np.sign(fills.quantity) == np.sign(quantity[fills.parent])).all()
    filled = np.bincount(fills.parent, fills.quantity, quantity.size)
    np.testing.assert_allclose(filled + fills.report.cancelled, quantity, rtol=1e-9, atol=1e-12)
    assert (np.abs(filled) <= np.abs(quantity) * (1 + 1e-9)).all()
