"""``report.html``: the run's tearsheet, one self-contained file written into every run folder.

Everything is drawn here, in Python, as inline SVG (numpy -> path strings): no JavaScript
library, no CDN, no font or image to fetch, so the file opens offline and its bytes depend
only on the run (same inputs -> same file). Long series are reduced for drawing to at most
``MAX_POINTS`` points per line (the extremes of each bucket are kept, so drawdowns keep their
depth); every number in the tables comes from the full series.

Sections: key metrics (against the benchmark), data caveats, equity against the benchmark,
drawdowns, rolling volatility and Sharpe, monthly returns, weights over time, sleeve and asset
attribution, turnover and costs, execution quality (implementation shortfall against
participation) and the full resolved config with the run's provenance.

The benchmark is ``report.benchmark`` (``benchmark``): by default the data source's own
(``universe``, the equal-weight buy-and-hold of the data's symbols on the same adjusted prices),
or a symbol of the data, or a CSV file of levels. The data source's caveats head the caveats.

``python -m pipeline.report <run folder>`` rebuilds a folder's report from its files (the
same bytes the run wrote).
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

MAX_POINTS = 2000          # per drawn line
MAX_SCATTER = 2000         # points in the execution scatter
MAX_LAYERS = 20            # stacked-area layers; smaller holdings are merged into "other"
ROLL_VOL = 63              # bars: rolling volatility window (a quarter of daily bars)
ROLL_SHARPE = 252          # bars: rolling Sharpe window (a year of daily bars)
W, H = 880, 280            # chart size in SVG units
ML, MR, MT, MB = 70, 16, 10, 28   # margins: left (y labels), right, top, bottom (x labels)

BLUE, GREY, RED = "#1f5fbf", "#8a8f98", "#c0392b"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# ---------------------------------------------------------------------------------------------
# formatting


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}%}" if finite(x) else "n/a"


def num(x: Any, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if finite(x) else "n/a"


def money(x: Any) -> str:
    if not finite(x):
        return "n/a"
    a = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{x / div:,.{2 if a < 10 * div else 1}f}{suffix}"
    return f"{x:,.0f}"


def _tick_label(v: float, kind: str) -> str:
    if kind == "pct":
        return f"{v:.0%}" if abs(v) >= 0.1 or v == 0 else f"{v:.1%}"
    if kind == "money":
        return money(v)
    if kind == "x":
        return f"{v:g}x"
    return f"{v:g}"


# ---------------------------------------------------------------------------------------------
# scales, ticks and reduction for drawing


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 12) + 0.0)
        v += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten, with 2 and 5 between them when the range is short."""
    if not (lo > 0 and hi > 0):
        return []
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a <= 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(a, b + 1) for m in mults]
    ticks = [t for t in ticks if lo <= t <= hi]
    return ticks if len(ticks) >= 2 else [lo, hi]


