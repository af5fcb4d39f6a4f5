"""Issue 18.4: outputs other tools read. ``record.format=csv|parquet|[csv,parquet]``; the
``positions`` table (each symbol's value and the cash, summing to the equity) and ``shares``;
quantstats and pyfolio (the test extra) given our returns agree with our Sharpe ratio, maximum
drawdown and CAGR where the definitions match, and pyfolio's full tear sheet takes our returns,
positions and transactions."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.app.api import backtest
from pipeline.core.errors import ConfigError
from pipeline.core.market import forward_filled

ARGS = ("allocation=inverse_vol", "data.start=2016-01-01")


@pytest.fixture(scope="module")
def result():
    return backtest(*ARGS)


def test_18_4_parquet_tables_are_the_csv_tables_on_a_datetimeindex(result, tmp_path):
    both = backtest(*ARGS, "record.format=[csv,parquet]").save(tmp_path / "both")
    csv_only = result.save(tmp_path / "csv")
    for name in ("equity", "returns", "weights", "positions", "shares", "orders", "fills", "execution"):
        on_file = pd.read_parquet(both / f"{name}.parquet")
        assert isinstance(on_file.index, pd.DatetimeIndex) and str(on_file.index.tz) == "America/New_York"
        pd.testing.assert_frame_equal(on_file, getattr(result, name), check_freq=False, obj=name)
        # the CSV beside it is the CSV a csv-only run writes
        assert (both / f"{name}.csv").read_bytes() == (csv_only / f"{name}.csv").read_bytes(), name
    again = backtest(*ARGS, "record.format=parquet").save(tmp_path / "parquet")
    assert not list(again.glob("*.csv")) and (again / "metrics.json").is_file()
    for name in ("equity", "fills"):  # same config, same bytes
        assert (again / f"{name}.parquet").read_bytes() == (both / f"{name}.parquet").read_bytes()
    assert json.loads((again / "metrics.json").read_text()) == json.loads((csv_only / "metrics.json").read_text())


def test_18_4_a_misspelt_format_fails_before_the_run():
    with pytest.raises(ConfigError, match=r"record.format='xlsx' is not allowed: expected csv, parquet or \[csv,parquet\]"):
        backtest("record.format=xlsx")


def test_18_4_positions_are_shares_at_the_mark_and_sum_with_cash_to_the_equity(result):
    positions, shares, equity = result.positions, result.shares, result.equity
    data, start = result.ledger.data, result.ledger.start
    assert list(positions.columns) == list(data.symbols) + ["cash"] and list(shares.columns) == list(data.symbols)
    mark = forward_filled(data.close)[start:]
    np.testing.assert_array_equal(positions[list(data.symbols)].to_numpy(), shares.to_numpy() * mark)
    np.testing.assert_allclose(positions.sum(axis=1), equity["equity"], rtol=1e-12)
    np.testing.assert_array_equal(positions["cash"], equity["cash"])
    # the shares move only by the fills: their cumulative sum per symbol is the holding
    fills = result.fills
    signed = fills["quantity"].where(fills["side"] == "buy", -fills["quantity"])
    held = signed.groupby(fills["symbol"]).sum()
    np.testing.assert_allclose(shares.iloc[-1][held.index], held, rtol=1e-9, atol=1e-9)


def test_18_4_quantstats_and_pyfolio_agree_on_sharpe_drawdown_and_cagr(result):
    qs = pytest.importorskip("quantstats")
    empyrical = pytest.importorskip("empyrical")
    pytest.importorskip("pyfolio")
    from pyfolio import timeseries

    r, m = result.returns["return"], result.metrics
    stats = timeseries.perf_stats(r)
    # Sharpe: mean / std (ddof 1) x sqrt(252), risk-free 0, in all three
    assert qs.stats.sharpe(r, periods=252) == pytest.approx(m["sharpe"], abs=1e-6)
    assert stats["Sharpe ratio"] == pytest.approx(m["sharpe"], abs=1e-6)
    # maximum drawdown from the starting equity on (a first bar's loss counts)
    assert qs.stats.max_drawdown(r) == pytest.approx(m["max_drawdown"], abs=1e-6)
    assert stats["Max drawdown"] == pytest.approx(m["max_drawdown"], abs=1e-6)
    # CAGR: both libraries count years as bars / 252; ours counts calendar days / 365.25. With
    # their bars-per-year set to ours (bars over our years) they give our CAGR; with theirs,
    # (1 + total return) ** (252 / bars) - 1
    ours_years = (result.equity.index[-1] - result.equity.index[0]).total_seconds() / (365.25 * 86400)
    assert qs.stats.cagr(r, periods=len(r) / ours_years) == pytest.approx(m["cagr"], abs=1e-6)
    assert empyrical.annual_return(r, annualization=len(r) / ours_years) == pytest.approx(m["cagr"], abs=1e-6)
    by_bars = (1 + m["total_return"]) ** (252 / len(r)) - 1
    assert qs.stats.cagr(r) == pytest.approx(by_bars, abs=1e-6)
    assert stats["Annual return"] == pytest.approx(by_bars, abs=1e-6)
    assert abs(by_bars - m["cagr"]) > 1e-5  # the two definitions differ here by 25 times the tolerance


@pytest.mark.slow
def test_18_4_pyfolios_full_tear_sheet_takes_our_returns_positions_and_transactions(result):
    pytest.importorskip("pyfolio")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyfolio
    from pyfolio import pos

    tables = result.pyfolio()
    assert set(tables) == {"returns", "positions", "transactions"}
    # pyfolio reads the positions as we mean them: its gross leverage is our gross exposure
    leverage = pyfolio.timeseries.gross_lev(tables["positions"])
    np.testing.assert_allclose(leverage, result.equity["gross_exposure"], rtol=1e-9)
    alloc = pos.get_percent_alloc(tables["positions"])
    np.testing.assert_allclose(alloc.sum(axis=1), 1.0, rtol=1e-12)
    try:
        pyfolio.create_full_tear_sheet(tables["returns"], positions=tables["positions"],
                                       transactions=tables["transactions"], round_trips=False)
    finally:
        plt.close("all")


def test_18_4_a_parquet_only_folder_rebuilds_the_same_report(result, tmp_path):
    from pipeline.report.tearsheet import from_folder

    out = backtest(*ARGS, "record.format=parquet").save(tmp_path / "parquet")
    written = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    from_folder(out)
    assert (out / "report.html").read_bytes() == written
