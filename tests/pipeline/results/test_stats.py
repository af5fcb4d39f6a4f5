"""Issue 18.6: the statistics of metrics.json equal empyrical's and quantstats' to 1e-9 where
the definitions match, and hand cases where they differ or where no library has them."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.results import stats

empyrical = pytest.importorskip("empyrical")
qs = pytest.importorskip("quantstats")


@pytest.fixture(scope="module")
def series():
    """1,500 daily closes at 16:00 New York (through DST changes), a strategy correlated with
    its benchmark, with fat tails and a few flat days."""
    rng = np.random.default_rng(18)
    days = pd.bdate_range("2015-01-02", periods=1500)
    index = (days + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    b = rng.standard_t(4, 1499) * 0.008 + 0.0003
    r = 0.8 * b + rng.normal(0.0002, 0.006, 1499)
    r[::97] = 0.0
    equity = pd.Series(1e6 * np.cumprod(np.append(1.0, 1.0 + r)), index=index)
    bench = 100.0 * np.cumprod(np.append(1.0, 1.0 + b))
    return equity, bench, r, b


def dated(x, equity):
    """What the libraries are fed: returns on the exchange's dates (naive, as they expect)."""
    return pd.Series(x, index=equity.index[1:].tz_localize(None).normalize())


def close(a, b):
    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (a, b)


def test_18_6_benchmark_statistics_equal_empyrical_and_quantstats(series):
    equity, bench, r, b = series
    got = stats.statistics(equity, bench)
    alpha, beta = empyrical.alpha_beta(r, b, annualization=252)
    close(got["alpha"], alpha)
    close(got["beta"], beta)
    close(got["correlation"], float(pd.Series(r).corr(pd.Series(b))))
    close(got["information_ratio"], empyrical.excess_sharpe(r, b) * math.sqrt(252))
    close(got["information_ratio"], qs.stats.information_ratio(dated(r, equity), dated(b, equity)) * math.sqrt(252))
    close(got["tracking_error"], float(np.std(r - b, ddof=1)) * math.sqrt(252))
    close(got["up_capture"], empyrical.up_capture(r, b))
    close(got["down_capture"], empyrical.down_capture(r, b))


def test_18_6_distribution_statistics_equal_empyrical_and_quantstats(series):
    equity, bench, r, b = series
    got = stats.statistics(equity, bench)
    close(got["var_95"], empyrical.value_at_risk(r, 0.05))
    close(got["cvar_95"], empyrical.conditional_value_at_risk(r, 0.05))
    close(got["cvar_95"], qs.stats.conditional_value_at_risk(dated(r, equity), method="historical"))
    close(got["skew"], qs.stats.skew(dated(r, equity)))
    close(got["kurtosis"], qs.stats.kurtosis(dated(r, equity)))
    close(got["tail_ratio"], empyrical.tail_ratio(r))
    close(got["tail_ratio"], qs.stats.tail_ratio(dated(r, equity)))


def test_18_6_period_statistics_equal_quantstats(series):
    equity, bench, r, b = series
    got = stats.statistics(equity, bench)
    x = dated(r, equity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, agg in (("day", None), ("month", "ME"), ("year", "YE")):
            close(got[f"win_rate_{name}"], qs.stats.win_rate(x, aggregate=agg))
            close(got[f"best_{name}"], qs.stats.best(x, aggregate=agg))
            close(got[f"worst_{name}"], qs.stats.worst(x, aggregate=agg))
        yearly = empyrical.aggregate_returns(x, "yearly")
    assert list(got["yearly_returns"]) == [str(y) for y in yearly.index]
    for y, v in yearly.items():
        close(got["yearly_returns"][str(y)], float(v))
    # the years compound to the total
    close(float(np.prod([1 + v for v in got["yearly_returns"].values()])), equity.iloc[-1] / equity.iloc[0])


def test_18_6_longest_drawdown_equals_quantstats_and_recovery_by_hand(series):
    equity, bench, r, b = series
    got = stats.statistics(equity, bench)
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(dated(r, equity)))
    assert got["longest_drawdown_days"] == details["days"].max()
    # a hand case: peak on the 2nd, under water 3rd..6th (trough on the 4th), new high on the 7th
    days = pd.date_range("2024-01-01", periods=8, freq="D", tz="America/New_York") + pd.Timedelta(hours=16)
    eq = pd.Series([100, 110, 105, 90, 95, 100, 111, 105.0], index=days)
    d = stats.durations(eq)
    assert d == {"longest_drawdown_days": 4.0, "longest_recovery_days": 3.0, "underwater_days": 1.0}


