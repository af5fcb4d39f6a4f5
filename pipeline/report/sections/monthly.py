"""Compounded returns per calendar month and year, coloured by size, with the benchmark's year."""

from __future__ import annotations

import math

import numpy as np

from pipeline.report.analytics import monthly_returns
from pipeline.report.charts import diverging
from pipeline.report.format import finite, pct
from pipeline.report.sections import Run

TITLE = "Monthly returns"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def body(run: Run) -> str | None:
    t, equity, level = run.t, run.equity, run.bench_level
    if equity.size <= 1:
        return None
    mt = monthly_returns(t, equity)
    byear = None
    if level is not None:
        ok = np.isfinite(level)
        if ok.sum() > 1:
            byear = monthly_returns(t[ok], level[ok])["Year"]
    scale = float(np.nanpercentile(np.abs(mt[list(range(1, 13))].to_numpy()), 95)) if mt.size else 0.0
    header = ["year", *MONTHS, "year"] + (["benchmark"] if byear is not None else [])
    body_rows = []
    for year, row in zip(mt.index.tolist(), mt.to_numpy().tolist()):
        cells = [f'<td class="l">{year}</td>']
        cells += [f"<td{_cell_color(v, scale)}>{pct(v, 1) if finite(v) else ''}</td>" for v in row[:12]]
        cells.append(f"<td><b>{pct(row[12], 1)}</b></td>")
        if byear is not None:
            v = byear.get(year, np.nan)
            cells.append(f"<td>{pct(v, 1) if finite(v) else ''}</td>")
        body_rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f'<th class="l">{h}</th>' if i == 0 else f"<th>{h}</th>" for i, h in enumerate(header))
    table = (f'<div class="scroll"><table class="monthly"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(body_rows)}</tbody></table></div>')
    return table + ('<p class="note">Compounded returns per calendar month and year '
                    '(the first month from the start of the run).</p>')


def _cell_color(v: float, scale: float) -> str:
    if not math.isfinite(v) or scale <= 0:
        return ""
    f = 0.5 + max(-1.0, min(1.0, v / scale)) / 2
    return f' style="background:{diverging(f)}"'
