"""The statistics of ``metrics.json``'s ``statistics`` (pipeline/results/stats.py, where each is
defined against empyrical or quantstats): against the benchmark, of the return distribution,
by calendar period, drawdown durations, yearly returns and round trips; and a histogram of
the bar returns."""

from __future__ import annotations

from typing import Any

from pipeline.report.charts import RED, bar_chart, histogram_chart
from pipeline.report.format import esc, finite, money, num, pct
from pipeline.report.page import html_table
from pipeline.report.sections import Run

TITLE = "Statistics"


def _days(x: Any) -> str:
    return f"{x:,.0f} days" if finite(x) else "n/a"


def _table(title: str, rows: list[tuple[str, str]]) -> str:
    return f"<div><h3>{esc(title)}</h3>" + html_table(["statistic", "value"], rows) + "</div>"


def body(run: Run) -> str | None:
    if run.r.size < 3:
        return None
    s = run.metrics.get("statistics") or {}
    hist = histogram_chart("chart-histogram", "Distribution of bar returns", run.r[1:],
                           marks=[("VaR 95%", s["var_95"], RED)] if finite(s.get("var_95")) else [])
    if not s:
        return hist + '<p class="note">This run was recorded without statistics; run it again for them.</p>'
    tables = []
    if "beta" in s:
        tables.append(_table(f"Against the benchmark ({run.bench_name or 'benchmark'})", [
            ("alpha (annualised)", pct(s.get("alpha"))), ("beta", num(s.get("beta"))),
            ("correlation", num(s.get("correlation"))), ("information ratio", num(s.get("information_ratio"))),
            ("tracking error (annualised)", pct(s.get("tracking_error"))),
            ("up capture", num(s.get("up_capture"))), ("down capture", num(s.get("down_capture")))]))
    tables.append(_table("Bar returns", [
        ("VaR 95% (historical)", pct(s.get("var_95"))), ("CVaR 95% (expected shortfall)", pct(s.get("cvar_95"))),
        ("skew", num(s.get("skew"))), ("excess kurtosis", num(s.get("kurtosis"))),
        ("tail ratio (95th / 5th percentile)", num(s.get("tail_ratio")))]))
    tables.append("<div><h3>By calendar period</h3>" + html_table(
        ["period", "win rate", "best", "worst"],
        [(name, pct(s.get(f"win_rate_{name}")), pct(s.get(f"best_{name}")), pct(s.get(f"worst_{name}")))
         for name in ("day", "month", "year")]) + "</div>")
    tables.append(_table("Drawdown durations", [
        ("longest drawdown", _days(s.get("longest_drawdown_days"))),
        ("longest recovery (trough to new high)", _days(s.get("longest_recovery_days"))),
        ("under water at the end", _days(s.get("underwater_days")))]))
    trades = s.get("trades") or {}
    if trades:
        tables.append(_table(f"Round trips ({trades['round_trips']:,}, first in first out, before costs)", [
            ("hit rate", pct(trades.get("hit_rate"))), ("average win", money(trades.get("avg_win"))),
            ("average loss", money(trades.get("avg_loss"))), ("win / loss", num(trades.get("win_loss_ratio"))),
            ("profit factor", num(trades.get("profit_factor"))),
            ("holding period, mean", _days(trades.get("avg_holding_days"))),
            ("holding period, median", _days(trades.get("median_holding_days")))]))
    years = s.get("yearly_returns") or {}
    yearly = bar_chart("chart-yearly", "Yearly returns", list(years), list(years.values()), kind="pct") if years else ""
    return (f'<div class="two">{"".join(tables)}</div>' + yearly + hist +
            f'<p class="note">Definitions in pipeline/results/stats.py: empyrical\'s and quantstats\' (the tests hold '
            f'them equal to 1e-9), risk-free rate 0, {run.ppy:.0f} bars a year; calendar periods on the exchange\'s '
            f'dates; round trips match fills first in, first out per symbol. The first and last year are partial '
            f'when the run is.</p>' + ("" if "beta" in s else '<p class="note">No benchmark: no alpha, beta or '
                                                              'capture.</p>'))