def time_ticks(t0: int, t1: int) -> list[tuple[int, str]]:
    """Ticks on a UTC nanosecond axis: years (every 1, 2, 5, 10) or months for short spans."""
    start, end = pd.Timestamp(t0, tz="UTC"), pd.Timestamp(t1, tz="UTC")
    span_years = (t1 - t0) / (365.25 * 86_400e9)
    if span_years >= 2:
        step = next(s for s in (1, 2, 5, 10, 20, 50) if span_years / s <= 10)
        years = range((start.year // step + 1) * step, end.year + 1, step)
        return [(pd.Timestamp(year=y, month=1, day=1, tz="UTC").value, str(y)) for y in years]
    if (t1 - t0) < 62 * 86_400e9:  # a couple of months at most: days
        days = pd.date_range(start.normalize(), end, freq="D")
        step = max(1, math.ceil(len(days) / 8))
        return [(d.value, d.strftime("%d %b %Y")) for d in days[::step] if t0 <= d.value <= t1]
    months = pd.date_range(start.normalize().replace(day=1), end, freq="MS", tz="UTC")
    step = max(1, math.ceil(len(months) / 8))
    return [(m.value, m.strftime("%b %Y")) for m in months[::step] if t0 <= m.value <= t1]


def reduce_indices(y: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` points of ``y`` that keep its shape: the first, the
    last, and the lowest and highest point of each bucket."""
    n = y.size
    if n <= max_points:
        return np.arange(n)
    buckets = max(max_points // 2 - 1, 1)
    k = -(-n // buckets)
    padded = np.full(buckets * k, np.nan)
    padded[:n] = y
    padded = padded.reshape(buckets, k)
    bad = ~np.isfinite(padded)
    base = np.arange(buckets) * k
    lows = base + np.argmin(np.where(bad, np.inf, padded), axis=1)
    highs = base + np.argmax(np.where(bad, -np.inf, padded), axis=1)
    keep = np.concatenate([[0, n - 1], lows, highs])
    return np.unique(keep[keep < n])


def _coords(px: np.ndarray, py: np.ndarray) -> list[str]:
    return [f"{a:.1f},{b:.1f}" for a, b in zip(px.tolist(), py.tolist())]


def path_d(px: np.ndarray, py: np.ndarray) -> str:
    """An SVG path through the finite points, broken at gaps (NaN)."""
    ok = np.isfinite(px) & np.isfinite(py)
    if not ok.any():
        return ""
    parts, pieces = [], np.split(np.arange(px.size), np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1)
    for idx in pieces:
        if not ok[idx[0]]:
            continue
        c = _coords(px[idx], py[idx])
        parts.append("M" + c[0] + ("L" + "L".join(c[1:]) if len(c) > 1 else "h0.1"))
    return "".join(parts)


class Frame:
    """The plotting area of one chart: maps data to SVG coordinates and draws axes."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, log: bool = False,
                 width: int = W, height: int = H) -> None:
        self.width, self.height, self.log = width, height, log
        if not x1 > x0:  # one point: centre it (a pad that survives float rounding of ns stamps)
            pad = max(abs(x0) * 1e-6, 1.0)
            x0, x1 = x0 - pad, x1 + pad
        if log:
            y0, y1 = math.log10(y0), math.log10(y1)
        if not y1 > y0:
            pad = abs(y0) * 0.05 or 1.0
            y0, y1 = y0 - pad, y1 + pad
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def px(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return ML + (x - self.x0) / (self.x1 - self.x0) * (self.width - ML - MR)

    def py(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
        return MT + (self.y1 - y) / (self.y1 - self.y0) * (self.height - MT - MB)

    def axes(self, yticks: Iterable[float], kind: str, xticks: Iterable[tuple[float, str]] = (),
             zero: bool = False) -> str:
        out = []
        right, bottom = self.width - MR, self.height - MB
        for v in yticks:
            y = float(self.py(v))
            if MT - 0.5 <= y <= bottom + 0.5:
                out.append(f'<line class="grid" x1="{ML}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                           f'<text class="yl" x="{ML - 6}" y="{y + 4:.1f}">{esc(_tick_label(v, kind))}</text>')
        for v, label in xticks:
            x = float(self.px(v))
            if ML - 0.5 <= x <= right + 0.5:
                out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
                           f'<text class="xl" x="{x:.1f}" y="{bottom + 16}">{esc(label)}</text>')
        if zero and not self.log and self.y0 < 0 < self.y1:
            y = float(self.py(0.0))
            out.append(f'<line class="zero" x1="{ML}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<line class="axis" x1="{ML}" x2="{right}" y1="{bottom}" y2="{bottom}"/>'
                   f'<line class="axis" x1="{ML}" x2="{ML}" y1="{MT}" y2="{bottom}"/>')
        return "".join(out)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """The series' names and colours, as HTML that wraps."""
    if not items:
        return ""
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{color}"></i>{esc(name)}</span>' for name, color in items) + "</div>"


def figure(title: str, items: Sequence[tuple[str, str]], chart: str) -> str:
    return f'<figure><figcaption>{esc(title)}</figcaption>{legend(items)}{chart}</figure>'


def svg(chart_id: str, title: str, body: str, points: int, series: int,
        width: int = W, height: int = H) -> str:
    """The chart element. ``data-points`` and ``data-series`` say how much data it draws."""
    cap = "" if width == W else f' style="max-width:{width}px"'
    return (f'<svg class="chart" id="{chart_id}" data-points="{points}" data-series="{series}"{cap} '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>{body}</svg>')


def line_chart(chart_id: str, title: str, t: np.ndarray, series: Sequence[tuple[str, np.ndarray, str]],
               kind: str = "pct", log: bool = False, zero: bool = False, fill: bool = False,
               dashed: Sequence[str] = ()) -> str:
    """Lines over a time axis (UTC ns); ``fill`` shades the first series down to zero."""
    t = np.asarray(t, dtype=np.float64)
    vals = [np.asarray(v, dtype=np.float64) for _, v, _ in series]
    every = np.concatenate([v[np.isfinite(v) & ((v > 0) if log else True)] for v in vals]) if vals else np.array([])
    if every.size == 0 or t.size == 0:
        return empty_chart(chart_id, title)
    lo, hi = float(every.min()), float(every.max())
    if zero and not log:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not log:
        pad = (hi - lo) * 0.04 or abs(hi) * 0.05 or 1.0
        lo, hi = lo - (pad if lo < 0 or not zero else 0), hi + (pad if hi > 0 or not zero else 0)
    fr = Frame(float(t[0]), float(t[-1]), lo, hi, log=log)
    yt = log_ticks(lo, hi) if log else nice_ticks(lo, hi)
    body = [fr.axes(yt, kind, time_ticks(int(t[0]), int(t[-1])), zero=zero)]
    drawn = 0
    for i, ((name, _, color), v) in enumerate(zip(series, vals)):
        idx = reduce_indices(v)
        px, py = fr.px(t[idx]), fr.py(v[idx])
        drawn += idx.size
        d = path_d(px, py)
        if not d:
            continue
        if fill and i == 0:
            base = float(fr.py(0.0)) if not log else fr.height - MB
            ok = np.isfinite(py)
            if ok.any():
                area = f"M{px[ok][0]:.1f},{base:.1f}L" + "L".join(_coords(px[ok], py[ok])) + f"L{px[ok][-1]:.1f},{base:.1f}Z"
                body.append(f'<path class="area" d="{area}" fill="{color}" fill-opacity="0.25"/>')
        dash = ' stroke-dasharray="4 3"' if name in dashed else ""
        body.append(f'<path class="line" d="{d}" stroke="{color}"{dash}/>')
    return figure(title, [(name, color) for name, _, color in series],
                  svg(chart_id, title, "".join(body), drawn, len(series)))


def stacked_chart(chart_id: str, title: str, t: np.ndarray, layers: Sequence[tuple[str, np.ndarray]],
                  step: bool = True) -> str:
    """Stacked areas over time: positive parts stack up from zero, negative parts down.
    With ``step`` each value holds until the next time (weights between rebalances)."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0 or not layers:
        return empty_chart(chart_id, title)
    values = np.column_stack([np.nan_to_num(np.asarray(v, dtype=np.float64)) for _, v in layers])
    if step:
        tt = np.repeat(t, 2)[1:]
        values = np.repeat(values, 2, axis=0)[:-1]
    else:
        tt = t
    pos, neg = np.maximum(values, 0.0), np.minimum(values, 0.0)
    top, bottom = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    hi, lo = max(float(top[:, -1].max()), 0.0), min(float(bottom[:, -1].min()), 0.0)
    fr = Frame(float(tt[0]), float(tt[-1]), lo, hi * 1.02 if hi > 0 else 1.0)
    body = [fr.axes(nice_ticks(lo, hi), "pct", time_ticks(int(tt[0]), int(tt[-1])), zero=True)]
    px = fr.px(tt)
    base = float(fr.py(0.0))
    drawn = 0
    for part, cum in ((pos, top), (neg, bottom)):
        # each layer spans the baseline to its cumulative edge; drawn outermost first, so each
        # inner layer covers the part of the outer one below its own edge
        for j in reversed(range(len(layers))):
            if not np.any(part[:, j]):
                continue
            edge = "L".join(_coords(px, fr.py(cum[:, j])))
            color = PALETTE[j % len(PALETTE)]
            body.append(f'<path class="layer" d="M{px[0]:.1f},{base:.1f}L{edge}L{px[-1]:.1f},{base:.1f}Z" '
                        f'fill="{color}"><title>{esc(layers[j][0])}</title></path>')
            drawn += tt.size
    return figure(title, [(name, PALETTE[j % len(PALETTE)]) for j, (name, _) in enumerate(layers)],
                  svg(chart_id, title, "".join(body), drawn, len(layers)))


def spikes_chart(chart_id: str, title: str, t: np.ndarray, v: np.ndarray, color: str = BLUE,
                 kind: str = "pct") -> str:
    """A vertical line from zero per event (turnover per rebalance)."""
    t, v = np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v)
    t, v = t[ok], v[ok]
    if t.size == 0:
        return empty_chart(chart_id, title)
    if t.size > MAX_POINTS:  # keep the largest event of each bucket
        edges = np.linspace(0, t.size, MAX_POINTS + 1).astype(np.int64)
        pick = np.array([lo + int(np.argmax(v[lo:hi])) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo])
        t, v = t[pick], v[pick]
    hi = float(v.max()) if v.max() > 0 else 1.0
    fr = Frame(float(t[0]), float(t[-1]), 0.0, hi * 1.04)
    body = [fr.axes(nice_ticks(0.0, hi), kind, time_ticks(int(fr.x0), int(fr.x1)))]
    base = fr.height - MB
    px, py = fr.px(t), fr.py(v)
    d = "".join(f"M{a:.1f},{base}V{b:.1f}" for a, b in zip(px.tolist(), py.tolist()))
    body.append(f'<path class="line" d="{d}" stroke="{color}"/>')
    return figure(title, [], svg(chart_id, title, "".join(body), int(t.size), 1))


def scatter_chart(chart_id: str, title: str, groups: Sequence[tuple[str, np.ndarray, np.ndarray, str]],
                  xlabel: str, ylabel: str, log_x: bool = True, trend: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Points (x, y) by group; the y axis spans the 0.5th..99.5th percentiles and points
    beyond it are drawn on its edge (marked hollow)."""
    xs = np.concatenate([g[1] for g in groups]) if groups else np.array([])
    ys = np.concatenate([g[2] for g in groups]) if groups else np.array([])
    if xs.size == 0:
        return empty_chart(chart_id, title, "no executed orders")
    x0, x1 = float(xs.min()), float(xs.max())
    if log_x:
        x0, x1 = math.log10(x0), math.log10(x1)
        if x1 - x0 < 1e-9:
            x0, x1 = x0 - 0.5, x1 + 0.5
    lo, hi = (float(v) for v in np.percentile(ys, [0.5, 99.5]))
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    fr = Frame(x0, x1, lo, hi)
    if log_x:
        xt = [(math.log10(v), _share(v)) for v in log_ticks(10 ** x0, 10 ** x1)]
    else:
        xt = [(v, f"{v:g}") for v in nice_ticks(x0, x1)]
    body = [fr.axes(nice_ticks(lo, hi), "num", xt, zero=True)]
    drawn = 0
    for name, x, y, color in groups:
        if x.size == 0:
            continue
        px = fr.px(np.log10(x) if log_x else x)
        clipped = (y < lo) | (y > hi)
        py = fr.py(np.clip(y, lo, hi))
        full = "".join(f"M{a:.1f},{b:.1f}h0.01" for a, b, c in zip(px.tolist(), py.tolist(), clipped.tolist()) if not c)
        edge = "".join(f"M{a:.1f},{b:.1f}h0.01" for a, b, c in zip(px.tolist(), py.tolist(), clipped.tolist()) if c)
        body.append(f'<path class="dots" d="{full}" stroke="{color}"><title>{esc(name)}</title></path>')
        if edge:
            body.append(f'<path class="dots edge" d="{edge}" stroke="{color}"/>')
        drawn += int(x.size)
    if trend is not None and trend[0].size:
        tx, ty = trend
        d = path_d(fr.px(np.log10(tx) if log_x else tx), fr.py(np.clip(ty, lo, hi)))
        body.append(f'<path class="line" d="{d}" stroke="#222" stroke-dasharray="5 3"/>')
    body.append(f'<text class="axl" transform="translate(12 {(MT + H - MB) / 2:.0f}) rotate(-90)">{esc(ylabel)}</text>')
    items = [(n, c) for n, _, _, c in groups] + ([("median by participation decile", "#222")] if trend is not None else [])
    return figure(title, items, svg(chart_id, title, "".join(body), drawn, len(groups)) +
                  f'<div class="note" style="text-align:center">{esc(xlabel)}</div>')


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float], kind: str = "money") -> str:
    """Horizontal bars, one per label, from zero (green gains, red losses)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return empty_chart(chart_id, title)
    row = 18
    height = MT + MB + row * v.size
    lo, hi = min(0.0, float(v.min())), max(0.0, float(v.max()))
    left = 70 + 7 * max(len(s) for s in labels)
    width = W
    span = (hi - lo) or 1.0
    scale = (width - left - MR - 60) / span

    def x(val: float) -> float:
        return left + (val - lo) * scale

    body = []
    for tick in nice_ticks(lo, hi):
        body.append(f'<line class="grid" x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{MT}" y2="{height - MB}"/>'
                    f'<text class="xl" x="{x(tick):.1f}" y="{height - MB + 16}">{esc(_tick_label(tick, kind))}</text>')
    for i, (label, val) in enumerate(zip(labels, v.tolist())):
        y = MT + i * row
        a, b = sorted((x(0.0), x(val)))
        color = "#2e8b57" if val >= 0 else RED
        body.append(f'<text class="yl" x="{left - 6}" y="{y + 13}">{esc(label)}</text>'
                    f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 0.5):.1f}" height="{row - 6}" fill="{color}">'
                    f'<title>{esc(label)}: {esc(_tick_label(val, kind))}</title></rect>')
    body.append(f'<line class="axis" x1="{x(0.0):.1f}" x2="{x(0.0):.1f}" y1="{MT}" y2="{height - MB}"/>')
    return figure(title, [], svg(chart_id, title, "".join(body), int(v.size), 1, width=width, height=height))


def heatmap(chart_id: str, title: str, xlabels: Sequence[str], ylabels: Sequence[str], z: np.ndarray,
            xname: str, yname: str, counts: np.ndarray | None = None, higher_is_better: bool = True) -> str:
    """A grid of coloured cells with their values (NaN cells left blank)."""
    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    cell_w = max(48, min(110, (W - 160) // max(nx, 1)))
    cell_h = 30
    left, top = 20 + 8 * max([len(s) for s in ylabels] + [4]), 40
    width, height = left + nx * cell_w + 20, top + ny * cell_h + 44
    ok = np.isfinite(z)
    lo, hi = (float(z[ok].min()), float(z[ok].max())) if ok.any() else (0.0, 1.0)
    body = [f'<text class="axl" x="{left + nx * cell_w / 2:.0f}" y="{height - 6}">{esc(xname)}</text>',
            f'<text class="lg" x="{left}" y="{top - 22}">{esc(yname)} (rows) by {esc(xname)} (columns)</text>']
    cells = 0
    for i in range(ny):
        y = top + i * cell_h
        body.append(f'<text class="yl" x="{left - 6}" y="{y + cell_h / 2 + 4:.0f}">{esc(ylabels[i])}</text>')
        for j in range(nx):
            x = left + j * cell_w
            v = z[i, j]
            if not math.isfinite(v):
                body.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#f3f3f3"/>')
                continue
            f = 0.5 if hi == lo else (v - lo) / (hi - lo)
            f = f if higher_is_better else 1 - f
            color = _diverging(f)
            n = "" if counts is None else f" ({int(counts[i, j])} jobs)"
            body.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                        f'fill="{color}" data-value="{v:.6g}"><title>{esc(ylabels[i])}, {esc(xlabels[j])}: '
                        f'{v:.4g}{n}</title></rect><text class="cv" x="{x + (cell_w - 2) / 2:.1f}" '
                        f'y="{y + cell_h / 2 + 4:.1f}">{v:.3g}</text>')
            cells += 1
    for j in range(nx):
        x = left + j * cell_w + (cell_w - 2) / 2
        body.append(f'<text class="xl" x="{x:.1f}" y="{top + ny * cell_h + 14}">{esc(xlabels[j])}</text>')
    return svg(chart_id, title, "".join(body), cells, 1, width=width, height=height)


def _share(v: float) -> str:
    """0.0001 -> 0.01%: a share printed as a percentage with the digits it needs."""
    digits = max(0, -math.floor(math.log10(v)) - 2) if v > 0 else 0
    return f"{v:.{digits}%}"


def _diverging(f: float) -> str:
    """Red (0) through white (0.5) to green (1)."""
    f = min(max(f, 0.0), 1.0)
    lo, mid, hi = (214, 96, 77), (247, 247, 247), (26, 152, 80)
    a, b, u = (lo, mid, f * 2) if f < 0.5 else (mid, hi, f * 2 - 1)
    return "#" + "".join(f"{round(x + (y - x) * u):02x}" for x, y in zip(a, b))


def empty_chart(chart_id: str, title: str, why: str = "no data") -> str:
    return figure(title, [], f'<svg class="chart empty" id="{chart_id}" data-points="0" data-series="0" viewBox="0 0 {W} 60" '
            f'role="img" aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
            f'<text class="lg" x="{ML}" y="34">{esc(why)}</text></svg>')


# ---------------------------------------------------------------------------------------------
# the benchmark


UNIVERSE = "universe"


def benchmark(data: Any, start: int = 0, choice: str = UNIVERSE) -> tuple[str, np.ndarray] | None:
    """The benchmark's level at each bar of ``data`` (a MarketData) from ``start``: ``choice``
    is ``universe`` (the equal-weight buy-and-hold of the symbols priced at ``start``, on the
    same adjusted prices as the strategy), one of the data's symbols, or a CSV file of levels
    (``report.benchmark``; a source states its own default, ``DataSource.default_benchmark``).
    Anything else is a ConfigError naming the key."""
    from pipeline.core.errors import ConfigError
    from pipeline.core.market import forward_filled

    close = np.asarray(data.close, dtype=np.float64)[start:]
    if close.size == 0:
        return None
    choice = str(choice)
    if choice == UNIVERSE:
        first = close[0]
        held = np.isfinite(first) & (first > 0)
        # a delisted symbol's last price holds: its value stays in the book, as cash would
        level = (forward_filled(close[:, held]) / first[held]).mean(axis=1)
        late = int(close.shape[1] - held.sum())
        return (f"equal-weight buy-and-hold of the {int(held.sum())} symbols priced at the start"
                + (f" ({late} listed later left out)" if late else "") + ", no costs"), level
    if choice in data.symbols:
        j = data.symbols.index(choice)
        level = pd.Series(close[:, j]).ffill().to_numpy()
        return f"{choice} (buy-and-hold, no costs)", level
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ConfigError(f"report.benchmark={choice!r} is not 'universe', a symbol of the data "
                          f"({', '.join(data.symbols)}) or a CSV file; pick one of those, or null for "
                          f"the data's own ({UNIVERSE})")
    return path.name, _csv_levels(path, data.index[start:], choice)


def _csv_levels(path: Path, index: pd.DatetimeIndex, key: str) -> np.ndarray:
    """A CSV's first numeric column (dates in the first), on ``index``'s days, carried forward."""
    from pipeline.core.errors import ConfigError

    try:
        frame = pd.read_csv(path, index_col=0)
        dates = pd.to_datetime(frame.index, format="mixed")
    except (ValueError, TypeError, pd.errors.ParserError) as exc:
        raise ConfigError(f"report.benchmark={key!r}: {path} does not read as dates then levels ({exc})") from None
    numeric = frame.select_dtypes("number")
    if numeric.empty:
        raise ConfigError(f"report.benchmark={key!r}: {path} has no numeric column of levels")
    if dates.tz is not None:
        dates = dates.tz_convert(index.tz)
    series = pd.Series(numeric.iloc[:, 0].to_numpy(dtype=np.float64), index=dates.strftime("%Y-%m-%d"))
    series = series[~series.index.duplicated(keep="last")].sort_index()
    days = index.strftime("%Y-%m-%d")
    level = series.reindex(series.index.union(days)).ffill().reindex(days).to_numpy(copy=True)
    level[np.asarray(days > series.index[-1])] = np.nan  # past the file's end: not known
    if not np.isfinite(level).any():
        raise ConfigError(f"report.benchmark={key!r}: {path} covers {series.index[0]}..{series.index[-1]}, "
                          f"not the run's {days[0]}..{days[-1]}")
    return level


# ---------------------------------------------------------------------------------------------
# analytics


def _utc_ns(index: Any) -> np.ndarray:
    """UTC nanoseconds of timestamps given as datetimes or as the text the recorder writes."""
    if isinstance(index, pd.DatetimeIndex):
        idx = index
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(index), utc=True, format="ISO8601"))
    idx = idx.tz_convert("UTC") if idx.tz is not None else idx.tz_localize("UTC")
    return idx.as_unit("ns").asi8


def _ppy(t: np.ndarray) -> float:
    if t.size < 2:
        return 252.0
    days = np.unique(t // 86_400_000_000_000).size
    return 252.0 * t.size / days


def rolling_vol(r: np.ndarray, window: int, ppy: float) -> np.ndarray:
    s = pd.Series(r)
    return (s.rolling(window).std(ddof=1) * math.sqrt(ppy)).to_numpy()


def rolling_sharpe(r: np.ndarray, window: int, ppy: float) -> np.ndarray:
    s = pd.Series(r).rolling(window)
    sd = s.std(ddof=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sd > 0, s.mean().to_numpy() / sd * math.sqrt(ppy), np.nan)


def monthly_returns(t: np.ndarray, equity: np.ndarray) -> pd.DataFrame:
    """Years x months of compounded returns, with the year's own return in ``Year``."""
    stamp = pd.DatetimeIndex(t, tz="UTC")
    key = stamp.year.to_numpy() * 100 + stamp.month.to_numpy()
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))
    ends = equity[last]
    monthly = ends / np.append(equity[0], ends[:-1]) - 1.0
    years, months = key[last] // 100, key[last] % 100
    rows = np.unique(years)
    grid = np.full((rows.size, 12), np.nan)
    grid[np.searchsorted(rows, years), months - 1] = monthly
    table = pd.DataFrame(grid, index=pd.Index(rows, name="year"), columns=list(range(1, 13)))
    ylast = np.flatnonzero(np.append(years[1:] != years[:-1], True))
    yends = ends[ylast]
    table["Year"] = yends / np.append(equity[0], yends[:-1]) - 1.0
    return table


def drawdown_periods(t: np.ndarray, equity: np.ndarray, top: int = 5) -> list[dict[str, Any]]:
    peak = np.maximum.accumulate(equity)
    dd = equity / peak - 1.0
    under = dd < 0
    periods = []
    i, n = 0, dd.size
    while i < n:
        if not under[i]:
            i += 1
            continue
        j = i
        while j < n and under[j]:
            j += 1
        trough = i + int(np.argmin(dd[i:j]))
        periods.append({"peak": i - 1 if i > 0 else 0, "trough": trough, "recovery": j if j < n else None,
                        "depth": float(dd[trough])})
        i = j
    periods.sort(key=lambda p: p["depth"])
    return periods[:top]


def _date(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d")


# ---------------------------------------------------------------------------------------------
# the page


CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
margin:0;color:#1d2430;background:#f6f7f9}header{background:#1d2430;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}header .sub{color:#c8cfdb;font-size:13px;margin-top:4px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde1e7;padding:8px 28px;z-index:2;
font-size:13px}nav a{margin-right:14px;color:#1f5fbf;text-decoration:none}main{padding:8px 28px 40px;
max-width:1180px}section{background:#fff;border:1px solid #e1e5eb;border-radius:8px;padding:14px 18px;
margin:16px 0}h2{font-size:17px;margin:0 0 10px}h3{font-size:14px;margin:14px 0 6px}
.note{color:#5b6472;font-size:12.5px}.caveats{border-left:4px solid #d9822b;background:#fff8ef}
.caveats li{margin:3px 0}.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));
gap:10px}.card{border:1px solid #e1e5eb;border-radius:6px;padding:8px 10px}.card .k{color:#5b6472;
font-size:12px}.card .v{font-size:18px;font-weight:600}.card .b{color:#5b6472;font-size:12px}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
td,th{padding:3px 7px;border-bottom:1px solid #eef0f3;text-align:right;white-space:nowrap}
th{background:#f2f4f7;font-weight:600}td.l,th.l{text-align:left}.scroll{overflow-x:auto}
svg.chart{width:100%;height:auto;display:block;margin:4px 0 10px}
svg .grid{stroke:#e6e9ee;stroke-width:1}svg .axis{stroke:#9aa1ad;stroke-width:1}
svg .tick{stroke:#9aa1ad}svg .zero{stroke:#5b6472;stroke-width:1;stroke-dasharray:2 2}
svg .line{fill:none;stroke-width:1.4;stroke-linejoin:round}svg .layer{stroke:none}
svg .dots{fill:none;stroke-width:4.5;stroke-linecap:round;opacity:.55}svg .dots.edge{opacity:.25}
svg text{font:11px system-ui,sans-serif;fill:#4a5260}svg .yl{text-anchor:end}svg .xl{text-anchor:middle}
svg .lg{fill:#1d2430}svg .axl{text-anchor:middle;fill:#1d2430}svg .cv{text-anchor:middle;fill:#1d2430}
pre{background:#f6f8fa;border:1px solid #e1e5eb;border-radius:6px;padding:10px;overflow:auto;
font-size:12px;max-height:520px}.two{display:grid;grid-template-columns:1fr 1fr;gap:16px}figure{margin:10px 0 14px}
figcaption{font-weight:600;font-size:13px;margin-bottom:2px}.legend{font-size:12px;color:#1d2430}
.legend span{display:inline-block;margin:0 12px 2px 0;white-space:nowrap}.legend i{display:inline-block;
width:10px;height:10px;margin-right:4px;vertical-align:-1px}
@media(max-width:900px){.two{grid-template-columns:1fr}}
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    links = "".join(f'<a href="#{a}">{esc(b)}</a>' for a, b in nav)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><div class=\"sub\">{subtitle}</div></header>"
            f"<nav>{links}</nav><main>{''.join(sections)}</main></body></html>\n")


def section(anchor: str, title: str, body: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<section id="{anchor}"{klass}><h2>{esc(title)}</h2>{body}</section>'


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1, cls: str = "") -> str:
    head = "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    klass = f' class="{cls}"' if cls else ""
    return f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _cell_color(v: float, scale: float) -> str:
    if not math.isfinite(v) or scale <= 0:
        return ""
    f = 0.5 + max(-1.0, min(1.0, v / scale)) / 2
    return f' style="background:{_diverging(f)}"'


def _series_stats(level: np.ndarray, t: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(level)
    level, t = level[ok], t[ok]
    if level.size < 2:
        return {}
    r = level[1:] / level[:-1] - 1.0
    ppy = _ppy(t)
    span = (t[-1] - t[0]) / (365.25 * 86_400e9)
    sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    return {"total_return": float(level[-1] / level[0] - 1.0),
            "cagr": float((level[-1] / level[0]) ** (1 / span) - 1.0) if span > 0 and level[-1] > 0 else math.nan,
            "annual_vol": sd * math.sqrt(ppy) if r.size > 1 else math.nan,
            "sharpe": float(np.mean(r)) / sd * math.sqrt(ppy) if sd > 0 else math.nan,
            "max_drawdown": float((level / np.maximum.accumulate(level) - 1.0).min())}


def build(frames: dict[str, pd.DataFrame], metrics: dict[str, Any], prov: dict[str, Any],
          bench: tuple[str, np.ndarray] | None = None) -> str:
    """The report's HTML from a run's tables (as ``recorder.tables`` returns them or as read
    back from the CSV files), its metrics, its provenance and the benchmark's levels on the
    equity's bars (``benchmark``)."""
    eq = frames["equity"]
    t = _utc_ns(eq.index)
    equity = eq["equity"].to_numpy(dtype=np.float64)
    capital = float(equity[0])
    r = np.append(0.0, equity[1:] / equity[:-1] - 1.0) if equity.size else np.array([])
    ppy = _ppy(t)
    config = prov.get("config", {})
    sections, nav = [], []

    def add(anchor: str, title: str, body: str, cls: str = "") -> None:
        nav.append((anchor, title))
        sections.append(section(anchor, title, body, cls))

    bench_name, bench_level = (bench if bench is not None else (None, None))
    if bench_level is not None:
        bench_level = np.asarray(bench_level, dtype=np.float64)
        first = np.flatnonzero(np.isfinite(bench_level))
        if first.size == 0 or bench_level.size != equity.size:
            bench_name, bench_level = None, None
        else:
            bench_level = bench_level / bench_level[first[0]] * capital
            bench_level[: first[0]] = np.nan
    bstats = _series_stats(bench_level, t) if bench_level is not None else {}

    # -- key metrics
    cards = [("Total return", pct(metrics.get("total_return")), pct(bstats.get("total_return")) if bstats else ""),
             ("CAGR", pct(metrics.get("cagr")), pct(bstats.get("cagr")) if bstats else ""),
             ("Annual volatility", pct(metrics.get("annual_vol")), pct(bstats.get("annual_vol")) if bstats else ""),
             ("Sharpe", num(metrics.get("sharpe")), num(bstats.get("sharpe")) if bstats else ""),
             ("Sortino", num(metrics.get("sortino")), ""),
             ("Max drawdown", pct(metrics.get("max_drawdown")), pct(bstats.get("max_drawdown")) if bstats else ""),
             ("Calmar", num(metrics.get("calmar")), ""),
             ("Final equity", money(metrics.get("final_equity")), f"from {money(capital)}"),
             ("Turnover / year", f"{num(metrics.get('turnover'))}x", ""),
             ("Costs", money(metrics.get("total_costs")), ""),
             ("Trades", f"{metrics.get('n_trades', 'n/a'):,}" if finite(metrics.get("n_trades")) else "n/a",
              f"in {metrics.get('n_rebalances', 'n/a')} rebalances"),
             ("Exposure", pct(metrics.get("exposure")), "average gross")]
    card_html = "".join(f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div>'
                        f'<div class="b">{("benchmark " + b) if b and bstats and k not in ("Final equity", "Trades", "Exposure") else b}</div></div>'
                        for k, v, b in cards)
    bnote = f'<p class="note">Benchmark: {esc(bench_name)}.</p>' if bench_name else '<p class="note">No benchmark available.</p>'
    add("metrics", "Key metrics", f'<div class="cards">{card_html}</div>{bnote}')

    # -- caveats
    data = prov.get("data", {})
    notes = list(data.get("caveats", [])) + list(prov.get("assumptions", []))
    chosen = (config.get("report") or {}).get("benchmark")
    if chosen is not None and chosen != UNIVERSE and chosen not in data.get("symbols", []):
        notes.append(f"the benchmark's levels come from {chosen} as given: a price index without dividends "
                     f"trails the data's dividend-adjusted prices by the dividend yield, which flatters the strategy")
    notes.append("a backtest: fills are simulated from bars with the configured cost model; live fills, "
                 "dividends' taxes and corporate actions beyond price adjustment are not modelled")
    add("caveats", "Data caveats", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>", "caveats")

    # -- equity against the benchmark
    series = [("strategy", equity, BLUE)] + ([(f"benchmark: {bench_name}", bench_level, GREY)] if bench_level is not None else [])
    log = bool(equity.size and np.nanmin(equity) > 0 and np.nanmax(equity) / np.nanmin(equity) > 5)
    add("equity", "Equity against the benchmark",
        line_chart("chart-equity", "Equity against the benchmark", t, series, kind="money", log=log) +
        f'<p class="note">Account equity marked at each close{", log scale" if log else ""}; the benchmark is '
        f'scaled to the same starting capital.</p>')

    # -- drawdowns
    dd = equity / np.maximum.accumulate(equity) - 1.0 if equity.size else equity
    dseries = [("strategy", dd, RED)]
    if bench_level is not None:
        bl = bench_level.copy()
        ok = np.isfinite(bl)
        bdd = np.full_like(bl, np.nan)
        bdd[ok] = bl[ok] / np.maximum.accumulate(bl[ok]) - 1.0
        dseries.append(("benchmark", bdd, GREY))
    rows = []
    for p in drawdown_periods(t, equity):
        rec = p["recovery"]
        rows.append([esc(_date(t[p["peak"]])), esc(_date(t[p["trough"]])),
                     esc(_date(t[rec])) if rec is not None else "not recovered", pct(p["depth"]),
                     f"{(rec if rec is not None else t.size - 1) - p['peak']:,}"])
    add("drawdowns", "Drawdowns",
        line_chart("chart-drawdown", "Drawdown from the running peak", t, dseries, kind="pct", zero=True, fill=True) +
        "<h3>Worst drawdowns</h3>" + html_table(["peak", "trough", "recovered", "depth", "bars"], rows, left=3))

    # -- rolling volatility and Sharpe
    br = None
    if bench_level is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            br = np.append(np.nan, bench_level[1:] / bench_level[:-1] - 1.0)
    vol = [("strategy", rolling_vol(r, ROLL_VOL, ppy), BLUE)]
    shp = [("strategy", rolling_sharpe(r, ROLL_SHARPE, ppy), BLUE)]
    if br is not None:
        vol.append(("benchmark", rolling_vol(br, ROLL_VOL, ppy), GREY))
        shp.append(("benchmark", rolling_sharpe(br, ROLL_SHARPE, ppy), GREY))
    add("rolling", "Rolling volatility and Sharpe",
        line_chart("chart-rolling-vol", f"Rolling volatility ({ROLL_VOL} bars, annualised)", t, vol, kind="pct") +
        line_chart("chart-rolling-sharpe", f"Rolling Sharpe ratio ({ROLL_SHARPE} bars, annualised)", t, shp,
                   kind="num", zero=True) +
        f'<p class="note">Volatility over the last {ROLL_VOL} bars and Sharpe ratio (risk-free rate 0) over the '
        f'last {ROLL_SHARPE} bars, annualised with {ppy:.0f} bars a year.</p>')

    # -- monthly returns
    if equity.size > 1:
        mt = monthly_returns(t, equity)
        byear = None
        if bench_level is not None:
            ok = np.isfinite(bench_level)
            if ok.sum() > 1:
                byear = monthly_returns(t[ok], bench_level[ok])["Year"]
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
        add("monthly", "Monthly returns", table + '<p class="note">Compounded returns per calendar month and year '
            '(the first month from the start of the run).</p>')

    # -- weights over time
    w = frames.get("weights")
    if w is not None and len(w):
        wt = _utc_ns(w.index)
        values = w.to_numpy(dtype=np.float64)
        names = list(w.columns)
        if eq.size and t.size and t[-1] > wt[-1]:
            wt = np.append(wt, t[-1])
            values = np.vstack([values, values[-1:]])
        size = np.nanmean(np.abs(values), axis=0)
        order = [j for j in np.argsort(-size, kind="stable") if size[j] > 0]
        if len(order) > MAX_LAYERS:
            keep, rest = order[:MAX_LAYERS - 1], order[MAX_LAYERS - 1:]
            layers = [(names[j], values[:, j]) for j in keep] + [(f"other ({len(rest)})", values[:, rest].sum(axis=1))]
        else:
            layers = [(names[j], values[:, j]) for j in sorted(order)]
        if wt.size > 400:  # sampled on a grid of 400 times: about two per pixel column
            grid = np.linspace(wt[0], wt[-1], 400).astype(np.int64)
            at = np.searchsorted(wt, grid, side="right") - 1
            layers = [(n, v[at]) for n, v in layers]
            wt = grid
        gross = np.nansum(np.abs(values), axis=1)
        add("weights", "Weights over time",
            stacked_chart("chart-weights", "Target weights at each rebalance", wt, layers) +
            f'<p class="note">Target weights after risk constraints, held until the next rebalance; '
            f'{len(w):,} rebalances, average gross {pct(float(np.mean(gross)), 0)}. Long weights stack above '
            f'zero, short weights below.</p>')

    # -- attribution
    attr = frames.get("attribution")
    if attr is not None and len(attr) == equity.size and equity.size:
        before = np.append(equity[0], equity[:-1])
        sleeves = [c for c in attr.columns if c.startswith("sleeve:")]
        assets = [c for c in attr.columns if c.startswith("asset:")]
        apart = ["commission"] + (["financing"] if "financing" in attr.columns else [])
        pnl = {c: np.cumsum(attr[c].to_numpy(dtype=np.float64) * before) for c in sleeves + assets + apart}
        lines = [(c.removeprefix("sleeve:"), pnl[c], PALETTE[i % len(PALETTE)]) for i, c in enumerate(sleeves)]
        lines.append(("commission", pnl["commission"], RED))
        total = equity[-1] - equity[0]
        srows = [[esc(c.removeprefix("sleeve:")), money(pnl[c][-1]), pct(pnl[c][-1] / total if total else math.nan, 1)]
                 for c in sleeves + apart]
        finals = sorted(((c.removeprefix("asset:"), float(pnl[c][-1])) for c in assets), key=lambda kv: -kv[1])
        body = (line_chart("chart-sleeves", "Cumulative P&L by sleeve", t, lines, kind="money", zero=True) +
                html_table(["sleeve", "P&L", "share of total"], srows))
        sl = frames.get("sleeves")
        if sl is not None and len(sleeves) > 1:
            wcols = [c for c in sl.columns if c.startswith("weight:")]
            stl = _utc_ns(sl.index)
            idx = reduce_indices(np.arange(stl.size, dtype=np.float64), MAX_POINTS // 4)
            body += stacked_chart("chart-sleeve-weights", "Sleeve weights", stl[idx],
                                  [(c.removeprefix("weight:"), sl[c].to_numpy(dtype=np.float64)[idx]) for c in wcols], step=False)
        body += ("<h3>P&amp;L by asset</h3>" +
                 bar_chart("chart-assets", "Total P&L by asset", [k for k, _ in finals], [v for _, v in finals]))
        add("attribution", "Attribution",
            body + '<p class="note">Each bar\'s P&amp;L split by sleeve and by asset (spread and impact sit in '
            'the fill prices, so in the asset\'s P&amp;L; commission and financing apart); the parts add up to the change in '
            f'equity, {money(total)}.</p>')

    # -- turnover and costs
    fills = frames.get("fills")
    if fills is not None:
        add("costs", "Turnover and costs", _costs_section(fills, frames.get("orders"), t, equity, metrics,
                                                          frames.get("financing")))

    # -- execution quality
    ex = frames.get("execution")
    if ex is not None:
        add("execution", "Execution quality", _execution_section(ex, metrics.get("execution", {})))

    # -- config and provenance
    add("config", "Config and provenance", _config_section(prov))

    strategies = ", ".join(str(k) for k in (config.get("strategy") or {}))
    code = prov.get("code_version", {})
    commit = (code.get("git_commit") or "unknown")[:10] + (" (uncommitted changes)" if code.get("dirty") else "")
    subtitle = esc(f"{data.get('name', '?')} data, {strategies or '?'} | "
                   f"{str(metrics.get('start', ''))[:10]} to {str(metrics.get('end', ''))[:10]} | "
                   f"seed {prov.get('seed', '?')} | code {commit}")
    return page("robo-trader run report", subtitle, nav, sections)


def _costs_section(fills: pd.DataFrame, orders: pd.DataFrame | None, t: np.ndarray, equity: np.ndarray,
                   metrics: dict[str, Any], financing: pd.DataFrame | None = None) -> str:
    if len(fills) == 0 or equity.size == 0:
        return '<p class="note">No fills.</p>'
    ft = _utc_ns(fills["time"])
    where = np.clip(np.searchsorted(t, ft), 0, t.size - 1)
    n = t.size
    traded = np.bincount(where, weights=fills["notional"].to_numpy(dtype=np.float64), minlength=n)
    kinds = [("commission", "commission"), ("spread", "spread_cost"), ("impact", "impact_cost")]
    cum = {k: np.cumsum(np.bincount(where, weights=fills[c].to_numpy(dtype=np.float64), minlength=n)) for k, c in kinds}
    colors = [PALETTE[0], PALETTE[1], RED]
    # per rebalance, as metrics.json's turnover: each fill counted at its order's decision,
    # over the equity marked there (the equity the orders were sized from)
    if orders is not None and len(orders):
        decided = pd.Series(_utc_ns(orders["decision_time"]), index=orders["order_id"].to_numpy())
        at = np.clip(np.searchsorted(t, decided.reindex(fills["order_id"].to_numpy()).to_numpy()), 0, t.size - 1)
    else:
        at = where
    if financing is not None and len(financing) == n:  # per bar, on the equity's rows
        for i, kind in enumerate(c for c in financing.columns if c != "days"):
            cum[kind.replace("_", " ")] = np.cumsum(financing[kind].to_numpy(dtype=np.float64))
            kinds.append((kind.replace("_", " "), kind))
            colors.append(PALETTE[(2 + i) % len(PALETTE)])
    per = np.bincount(at, weights=fills["notional"].to_numpy(dtype=np.float64), minlength=n)
    hit = per > 0
    turnover = per[hit] / equity[hit]
    total_traded = float(traded.sum())
    rows = [[k, money(cum[k][-1]), num(cum[k][-1] / total_traded * 1e4 if total_traded else math.nan, 2)]
            for k, _ in kinds]
    all_costs = sum(cum[k][-1] for k, _ in kinds)
    rows.append(["<b>total</b>", f"<b>{money(all_costs)}</b>",
                 f"<b>{num(all_costs / total_traded * 1e4 if total_traded else math.nan, 2)}</b>"])
    return (spikes_chart("chart-turnover", "Turnover per rebalance (traded notional / equity at the decision)",
                         t[hit], turnover) +
            f'<p class="note">Annualised two-way turnover {num(metrics.get("turnover"))}x: the mean over '
            f'{int(hit.sum()):,} rebalances with trades of the notional traded (buys plus sells) over the equity '
            f'at the decision, {pct(float(np.mean(turnover)), 1)}, times the rebalances a year; '
            f'{money(total_traded)} traded in all.</p>' +
            line_chart("chart-costs", "Cumulative costs by kind", t,
                       [(k, cum[k], c) for i, ((k, _), c) in enumerate(zip(kinds, colors))
                        if i < 3 or cum[k].any()], kind="money") +
            html_table(["cost", "total", "bps of traded notional"], rows) +
            ('<p class="note">Financing (margin interest on negative cash, interest on positive cash, '
             'negative when earned, and the short borrow fee) accrues every bar on calendar days, '
             'actual/360; financing.csv has it per bar.</p>' if financing is not None else ""))


def _execution_section(ex: pd.DataFrame, agg: dict[str, Any]) -> str:
    x = ex["participation"].to_numpy(dtype=np.float64)
    y = ex["shortfall_bps"].to_numpy(dtype=np.float64)
    side = ex["side"].astype(str).to_numpy()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    idx = np.flatnonzero(ok)
    if idx.size > MAX_SCATTER:
        idx = idx[np.linspace(0, idx.size - 1, MAX_SCATTER).astype(np.int64)]
    groups = [(s, x[idx][side[idx] == s], y[idx][side[idx] == s], c) for s, c in (("buy", PALETTE[0]), ("sell", PALETTE[1]))]
    trend = None
    if ok.sum() >= 20:
        xs, ys = x[ok], y[ok]
        edges = np.unique(np.quantile(xs, np.linspace(0, 1, 11)))
        which = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, edges.size - 2)
        mids = np.array([np.median(xs[which == k]) for k in range(edges.size - 1) if (which == k).any()])
        meds = np.array([np.median(ys[which == k]) for k in range(edges.size - 1) if (which == k).any()])
        trend = (mids, meds)
    chart = scatter_chart("chart-execution", "Implementation shortfall against participation", groups,
                          "participation (share of the interval's volume, log scale)", "shortfall (bps)", trend=trend)
    labels = [("orders", "n_orders", "int"), ("filled", "n_filled", "int"), ("partially filled", "n_partial", "int"),
              ("unfilled", "n_unfilled", "int"), ("fill rate", "fill_rate", "pct"),
              ("implementation shortfall (bps)", "shortfall_bps", "num"), ("slippage vs interval VWAP (bps)", "vwap_slippage_bps", "num"),
              ("slippage vs interval TWAP (bps)", "twap_slippage_bps", "num"), ("commission (bps)", "commission_bps", "num"),
              ("spread (bps)", "spread_bps", "num"), ("impact (bps)", "impact_bps", "num"),
              ("mean participation", "participation_mean", "pct"), ("max participation", "participation_max", "pct"),
              ("cancelled notional", "cancelled_notional", "money"), ("swept notional", "swept_notional", "money")]
    fmt = {"int": lambda v: f"{v:,}" if finite(v) else "n/a", "pct": pct, "num": num, "money": money}
    rows = [[esc(label), fmt[kind](agg.get(key))] for label, key, kind in labels if key in agg]
    shown = int(sum(g[1].size for g in groups))
    return (chart + f'<p class="note">One point per parent order ({shown:,} of {len(ex):,} drawn'
            f'{", evenly sampled" if ok.sum() > shown else ""}; orders with no participation figure left out). '
            'Shortfall is against the arrival price (the close at the decision), so it holds the market\'s '
            'move as well as the costs; positive is a cost.</p>' + html_table(["aggregate (weighted by notional)", "value"], rows))


def _config_section(prov: dict[str, Any]) -> str:
    import yaml

    config = yaml.safe_dump(prov.get("config", {}), sort_keys=True, default_flow_style=False, width=100)
    data = prov.get("data", {})
    code = prov.get("code_version", {})
    rows = [["data", esc(data.get("name"))], ["bars", esc(f"{data.get('bars', 'n/a'):,}" if finite(data.get("bars")) else "n/a")],
            ["period", esc(f"{str(data.get('first', ''))[:10]} to {str(data.get('last', ''))[:10]}")],
            ["symbols", esc(", ".join(data.get("symbols", [])))], ["data sha256", f"<code>{esc(data.get('sha256'))}</code>"],
            ["seed", esc(prov.get("seed"))], ["overrides", f"<code>{esc(' '.join(prov.get('overrides', [])) or '(none)')}</code>"],
            ["git commit", esc(f"{code.get('git_commit')}{' (uncommitted changes)' if code.get('dirty') else ''}")],
            ["python", esc(prov.get("python"))],
            ["packages", esc(", ".join(f"{k} {v}" for k, v in sorted(prov.get("packages", {}).items()) if v))]]
    table = "".join(f'<tr><th class="l">{k}</th><td class="l" style="white-space:normal">{v}</td></tr>' for k, v in rows)
    return (f'<div class="scroll"><table>{table}</table></div><h3>Resolved config</h3>'
            f'<pre id="config">{esc(config)}</pre>')


# ---------------------------------------------------------------------------------------------
# writing


def write(out: Path, frames: dict[str, pd.DataFrame], metrics: dict[str, Any], prov: dict[str, Any],
          bench: tuple[str, np.ndarray] | None = None) -> Path:
    """Write ``out/report.html`` atomically; returns its path."""
    text = build(frames, metrics, prov, bench)
    path = Path(out) / "report.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


TIME_COLUMNS = {"orders": "decision_time", "fills": "time", "execution": "session"}


def read_folder(folder: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """A finished run folder's tables (time-indexed where ``record`` wrote an index), metrics
    and provenance."""
    folder = Path(folder)
    frames = {}
    for name in ("equity", "returns", "weights", "attribution", "sleeves", "financing"):
        path = folder / f"{name}.csv"
        if path.is_file():
            frames[name] = pd.read_csv(path, index_col=0)
    for name in ("orders", "fills", "execution"):
        path = folder / f"{name}.csv"
        if path.is_file():
            frames[name] = pd.read_csv(path)
    metrics = json.loads((folder / "metrics.json").read_text())
    prov = json.loads((folder / "provenance.json").read_text())
    return frames, metrics, prov


def benchmark_choice(config: Any, source: Any) -> str:
    """``report.benchmark`` as configured, else the data source's own default."""
    chosen = (config.get("report") or {}).get("benchmark")
    return str(chosen) if chosen is not None else getattr(source, "default_benchmark", UNIVERSE)


def folder_benchmark(prov: dict[str, Any], equity_index: pd.DatetimeIndex) -> tuple[str, np.ndarray] | None:
    """The benchmark for a recorded run: rebuilds its data source from the resolved config."""
    from pipeline.core.contracts import DataSource
    from pipeline.core.params import build as build_component

    node = prov.get("config", {}).get("data")
    if not node:
        return None
    source = build_component(node, "data", DataSource, seed=int(prov.get("seed", 0)))
    data = source.load()
    start = int(np.searchsorted(_utc_ns(data.index), _utc_ns(equity_index)[0]))
    return benchmark(data, start, benchmark_choice(prov.get("config", {}), source))


def from_folder(folder: Path) -> Path:
    """Rebuild ``report.html`` for a finished run folder."""
    frames, metrics, prov = read_folder(folder)
    return write(folder, frames, metrics, prov, folder_benchmark(prov, frames["equity"].index))


def _not_a_run(folder: Path) -> str | None:
    """Why ``folder`` has no report to rebuild, and what to run instead; None for a finished run."""
    if (folder / "walkforward.csv").is_file() and (folder / "metrics.json").is_file():
        summary = json.loads((folder / "metrics.json").read_text())
        best = summary.get("in_sample_best_over_whole_history", {}).get("params", {})
        rerun = " ".join(f"{k}={v}" for k, v in best.items())
        return (f"{folder} is a walk-forward folder ({summary.get('folds')} folds, "
                f"{summary.get('candidates')} candidates), not a run folder: its record is "
                f"metrics.json, walkforward.csv and oos_returns.csv, and it has no report.html. "
                f"For the tearsheet of one candidate, run it without walkforward=..., e.g. the best "
                f"with hindsight: python run.py {rerun}")
    if (folder / "sweep.csv").is_file():
        return (f"{folder} is a sweep folder: its page is {folder / 'summary.html'}; rebuild one "
                f"job's report with python -m pipeline.report {folder / '<job number>'}")
    if (folder / "error.txt").is_file():
        first = (folder / "error.txt").read_text(errors="replace").splitlines()[:1]
        return f"{folder} is a failed run ({' '.join(first)}): there is no report to rebuild"
    for name in ("metrics.json", "provenance.json"):
        if not (folder / name).is_file():
            return f"{folder}: not a finished run folder (no {name})"
    return None


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.report",
                                     description="Rebuild report.html for finished run folders.")
    parser.add_argument("folders", nargs="+", type=Path, help="run folders (each holding metrics.json)")
    args = parser.parse_args(argv)
    import sys

    for folder in args.folders:
        why = _not_a_run(folder)
        if why is not None:
            print(f"robo-trader: error: {why}", file=sys.stderr)
            return 2
        print(from_folder(folder))
    return 0

