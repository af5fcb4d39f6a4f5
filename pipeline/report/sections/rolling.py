"""Rolling volatility and Sharpe ratio, against the benchmark's."""

from __future__ import annotations

import numpy as np

from pipeline.report.analytics import rolling_sharpe, rolling_vol
from pipeline.report.charts import BLUE, GREY, line_chart
from pipeline.report.sections import Run

TITLE = "Rolling volatility and Sharpe"
ROLL_VOL = 63              # sessions: rolling volatility window (a quarter)
ROLL_SHARPE = 252          # sessions: rolling Sharpe window (a year)


def body(run: Run) -> str:
    r, ppy = run.r, run.ppy
    # windows count sessions: intraday bars have ppy / 252 of them in each
    per_session = ppy / 252.0
    unit = "bars" if per_session == 1.0 else "sessions"
    roll_vol, roll_sharpe = (max(int(round(w * per_session)), 2) for w in (ROLL_VOL, ROLL_SHARPE))
    vol = [("strategy", rolling_vol(r, roll_vol, ppy), BLUE)]
    shp = [("strategy", rolling_sharpe(r, roll_sharpe, ppy), BLUE)]
    if run.bench_level is not None:
        level = run.bench_level
        with np.errstate(invalid="ignore", divide="ignore"):
            br = np.append(np.nan, level[1:] / level[:-1] - 1.0)
        vol.append(("benchmark", rolling_vol(br, roll_vol, ppy), GREY))
        shp.append(("benchmark", rolling_sharpe(br, roll_sharpe, ppy), GREY))
    return (line_chart("chart-rolling-vol", f"Rolling volatility ({ROLL_VOL} {unit}, annualised)", run.t, vol, kind="pct") +
            line_chart("chart-rolling-sharpe", f"Rolling Sharpe ratio ({ROLL_SHARPE} {unit}, annualised)", run.t, shp,
                       kind="num", zero=True) +
            f'<p class="note">Volatility over the last {ROLL_VOL} {unit} and Sharpe ratio (risk-free rate 0) over the '
            f'last {ROLL_SHARPE} {unit}, annualised with {ppy:.0f} bars a year.</p>')
