"""The exit fill convention (pipeline.core.exits), on hand-computed paths."""

import numpy as np
import pytest

from pipeline.core.estimators import average_true_range
from pipeline.core.exits import ExitLevels, first_exit
from pipeline.core.orders import OrderError, OrderTerms, OrderType, TimeInForce

STOP = OrderType.STOP
LIMIT = OrderType.LIMIT
TRAIL = OrderType.TRAILING_STOP
MOC = OrderType.MARKET_ON_CLOSE


def path(*bars):
    """Bars as (open, high, low, close) for one position: B x 1 arrays."""
    o, h, lo, c = (np.array([[b[k]] for b in bars], dtype=float) for k in range(4))
    return o, h, lo, c


def one(rules, bars, side=1.0, extreme=100.0, held=0):
    hits = first_exit(*path(*bars), side=np.array([side]), levels=rules,
                      extreme=np.array([extreme]), held=np.array([held]))
    return int(hits.bar[0]), int(hits.rule[0]), float(hits.price[0]), bool(hits.gap[0])


def stop(level):
    return ExitLevels("stop_loss", STOP, stop=np.array([level]))


def take(level):
    return ExitLevels("take_profit", LIMIT, limit=np.array([level]))


def test_16_6_stop_touched_inside_a_bar_fills_at_its_level():
    bars = [(100, 101, 97, 99), (99, 100, 91, 95)]
    assert one([stop(92.0)], bars) == (1, 0, 92.0, False)


def test_16_6_a_bar_opening_through_the_stop_fills_at_the_open():
    bars = [(100, 101, 97, 99), (88, 90, 85, 89)]
    assert one([stop(92.0)], bars) == (1, 0, 88.0, True)


def test_16_6_take_profit_gapped_through_fills_at_the_better_open():
    bars = [(100, 104, 99, 103), (112, 115, 111, 114)]
    assert one([take(110.0)], bars) == (1, 0, 112.0, True)


def test_16_6_stop_and_take_profit_in_one_bar_resolve_to_the_stop():
    bars = [(100, 111, 91, 100)]
    assert one([take(110.0), stop(92.0)], bars) == (0, 1, 92.0, False)


def test_16_6_a_path_inside_the_bar_decides_which_level_came_first():
    # the same day as four bins: up to 111 first, then down to 91
    bins = [(100, 111, 100, 110), (110, 110, 91, 92)]
    assert one([take(110.0), stop(92.0)], bins) == (0, 0, 110.0, False)


def test_16_6_trailing_stop_ratchets_on_the_previous_highs_only():
    trail = ExitLevels("trailing_stop", TRAIL, trail_percent=np.array([0.05]))
    bars = [(100, 104, 99, 103),    # stop 95 (entry 100), high 104
            (103, 110, 102, 109),   # stop 98.8; the bar's own 110 does not count yet
            (109, 109, 104, 105)]   # stop 104.5 (5 % under 110): touched at 104
    assert one([trail], bars) == (2, 0, 104.5, False)


def test_16_6_trailing_stop_by_amount_mirrors_for_a_short():
    trail = ExitLevels("trailing_stop", TRAIL, trail_amount=np.array([3.0]))
    bars = [(100, 101, 95, 96), (96, 97, 94, 95), (95, 98.5, 95, 98)]
    # the low since entry is 94 after bar 1, so the stop is 97: bar 2's high of 98.5 reaches it
    assert one([trail], bars, side=-1.0) == (2, 0, 97.0, False)


def test_16_6_short_stop_above_gapped_through_fills_at_the_open():
    bars = [(100, 101, 99, 100), (109, 111, 108, 110)]
    assert one([stop(105.0)], bars, side=-1.0) == (1, 0, 109.0, True)


def test_16_6_time_stop_fills_at_the_close_of_its_bar():
    rule = ExitLevels("time_stop", MOC, after=np.array([3]))
    bars = [(100, 101, 99, 100), (100, 102, 99, 101), (101, 103, 100, 102.5), (1, 1, 1, 1)]
    assert one([rule], bars) == (2, 0, 102.5, False)
    assert one([rule], bars[2:], held=2) == (0, 0, 102.5, False)


