"""The data source's caveats, the run's assumptions, and what a backtest leaves out."""

from __future__ import annotations

from pipeline.report.benchmark import UNIVERSE
from pipeline.report.format import esc
from pipeline.report.sections import Run

TITLE = "Data caveats"
CLASS = "caveats"


def body(run: Run) -> str:
    data = run.prov.get("data", {})
    notes = list(data.get("caveats", [])) + list(run.prov.get("assumptions", []))
    chosen = (run.config.get("report") or {}).get("benchmark")
    if chosen is not None and chosen != UNIVERSE and chosen not in data.get("symbols", []):
        notes.append(f"the benchmark's levels come from {chosen} as given: a price index without dividends "
                     f"trails the data's dividend-adjusted prices by the dividend yield, which flatters the strategy")
    notes.append("a backtest: fills are simulated from bars with the configured cost model; live fills, "
                 "dividends' taxes and corporate actions beyond price adjustment are not modelled")
    return "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
