/* robo-trader report: hover read-outs, zoom and range selection, legend toggles and one
   crosshair across every time chart. Each chart's full series is the JSON block beside its SVG
   (pipeline/report/charts.py, payload); this script redraws the SVG from it in the range on
   view, with the scales, ticks and point reduction of charts.py. It fetches nothing. */
(function () {
  "use strict";
  var W = 880, H = 280, ML = 70, MR = 16, MT = 10, MB = 28, MAX_POINTS = 2000;
  var YEAR = 365.25 * 86400, MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var charts = [], view = null;  // view: [t0, t1] in UTC seconds, shared by every chart; null: everything
  var HINT = "Hover for values; drag across a chart to zoom, double-click to zoom out; click a legend entry to hide it.";

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function group(s) { var p = s.split("."); p[0] = p[0].replace(/\B(?=(\d{3})+(?!\d))/g, ","); return p.join("."); }
  function money(x) {  // format.money
    var a = Math.abs(x), units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (a >= units[i][0]) { return group((x / units[i][0]).toFixed(a < 10 * units[i][0] ? 2 : 1)) + units[i][1]; }
    }
    return group(x.toFixed(0));
  }
  function short(v) { return String(+v.toPrecision(6)); }
  function tickLabel(v, kind) {  // format.tick_label
    if (kind === "pct") { return (v * 100).toFixed(Math.abs(v) >= 0.1 || v === 0 ? 0 : 1) + "%"; }
    if (kind === "money") { return money(v); }
    return short(v) + (kind === "x" ? "x" : "");
  }
  function value(v, kind) {  // a read-out, as the report prints the number (format.money, pct, num)
    if (v === null) { return "n/a"; }
    if (kind === "pct") { return (v * 100).toFixed(2) + "%"; }
    return kind === "money" ? money(v) : group(v.toFixed(2));
  }
  function stamp(t, daily) {
    var s = new Date(t * 1000).toISOString();
    return daily ? s.slice(0, 10) : s.slice(0, 10) + " " + s.slice(11, 16) + " UTC";
  }

  function niceTicks(lo, hi, n) {  // charts.nice_ticks
    n = n || 5;
    if (!(isFinite(lo) && isFinite(hi))) { return []; }
    if (hi <= lo) { return [lo]; }
    var raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), step = 10 * mag, m = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < m.length; i++) { if (m[i] * mag >= raw) { step = m[i] * mag; break; } }
    var out = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) { out.push(Math.round(v * 1e12) / 1e12 + 0); }
    return out;
  }
  function logTicks(lo, hi) {  // charts.log_ticks
    if (!(lo > 0 && hi > 0)) { return []; }
    var a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi)), mults = b - a <= 3 ? [1, 2, 5] : [1], out = [];
    for (var e = a; e <= b; e++) {
      mults.forEach(function (m) { var t = m * Math.pow(10, e); if (t >= lo && t <= hi) { out.push(t); } });
    }
    return out.length >= 2 ? out : [lo, hi];
  }
  function timeTicks(t0, t1) {  // charts.time_ticks, in seconds
    var a = new Date(t0 * 1000), span = (t1 - t0) / YEAR, out = [], d;
    if (span >= 2) {
      var step = [1, 2, 5, 10, 20, 50].filter(function (s) { return span / s <= 10; })[0] || 50;
      for (var y = (Math.floor(a.getUTCFullYear() / step) + 1) * step; y <= new Date(t1 * 1000).getUTCFullYear(); y += step) {
        out.push([Date.UTC(y, 0, 1) / 1000, String(y)]);
      }
      return out;
    }
    var all = [];
    if (t1 - t0 < 62 * 86400) {
      for (d = Date.UTC(a.getUTCFullYear(), a.getUTCMonth(), a.getUTCDate()) / 1000; d <= t1; d += 86400) { all.push(d); }
    } else {
      for (var k = 0; ; k++) {
        d = Date.UTC(a.getUTCFullYear(), a.getUTCMonth() + k, 1) / 1000;
        if (d > t1) { break; }
        all.push(d);
      }
    }
    var every = Math.max(1, Math.ceil(all.length / 8)), days = t1 - t0 < 62 * 86400;
    for (var i = 0; i < all.length; i += every) {
      var x = new Date(all[i] * 1000), label = MONTHS[x.getUTCMonth()] + " " + x.getUTCFullYear();
      if (all[i] >= t0) { out.push([all[i], days ? ("0" + x.getUTCDate()).slice(-2) + " " + label : label]); }
    }
    return out;
  }

  function lowerBound(t, x) { var lo = 0, hi = t.length; while (lo < hi) { var m = (lo + hi) >> 1; if (t[m] < x) { lo = m + 1; } else { hi = m; } } return lo; }
  function nearest(c, x) {
    var i = Math.min(Math.max(lowerBound(c.t, x), c.a), c.b);
    return i > c.a && x - c.t[i - 1] < c.t[i] - x ? i - 1 : i;
  }
  function reduce(v, a, b) {  // charts.reduce_indices over v[a..b]
    var n = b - a + 1, idx = [];
    if (n <= MAX_POINTS) { for (var i = a; i <= b; i++) { idx.push(i); } return idx; }
    var buckets = Math.max(Math.floor(MAX_POINTS / 2) - 1, 1), k = Math.ceil(n / buckets), keep = {};
    keep[a] = keep[b] = true;
    for (var s = a; s <= b; s += k) {
      var lo = -1, hi = -1;
      for (var j = s; j < Math.min(s + k, b + 1); j++) {
        if (v[j] === null) { continue; }
        if (lo < 0 || v[j] < v[lo]) { lo = j; }
        if (hi < 0 || v[j] > v[hi]) { hi = j; }
      }
      keep[lo < 0 ? s : lo] = keep[hi < 0 ? s : hi] = true;
    }
    return Object.keys(keep).map(Number).sort(function (x, y) { return x - y; });
  }

  function render(c) {
    var p = c.p, t = c.t, last = t.length - 1;
    var t0 = view ? Math.max(view[0], t[0]) : t[0], t1 = view ? Math.min(view[1], t[last]) : t[last];
    c.a = Math.min(lowerBound(t, t0), last);
    c.b = Math.max(lowerBound(t, t1 + 1e-6) - 1, c.a);
    var lo = Infinity, hi = -Infinity;
    p.values.forEach(function (v, s) {
      if (c.hidden[s]) { return; }
      for (var i = c.a; i <= c.b; i++) {
        var y = v[i];
        if (y !== null && (!p.log || y > 0)) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
      }
    });
    if (!(lo <= hi)) { lo = 0; hi = 1; }
    if (p.zero && !p.log) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (!p.log) {
      var pad = (hi - lo) * 0.04 || Math.abs(hi) * 0.05 || 1;
      lo -= (lo < 0 || !p.zero) ? pad : 0;
      hi += (hi > 0 || !p.zero) ? pad : 0;
    }
    var x0 = t[c.a], x1 = t[c.b];
    if (!(x1 > x0)) { x0 -= 43200; x1 += 43200; }
    var y0 = p.log ? Math.log10(lo) : lo, y1 = p.log ? Math.log10(hi) : hi;
    if (!(y1 > y0)) { var yp = Math.abs(y0) * 0.05 || 1; y0 -= yp; y1 += yp; }
    c.x0 = x0; c.x1 = x1;
    c.px = function (x) { return ML + (x - x0) / (x1 - x0) * (W - ML - MR); };
    c.py = function (y) {
      if (p.log) { y = y > 0 ? Math.log10(y) : NaN; }
      return MT + (y1 - y) / (y1 - y0) * (H - MT - MB);
    };
    var body = [], bottom = H - MB, right = W - MR;
    var ticks = p.log ? logTicks(lo, hi) : niceTicks(lo, hi);
    (ticks.length < 3 ? niceTicks(lo, hi) : ticks).forEach(function (v) {
      var y = c.py(v);
      if (y >= MT - 0.5 && y <= bottom + 0.5) {
        body.push('<line class="grid" x1="' + ML + '" x2="' + right + '" y1="' + y.toFixed(1) + '" y2="' + y.toFixed(1) + '"/>' +
                  '<text class="yl" x="' + (ML - 6) + '" y="' + (y + 4).toFixed(1) + '">' + esc(tickLabel(v, p.kind)) + "</text>");
      }
    });
    timeTicks(x0, x1).forEach(function (tk) {
      var x = c.px(tk[0]);
      if (x >= ML - 0.5 && x <= right + 0.5) {
        body.push('<line class="tick" x1="' + x.toFixed(1) + '" x2="' + x.toFixed(1) + '" y1="' + bottom + '" y2="' + (bottom + 4) + '"/>' +
                  '<text class="xl" x="' + x.toFixed(1) + '" y="' + (bottom + 16) + '">' + esc(tk[1]) + "</text>");
      }
    });
    if (p.zero && !p.log && y0 < 0 && 0 < y1) {
      body.push('<line class="zero" x1="' + ML + '" x2="' + right + '" y1="' + c.py(0).toFixed(1) + '" y2="' + c.py(0).toFixed(1) + '"/>');
    }
    body.push('<line class="axis" x1="' + ML + '" x2="' + right + '" y1="' + bottom + '" y2="' + bottom + '"/>' +
              '<line class="axis" x1="' + ML + '" x2="' + ML + '" y1="' + MT + '" y2="' + bottom + '"/>');
    var drawn = 0;
    p.values.forEach(function (v, s) {
      if (c.hidden[s]) { return; }
      var idx = reduce(v, c.a, c.b), d = "", pts = [], open = false;
      drawn += idx.length;
      idx.forEach(function (i) {
        var y = v[i] === null ? NaN : c.py(v[i]);
        if (!isFinite(y)) { open = false; return; }
        var xy = c.px(t[i]).toFixed(1) + "," + y.toFixed(1);
        d += (open ? "L" : "M") + xy;
        pts.push(xy);
        open = true;
      });
      if (!d) { return; }
      if (p.fill && s === 0) {
        var base = (p.log ? bottom : c.py(0)).toFixed(1);
        body.push('<path class="area" d="M' + pts[0].split(",")[0] + "," + base + "L" + pts.join("L") + "L" +
                  pts[pts.length - 1].split(",")[0] + "," + base + 'Z" fill="' + p.colors[s] + '" fill-opacity="0.25"/>');
      }
      body.push('<path class="line" d="' + d + '" stroke="' + p.colors[s] + '"' + (p.dashed[s] ? ' stroke-dasharray="4 3"' : "") + "/>");
    });
    body.push('<line class="cross" x1="0" x2="0" y1="' + MT + '" y2="' + bottom + '" visibility="hidden"/>');
    p.values.forEach(function (v, s) { body.push('<circle class="dot" r="3" fill="' + p.colors[s] + '" visibility="hidden"/>'); });
    body.push('<rect class="sel" x="0" y="' + MT + '" width="0" height="' + (bottom - MT) + '" visibility="hidden"/>');
    c.svg.innerHTML = "<title>" + esc(c.title) + "</title>" + body.join("");
    c.svg.setAttribute("data-points", drawn);
    c.svg.setAttribute("data-view", t[c.a] + "," + t[c.b]);
    c.cross = c.svg.querySelector(".cross");
    c.dots = c.svg.querySelectorAll(".dot");
    c.sel = c.svg.querySelector(".sel");
  }

  function showAt(c, x) {  // the crosshair and the read-out at the bar nearest time x
    var i = nearest(c, x), px = c.px(c.t[i]).toFixed(1), parts = [];
    c.cross.setAttribute("x1", px); c.cross.setAttribute("x2", px); c.cross.setAttribute("visibility", "visible");
    c.p.values.forEach(function (v, s) {
      var dot = c.dots[s], y = v[i] === null ? NaN : c.py(v[i]), shown = !c.hidden[s] && isFinite(y);
      dot.setAttribute("visibility", shown ? "visible" : "hidden");
      if (shown) { dot.setAttribute("cx", px); dot.setAttribute("cy", y.toFixed(1)); }
      if (!c.hidden[s]) {
        parts.push('<span class="s" data-i="' + s + '"><i style="background:' + c.p.colors[s] + '"></i>' + esc(c.p.names[s]) +
                   " <b>" + value(v[i], c.p.kind) + "</b></span>");
      }
    });
    c.readout.setAttribute("data-index", i);
    c.readout.innerHTML = '<span class="t">' + stamp(c.t[i], c.p.daily) + "</span>" + parts.join("");
  }
  function hide(c) {
    c.cross.setAttribute("visibility", "hidden");
    c.dots.forEach(function (d) { d.setAttribute("visibility", "hidden"); });
    c.readout.removeAttribute("data-index");
    c.readout.textContent = HINT;
  }
  function setView(v) {
    view = v;
    charts.forEach(render);
  }
  function svgX(c, e) {
    var pt = c.svg.createSVGPoint();
    pt.x = e.clientX; pt.y = e.clientY;
    return pt.matrixTransform(c.svg.getScreenCTM().inverse()).x;
  }
  function timeAt(c, x) { return c.x0 + (Math.min(Math.max(x, ML), W - MR) - ML) / (W - ML - MR) * (c.x1 - c.x0); }

  function setup(fig) {
    var svg = fig.querySelector("svg.chart"), data = fig.querySelector("script.chart-data");
    if (!svg || !data) { return; }
    var p = JSON.parse(data.textContent), t = [p.t0];
    p.t.forEach(function (d, i) { t.push(t[i] + d * p.unit); });
    p.values = p.values.map(function (q, s) {  // integers stepped, times 10 ** scale
      var acc = 0, f = Math.pow(10, Math.abs(p.scales[s])), up = p.scales[s] >= 0;
      return q.map(function (d) {
        if (d === null) { return null; }
        acc += d;
        return up ? acc * f : acc / f;
      });
    });
    var c = {fig: fig, svg: svg, p: p, t: t, hidden: p.names.map(function () { return false; }),
             title: (svg.querySelector("title") || {}).textContent || ""};
    c.readout = document.createElement("div");
    c.readout.className = "readout";
    c.readout.textContent = HINT;
    var tools = document.createElement("div");
    tools.className = "ranges";
    [["1y", 1], ["3y", 3], ["5y", 5], ["10y", 10], ["all", 0]].forEach(function (r) {
      if (r[1] && r[1] * YEAR >= t[t.length - 1] - t[0]) { return; }
      var b = document.createElement("button");
      b.type = "button"; b.textContent = r[0]; b.setAttribute("data-years", r[1]);
      b.addEventListener("click", function () { setView(r[1] ? [t[t.length - 1] - r[1] * YEAR, t[t.length - 1]] : null); });
      tools.appendChild(b);
    });
    fig.insertBefore(tools, svg);
    fig.insertBefore(c.readout, svg);
    fig.querySelectorAll(".legend span[data-i]").forEach(function (span) {
      span.addEventListener("click", function () {
        var s = +span.getAttribute("data-i");
        c.hidden[s] = !c.hidden[s];
        span.classList.toggle("off", c.hidden[s]);
        render(c);
      });
    });
    var drag = null;
    svg.addEventListener("mousedown", function (e) { if (e.button === 0) { drag = svgX(c, e); e.preventDefault(); } });
    svg.addEventListener("mousemove", function (e) {
      var x = svgX(c, e), at = timeAt(c, x);
      charts.forEach(function (o) { showAt(o, at); });
      if (drag !== null) {
        var a = Math.max(Math.min(drag, x), ML), b = Math.min(Math.max(drag, x), W - MR);
        c.sel.setAttribute("x", a.toFixed(1)); c.sel.setAttribute("width", Math.max(b - a, 0).toFixed(1));
        c.sel.setAttribute("visibility", "visible");
      }
    });
    svg.addEventListener("mouseleave", function () { charts.forEach(hide); });
    window.addEventListener("mouseup", function (e) {
      if (drag === null) { return; }
      var x = svgX(c, e), a = timeAt(c, Math.min(drag, x)), b = timeAt(c, Math.max(drag, x));
      drag = null;
      c.sel.setAttribute("visibility", "hidden");
      if (Math.abs(c.px(b) - c.px(a)) >= 4) { setView([a, b]); }
    });
    svg.addEventListener("dblclick", function () { setView(null); });
    charts.push(c);
    render(c);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("figure.interactive").forEach(setup);
  });
})();
