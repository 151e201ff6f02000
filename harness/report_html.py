"""The run's HTML report: one self-contained file (uPlot and the data inlined, no network to view it).

Verdict first, then the load that was sent and what was accepted, the delivery audit per destination,
the delivery-story charts, and Locust's own request statistics per endpoint and library.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from typing import Any

import orjson

from harness.stats import BAD_INPUT_OUTCOMES
from harness.tables import DESTINATION_COLUMNS, Column, destination_rows, load_lines

CHARTS = ("rates", "request_latency", "delivery_latency", "pending", "lost_late")
"""The `data-chart` keys of harness/assets/charts.js, in page order."""
ENDPOINT_COLUMNS = [
    Column("method", "method", str), Column("endpoint", "endpoint", str), Column("library", "library", str),
    Column("requests", "requests"), Column("failures", "failures"),
    Column("avg_ms", "avg ms", str), Column("min_ms", "min ms", str), Column("p50_ms", "p50 ms", str),
    Column("p90_ms", "p90 ms", str), Column("p95_ms", "p95 ms", str), Column("p99_ms", "p99 ms", str),
    Column("max_ms", "max ms", str), Column("requests_per_sec", "req/s", str), Column("avg_bytes", "avg bytes", str),
]  # fmt: skip
FAILURE_COLUMNS = [
    Column("occurrences", "count"), Column("method", "method", str), Column("name", "request", str),
    Column("error", "error", str),
]  # fmt: skip
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#202124;max-width:1200px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.text,th.text{text-align:left}.badge{padding:.1em .5em;border-radius:4px;color:#fff}
.PASS .badge,.badge.PASS{background:#137333}.FAIL .badge,.badge.FAIL{background:#c5221f}
tr.FAIL td{background:#fce8e6}tr.PASS td.result{color:#137333}tr.FAIL td.result{color:#c5221f;font-weight:bold}
.facts{color:#444}.lines{font-family:ui-monospace,monospace;font-size:.85em;white-space:pre-wrap}
.stopped{background:#fef7e0;border:1px solid #f9ab00;padding:.5em}.chart{margin:.8em 0}
"""


@cache
def asset(name: str) -> str:
    return resources.files("harness").joinpath("assets", name).read_text(encoding="utf-8")


def chart_scripts() -> str:
    """uPlot and the chart code, inline (the report must open with no network)."""
    return (
        f"<style>{asset('uplot.min.css')}</style>"
        f"<script>{asset('uplot.iife.min.js')}</script><script>{asset('charts.js')}</script>"
    )


def chart_slots() -> str:
    return "".join(f'<div class="chart" data-chart="{key}"></div>' for key in CHARTS)


