/* evgate console: the live view (EventSource) and the charts (uPlot). No build step.
   Both keep bounded memory: the live table keeps its last KEEP rows, the charts POINTS samples. */
(function () {
  "use strict";
  var KEEP = 200, POINTS = 120;

  function text(value) { return value === null || value === undefined ? "" : String(value); }

  function liveView(table) {
    var body = table.querySelector("tbody"), status = document.getElementById("live-status");
    var pauseButton = document.getElementById("live-pause"), paused = false, held = [];
    var source = null;
    function add(row) {
      var tr = document.createElement("tr");
      var when = row.timestamp ? new Date(row.timestamp).toISOString().replace("T", " ").slice(0, 23) : "";
      var headers = Object.keys(row.headers || {}).map(function (k) { return k + ": " + row.headers[k].join(", "); }).join("\n");
      [when, row.partition, row.offset, row.key, headers,
       row.tombstone ? "(deleted)" : row.content + (row.truncated ? " …" : "")].forEach(function (v) {
        var td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td);
      });
      tr.className = "live-row";
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > KEEP) { body.deleteRow(body.rows.length - 1); }
    }
    function connect() {
      source = new EventSource(table.dataset.stream);
      source.addEventListener("ready", function () { status.textContent = "live"; });
      source.addEventListener("message", function (e) {
        var row = JSON.parse(e.data);
        if (paused) { held.push(row); if (held.length > KEEP) { held.shift(); } } else { add(row); }
      });
      source.addEventListener("stats", function (e) {
        var s = JSON.parse(e.data);
        status.textContent = "live · filtered out " + s.skipped + (s.failed ? " · filter failed on " + s.failed : "");
      });
      source.addEventListener("end", function (e) {
        source.close();
        status.textContent = "closed: " + JSON.parse(e.data).reason + " (reload to watch again)";
      });
      source.onerror = function () { status.textContent = "reconnecting…"; };
    }
    pauseButton.addEventListener("click", function () {
      paused = !paused;
      pauseButton.textContent = paused ? "Resume" : "Pause";
      pauseButton.setAttribute("aria-pressed", String(paused));
      if (!paused) { held.forEach(add); held = []; }
    });
    document.getElementById("live-clear").addEventListener("click", function () { body.innerHTML = ""; held = []; });
    window.addEventListener("pagehide", function () { if (source) { source.close(); } });
    connect();
  }

  function charts(root) {
    var status = document.getElementById("charts-status");
    var series = { t: [], requests: {}, out: {}, clients: {}, p50: [], p95: [], p99: [], delivered: [], retries: [], dlq: [] };
    var plots = {}, names = {};
    function width(el) { return Math.max(280, el.clientWidth - 10); }
    function draw(id, labels, columns) {
      var el = document.getElementById(id);
      var key = labels.join("|");
      var data = [series.t].concat(columns);
      if (!plots[id] || plots[id].key !== key) {
        if (plots[id]) { plots[id].plot.destroy(); }
        var palette = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d"];
        var opts = { width: width(el), height: 220, series: [{}].concat(labels.map(function (l, i) {
          return { label: l, stroke: palette[i % palette.length], width: 2 }; })) };
        plots[id] = { key: key, plot: new uPlot(opts, data, el) };
      } else { plots[id].plot.setData(data); }
    }
    function perApi(name, apis, field) {
      Object.keys(apis).forEach(function (api) { if (!series[name][api]) { series[name][api] = series.t.slice(0, -1).map(function () { return null; }); } });
      Object.keys(series[name]).forEach(function (api) {
        series[name][api].push(apis[api] ? apis[api][field] : null);
        if (series[name][api].length > POINTS) { series[name][api].shift(); }
      });
    }
    function push(arr, v) { arr.push(v); if (arr.length > POINTS) { arr.shift(); } }
    function tick() {
      fetch(root.dataset.source, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      }).then(function (d) {
        push(series.t, d.t);
        perApi("requests", d.apis, "requests"); perApi("out", d.apis, "recordsOut"); perApi("clients", d.apis, "connections");
        push(series.p50, d.latencyMs.p50); push(series.p95, d.latencyMs.p95); push(series.p99, d.latencyMs.p99);
        push(series.delivered, d.webhooks.delivered); push(series.retries, d.webhooks.retries); push(series.dlq, d.webhooks.dlq);
        Object.keys(d.names || {}).forEach(function (id) { names[id] = d.names[id]; });
        ["requests", "out", "clients"].forEach(function (name) {
          var apis = Object.keys(series[name]).sort();
          draw({ requests: "chart-requests", out: "chart-out", clients: "chart-clients" }[name],
               apis.length ? apis.map(function (a) { return names[a] || a; }) : ["-"],
               apis.length ? apis.map(function (a) { return series[name][a]; }) : [series.t.map(function () { return null; })]);
        });
        draw("chart-latency", ["p50", "p95", "p99"], [series.p50, series.p95, series.p99]);
        draw("chart-webhooks", ["delivered", "retries", "DLQ"], [series.delivered, series.retries, series.dlq]);
        var down = d.nodes.filter(function (n) { return !n.ok; });
        status.textContent = down.length ? "unreachable: " + down.map(function (n) { return n.url; }).join(", ") : "updated " + new Date().toLocaleTimeString();
      }).catch(function (e) { status.textContent = "cannot read metrics: " + e.message; });
    }
    tick();
    setInterval(tick, 5000);
  }

  var live = document.getElementById("live-rows");
  if (live) { liveView(live); }
  var chartRoot = document.getElementById("charts");
  if (chartRoot) { charts(chartRoot); }
})();
