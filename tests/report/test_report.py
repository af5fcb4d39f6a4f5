"""report.html: written by every run, self-contained, complete, deterministic and fast."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.report import analytics, charts, tearsheet as report
from pipeline.report.benchmark import benchmark, benchmark_choice
from pipeline.report.format import num, pct
from pipeline.report.sections import execution, monthly

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ("chart-equity", "chart-drawdown", "chart-rolling-vol", "chart-rolling-sharpe", "chart-weights",
          "chart-sleeves", "chart-assets", "chart-turnover", "chart-costs", "chart-execution")


def chart_points(html: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'<svg class="chart[^"]*" id="([^"]+)" data-points="(\d+)"', html)}


@pytest.mark.slow
def test_every_run_writes_a_complete_report(default_run):
    html = (default_run / "report.html").read_text()
    metrics = json.loads((default_run / "metrics.json").read_text())
    # every section the issue lists
    for anchor in ("metrics", "caveats", "equity", "drawdowns", "rolling", "monthly", "weights", "attribution",
                   "costs", "execution", "config"):
        assert f'<section id="{anchor}"' in html, anchor
    # equity against the data's own benchmark: its 20 stocks bought and held, dividends in both
    assert "benchmark: equal-weight buy-and-hold of the 20 symbols priced at the start, no costs" in html
    # every chart draws data
    points = chart_points(html)
    for chart in CHARTS:
        assert points.get(chart, 0) > 0, chart
    # key metrics as the run computed them
    assert pct(metrics["cagr"]) in html and num(metrics["sharpe"]) in html
    # monthly table: a row per year, twelve months and the year
    table = re.search(r'<table class="monthly">.*?</table>', html, re.S).group(0)
    assert all(f"<th>{m}</th>" in table for m in monthly.MONTHS)
    years = re.findall(r'<tr><td class="l">(\d{4})</td>', table)
    assert years[0] == "1990" and years[-1] == "2022" and len(years) == 33
    # execution: one point per parent order (up to the drawing cap), against participation
    orders = len(pd.read_csv(default_run / "execution.csv"))
    assert points["chart-execution"] == min(orders, execution.MAX_SCATTER)
    assert "Implementation shortfall against participation" in html
    # the full resolved config, and the data's caveats
    config = re.search(r'<pre id="config">(.*?)</pre>', html, re.S).group(1)
    assert "lookback: 252" in config and "_target_: plugins.broker.sim.SimBroker" in config
    assert "survivorship bias" in html and "no open prices" in html


@pytest.mark.slow
def test_report_is_self_contained(default_run):
    html = (default_run / "report.html").read_text()
    without_ns = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://", without_ns), "a URL in the report"
    assert not re.search(r"\b(src|href)=\"(?!#)", html), "a link or source other than an in-page anchor"
    assert "@import" not in html and "url(" not in html
    # one inlined script (tests/report/test_tearsheet_18.py) and data blocks, no source to load
    assert not re.search(r"<script[^>]*\bsrc=", html) and html.count("<script>") == 1
    assert "default-src 'none'" in html  # and the page forbids fetching anything


@pytest.mark.slow
def test_report_bytes_are_deterministic_and_rebuildable(default_run, tmp_path, run_cli):
    # the same config and seed in another folder: the same report, byte for byte
    run_cli(f"out_dir={tmp_path}")
    assert (tmp_path / "report.html").read_bytes() == (default_run / "report.html").read_bytes()
    # rebuilt from the folder's files: the same bytes again
    original = (tmp_path / "report.html").read_bytes()
    (tmp_path / "report.html").unlink()
    subprocess.run([sys.executable, "-m", "pipeline.report", str(tmp_path)], check=True,
                   capture_output=True)
    assert (tmp_path / "report.html").read_bytes() == original


@pytest.mark.slow
def test_equal_weight_benchmark_for_other_data_and_several_sleeves(tmp_path, run_cli):
    run_cli("data=synthetic", "data.n_bars=600", "data.n_symbols=6", "strategy=[momentum,buy_and_hold]",
            "strategy.momentum.lookback=60", "portfolio=inverse_vol", f"out_dir={tmp_path}")
    html = (tmp_path / "report.html").read_text()
    assert "equal-weight buy-and-hold of the 6 symbols" in html
    assert "survivorship" not in html  # that caveat belongs to the bundled sp500 sample
    points = chart_points(html)
    assert points["chart-sleeves"] > 0 and points["chart-sleeve-weights"] > 0
    assert "momentum" in html and "buy_and_hold" in html


# -- the pieces, on small made-up inputs ----------------------------------------------------------


def _frames(n: int = 300, fills: bool = True) -> tuple[dict, dict, dict]:
    idx = pd.date_range("2020-01-01 16:00", periods=n, freq="B", tz="America/New_York")
    labels = pd.Index(idx.strftime("%Y-%m-%d %H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True),
                      name="time")
    rng = np.random.default_rng(0)
    equity = 1e6 * np.cumprod(1 + rng.normal(0.0004, 0.01, n))
    frames = {
        "equity": pd.DataFrame({"equity": equity, "cash": 0.0, "gross_exposure": 1.0}, index=labels),
        "weights": pd.DataFrame({"A": [0.5, 0.7], "B": [0.5, -0.3]}, index=labels[[0, n // 2]]),
        "attribution": pd.DataFrame({"portfolio": np.append(0, equity[1:] / equity[:-1] - 1), "commission": 0.0,
                                     "asset:A": np.append(0, equity[1:] / equity[:-1] - 1), "asset:B": 0.0,
                                     "sleeve:s": np.append(0, equity[1:] / equity[:-1] - 1)}, index=labels),
    }
    cols = ["order_id", "time", "symbol", "side", "quantity", "price", "notional", "commission", "spread_cost",
            "impact_cost", "bin"]
    frames["fills"] = (pd.DataFrame([[0, labels[1], "A", "buy", 10.0, 100.0, 1000.0, 1.0, 0.2, 0.3, -1]], columns=cols)
                       if fills else pd.DataFrame(columns=cols))
    ex_cols = ["order_id", "side", "participation", "shortfall_bps"]
    frames["execution"] = (pd.DataFrame([[0, "buy", 0.01, 5.0]], columns=ex_cols) if fills
                           else pd.DataFrame(columns=ex_cols))
    metrics = {"start": str(idx[0]), "end": str(idx[-1]), "cagr": 0.1, "sharpe": 1.0, "n_trades": int(fills)}
    prov = {"config": {"seed": 7}, "data": {"name": "x"}, "assumptions": [], "seed": 7}
    return frames, metrics, prov


def test_a_run_without_trades_still_gets_a_report():
    frames, metrics, prov = _frames(fills=False)
    html = report.build(frames, metrics, prov, None)
    assert "No fills." in html and "no executed orders" in html
    assert chart_points(html)["chart-equity"] > 0


def test_long_short_weights_stack_both_ways_and_build_is_deterministic():
    frames, metrics, prov = _frames()
    level = np.linspace(1, 2, len(frames["equity"]))
    a = report.build(frames, metrics, prov, ("test index", level))
    b = report.build(frames, metrics, prov, ("test index", level))
    assert a == b
    assert chart_points(a)["chart-weights"] > 0 and "benchmark: test index" in a


def test_reduce_indices_keeps_the_extremes_and_the_cap():
    y = np.sin(np.linspace(0, 40, 100_000))
    y[54_321] = -5.0
    y[77_777] = 9.0
    idx = charts.reduce_indices(y, 2000)
    assert idx.size <= 2000 and idx[0] == 0 and idx[-1] == y.size - 1
    assert 54_321 in idx and 77_777 in idx
    assert np.all(np.diff(idx) > 0)
    assert charts.reduce_indices(y[:10], 2000).tolist() == list(range(10))


def test_monthly_returns_compound_to_the_total():
    t = pd.date_range("2019-03-05", "2021-07-20", freq="B", tz="UTC").as_unit("ns").asi8
    equity = 100 * np.cumprod(1 + np.random.default_rng(1).normal(0.0003, 0.01, t.size))
    table = analytics.monthly_returns(t, equity)
    months = table[list(range(1, 13))].to_numpy()
    assert np.isfinite(months).sum() == 29  # Mar 2019 .. Jul 2021
    assert np.prod(1 + months[np.isfinite(months)]) == pytest.approx(equity[-1] / equity[0])
    assert np.prod(1 + table["Year"].to_numpy()) == pytest.approx(equity[-1] / equity[0])


def test_13_5_the_default_benchmark_is_the_universe_bought_and_held_on_the_same_prices(sp500):
    from dataclasses import replace

    from plugins.data.sp500 import SP500

    choice = benchmark_choice({"report": {"benchmark": None}}, SP500())
    assert choice == "universe"
    name, level = benchmark(sp500, 10, choice)
    assert name.startswith("equal-weight buy-and-hold of the 20 symbols")
    # by hand: a dollar in each stock at bar 10, never rebalanced (the adjusted closes carry the dividends)
    growth = sp500.close[10:] / sp500.close[10]
    np.testing.assert_allclose(level, growth.mean(axis=1), rtol=1e-12)
    # no data set is special-cased: the same data under another name gets the same benchmark
    assert benchmark(replace(sp500, name="mine"), 10, choice)[1].tolist() == level.tolist()


def test_13_5_report_benchmark_takes_a_symbol_or_a_csv_and_names_a_mistake(sp500, tmp_path):
    from pipeline.core.errors import ConfigError

    name, level = benchmark(sp500, 100, "KO")
    assert name.startswith("KO") and level.tolist() == sp500.close[100:, sp500.symbols.index("KO")].tolist()
    days = sp500.index[100:].strftime("%Y-%m-%d")
    pd.DataFrame({"level": np.arange(len(days), dtype=float)[::2] + 1.0}, index=pd.Index(days[::2], name="date")) \
        .to_csv(tmp_path / "index.csv")
    name, level = benchmark(sp500, 100, str(tmp_path / "index.csv"))
    assert name == "index.csv" and level[0] == 1.0 and level[1] == 1.0 and level[2] == 3.0  # carried forward
    with pytest.raises(ConfigError, match=r"report.benchmark='SPX' is not 'universe', a symbol of the data \(AAPL"):
        benchmark(sp500, 0, "SPX")
    pd.DataFrame({"level": [1.0]}, index=pd.Index(["1980-01-02"], name="date")).to_csv(tmp_path / "old.csv")
    with pytest.raises(ConfigError, match="covers 1980-01-02..1980-01-02, not the run's"):
        benchmark(sp500, 0, str(tmp_path / "old.csv"))


def test_13_5_the_caveats_are_the_sources_and_a_csv_benchmark_is_labelled():
    frames, metrics, prov = _frames()
    prov["data"]["caveats"] = ["a caveat the source states"]
    html = report.build(frames, metrics, prov, None)
    assert "a caveat the source states" in html and "price index without dividends" not in html
    prov["config"]["report"] = {"benchmark": "/data/spx_price_index.csv"}
    html = report.build(frames, metrics, prov, ("spx_price_index.csv", np.linspace(1, 2, len(frames["equity"]))))
    assert "the benchmark&#x27;s levels come from /data/spx_price_index.csv as given: a price index without " \
           "dividends trails the data&#x27;s dividend-adjusted prices by the dividend yield" in html
