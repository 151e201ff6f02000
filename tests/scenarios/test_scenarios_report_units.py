"""Refusals, lenient bad inputs and the new delivery columns in the summary, the table, the report
from load statistics built in code."""

from __future__ import annotations

from types import SimpleNamespace

from gate.thresholds import default_thresholds, evaluate
from harness.report import RunReport, render_html
from harness.stats import LoadStats, bad_input_outcome


def _stats() -> LoadStats:
    stats = LoadStats()
    for source, library in (("web", "analytics.js"), ("ios", "analytics-ios")):
        stats.record_request(
            source=source, library=library, kind="event", messages=10, body_bytes=100, status=200,
            measured=0.01, corrected=0.01,
        )  # fmt: skip
    stats.record_accepted("ios", 10)
    stats.record_refused("web", 404, 7)
    stats.record_refused("web", 401, 3)
    stats.record_bad_input("track_without_event", bad_input_outcome(200, 400))
    stats.record_bad_input("bad_gzip", bad_input_outcome(500, 400))
    stats.record_bad_input("bad_gzip", bad_input_outcome(400, 400))
    return stats


def _report(stats: LoadStats, delivery: dict | None = None) -> RunReport:
    options = SimpleNamespace(traffic_profile="default", load_shape="constant", target_rate=100.0)
    return RunReport("run-x", 7, options, "http://target", 0.0, 10.0, 1, stats, delivery, [])  # type: ignore[arg-type]


def test_bad_input_outcomes():
    assert bad_input_outcome(400, 400) == "expected"
    assert bad_input_outcome(200, 400) == "lenient"
    assert bad_input_outcome(500, 400) == bad_input_outcome(None, 400) == "error"
    assert bad_input_outcome(401, 400) == "unexpected"


def test_refusals_per_source_and_answer_survive_the_merge_and_reach_every_view():
    merged = LoadStats()
    merged.merge(_stats().take())  # what a worker ships to the master
    summary = _report(merged).summary()
    load = summary["load"]
    assert load["accepted"] == 10 and load["refused"] == 10
    assert load["refused_by_answer"] == {"401": 3, "404": 7}
    assert load["by_source"]["web"]["refused_by_answer"] == {"401": 3, "404": 7}
    assert load["by_source"]["ios"]["refused"] == 0
    assert load["bad_inputs"]["lenient"] == 1 and load["bad_inputs"]["error"] == 1
    assert load["bad_inputs"]["by_case"]["bad_gzip"] == {
        "expected": 1,
        "lenient": 0,
        "error": 1,
        "unexpected": 0,
    }
    verdict = evaluate(default_thresholds(), summary)
    table = _report(merged).terminal_table(verdict)
    assert "ingest    accepted 10, refused 10 (401 ×3, 404 ×7)" in table
    assert "web          accepted         0  refused        10  401 ×3, 404 ×7" in table
    assert "refused.ratio == 0" in table and "lenient): track_without_event ×1" in table
    summary["verdict"] = verdict.to_dict()
    html = render_html(summary)
    assert "<h2>Ingest answers</h2>" in html and "401 ×3, 404 ×7" in html and "track_without_event" in html


def test_late_and_ordering_columns():
    destination = {
        "expected": 100, "delivered": 100, "delivered_expected": 100, "pending": 0, "lost": 0, "late": 4,
        "duplicates": 0, "dedupe_leaks": 0, "out_of_order": 5, "ratios": {"out_of_order": 0.05},
        "latency_seconds": {"p50": 0.1, "p95": 0.2, "p99": 0.3},
    }  # fmt: skip
    report = _report(LoadStats(), {"destinations": {"webhook": destination}, "lost_after_seconds": 20})
    table = report.terminal_table(evaluate(default_thresholds(), report.summary()))
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("  destination"))
    row = next(line for line in lines if line.startswith("  webhook"))
    assert header.split()[:12] == [
        "destination", "expected", "delivered", "lost", "late", "pending", "dupes", "leaks", "order", "p50",
        "p95", "p99",
    ]  # fmt: skip
    assert row.split()[:9] == ["webhook", "100", "100", "0", "4", "0", "0", "0", "5.00%"]
    assert "webhook: 4 messages arrived late (after the 20s loss deadline) and none lost" in table
    assert "<td>5.00%</td>" in render_html(report.summary())
