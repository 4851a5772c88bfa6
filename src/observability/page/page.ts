/**
 * The status page (`GET /`): one HTML document with its CSS and JS inline,
 * built by nothing and fetched from nowhere but this node. It polls
 * `/api/status` every second and draws the identity, the addresses, a table
 * of connections with their streams, and a chart of throughput and
 * connection count over the last five minutes (kept in the page).
 *
 * The script writes text with `textContent` only (peer-supplied strings such
 * as protocol ids never become markup).
 *
 * @since 0.1.0
 */

/** The page's favicon: a small SVG (served for `/favicon.svg` and `/favicon.ico`). */
export const favicon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">` +
  `<rect width="32" height="32" rx="6" fill="#1f2937"/>` +
  `<circle cx="9" cy="10" r="4" fill="#34d399"/><circle cx="23" cy="10" r="4" fill="#60a5fa"/>` +
  `<circle cx="16" cy="23" r="4" fill="#fbbf24"/>` +
  `<path d="M9 10L23 10L16 23Z" fill="none" stroke="#e5e7eb" stroke-width="1.5"/></svg>`

const css = `
:root { color-scheme: light dark; --fg: #111827; --muted: #6b7280; --bg: #f9fafb; --card: #fff; --line: #e5e7eb;
  --a: #2563eb; --b: #059669; }
@media (prefers-color-scheme: dark) { :root { --fg: #e5e7eb; --muted: #9ca3af; --bg: #111827; --card: #1f2937;
  --line: #374151; --a: #60a5fa; --b: #34d399; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 14px 20px; border-bottom: 1px solid var(--line); display: flex; gap: 12px; align-items: center; }
header h1 { font-size: 17px; margin: 0; }
main { padding: 16px 20px; display: grid; gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; word-break: break-all; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
.stats { display: flex; gap: 24px; flex-wrap: wrap; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
.legend span { margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
#state { margin-left: auto; font-size: 12px; color: var(--muted); }
canvas { width: 100%; height: 160px; display: block; }
ul { margin: 0; padding-left: 18px; }
.empty { color: var(--muted); }
`

