"""Issue 18.5 and 18.6 in report.html: the interactive charts' data payload (the script's input,
checked here without a browser; tests/report/test_browser.py drives the script itself), the
inlined script, and the statistics section."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.report import tearsheet
from pipeline.report.analytics import utc_ns
from pipeline.report.benchmark import folder_benchmark
from pipeline.report.format import money, num, pct
from pipeline.report.page import asset
from pipeline.results import stats

from tests.report.test_report import _frames

PAYLOAD = re.compile(r'<script type="application/json" class="chart-data">(.*?)</script>', re.S)


def payloads(html: str) -> dict[str, tuple[dict, np.ndarray, list[np.ndarray]]]:
    """Each chart's payload decoded as report.js decodes it: times in UTC seconds, values."""
    out = {}
    for text in PAYLOAD.findall(html):
        p = json.loads(text)
        t = np.cumsum(np.array([p["t0"]] + [d * p["unit"] for d in p["t"]], dtype=np.int64))
        values = []
        for steps, e in zip(p["values"], p["scales"]):
            ok = np.array([d is not None for d in steps])
            v = np.full(len(steps), np.nan)
            v[ok] = np.cumsum([d for d in steps if d is not None]) * 10.0 ** e
            values.append(v)
        out[p["id"]] = (p, t, values)
    return out


@pytest.fixture(scope="module")
def built():
    frames, metrics, prov = _frames(n=700)
    equity = frames["equity"]["equity"].to_numpy()
    level = 50.0 * np.cumprod(1 + np.random.default_rng(1).normal(0.0003, 0.012, equity.size))
    level[:5] = np.nan  # a benchmark that starts late: gaps stay gaps
    html = tearsheet.build(frames, metrics, prov, ("bench", level))
    return frames, equity, level, html


def test_18_5_payload_holds_every_bar_of_every_series_to_six_digits(built):
    frames, equity, level, html = built
    charts = payloads(html)
    assert {"chart-equity", "chart-drawdown", "chart-rolling-vol", "chart-rolling-sharpe"} <= set(charts)
    t_sec = utc_ns(frames["equity"].index) // 1_000_000_000
    bench = level / level[5] * equity[0]
    for cid, expected in (("chart-equity", [equity, bench]),
                          ("chart-drawdown", [equity / np.maximum.accumulate(equity) - 1.0, None])):
        p, t, values = charts[cid]
        assert t.tolist() == t_sec.tolist() and p["daily"] is True
        assert p["names"][0] == "strategy" and len(values) == 2
        for v, want in zip(values, expected):
            assert v.size == equity.size
            if want is not None:
                assert np.array_equal(np.isnan(v), np.isnan(want))
                ok = np.isfinite(want)
                # six significant digits of the series' largest value
                assert np.abs(v[ok] - want[ok]).max() <= 0.5 * 10.0 ** (np.floor(np.log10(np.nanmax(np.abs(want)))) - 5) * 1.0001
        assert np.isnan(values[1][:5]).all() and np.isfinite(values[1][5:]).all()
    # the legend's entries are the payload's series, by number (what a click toggles)
    fig = re.search(r'<figure class="interactive"><figcaption>Equity against the benchmark</figcaption>(.*?)</figure>',
                    html, re.S).group(1)
    assert re.findall(r'<span data-i="(\d)">', fig) == ["0", "1"]
    assert charts["chart-equity"][0]["colors"] == re.findall(r'<i style="background:(#[0-9a-f]+)">', fig)


def test_18_5_the_script_is_inlined_and_the_page_still_fetches_nothing(built):
    *_, html = built
    js = asset("report.js")
    assert f"<script>\n{js}</script>" in html and html.count("<script>") == 1
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"https?://|fetch\(|XMLHttpRequest|WebSocket|import\(", js)
    assert len(js.encode()) < 16_000  # a few kilobytes, no library
    policy = re.search(r'Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert policy == "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
    frames, metrics, prov = _frames(n=700)
    level = built[2]
    assert tearsheet.build(frames, metrics, prov, ("bench", level)) == html  # byte-stable


def test_18_5_the_sweep_page_stays_static():
    from pipeline.report.page import page
    assert "<script" not in page("t", "s", [], ["<p>x</p>"]) and "script-src" not in page("t", "s", [], [])


@pytest.mark.slow
def test_18_6_metrics_json_statistics_are_the_runs_and_the_report_shows_them(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    frames, _, prov = tearsheet.read_folder(default_run)
    index = pd.DatetimeIndex(pd.to_datetime(frames["equity"].index, utc=True)).tz_convert("America/New_York")
    bench = folder_benchmark(prov, frames["equity"].index)
    again = stats.statistics(pd.Series(frames["equity"]["equity"].to_numpy(), index=index), bench[1],
                             pd.read_csv(default_run / "fills.csv"))
    s = metrics["statistics"]
    for key in ("alpha", "beta", "information_ratio", "var_95", "kurtosis", "win_rate_month", "longest_drawdown_days"):
        assert s[key] == pytest.approx(again[key], rel=1e-9), key
    assert s["trades"]["round_trips"] == again["trades"]["round_trips"] > 100
    html = (default_run / "report.html").read_text()
    section = re.search(r'<section id="statistics">(.*?)</section>', html, re.S).group(1)
    for text in (pct(s["alpha"]), num(s["beta"]), num(s["information_ratio"]), pct(s["tracking_error"]),
                 pct(s["var_95"]), pct(s["cvar_95"]), num(s["tail_ratio"]), pct(s["win_rate_year"]),
                 pct(s["worst_month"]), f'{s["longest_drawdown_days"]:,.0f} days', pct(s["trades"]["hit_rate"]),
                 money(s["trades"]["avg_loss"])):
        assert f"<td>{text}</td>" in section, text
    assert 'id="chart-histogram"' in section and 'id="chart-yearly"' in section
    assert len(re.findall(r'<rect class="bin"', section)) == 60
    assert re.findall(r"<title>(\d{4}): ", section)[:2] == ["1991", "1992"]


def test_18_5_a_gap_or_an_infinite_value_is_null_in_the_payload():
    from pipeline.report.charts import payload

    t = (np.arange(4, dtype=np.int64) + 19_000) * 86_400_000_000_000
    text = payload("c", t, [("s", np.array([1.0, np.nan, np.inf, 4.0]), "#000")], "num", False, False, False, ())
    p = json.loads(PAYLOAD.search(text).group(1))
    assert p["t0"] == 19_000 * 86_400 and p["unit"] == 86_400 and p["t"] == [1, 1, 1]
    assert p["scales"] == [-5] and p["values"] == [[100000, None, None, 300000]]
