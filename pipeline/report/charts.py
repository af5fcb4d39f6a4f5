"""Chart primitives of the report: inline SVG drawn from numpy arrays (lines, stacked areas,
spikes, scatter, bars, heatmap), with their scales, ticks and point reduction.

No JavaScript library, no font or image to fetch: a chart is an ``<svg>`` string whose bytes
depend only on its data. Long series are reduced for drawing to at most ``MAX_POINTS`` points
per line (the extremes of each bucket are kept, so drawdowns keep their depth).

A line chart over time also carries its full series as JSON (``payload``), from which the
page's script (``assets/report.js``) reads values under the pointer and redraws a zoomed range
or a legend toggled; without the script the SVG is the chart.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.report.format import esc, share, tick_label

MAX_POINTS = 2000          # per drawn line
W, H = 880, 280            # chart size in SVG units
ML, MR, MT, MB = 70, 16, 10, 28   # margins: left (y labels), right, top, bottom (x labels)

BLUE, GREY, RED = "#1f5fbf", "#8a8f98", "#c0392b"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")


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
                           f'<text class="yl" x="{ML - 6}" y="{y + 4:.1f}">{esc(tick_label(v, kind))}</text>')
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
    """The series' names and colours, as HTML that wraps (``data-i``: the series' number)."""
    if not items:
        return ""
    return '<div class="legend">' + "".join(
        f'<span data-i="{i}"><i style="background:{color}"></i>{esc(name)}</span>'
        for i, (name, color) in enumerate(items)) + "</div>"


def figure(title: str, items: Sequence[tuple[str, str]], chart: str, data: str = "") -> str:
    """A chart under its caption and legend; ``data``: its ``payload`` (an interactive chart)."""
    klass = ' class="interactive"' if data else ""
    return f'<figure{klass}><figcaption>{esc(title)}</figcaption>{legend(items)}{chart}{data}</figure>'


def _deltas(q: np.ndarray) -> str:
    """Integers as the first then each next one's step from the one before (null: a gap, the
    steps skip it)."""
    ok = np.isfinite(q)
    steps = map(str, np.diff(q[ok].astype(np.int64), prepend=0).tolist())
    if ok.all():
        return ",".join(steps)
    out = ["null"] * q.size
    for i, step in zip(np.flatnonzero(ok).tolist(), steps):
        out[i] = step
    return ",".join(out)


def payload(chart_id: str, t: np.ndarray, series: Sequence[tuple[str, np.ndarray, str]], kind: str,
            log: bool, zero: bool, fill: bool, dashed: Sequence[str]) -> str:
    """A time chart's full data for the page's script, as a JSON block, compact because it holds
    every bar: times in UTC seconds as the first and then steps in ``unit`` seconds (their common
    divisor: a day, or an hour across DST changes), and each series as integers times
    ``10 ** scale`` (six significant digits of its largest value), stepped the same way."""
    sec = np.asarray(t, dtype=np.int64) // 1_000_000_000
    steps = np.diff(sec)
    unit = int(np.gcd.reduce(steps)) if steps.size and steps.min() > 0 else 1
    daily = bool(steps.size == 0 or np.median(steps) >= 20 * 3600)
    scales, values = [], []
    for _, v, _ in series:
        v = np.asarray(v, dtype=np.float64)
        finite = np.abs(v[np.isfinite(v)])
        big = float(finite.max()) if finite.size else 0.0
        e = math.floor(math.log10(big)) - 5 if big > 0 else 0
        scales.append(e)
        values.append(f"[{_deltas(np.round(v / 10.0 ** e))}]")
    head = json.dumps({"id": chart_id, "kind": kind, "log": log, "zero": zero, "fill": fill, "daily": daily,
                       "names": [n for n, _, _ in series], "colors": [c for _, _, c in series],
                       "dashed": [n in dashed for n, _, _ in series], "scales": scales, "unit": unit,
                       "t0": int(sec[0]) if sec.size else 0}, separators=(",", ":"))
    times = ",".join((steps // unit).astype(str).tolist())
    text = f'{head[:-1]},"t":[{times}],"values":[{",".join(values)}]}}'
    safe = text.replace("</", "<\\/")  # a name cannot close the block
    return f'<script type="application/json" class="chart-data">{safe}</script>'


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
    if len(yt) < 3:  # a short log range: even steps read better than its two ends
        yt = nice_ticks(lo, hi)
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
                  svg(chart_id, title, "".join(body), drawn, len(series)),
                  payload(chart_id, t, [(n, v, c) for (n, _, c), v in zip(series, vals)], kind, log, zero, fill, dashed))


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
        xt = [(math.log10(v), share(v)) for v in log_ticks(10 ** x0, 10 ** x1)]
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
                    f'<text class="xl" x="{x(tick):.1f}" y="{height - MB + 16}">{esc(tick_label(tick, kind))}</text>')
    for i, (label, val) in enumerate(zip(labels, v.tolist())):
        y = MT + i * row
        a, b = sorted((x(0.0), x(val)))
        color = "#2e8b57" if val >= 0 else RED
        body.append(f'<text class="yl" x="{left - 6}" y="{y + 13}">{esc(label)}</text>'
                    f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 0.5):.1f}" height="{row - 6}" fill="{color}">'
                    f'<title>{esc(label)}: {esc(tick_label(val, kind))}</title></rect>')
    body.append(f'<line class="axis" x1="{x(0.0):.1f}" x2="{x(0.0):.1f}" y1="{MT}" y2="{height - MB}"/>')
    return figure(title, [], svg(chart_id, title, "".join(body), int(v.size), 1, width=width, height=height))


def histogram_chart(chart_id: str, title: str, x: np.ndarray, bins: int = 60,
                    marks: Sequence[tuple[str, float, str]] = ()) -> str:
    """Counts of ``x`` in equal bins over its 0.1th..99.9th percentiles (values beyond them
    counted in the end bins, so that a crash day does not squeeze the rest into one bar), with
    vertical ``marks`` (name, value, colour) such as the VaR."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return empty_chart(chart_id, title)
    lo, hi = (float(v) for v in np.percentile(x, [0.1, 99.9]))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.clip(x, lo, hi), bins=bins, range=(lo, hi))
    fr = Frame(lo, hi, 0.0, float(counts.max()) * 1.05)
    xt = [(v, tick_label(v, "pct")) for v in nice_ticks(lo, hi, 8)]
    body = [fr.axes(nice_ticks(0.0, float(counts.max())), "num", xt)]
    left, base = fr.px(edges[:-1]), fr.height - MB
    width = float(fr.px(edges[1]) - fr.px(edges[0]))
    for a, b, n, top in zip(left.tolist(), edges[1:].tolist(), counts.tolist(), fr.py(counts).tolist()):
        body.append(f'<rect class="bin" x="{a:.1f}" y="{top:.1f}" width="{max(width - 1, 0.5):.1f}" '
                    f'height="{base - top:.1f}" fill="{BLUE}"><title>{esc(tick_label(b - (hi - lo) / bins, "pct"))} to '
                    f'{esc(tick_label(b, "pct"))}: {n:,} bars</title></rect>')
    for name, v, color in marks:
        if lo <= v <= hi:
            px = float(fr.px(v))
            body.append(f'<line class="mark" x1="{px:.1f}" x2="{px:.1f}" y1="{MT}" y2="{base}" stroke="{color}" '
                        f'stroke-dasharray="4 3"/>')
    return figure(title, [(name, color) for name, _, color in marks],
                  svg(chart_id, title, "".join(body), int(x.size), 1))


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
            color = diverging(f)
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


def diverging(f: float) -> str:
    """Red (0) through white (0.5) to green (1)."""
    f = min(max(f, 0.0), 1.0)
    lo, mid, hi = (214, 96, 77), (247, 247, 247), (26, 152, 80)
    a, b, u = (lo, mid, f * 2) if f < 0.5 else (mid, hi, f * 2 - 1)
    return "#" + "".join(f"{round(x + (y - x) * u):02x}" for x, y in zip(a, b))


def empty_chart(chart_id: str, title: str, why: str = "no data") -> str:
    return figure(title, [], f'<svg class="chart empty" id="{chart_id}" data-points="0" data-series="0" viewBox="0 0 {W} 60" '
            f'role="img" aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
            f'<text class="lg" x="{ML}" y="34">{esc(why)}</text></svg>')