const script = `
"use strict";
var HISTORY_MS = 5 * 60 * 1000;
var samples = [];
var last = null;
function $(id) { return document.getElementById(id); }
function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmtBytes(n) {
  if (n === null || n === undefined) return "-";
  var u = ["B", "KiB", "MiB", "GiB", "TiB"]; var i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
}
function fmtAge(ms) {
  var s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}
function list(target, items, empty) {
  target.replaceChildren();
  if (items.length === 0) { target.appendChild(el("li", empty, "empty")); return; }
  items.forEach(function (t) { target.appendChild(el("li", t, "mono")); });
}
function render(st) {
  $("peer").textContent = st.peerId;
  $("reach").textContent = st.reachability;
  list($("addrs"), st.addrs, "not listening");
  list($("observed"), st.observedAddrs.map(function (o) {
    return o.addr + " (" + o.observers + " observer" + (o.observers === 1 ? "" : "s") + (o.trusted ? ", trusted" : "") + ")";
  }), "none yet");
  $("nconns").textContent = st.totals.connections;
  $("nstreams").textContent = st.totals.streams;
  $("bin").textContent = fmtBytes(st.totals.bytesRead);
  $("bout").textContent = fmtBytes(st.totals.bytesWritten);
  var body = $("conns");
  body.replaceChildren();
  if (st.connections.length === 0) {
    var tr = el("tr"); var td = el("td", "no connections", "empty"); td.colSpan = 7; tr.appendChild(td); body.appendChild(tr);
  }
  st.connections.forEach(function (c) {
    var tr = el("tr");
    tr.dataset.peer = c.peerId;
    tr.appendChild(el("td", c.peerId, "mono"));
    tr.appendChild(el("td", c.addr, "mono"));
    tr.appendChild(el("td", c.direction));
    tr.appendChild(el("td", fmtAge(c.ageMs)));
    tr.appendChild(el("td", c.security + " / " + c.muxer, "mono"));
    tr.appendChild(el("td", fmtBytes(c.bytesRead) + " in / " + fmtBytes(c.bytesWritten) + " out"));
    var td = el("td");
    if (c.streams.length === 0) td.appendChild(el("span", "none", "empty"));
    else {
      var ul = el("ul");
      c.streams.forEach(function (s) { ul.appendChild(el("li", s.protocol + " (" + s.direction + ")", "mono")); });
      td.appendChild(ul);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  });
  var sec = $("sections");
  sec.replaceChildren();
  Object.keys(st.sections).forEach(function (k) {
    var s = el("section"); s.appendChild(el("h2", k));
    s.appendChild(el("pre", JSON.stringify(st.sections[k], null, 2), "mono"));
    sec.appendChild(s);
  });
}
function sample(st) {
  var bytes = st.totals.bytesRead + st.totals.bytesWritten;
  var rate = 0;
  if (last !== null && st.time > last.time) rate = Math.max(0, (bytes - last.bytes) * 1000 / (st.time - last.time));
  last = { time: st.time, bytes: bytes };
  samples.push({ t: st.time, rate: rate, conns: st.totals.connections });
  while (samples.length > 0 && samples[0].t < st.time - HISTORY_MS) samples.shift();
}
function draw() {
  var c = $("chart"); var dpr = window.devicePixelRatio || 1;
  var w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w * dpr) { c.width = w * dpr; c.height = h * dpr; }
  var g = c.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
  var css = getComputedStyle(document.documentElement);
  g.strokeStyle = css.getPropertyValue("--line"); g.lineWidth = 1;
  for (var i = 0; i <= 4; i++) { var y = 4 + (h - 8) * i / 4; g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke(); }
  if (samples.length === 0) return;
  var now = samples[samples.length - 1].t;
  // the window grows with the data, from one minute up to HISTORY_MS
  var span = Math.min(HISTORY_MS, Math.max(60 * 1000, now - samples[0].t));
  var maxRate = 1, maxConns = 1;
  samples.forEach(function (s) { maxRate = Math.max(maxRate, s.rate); maxConns = Math.max(maxConns, s.conns); });
  function line(key, max, color) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    samples.forEach(function (s, i) {
      var x = w - (now - s.t) / span * w; var y = h - 4 - (h - 8) * s[key] / max;
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  }
  line("rate", maxRate, css.getPropertyValue("--a"));
  line("conns", maxConns, css.getPropertyValue("--b"));
  $("rate").textContent = fmtBytes(samples[samples.length - 1].rate) + "/s (max " + fmtBytes(maxRate) + "/s)";
  $("cmax").textContent = String(maxConns);
}
function poll() {
  fetch("/api/status", { cache: "no-store" }).then(function (r) {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(function (st) {
    render(st); sample(st); draw();
    $("state").textContent = "updated " + new Date().toLocaleTimeString();
  }).catch(function (e) {
    $("state").textContent = "node unreachable (" + e.message + "), retrying";
  }).finally(function () { setTimeout(poll, 1000); });
}
window.addEventListener("resize", draw);
poll();
`

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>effect-libp2p node</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
<style>${css}</style>
</head>
<body>
<header><h1>effect-libp2p node</h1><code id="peer"></code><span id="state">loading…</span></header>
<main>
<section>
<h2>Overview</h2>
<div class="stats">
<div class="stat"><b id="nconns">-</b><span>connections</span></div>
<div class="stat"><b id="nstreams">-</b><span>streams</span></div>
<div class="stat"><b id="bin">-</b><span>received</span></div>
<div class="stat"><b id="bout">-</b><span>sent</span></div>
<div class="stat"><b id="reach">-</b><span>reachability</span></div>
</div>
</section>
<section>
<h2>Throughput and connections (up to the last 5 minutes)</h2>
<div class="legend"><span><i style="background:var(--a)"></i>throughput <b id="rate">-</b></span>
<span><i style="background:var(--b)"></i>connections (max <b id="cmax">-</b>)</span></div>
<canvas id="chart"></canvas>
</section>
<section><h2>Listen addresses</h2><ul id="addrs"></ul><h2 style="margin-top:10px">Observed addresses</h2><ul id="observed"></ul></section>
<section>
<h2>Connections</h2>
<table><thead><tr><th>peer</th><th>address</th><th>direction</th><th>age</th><th>security / muxer</th><th>bytes</th><th>streams</th></tr></thead>
<tbody id="conns"></tbody></table>
</section>
<div id="sections"></div>
</main>
<script>${script}</script>
</body>
</html>
`
