// Renders the overview charts with uPlot (served by Sieve from node_modules; no CDN).
(function () {
  "use strict";
  var el = document.getElementById("series");
  if (!el || typeof uPlot === "undefined") return;
  var data = JSON.parse(el.textContent);
  var step = { hour: 60, day: 900, week: 3600 }[data.range] || 60;
  var since = Date.parse(document.getElementById("window").dataset.since) / 1000;
  var now = Date.now() / 1000;
  var byT = {};
  data.points.forEach(function (p) { byT[Math.round(p.t)] = p; });
  var xs = [];
  for (var t = since; t <= now; t += step) xs.push(t);
  function col(key) { return xs.map(function (x) { var p = byT[Math.round(x)]; return p ? p[key] : 0; }); }
  var palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];
  function money(v) { return v == null ? "" : v === 0 ? "$0" : Math.abs(v) >= 1 ? "$" + v.toFixed(2) : "$" + v.toPrecision(2); }
  function count(v) { return v == null ? "" : Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + "k" : String(Math.round(v * 100) / 100); }
  function draw(name, series, fmt) {
    var box = document.querySelector('[data-chart="' + name + '"]');
    if (!box) return;
    var title = document.createElement("div");
    title.className = "chart-title";
    title.textContent = box.dataset.title;
    box.appendChild(title);
    var opts = {
      width: Math.max(320, box.clientWidth - 8), height: 200,
      series: [{}].concat(series.map(function (s, i) { return { label: s.label, stroke: palette[i], width: 2, fill: i === 0 ? palette[i] + "22" : undefined }; })),
      scales: { x: { time: true, range: [since, now] } },
      axes: [{}, { size: 70, values: function (u, vals) { return vals.map(fmt || count); } }],
      legend: { live: true },
    };
    new uPlot(opts, [xs].concat(series.map(function (s) { return col(s.key); })), box);
  }
  draw("throughput", [{ key: "items", label: "items" }, { key: "failed", label: "failed" }, { key: "calls", label: "LLM calls" }]);
  draw("money", [{ key: "cost", label: "cost" }, { key: "savedCache", label: "saved by caches" }], money);
  draw("hits", [{ key: "hitsExact", label: "exact" }, { key: "hitsSemantic", label: "semantic" }, { key: "hitsCoalesced", label: "coalesced" }]);
})();
// Engine load over time (Lanes and engines page).
(function () {
  "use strict";
  var el = document.getElementById("engines-data");
  if (!el || typeof uPlot === "undefined") return;
  JSON.parse(el.textContent).forEach(function (e) {
    var box = document.querySelector('[data-engine-chart="' + e.id + '"]');
    if (!box || e.samples.length === 0) return;
    var title = document.createElement("div");
    title.className = "chart-title";
    title.textContent = box.dataset.title;
    box.appendChild(title);
    var xs = e.samples.map(function (s) { return s.at / 1000; });
    var v = function (k, f) { return e.samples.map(function (s) { return s[k] == null ? null : s[k] * (f || 1); }); };
    var now = Date.now() / 1000;
    var pts = { show: true, size: 5 };
    var pct = function (u, vals) { return vals.map(function (x) { return x == null ? "" : Math.round(x) + "%"; }); };
    // Calls on the left axis (limit, in flight, running, waiting); KV cache on its own 0-100 % axis.
    new uPlot({ width: Math.max(320, box.clientWidth - 8), height: 200,
      scales: { x: { time: true, range: [Math.min(xs[0], now - 1800), now] }, pct: { range: [0, 100] } },
      axes: [{}, {}, { scale: "pct", side: 1, grid: { show: false }, values: pct }],
      series: [{},
        { label: "limit", stroke: "#9333ea", width: 2, points: pts },
        { label: "in flight", stroke: "#ea580c", points: pts },
        { label: "running", stroke: "#2563eb", points: pts },
        { label: "waiting", stroke: "#dc2626", points: pts },
        { label: "KV %", stroke: "#16a34a", scale: "pct", points: pts }] },
      [xs, v("limit"), v("inFlight"), v("running"), v("waiting"), v("kvCacheUsage", 100)], box);
  });
})();
