/* Loaded into Locust's web UI: shows the harness's Delivery panel (verdict and charts) in the Delivery tab. */
(function () {
  "use strict";
  function sync() {
    var onDelivery = new URLSearchParams(window.location.search).get("tab") === "delivery";
    var frame = document.getElementById("harness-panel");
    if (!onDelivery) { if (frame) frame.remove(); return; }
    if (frame) return;
    var table = document.querySelector("table");
    var host = table ? table.parentElement : (document.querySelector("main") || document.body);
    frame = document.createElement("iframe");
    frame.id = "harness-panel";
    frame.src = "./harness/panel";
    frame.title = "Delivery verdict and charts";
    frame.style.cssText = "width:100%;height:1650px;border:0;display:block;margin-bottom:1em";
    host.insertBefore(frame, host.firstChild);
  }
  setInterval(sync, 500);
})();
