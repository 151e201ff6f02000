/* The web UI's Delivery panel (/harness/panel): verdict and charts, refreshed from ./live.json. */
(function () {
  "use strict";
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }

  function verdict(v, live) {
    if (!v) {
      return '<h2>Verdict <span class="badge WAIT">' + (live.state === "running" || live.state === "spawning"
        ? "running" : "none yet") + "</span></h2><p>The verdict and the report are written when the test stops.</p>";
    }
    var status = v.passed ? "PASS" : "FAIL";
    var rows = (v.results || []).map(function (r) {
      var result = r.passed ? "PASS" : "FAIL";
      return '<tr class="' + result + '"><td class="text">' + esc(r.metric) + '</td><td class="text">' + esc(r.expression) +
        "</td><td>" + esc(r.value_text) + '</td><td class="result">' + result + '</td><td class="text">' + esc(r.note || "") + "</td></tr>";
    }).join("");
    return '<h2>Verdict <span class="badge ' + status + '">' + status + "</span> " + esc(live.last_run || "") + "</h2>" +
      (v.stopped ? '<p class="stopped">Stopped early: ' + esc(v.stopped) + "</p>" : "") +
      '<table><tr><th class="text">metric</th><th class="text">threshold</th><th>value</th><th>result</th><th class="text">note</th></tr>' +
      rows + "</table>" + (live.report ? '<p><a href="' + esc(live.report) + '" target="_blank">Open the report</a></p>' : "");
  }

  function refresh() {
    fetch("live.json", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (live) {
      var panel = document.getElementById("verdict");
      panel.className = "verdict " + (live.verdict ? (live.verdict.passed ? "PASS" : "FAIL") : "");
      panel.innerHTML = verdict(live.verdict, live);
      document.getElementById("facts").textContent = live.run ? ("Run " + live.run + " · target " +
        Math.round(live.target_rate) + " msg/s · " + live.users + " users derived from the rate · state " + live.state) : "";
      harnessCharts(document, live.history, live.destinations);
    }).catch(function () {});
  }
  refresh();
  setInterval(refresh, 2000);
})();
