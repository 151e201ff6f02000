/* The delivery-story charts of the report and the web UI's Delivery panel, drawn with uPlot.
   harnessCharts(root, history, destinations) fills every `[data-chart]` element under root and marks
   each with data-points (samples), data-series (series drawn) and data-ink (pixels in series colours),
   so a headless browser can check that every chart drew. */
(function () {
  "use strict";
  var PALETTE = ["#1a73e8", "#137333", "#e37400", "#9334e6", "#c5221f", "#12b5cb", "#5f6368", "#b06000"];

  function get(row, path) {
    var node = row;
    for (var i = 0; i < path.length; i++) {
      if (node === null || typeof node !== "object") return null;
      node = node[path[i]];
    }
    return typeof node === "number" && isFinite(node) ? node : null;
  }

  function specs(destinations) {
    var perDest = function (label, path) {
      return destinations.map(function (d) { return { label: label(d), path: path(d) }; });
    };
    var latency = [];
    destinations.forEach(function (d) {
      ["p50", "p95", "p99"].forEach(function (q) {
        latency.push({ label: d + " " + q, path: ["delivery_latency_seconds", d, q] });
      });
    });
    return {
      rates: { title: "Messages per second: sent on the schedule, accepted, delivered", y: "messages/s", series: [
        { label: "sent (paced)", path: ["paced_per_sec"] },
        { label: "accepted", path: ["accepted_per_sec"] }
      ].concat(perDest(function (d) { return "delivered to " + d; }, function (d) { return ["delivered_per_sec", d]; })) },
      request_latency: { title: "Request latency p95: measured vs corrected (from the intended send time)", y: "seconds", series: [
        { label: "measured p95", path: ["p95_measured_seconds"] },
        { label: "corrected p95", path: ["p95_corrected_seconds"] }
      ] },
      delivery_latency: { title: "Delivery latency per destination (p50/p95/p99 since the start)", y: "seconds", series: latency },
      pending: { title: "Pending messages per destination", y: "messages",
        series: perDest(function (d) { return "pending " + d; }, function (d) { return ["pending", d]; }) },
      lost_late: { title: "Lost and late messages per destination", y: "messages",
        series: perDest(function (d) { return "lost " + d; }, function (d) { return ["lost", d]; })
          .concat(perDest(function (d) { return "late " + d; }, function (d) { return ["late", d]; })) }
    };
  }

  function hexRgb(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  function ink(u, colours) {
    var c = u.ctx.canvas, data;
    try { data = u.ctx.getImageData(0, 0, c.width, c.height).data; } catch (e) { return -1; }
    var rgbs = colours.map(hexRgb), count = 0;
    for (var i = 0; i < data.length; i += 4) {
      for (var k = 0; k < rgbs.length; k++) {
        if (Math.abs(data[i] - rgbs[k][0]) < 8 && Math.abs(data[i + 1] - rgbs[k][1]) < 8 &&
            Math.abs(data[i + 2] - rgbs[k][2]) < 8 && data[i + 3] > 200) { count++; break; }
      }
    }
    return count;
  }

  function draw(el, spec, history) {
    var t0 = history.length ? history[0].t : 0;
    var xs = history.map(function (r) { return Math.round((r.t - t0) * 1000) / 1000; });
    var columns = [xs], series = [{}], colours = [];
    spec.series.forEach(function (s, i) {
      var column = history.map(function (r) { return get(r, s.path); });
      if (!column.some(function (v) { return v !== null; })) return;
      var colour = PALETTE[i % PALETTE.length];
      colours.push(colour);
      columns.push(column);
      series.push({ label: s.label, stroke: colour, width: 2, spanGaps: true });
    });
    el.innerHTML = "";
    el.setAttribute("data-points", String(xs.length));
    el.setAttribute("data-series", String(series.length - 1));
    if (xs.length < 2 || series.length < 2) {
      el.textContent = spec.title + ": no samples yet";
      el.setAttribute("data-ink", "0");
      return null;
    }
    var width = Math.max(320, Math.min(1100, (el.parentNode && el.parentNode.clientWidth) || 900) - 20);
    return new uPlot({
      title: spec.title, width: width, height: 260,
      series: [{ label: "s" }].concat(series.slice(1)),
      axes: [
        { label: "seconds since the first sample", grid: { show: true, stroke: "#e5e5e5" } },
        { label: spec.y, grid: { show: true, stroke: "#e5e5e5" }, size: 70 }
      ],
      scales: { x: { time: false } },
      hooks: { draw: [function (u) { el.setAttribute("data-ink", String(ink(u, colours))); }] }
    }, columns, el);
  }

  window.harnessCharts = function (root, history, destinations) {
    var all = specs(destinations || []);
    var nodes = root.querySelectorAll("[data-chart]");
    for (var i = 0; i < nodes.length; i++) {
      var spec = all[nodes[i].getAttribute("data-chart")];
      if (spec) draw(nodes[i], spec, history || []);
    }
  };
})();