def test_18_6_round_trips_fifo_by_hand_with_a_reversal_and_partial_closes():
    fills = pd.DataFrame({
        "time": ["2024-03-01 21:00:00+00:00", "2024-03-04 21:00:00+00:00", "2024-03-15 20:00:00+00:00",
                 "2024-03-18 20:00:00+00:00", "2024-03-20 20:00:00+00:00"],
        "symbol": ["A", "A", "A", "A", "B"], "side": ["buy", "buy", "sell", "buy", "buy"],
        "quantity": [10.0, 10.0, 25.0, 5.0, 3.0], "price": [100.0, 110.0, 120.0, 115.0, 50.0]})
    trips = stats.round_trips(fills, "America/New_York")
    # 10 @100 and 10 @110 closed at 120; the 5 left short from 120 covered at 115; B still open
    assert trips[["side", "quantity", "entry", "exit", "pnl"]].values.tolist() == [
        ["long", 10.0, 100.0, 120.0, 200.0], ["long", 10.0, 110.0, 120.0, 100.0], ["short", 5.0, 120.0, 115.0, 25.0]]
    # 1 -> 15 March across the DST change: 14 days on New York's clock (13.96 in UTC)
    assert trips["days"].tolist() == [14.0, 11.0, 3.0]
    t = stats.trades(pd.concat([fills, fills.iloc[[4]].assign(side="sell", price=40.0, time="2024-03-22 20:00:00+00:00")]),
                     "America/New_York")
    assert t["round_trips"] == 4 and t["hit_rate"] == 0.75
    assert t["avg_win"] == pytest.approx(325 / 3) and t["avg_loss"] == -30.0
    assert t["profit_factor"] == pytest.approx(325 / 30) and t["median_holding_days"] == 7.0  # of 14, 11, 3 and 2 days
    assert stats.trades(fills.iloc[:0]) == {}


def _fifo_by_loop(codes, signed):
    """The oracle: a lot queue per symbol, as one would write FIFO by hand."""
    import collections

    lots, rows = collections.defaultdict(collections.deque), []
    for i, (sym, q) in enumerate(zip(codes.tolist(), signed.tolist())):
        book = lots[sym]
        while q and book and (book[0][0] > 0) != (q > 0):
            lq, li = book[0]
            n = min(abs(q), abs(lq))
            side = 1.0 if lq > 0 else -1.0
            rows.append((li, i, n, side))
            lq -= side * n
            q += side * n
            if abs(lq) <= 1e-12 * n:
                book.popleft()
            else:
                book[0] = (lq, li)
            if abs(q) <= 1e-12 * n:
                q = 0.0
        if q:
            book.append((q, i))
    return [np.array(c) for c in zip(*rows)] if rows else [np.zeros(0)] * 4


def test_17_vectorised_fifo_equals_a_lot_queue_on_random_books_with_reversals():
    rng = np.random.default_rng(0)
    for trial in range(1500):
        n = int(rng.integers(1, 80))
        codes = rng.integers(0, 3, n)
        if trial % 4 == 0:  # fractional shares of any size
            signed = rng.normal(size=n) * 100
        else:               # whole lots, some of them fractional multiples
            signed = rng.choice([-1, 1], n) * rng.integers(1, 5, n) * (1.37 if trial % 2 else 1.0)
        want = _fifo_by_loop(codes, signed)
        got = stats.fifo_pieces(codes, signed)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), trial
        assert np.allclose(got[2], want[2], rtol=1e-9, atol=0) and np.array_equal(got[3], want[3]), trial


def test_17_vectorised_fifo_equals_a_lot_queue_on_a_backtest_of_15_names(sp500):
    from pipeline.backtest.engine import backtest
    from pipeline.core.schedule import decision_bars
    from pipeline.results.recorder import fills_table
    from plugins.allocation.equal_weight import EqualWeight
    from plugins.broker.sim import SimBroker
    from plugins.execution.market import Market
    from plugins.strategy.momentum import Momentum

    ledger = backtest(sp500, {"momentum": Momentum(lookback=60, top_k=15)}, EqualWeight(), [], Market(),
                      SimBroker(), decision_bars(sp500.index, "monthly"), 1e6)
    fills = fills_table(ledger)
    codes, _ = pd.factorize(fills["symbol"])
    signed = np.where(fills["side"] == "buy", 1.0, -1.0) * fills["quantity"].to_numpy()
    want, got = _fifo_by_loop(codes, signed), stats.fifo_pieces(codes, signed)
    assert len(fills) > 5000 and got[0].size > 1000
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert np.allclose(got[2], want[2], rtol=1e-9, atol=0)
