"use strict";
(function () {
  var token = new URLSearchParams(location.search).get("token") || "";
  var S = null, seq = -1, pending = [], ws = null, retry = 500, armed = null;
  var $ = function (id) { return document.getElementById(id); };
  function fmt(v, d) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v !== "number") return String(v);
    return v.toLocaleString("en-US", {minimumFractionDigits: d === undefined ? 2 : d, maximumFractionDigits: d === undefined ? 2 : d});
  }
  function pct(v) { return (typeof v === "number") ? (v * 100).toFixed(2) + "%" : ""; }
  function cell(v, left) { var td = document.createElement("td"); if (left) td.className = "l"; td.textContent = v; return td; }
  function rows(id, list, cols, emptyText) {
    var body = $(id).tBodies[0]; body.textContent = "";
    if (!list.length) { var tr = document.createElement("tr"); var td = cell(emptyText, true); td.colSpan = cols.length; td.className = "l empty"; tr.appendChild(td); body.appendChild(tr); return; }
    list.forEach(function (item) {
      var tr = document.createElement("tr");
      cols.forEach(function (c) { tr.appendChild(cell(c[1](item), c[0])); });
      body.appendChild(tr);
    });
  }
  function drawChart() {
    var svg = $("chart"), pts = S.equity.filter(function (p) { return typeof p[1] === "number"; });
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (pts.length < 2) return;
    var lo = Infinity, hi = -Infinity;
    pts.forEach(function (p) { if (p[1] < lo) lo = p[1]; if (p[1] > hi) hi = p[1]; });
    if (hi === lo) { hi += 1; lo -= 1; }
    var n = pts.length, step = Math.max(1, Math.floor(n / 1500)), d = "";
    for (var i = 0; i < n; i += step) {
      var x = 4 + 792 * i / (n - 1), y = 228 - 216 * (pts[i][1] - lo) / (hi - lo);
      d += (d ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
    }
    var last = pts[n - 1]; d += "L796," + (228 - 216 * (last[1] - lo) / (hi - lo)).toFixed(1);
    var ns = "http://www.w3.org/2000/svg";
    [lo, hi].forEach(function (v, k) {
      var t = document.createElementNS(ns, "text"); t.setAttribute("x", "6"); t.setAttribute("y", k ? "14" : "236");
      t.textContent = fmt(v, 0); svg.appendChild(t);
    });
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "#1f5fbf");
    path.setAttribute("stroke-width", "1.5"); path.setAttribute("vector-effect", "non-scaling-stroke");
    path.setAttribute("id", "equity-line"); path.setAttribute("data-points", String(pts.length));
    svg.appendChild(path);
  }
  function render(kind) {
    if (!kind || kind === "status") {
      var st = S.status || {};
      $("title").textContent = S.title || "robo-trader";
      $("mode").textContent = st.mode || "-";
      $("message").textContent = st.message || "";
    }
    if (!kind || kind === "equity") {
      var a = S.account || {}, first = S.equity.length ? S.equity[0][1] : null;
      $("equity").textContent = fmt(a.equity, 0); $("cash").textContent = fmt(a.cash, 0);
      $("gross").textContent = pct(a.gross_exposure); $("asof").textContent = a.time || "-";
      $("pnl").textContent = (typeof a.equity === "number" && typeof first === "number") ? fmt(a.equity - first, 0) : "-";
      drawChart();
    }
    if (!kind || kind === "positions") rows("positions", S.positions, [[1, function (p) { return p.symbol; }],
      [0, function (p) { return fmt(p.quantity, 2); }], [0, function (p) { return fmt(p.price); }],
      [0, function (p) { return fmt(p.value, 0); }], [0, function (p) { return p.weight === undefined ? "" : pct(p.weight); }]], "no positions");
    if (!kind || kind === "orders") rows("orders", S.orders, [[1, function (o) { return o.order_id; }],
      [1, function (o) { return o.symbol; }], [1, function (o) { return o.side; }], [0, function (o) { return fmt(o.quantity, 2); }],
      [0, function (o) { return fmt(o.filled, 2); }], [0, function (o) { return fmt(o.limit); }], [1, function (o) { return o.status || "open"; }]], "no open orders");
    if (!kind || kind === "fill") {
      var recent = S.fills.slice(-200).reverse();
      rows("fills", recent, [[1, function (f) { return f.time; }], [0, function (f) { return f.order_id; }],
        [1, function (f) { return f.symbol; }], [1, function (f) { return f.side; }], [0, function (f) { return fmt(f.quantity, 2); }],
        [0, function (f) { return fmt(f.price, 4); }], [0, function (f) { return fmt(f.commission); }]], "no fills yet");
      var body = $("fills").tBodies[0];
      body.querySelectorAll("tr").forEach(function (tr, i) {
        var f = recent[i]; if (!f) return;
        tr.setAttribute("data-order-id", String(f.order_id)); if (kind && i === 0) tr.className = "new";
      });
      $("nfills").textContent = S.fills.length ? "(" + S.fills.length + (S.fills.length >= 500 ? "+, latest 200 shown" : "") + ")" : "";
    }
    if (!kind || kind === "risk") {
      var r = S.risk || {}, body2 = $("risk").tBodies[0]; body2.textContent = "";
      Object.keys(r).forEach(function (k) {
        var tr = document.createElement("tr"), v = r[k];
        tr.appendChild(cell(k, true));
        tr.appendChild(cell(typeof v === "number" ? (Math.abs(v) < 10 ? fmt(v, 4) : fmt(v, 0)) : (typeof v === "object" ? JSON.stringify(v) : String(v)), false));
        body2.appendChild(tr);
      });
    }
    if (!kind || kind === "kill_switch") {
      var k = S.kill_switch || {};
      $("kill-state").textContent = k.engaged ? "ENGAGED: trading stopped" : "not engaged";
      $("kill-state").style.color = k.engaged ? "#b3261e" : "#1e7b46";
      $("kill-state").setAttribute("data-engaged", k.engaged ? "true" : "false");
      $("kill-reason").textContent = k.reason ? (k.reason + (k.time ? " (" + k.time + ")" : "")) : "";
      $("kill").disabled = !S.kill_enabled || !!k.engaged;
    }
  }
  function apply(kind, p) {
    if (kind === "equity") { S.equity.push([p.time, p.equity]); if (S.equity.length > 5000) S.equity = S.equity.filter(function (_, i) { return i % 2 === 0; }); S.account = p; }
    else if (kind === "positions") S.positions = p.positions || [];
    else if (kind === "orders") S.orders = p.orders || [];
    else if (kind === "order") {
      var closed = ["filled", "cancelled", "canceled", "rejected", "inactive", "apicancelled", "expired"];
      S.orders = S.orders.filter(function (o) { return o.order_id !== p.order_id; });
      if (closed.indexOf(String(p.status || "").toLowerCase()) < 0) S.orders.push(p);
    }
    else if (kind === "fill") { S.fills.push(p); if (S.fills.length > 500) S.fills.shift(); }
    else if (kind === "risk") S.risk = p;
    else if (kind === "kill_switch") S.kill_switch = p;
    else if (kind === "status") { for (var key in p) S.status[key] = p[key]; }
    schedule(kind);
  }
  var dirty = {}, frame = false;
  function schedule(kind) {  // many events, one repaint per frame
    dirty[kind === "order" ? "orders" : kind] = true;
    if (frame) return;
    frame = true;
    requestAnimationFrame(function () {
      frame = false; var kinds = Object.keys(dirty); dirty = {};
      if (S === null) return;  // disconnected since: the next snapshot repaints everything
      kinds.forEach(function (k) { render(k); });
    });
  }
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws?token=" + encodeURIComponent(token));
    ws.onopen = function () { retry = 500; $("conn").textContent = "live"; $("conn").className = "pill ok"; };
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "snapshot") {
        S = m.state; seq = m.seq; render(null);
        pending.forEach(function (e) { if (e.seq > seq) { seq = e.seq; apply(e.kind, e.payload); } }); pending = [];
      } else if (m.type === "event") {
        if (S === null) { pending.push(m); return; }
        if (m.seq <= seq) return;
        seq = m.seq; apply(m.kind, m.payload);
      } else if (m.type === "ack") {
        $("kill-note").textContent = (m.ok ? "" : "Not done: ") + m.message;
      }
    };
    ws.onclose = function () {
      $("conn").textContent = "disconnected, retrying"; $("conn").className = "pill bad"; S = null; pending = [];
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }
  $("kill").addEventListener("click", function () {
    var btn = $("kill");
    if (!armed) {
      btn.classList.add("armed"); btn.textContent = "Press again to stop trading";
      armed = setTimeout(function () { armed = null; btn.classList.remove("armed"); btn.textContent = "Kill switch"; }, 5000);
      return;
    }
    clearTimeout(armed); armed = null; btn.classList.remove("armed"); btn.textContent = "Kill switch";
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({type: "command", command: "kill", reason: "pressed on the dashboard"}));
    else $("kill-note").textContent = "Not connected: the kill switch was not sent.";
  });
  connect();
})();
