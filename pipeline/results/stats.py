"""The statistics of a run beyond the headline metrics, written to ``metrics.json`` under
``statistics`` and shown in the report: against the benchmark, of the return distribution,
by calendar period, of drawdown durations and of round-trip trades.

Each definition is empyrical's or quantstats' where one exists (the tests hold them equal to
1e-9); where this module differs, the docstring says how and why. Conventions as in
``metrics``: simple bar returns, risk-free rate 0, annualisation by the bars per year
(252 for daily bars). Calendar periods are the exchange's local dates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline.results.metrics import periods_per_year

CUTOFF = 0.05   # VaR and CVaR at 95 %; the tail ratio compares the 95th and 5th percentiles


def against(r: np.ndarray, b: np.ndarray, ppy: float) -> dict[str, float]:
    """The strategy's bar returns ``r`` against the benchmark's ``b`` (aligned, finite):

    - ``beta``: ``cov(r, b) / var(b)`` (population moments, empyrical ``beta``);
    - ``alpha``: ``(1 + mean(r - beta b)) ** ppy - 1`` (empyrical ``alpha``, annualised
      geometrically from the mean bar residual);
    - ``correlation``: Pearson's;
    - ``tracking_error``: ``std(r - b, ddof=1) * sqrt(ppy)``;
    - ``information_ratio``: ``mean(r - b) / std(r - b, ddof=1) * sqrt(ppy)``, empyrical's
      ``excess_sharpe`` annualised (quantstats' ``information_ratio`` is the same ratio per bar,
      not annualised; the tests check both);
    - ``up_capture`` / ``down_capture``: over the bars where the benchmark rose (fell), the
      strategy's annual return over the benchmark's, each ``prod(1 + x) ** (ppy / n) - 1``
      (empyrical ``up_capture`` / ``down_capture``).
    """
    if r.size < 2:
        return {}
    xb = b - b.mean()
    var = float(np.mean(xb * xb))
    beta = float(np.mean(xb * r)) / var if var >= 1e-30 else math.nan
    active = r - b
    te = float(np.std(active, ddof=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = float(np.corrcoef(r, b)[0, 1]) if var > 0 and np.std(r) > 0 else math.nan
    return {"alpha": float((1.0 + np.mean(r - beta * b)) ** ppy - 1.0), "beta": beta, "correlation": corr,
            "tracking_error": te * math.sqrt(ppy),
            "information_ratio": float(np.mean(active)) / te * math.sqrt(ppy) if te > 0 else math.nan,
            "up_capture": _capture(r, b, b > 0, ppy), "down_capture": _capture(r, b, b < 0, ppy)}


def _annual(x: np.ndarray, ppy: float) -> float:
    return float(np.prod(1.0 + x) ** (ppy / x.size) - 1.0) if x.size else math.nan


def _capture(r: np.ndarray, b: np.ndarray, when: np.ndarray, ppy: float) -> float:
    base = _annual(b[when], ppy)
    return _annual(r[when], ppy) / base if base and math.isfinite(base) else math.nan


def distribution(r: np.ndarray) -> dict[str, float]:
    """Of the bar returns: historical ``var_95`` (the 5th percentile, numpy's linear
    interpolation; empyrical ``value_at_risk``; quantstats' default is a normal fit instead),
    ``cvar_95`` (the mean of the lowest ``int((n - 1) * 0.05) + 1`` returns, empyrical
    ``conditional_value_at_risk``), ``skew`` and excess ``kurtosis`` (the bias-corrected sample
    estimators of pandas, quantstats ``skew`` / ``kurtosis``), ``tail_ratio``
    (``|p95| / |p5|``, empyrical and quantstats ``tail_ratio``)."""
    if r.size < 4:
        return {}
    k = int((r.size - 1) * CUTOFF)
    lo, hi = np.percentile(r, [100 * CUTOFF, 100 * (1 - CUTOFF)])
    s = pd.Series(r)
    return {"var_95": float(lo), "cvar_95": float(np.mean(np.partition(r, k)[: k + 1])),
            "skew": float(s.skew()), "kurtosis": float(s.kurt()),
            "tail_ratio": float(abs(hi) / abs(lo)) if lo != 0 else math.nan}


def periods(r: pd.Series) -> dict[str, Any]:
    """Bar returns ``r`` (on the exchange's local time) compounded by day, month and year:
    ``win_rate_<period>`` is the share of periods with a gain among those that moved
    (quantstats ``win_rate``: flat periods are not counted), ``best_``/``worst_<period>`` the
    extremes (quantstats ``best`` / ``worst``), ``yearly_returns`` each calendar year's
    (the first and last year partial when the run is)."""
    if r.empty:
        return {}
    local = r.index
    # integer keys: a tz-aware day as an array is one Timestamp object per bar, which pandas
    # groups 100x slower (a sweep computes this for every job)
    wall = local.tz_localize(None) if local.tz is not None else local
    day = wall.as_unit("ns").asi8 // 86_400_000_000_000
    groups = {"day": day, "month": np.asarray(local.year * 100 + local.month), "year": np.asarray(local.year)}
    out: dict[str, Any] = {}
    for name, key in groups.items():
        g = (1.0 + r).groupby(key).prod() - 1.0
        moved = g[g != 0]
        out[f"win_rate_{name}"] = float((moved > 0).sum() / moved.size) if moved.size else math.nan
        out[f"best_{name}"], out[f"worst_{name}"] = float(g.max()), float(g.min())
        if name == "year":
            out["yearly_returns"] = {str(int(y)): float(v) for y, v in g.items()}
    return out


def durations(equity: pd.Series) -> dict[str, float]:
    """Drawdown durations in calendar days of the exchange's dates: ``longest_drawdown_days``
    is the longest run of bars under the running peak, from its first bar under water to its
    last, inclusive (quantstats ``drawdown_details``' ``days``, computed there on UTC stamps,
    which a DST change can shift by a day; here on local dates); ``longest_recovery_days`` the
    longest climb from a trough back to the peak (trough date to the date of the new high), over
    the drawdowns that recovered (NaN if none did); ``underwater_days`` the current drawdown's
    length if the run ends under water, else 0."""
    v = equity.to_numpy(dtype=np.float64)
    if v.size < 2:
        return {}
    dates = equity.index.normalize().tz_localize(None).as_unit("ns").asi8 // 86_400_000_000_000
    under = v < np.maximum.accumulate(v)
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends: first bar above water
    longest, recovery = 0, math.nan
    for a, e in zip(starts.tolist(), ends.tolist()):
        longest = max(longest, int(dates[e - 1] - dates[a]) + 1)
        if e < v.size:
            trough = a + int(np.argmin(v[a:e]))
            days = float(dates[e] - dates[trough])
            recovery = days if math.isnan(recovery) else max(recovery, days)
    ongoing = bool(under[-1])
    return {"longest_drawdown_days": float(longest), "longest_recovery_days": recovery,
            "underwater_days": float(dates[-1] - dates[starts[-1]] + 1) if ongoing else 0.0}


def round_trips(fills: pd.DataFrame, tz: Any = "UTC") -> pd.DataFrame:
    """Fills matched first in, first out per symbol into round trips: each closing quantity
    against the oldest open lot, a fill that reverses the position opening a new lot with what
    is left. ``pnl`` is ``quantity * (exit - entry)`` signed by the side (long +, short -),
    before costs (commission, spread and impact are the costs section's); ``days`` the calendar
    time from the opening fill to the closing one on the wall clock of ``tz`` (the exchange's:
    a DST change in between does not make a daily trip 0.96 days long). Lots still open at the
    end are not trips. Rows are in the order of the closing fills, each one's lots oldest first
    (``fifo_pieces``)."""
    cols = ["symbol", "side", "quantity", "entry", "exit", "pnl", "opened", "closed", "days"]
    if fills is None or fills.empty:
        return pd.DataFrame(columns=cols)
    # a bar's fills share its stamp: parse each stamp once
    where, labels = pd.factorize(fills["time"])
    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Index(labels), utc=True, format="ISO8601"))
    when = stamps.tz_convert(tz).tz_localize(None).as_unit("ns").asi8[where]
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy(np.float64)
    price = fills["price"].to_numpy(np.float64)
    codes, names = pd.factorize(fills["symbol"].astype(str))
    lot, close, qty, side = fifo_pieces(codes, signed)
    entry, exit_ = price[lot], price[close]
    return pd.DataFrame({"symbol": np.asarray(names, dtype=object)[codes[lot]],
                         "side": np.where(side > 0, "long", "short"), "quantity": qty, "entry": entry,
                         "exit": exit_, "pnl": side * qty * (exit_ - entry), "opened": when[lot],
                         "closed": when[close], "days": (when[close] - when[lot]) / 86_400e9}, columns=cols)


def fifo_pieces(codes: np.ndarray, signed: np.ndarray, rtol: float = 1e-10
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-in-first-out matching of signed fill quantities per symbol (``codes``), vectorised:
    ``(lot, close, quantity, side)`` per round-trip piece, the fill that opened the lot, the
    fill that closed it, how much, +1 long / -1 short; ordered by closing fill, then lot.

    Per symbol a fill against the position closes up to the position and opens the rest (a
    reversal). Between two flat points (a regime) every open has one sign, so FIFO pairs the
    k-th unit opened with the k-th unit closed: the pieces are the overlaps of the regime's
    cumulative opened and cumulative closed quantity (a merge of both sequences of ends).
    Positions and pieces within ``rtol`` of the symbol's largest fill count as zero (the
    rounding of fractional shares). A loop over lots took 9 us a fill (70 ms for 7,000 fills,
    more than the backtest); tests/pipeline/results/test_stats.py holds this equal to one."""
    pieces = []
    order = np.argsort(codes, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        q = signed[idx]
        tol = rtol * np.abs(q).max()
        pos = np.cumsum(q)
        pos[np.abs(pos) <= tol] = 0.0
        prev = np.concatenate([[0.0], pos[:-1]])
        against = (prev != 0) & (np.sign(q) != np.sign(prev))
        closed = np.where(against, np.minimum(np.abs(q), np.abs(prev)), 0.0)
        rest = np.abs(q) - np.abs(prev)
        opened = np.where(against, np.where(rest > tol, rest, 0.0), np.abs(q))
        starts = (opened > 0) & ((prev == 0) | against)
        regime = np.cumsum(starts)            # of a fill's open part; its close part is in
        regime_closed = regime - starts       # the regime before when the fill starts one
        cum_open, cum_closed = np.cumsum(opened), np.cumsum(closed)
        first = np.flatnonzero(starts)
        n_regimes = first.size
        base_open, base_closed = np.zeros(n_regimes + 1), np.zeros(n_regimes + 1)
        base_open[1:] = cum_open[first] - opened[first]
        base_closed[1:] = cum_closed[first]   # its first fill's close part ends the regime before
        is_open, is_closed = opened > 0, closed > 0
        open_end = cum_open[is_open] - base_open[regime[is_open]]
        closed_end = cum_closed[is_closed] - base_closed[regime_closed[is_closed]]
        # the merged ends per regime: (regime, value, kind) with kind 0 start, 1 lot end, 2 close end
        reg = np.concatenate([np.arange(1, n_regimes + 1), regime[is_open], regime_closed[is_closed]])
        val = np.concatenate([np.zeros(n_regimes), open_end, closed_end])
        kind = np.concatenate([np.zeros(n_regimes, np.int8), np.ones(open_end.size, np.int8),
                               np.full(closed_end.size, 2, np.int8)])
        m = np.lexsort((kind, val, reg))
        reg, val, kind = reg[m], val[m], kind[m]
        total_closed = np.zeros(n_regimes + 1)
        np.maximum.at(total_closed, regime_closed[is_closed], closed_end)
        k = np.arange(1, reg.size)
        k = k[(reg[k] == reg[k - 1]) & (val[k] - val[k - 1] > tol) & (val[k] <= total_closed[reg[k]] + tol)]
        # the piece (val[k-1], val[k]] lies in the first lot and close not ended by val[k-1]
        lots, closes = np.flatnonzero(is_open), np.flatnonzero(is_closed)
        lot = lots[np.cumsum(kind == 1)[k - 1]]
        pieces.append((idx[lot], idx[closes[np.cumsum(kind == 2)[k - 1]]], val[k] - val[k - 1], np.sign(q[lot])))
    lot, close, qty, side = (np.concatenate([p[i] for p in pieces]) for i in range(4))
    s = np.lexsort((lot, close))
    return lot[s], close[s], qty[s], side[s]


def trades(fills: pd.DataFrame, tz: Any = "UTC") -> dict[str, float]:
    """Of the round trips (``round_trips``): how many, ``hit_rate`` (the share with a profit),
    ``avg_win`` / ``avg_loss`` (mean P&L of the winners and of the losers, in money),
    ``win_loss_ratio`` (their ratio, in absolute value), ``profit_factor`` (gross profit over
    gross loss), and the mean and median holding period in days. Empty without a closed trip."""
    trips = round_trips(fills, tz)
    if trips.empty:
        return {}
    pnl, days = trips["pnl"].to_numpy(), trips["days"].to_numpy()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    avg_win = float(wins.mean()) if wins.size else math.nan
    avg_loss = float(losses.mean()) if losses.size else math.nan
    return {"round_trips": int(pnl.size), "hit_rate": float(wins.size / pnl.size),
            "avg_win": avg_win, "avg_loss": avg_loss,
            "win_loss_ratio": abs(avg_win / avg_loss) if wins.size and losses.size else math.nan,
            "profit_factor": float(wins.sum() / -losses.sum()) if losses.size else math.nan,
            "avg_holding_days": float(days.mean()), "median_holding_days": float(np.median(days))}


def statistics(equity: pd.Series, bench_level: np.ndarray | None = None,
               fills: pd.DataFrame | None = None) -> dict[str, Any]:
    """Everything above for a run: ``equity`` on its tz-aware index, the benchmark's level on
    the same bars (or None), the fills table (``fills.csv``)."""
    v = equity.to_numpy(dtype=np.float64)
    r = pd.Series(v[1:] / v[:-1] - 1.0, index=equity.index[1:]) if v.size > 1 else pd.Series(dtype=float)
    ppy = periods_per_year(equity.index)
    out: dict[str, Any] = {}
    if bench_level is not None:
        level = np.asarray(bench_level, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            b = level[1:] / level[:-1] - 1.0
        ok = np.isfinite(b)
        out.update(against(r.to_numpy()[ok], b[ok], ppy))
    out.update(distribution(r.to_numpy()))
    out.update(periods(r))
    out.update(durations(equity))
    out["trades"] = trades(fills, equity.index.tz or "UTC")
    return out