def test_16_6_of_two_stops_the_higher_one_is_met_first_on_the_way_down():
    bars = [(100, 100, 80, 85)]
    assert one([stop(90.0), stop(95.0)], bars) == (0, 1, 95.0, False)


def test_16_6_a_stop_touched_in_the_bar_beats_the_time_stop_at_its_close():
    rule = ExitLevels("time_stop", MOC, after=np.array([1]))
    assert one([rule, stop(95.0)], [(100, 100, 94, 99)]) == (0, 1, 95.0, False)


def test_16_6_no_level_no_exit_and_nan_levels_send_nothing():
    bars = [(100, 101, 99, 100)]
    assert one([stop(90.0)], bars)[:2] == (-1, -1)
    assert one([stop(np.nan)], [(100, 100, 1, 1)])[:2] == (-1, -1)


def test_16_6_a_walk_split_in_two_paths_equals_one_walk():
    rng = np.random.default_rng(3)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (60, 5)), axis=0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(rng.normal(0, 0.01, c.shape))
    h = np.maximum(o, c) * 1.01
    lo = np.minimum(o, c) * 0.99
    side = np.array([1, -1, 1, -1, 1.0])
    rules = [ExitLevels("trailing_stop", TRAIL, trail_percent=np.full(5, 0.1)),
             ExitLevels("time_stop", MOC, after=np.full(5, 45))]
    whole = first_exit(o, h, lo, c, side, rules, extreme=np.full(5, 100.0))
    first = first_exit(o[:30], h[:30], lo[:30], c[:30], side, rules, extreme=np.full(5, 100.0))
    later = first_exit(o[30:], h[30:], lo[30:], c[30:], side, rules, extreme=first.extreme,
                       held=first.held)
    joined_bar = np.where(first.bar >= 0, first.bar, np.where(later.bar >= 0, later.bar + 30, -1))
    joined_price = np.where(first.bar >= 0, first.price, later.price)
    np.testing.assert_array_equal(joined_bar, whole.bar)
    np.testing.assert_array_equal(joined_price, whole.price)


def test_16_3_order_terms_refuse_what_must_never_be_sent():
    with pytest.raises(OrderError, match="quantity nan"):
        OrderTerms(OrderType.STOP, stop=90.0).check("AAPL", float("nan"))
    with pytest.raises(OrderError, match="stop -1"):
        OrderTerms(OrderType.STOP, stop=-1.0).check("AAPL", 10)
    with pytest.raises(OrderError, match="needs a stop"):
        OrderTerms(OrderType.STOP).check("AAPL", 10)
    with pytest.raises(OrderError, match="needs a limit"):
        OrderTerms(OrderType.LIMIT_ON_CLOSE).check("AAPL", 10)
    with pytest.raises(OrderError, match="exactly one"):
        OrderTerms(OrderType.TRAILING_STOP).check("AAPL", -10)
    with pytest.raises(OrderError, match="trail_amount 0"):
        OrderTerms(OrderType.TRAILING_STOP, trail_amount=0.0).check("AAPL", -10)
    with pytest.raises(OrderError, match="quantity 0"):
        OrderTerms().check("AAPL", 0)
    OrderTerms(OrderType.TRAILING_STOP, trail_percent=0.05, tif=TimeInForce.GTC).check("AAPL", -10)


def test_16_1_average_true_range_is_wilders():
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (200, 2)), axis=0))
    h, lo = c * 1.012, c * 0.991
    got = average_true_range(h, lo, c, 14)
    prev = np.vstack([[np.nan, np.nan], c[:-1]])
    tr = np.fmax(h - lo, np.fmax(abs(h - prev), abs(lo - prev)))
    want = np.full_like(c, np.nan)
    want[13] = tr[:14].mean(axis=0)
    for t in range(14, 200):
        want[t] = want[t - 1] + (tr[t] - want[t - 1]) / 14
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    close_only = average_true_range(None, None, c, 14)
    assert np.isnan(close_only[:14]).all()
    np.testing.assert_allclose(close_only[14], np.abs(np.diff(c[:15], axis=0)).mean(axis=0))
