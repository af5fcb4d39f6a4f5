"""Rolling volatility and Sharpe ratio, against the benchmark's."""

from __future__ import annotations

import numpy as np

from pipeline.report.analytics import rolling_sharpe, rolling_vol
from pipeline.report.charts import BLUE, GREY, line_chart
from pipeline.report.sections import Run

TITLE = "Rolling volatility and Sharpe"
ROLL_VOL = 63              # bars: rolling volatility window (a quarter of daily bars)
ROLL_SHARPE = 252          # bars: rolling Sharpe window (a year of daily bars)


def body(run: Run) -> str:
    r, ppy = run.r, run.ppy
    vol = [("strategy", rolling_vol(r, ROLL_VOL, ppy), BLUE)]
    shp = [("strategy", rolling_sharpe(r, ROLL_SHARPE, ppy), BLUE)]
    if run.bench_level is not None:
        level = run.bench_level
        with np.errstate(invalid="ignore", divide="ignore"):
            br = np.append(np.nan, level[1:] / level[:-1] - 1.0)
        vol.append(("benchmark", rolling_vol(br, ROLL_VOL, ppy), GREY))
        shp.append(("benchmark", rolling_sharpe(br, ROLL_SHARPE, ppy), GREY))
    return (line_chart("chart-rolling-vol", f"Rolling volatility ({ROLL_VOL} bars, annualised)", run.t, vol, kind="pct") +
            line_chart("chart-rolling-sharpe", f"Rolling Sharpe ratio ({ROLL_SHARPE} bars, annualised)", run.t, shp,
                       kind="num", zero=True) +
            f'<p class="note">Volatility over the last {ROLL_VOL} bars and Sharpe ratio (risk-free rate 0) over the '
            f'last {ROLL_SHARPE} bars, annualised with {ppy:.0f} bars a year.</p>')
