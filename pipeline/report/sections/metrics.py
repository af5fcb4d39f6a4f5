"""Key metrics as cards, each against the benchmark's where the benchmark has one."""

from __future__ import annotations

from pipeline.report.format import esc, finite, money, num, pct
from pipeline.report.sections import Run

TITLE = "Key metrics"
NOT_AGAINST = ("Final equity", "Trades", "Exposure")  # their second line is not the benchmark's


def body(run: Run) -> str:
    metrics, bstats = run.metrics, run.bstats
    cards = [("Total return", pct(metrics.get("total_return")), pct(bstats.get("total_return")) if bstats else ""),
             ("CAGR", pct(metrics.get("cagr")), pct(bstats.get("cagr")) if bstats else ""),
             ("Annual volatility", pct(metrics.get("annual_vol")), pct(bstats.get("annual_vol")) if bstats else ""),
             ("Sharpe", num(metrics.get("sharpe")), num(bstats.get("sharpe")) if bstats else ""),
             ("Sortino", num(metrics.get("sortino")), ""),
             ("Max drawdown", pct(metrics.get("max_drawdown")), pct(bstats.get("max_drawdown")) if bstats else ""),
             ("Calmar", num(metrics.get("calmar")), ""),
             ("Final equity", money(metrics.get("final_equity")), f"from {money(run.capital)}"),
             ("Turnover / year", f"{num(metrics.get('turnover'))}x", ""),
             ("Costs", money(metrics.get("total_costs")), ""),
             ("Trades", f"{metrics.get('n_trades', 'n/a'):,}" if finite(metrics.get("n_trades")) else "n/a",
              f"in {metrics.get('n_rebalances', 'n/a')} rebalances"),
             ("Exposure", pct(metrics.get("exposure")), "average gross")]
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div>'
                        f'<div class="b">{("benchmark " + b) if b and bstats and k not in NOT_AGAINST else b}</div></div>'
                        for k, v, b in cards)
    bnote = (f'<p class="note">Benchmark: {esc(run.bench_name)}.</p>' if run.bench_name
             else '<p class="note">No benchmark available.</p>')
    return f'<div class="cards">{card_html}</div>{bnote}'