def html_table(columns: list[Column], rows: list[dict[str, Any]], row_class: str = "") -> str:
    def cls(c: Column) -> str:
        return ' class="text"' if c.show is str else ""

    head = "".join(f"<th{cls(c)}>{html.escape(c.title)}</th>" for c in columns)
    body = "".join(
        f'<tr class="{html.escape(str(row.get(row_class, "")))}">'
        + "".join(f"<td{cls(c)}>{html.escape(c.show(row.get(c.key)))}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


VERDICT_COLUMNS = [
    Column("metric", "metric", str), Column("expression", "threshold", str), Column("value_text", "value", str),
    Column("result", "result", str), Column("note", "note", str),
]  # fmt: skip


def verdict_rows(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**r, "result": "PASS" if r["passed"] else "FAIL"} for r in verdict.get("results", [])]


def verdict_html(verdict: dict[str, Any]) -> str:
    """The verdict panel: the badge, why a run stopped early, the thresholds (failures highlighted)."""
    status = "PASS" if verdict.get("passed", True) else "FAIL"
    stopped = verdict.get("stopped")
    return (
        f'<div class="verdict {status}"><h2>Verdict <span class="badge">{status}</span></h2>'
        + (f'<p class="stopped">Stopped early: {html.escape(stopped)}</p>' if stopped else "")
        + html_table(VERDICT_COLUMNS, verdict_rows(verdict), row_class="result")
        + "".join(f"<li>{html.escape(line)}</li>" for line in verdict.get("story", [])).join(("<ul>", "</ul>"))
        + "</div>"
    )


INGEST_COLUMNS = [
    Column("source", "source", str),
    Column("accepted", "accepted"),
    Column("refused", "refused"),
    Column("answers", "refused by answer", str),
]
LENIENT_COLUMNS = [Column("case", "bad-input case", str), *(Column(o, o) for o in BAD_INPUT_OUTCOMES)]


def ingest_html(load: dict[str, Any]) -> str:
    """Accepted and refused messages per source and answer; bad-input cases by outcome (`lenient`: accepted)."""
    sources = [
        {**row, "source": name,
         "answers": ", ".join(f"{c} ×{n:,}" for c, n in sorted((row.get("refused_by_answer") or {}).items()))}
        for name, row in sorted((load.get("by_source") or {}).items())
    ]  # fmt: skip
    cases = [{**row, "case": case} for case, row in sorted(((load.get("bad_inputs") or {}).get("by_case") or {}).items())]
    return "<h2>Ingest answers</h2>" + html_table(INGEST_COLUMNS, sources) + (
        html_table(LENIENT_COLUMNS, cases) if cases else ""
    )


def panel_html() -> str:
    """The web UI's Delivery panel page: the verdict panel and the charts, refreshed from live.json."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Delivery</title>
<style>{STYLE}body{{margin:.5em}}.badge.WAIT{{background:#5f6368}}</style>{chart_scripts()}</head><body>
<div id="verdict" class="verdict"></div><p id="facts" class="facts"></p>{chart_slots()}
<script>{asset("panel.js")}</script></body></html>
"""


def render_html(summary: dict[str, Any]) -> str:
    run, load = summary["run"], summary["load"]
    destinations = (summary.get("delivery") or {}).get("destinations") or {}
    verdict = summary.get("verdict") or {}
    status = "PASS" if verdict.get("passed", True) else "FAIL"
    requests = summary.get("requests") or {}
    data = orjson.dumps(
        {"history": summary.get("history", []), "destinations": sorted(destinations)}
    ).decode()
    data = data.replace("</", "<\\/")  # no `</script>` inside the inline JSON
    lines = "\n".join(f"{label:<10}{text}" for label, text in load_lines(load))
    name = html.escape(run["name"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{status} · load test {name}</title>
<style>{STYLE}</style>{chart_scripts()}</head><body>
<h1 class="{status}">Load test {name} <span class="badge">{status}</span></h1>
<p class="facts">Target {html.escape(str(run["target"]))} · profile {html.escape(str(run["profile"]))} ·
{html.escape(str(run["load_shape"]))} at {run["target_rate"]:,.0f} msg/s (from {html.escape(str(run.get("target_rate_source", "--target-rate")))}) ·
{run["started_at"]} to {run["ended_at"]} ({run["duration_seconds"]:.0f} s) · {run["streams"]} stream(s)</p>
{verdict_html(verdict)}
<h2>Load</h2><div class="lines">{html.escape(lines)}</div>
{ingest_html(load)}
<h2>Delivery per destination</h2>
{html_table(DESTINATION_COLUMNS, destination_rows(destinations)) if destinations else "<p>No monitor data.</p>"}
<h2>Over time</h2>{chart_slots()}
<h2>Requests per endpoint and library (Locust)</h2>
{html_table(ENDPOINT_COLUMNS, requests.get("endpoints", [])) if requests.get("endpoints") else "<p>No requests.</p>"}
<h2>Failures (Locust)</h2>
{html_table(FAILURE_COLUMNS, requests.get("failures", [])) if requests.get("failures") else "<p>None.</p>"}
<script id="harness-data" type="application/json">{data}</script>
<script>(function(){{var d=JSON.parse(document.getElementById("harness-data").textContent);
harnessCharts(document,d.history,d.destinations);}})();</script>
</body></html>
"""
