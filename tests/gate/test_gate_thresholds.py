"""Thresholds: every comparator, unit and metric, filters, abort-on-fail, and bad files naming the line."""

from __future__ import annotations

import pytest

from gate.metrics import METRICS
from gate.thresholds import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_UNUSABLE,
    ThresholdError,
    aborting_failures,
    default_thresholds,
    evaluate,
    load_thresholds,
    measure,
    parse_threshold,
    parse_thresholds,
)


def one(key: str, expression: str):
    return parse_threshold(key, expression, where="t.yaml:1")


def doc(*lines: str) -> str:
    return "thresholds:\n" + "".join(f"  {line}\n" for line in lines)


# Every metric of the catalogue, read from the fixture summary (values worked out by hand).
EXPECTED = [
    ("throughput", ">= 0/s", 1000.0),
    ("throughput{source:ios}", ">= 0/s", 400.0),  # 4000 messages in 10 s
    ("request.rate", ">= 0/s", 200.0),
    ("request.rate{source:web}", ">= 0/s", 150.0),
    ("request.latency", "p50 >= 0s", 0.010),
    ("request.latency", "p99 >= 0s", 0.100),
    ("request.latency", "max >= 0s", 0.250),
    ("request.latency_corrected", "p99 >= 0s", 0.300),
    ("request.latency_corrected", "p90 >= 0s", 0.050),
    ("errors.ratio", ">= 0", 0.02),  # 5xx 20 + 429 10 + error 10 of 2000
    ("errors.ratio{status_class:5xx}", ">= 0", 0.01),
    ("errors.ratio{status_class:4xx}", ">= 0", 0.01),
    ("errors.ratio{status_class:2xx}", ">= 0", 0.97),
    ("errors.count{status_class:429}", ">= 0", 10.0),
    ("errors.count", ">= 0", 40.0),
    ("missed.ratio", ">= 0", 0.02),
    ("missed.ratio{source:web}", ">= 0", 40 / 1540),
    ("refused.ratio", ">= 0", 100 / 10_000),  # refused ÷ (accepted + refused)
    ("refused.ratio{source:ios}", ">= 0", 40 / 4000),
    ("refused.ratio{source:web,answer:404}", ">= 0", 0.0),
    ("refused.count{answer:401}", ">= 0", 60.0),
    ("refused.count", ">= 0", 100.0),
    ("lenient.count", ">= 0", 3.0),
    ("lenient.count{case:bad_gzip}", ">= 0", 0.0),
    ("delivery.latency", "p99 >= 0s", 3.0),  # the worst destination (warehouse)
    ("delivery.latency{destination:webhook}", "p99 >= 0s", 0.8),
    ("delivery.latency", "p95 >= 0s", 1.0),
    ("delivered.ratio", ">= 0", 1.0),
    ("loss.ratio", ">= 0", 99 / 19800),
    ("loss.ratio{destination:webhook}", ">= 0", 0.01),
    ("loss.ratio{destination:warehouse}", ">= 0", 0.0),
    ("loss.count", ">= 0", 99.0),
    ("pending.count", ">= 0", 5.0),
    ("duplicates.ratio", ">= 0", 30 / 19800),
    ("duplicates.ratio{destination:webhook}", ">= 0", 30 / 9900),
    ("duplicates.count", ">= 0", 30.0),
    ("duplicates.count{destination:warehouse}", ">= 0", 0.0),
    ("dedupe_leaks.count", ">= 0", 2.0),
    ("late.count", ">= 0", 1.0),
    ("late.ratio{destination:webhook}", ">= 0", 1 / 9900),
    ("pending.ratio", ">= 0", 5 / 19800),
    ("out_of_order.count", ">= 0", 7.0),
    ("out_of_order.ratio{destination:warehouse}", ">= 0", 7 / 9900),
    ("rejected_delivered.count", ">= 0", 0.0),
    ("redelivered_after_400.count", ">= 0", 0.0),
    ("canary.availability", ">= 0", 0.95),  # the worst destination
    ("canary.availability{destination:warehouse}", ">= 0", 1.0),
    ("canary.latency", "p99 >= 0s", 0.7),
    ("canary.latency{destination:webhook}", "p99 >= 0s", 0.5),
    ("bad_signatures.count", ">= 0", 3.0),
    ("foreign.count", ">= 0", 2.0),
]


@pytest.mark.parametrize(
    ("key", "expression", "expected"), EXPECTED, ids=[f"{k} {e}" for k, e, _ in EXPECTED]
)
def test_each_metric_reads_its_value_from_the_summary(summary, key, expression, expected):
    value, note = measure(one(key, expression), summary)
    assert note == ""
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_expected_table_covers_every_metric():
    assert {key.split("{")[0] for key, _e, _v in EXPECTED} == set(METRICS)


COMPARATORS = [
    # errors.count{status_class:5xx} is 20
    ("< 21", True), ("< 20", False), ("<= 20", True), ("<= 19", False),
    ("> 19", True), ("> 20", False), (">= 20", True), (">= 21", False),
    ("== 20", True), ("== 19", False), ("!= 19", True), ("!= 20", False),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "passes"), COMPARATORS)
def test_every_comparator(summary, expression, passes):
    verdict = evaluate([one("errors.count{status_class:5xx}", expression)], summary)
    assert verdict.passed is passes
    assert verdict.exit_code == (EXIT_PASS if passes else EXIT_FAIL)


UNITS = [
    # request.latency p99 is 0.1 s
    ("request.latency", "p99 < 100001us", True), ("request.latency", "p99 < 99999µs", False),
    ("request.latency", "p99 <= 100ms", True), ("request.latency", "p99 < 100ms", False),
    ("request.latency", "p99 == 0.1s", True), ("request.latency", "p(99) < 0.1s", False),
    ("request.latency", "p99 < 0.0017m", True), ("request.latency", "p99 < 0.0016min", False),
    ("request.latency", "p99 < 0.00003h", True), ("request.latency", "p99 < 0.00002h", False),
    # throughput is 1000/s
    ("throughput", ">= 1000/s", True), ("throughput", "> 1000/s", False),
    ("throughput", ">= 60000/m", True), ("throughput", "> 60000/min", False),
    ("throughput", "== 3600000/h", True), ("throughput", "rate >= 1000", True),
    ("throughput", ">= 1e3", True), ("throughput", ">= 1.001e3/s", False),
    # errors.ratio is 2%
    ("errors.ratio", "== 2%", True), ("errors.ratio", "< 2%", False),
    ("errors.ratio", "<= 0.02", True), ("errors.ratio", "rate < .02", False),
    # loss.count is 99
    ("loss.count", "== 99", True), ("loss.count", "count < 99", False),
]  # fmt: skip


@pytest.mark.parametrize(("key", "expression", "passes"), UNITS, ids=[f"{k} {e}" for k, e, _ in UNITS])
def test_every_unit(summary, key, expression, passes):
    assert evaluate([one(key, expression)], summary).passed is passes


def test_filters_narrow_to_one_destination_or_source(summary):
    verdict = evaluate(
        [
            one("loss.count{destination:warehouse}", "== 0"),  # passes: only webhook lost messages
            one("loss.count{destination:webhook}", "== 0"),  # fails
            one("delivery.latency{destination:webhook}", "p99 < 1s"),  # passes; warehouse's 3 s is not it
            one("delivery.latency", "p99 < 1s"),  # fails: the worst destination counts
            one("throughput{source:web}", ">= 600/s"),
            one("throughput{source:ios}", ">= 600/s"),  # fails: 400/s
        ],
        summary,
    )
    assert [r.passed for r in verdict.results] == [True, False, True, False, True, False]


def test_errors_by_status_class_per_source(summary):
    summary["load"]["by_source"]["ios"]["requests_by_class"] = {"2xx": 490, "5xx": 5, "429": 5}
    verdict = evaluate(
        [one("errors.ratio{source:ios}", "== 2%"), one("errors.ratio{source:ios,status_class:5xx}", "== 1%")],
        summary,
    )
    assert verdict.passed, verdict.table()
    del summary["load"]["by_source"]["ios"]["requests_by_class"]
    (result,) = evaluate([one("errors.ratio{source:ios}", "< 5%")], summary).results
    assert not result.passed and result.value is None
    assert "requests_by_class" in result.note


@pytest.mark.parametrize(
    ("key", "mutate", "note"),
    [
        ("loss.ratio{destination:nowhere}", None, "destination 'nowhere' is not in delivery.destinations"),
        ("throughput{source:nowhere}", None, "source 'nowhere' is not in load.by_source"),
        ("loss.ratio", lambda s: s.update(delivery={}), "no 'delivery' section"),
        ("canary.availability", lambda s: s["delivery"].update(canary={}), "ran no canaries"),
        ("request.latency", lambda s: s["load"]["latency_seconds"]["measured"].update(p99=None), "is empty"),
        ("throughput", lambda s: s["load"].update(throughput="fast"), "not a number"),
    ],
)
def test_missing_data_fails_and_says_what_is_missing(summary, key, mutate, note):
    if mutate:
        mutate(summary)
    expression = "p99 < 1s" if "latency" in key else ">= 0"
    verdict = evaluate([one(key, expression)], summary)
    (result,) = verdict.results
    assert result.value is None and not result.passed and note in result.note
    assert "no data" in verdict.table() and note in verdict.table()


def test_a_file_with_every_feature_reads_back(tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(
        doc(
            "throughput: ['>= 80000/s']",
            "delivery.latency{destination:webhook}: ['p99 < 5s', 'p(95) < 2s']",
            "errors.ratio{status_class:5xx, source:ios}:",
            "    - threshold: '< 1%'",
            "      abort_on_fail: true",
            "      delay_abort_eval: 10s",
            "    - {threshold: '< 5%', abortOnFail: true, delayAbortEval: 500ms}",
            "loss.ratio: '== 0'",
        )
    )
    thresholds = load_thresholds(path)
    assert [t.text() for t in thresholds] == [
        "throughput >= 80000/s",
        "delivery.latency{destination:webhook} p99 < 5s",
        "delivery.latency{destination:webhook} p(95) < 2s",
        "errors.ratio{status_class:5xx,source:ios} < 1%",
        "errors.ratio{status_class:5xx,source:ios} < 5%",
        "loss.ratio == 0",
    ]
    assert thresholds[2].aggregation == "p95"
    assert [t.line for t in thresholds] == [2, 3, 3, 5, 8, 9]
    assert thresholds[3].abort_on_fail and thresholds[3].delay_abort_eval == 10.0
    assert thresholds[4].abort_on_fail and thresholds[4].delay_abort_eval == 0.5
    assert not thresholds[0].abort_on_fail
    assert thresholds[0].value == 80000 and thresholds[3].value == pytest.approx(0.01)
    assert thresholds[1].source == f"{path}:3"


BAD = [
    (doc("nosuch.metric: ['== 0']"), 2, "unknown metric 'nosuch.metric'"),
    (doc("loss.ratio: ['== 0']", "delivery.latency: ['p99 < 5kg']"), 3, "bad unit 'kg'"),
    (doc("delivery.latency: ['p99 < 5']"), 2, "bad unit 'none': a duration needs a unit"),
    (doc("loss.count: ['== 0%']"), 2, "a count takes no unit"),
    (doc("throughput: ['>= 10/day']"), 2, "bad unit '/day'"),
    (doc("loss.ratio: ['=< 0']"), 2, "cannot read threshold '=< 0'"),
    (doc("loss.ratio: ['= 0']"), 2, "bad comparator '='"),
    (doc("loss.ratio: ['=== 0']"), 2, "bad comparator '==='"),
    (doc("loss.ratio: ['~ 0']"), 2, "cannot read threshold"),
    (doc("delivery.latency: ['< 5s']"), 2, "needs an aggregation"),
    (doc("delivery.latency: ['p75 < 5s']"), 2, "needs an aggregation (p50, p90, p95, p99, max), got 'p75'"),
    (doc("loss.ratio: ['p99 < 1%']"), 2, "takes no aggregation"),
    (doc("loss.ratio: ['< 150%']"), 2, "a ratio is between 0 and 1"),
    (doc("throughput{destination:webhook}: ['> 1']"), 2, "filter 'destination:webhook' does not apply"),
    (doc("errors.ratio{status_class:6xx}: ['< 1%']"), 2, "unknown status_class '6xx'"),
    (doc("loss.ratio:", "  - {threshold: '== 0', abort: true}"), 3, "unknown key(s) abort"),
    (doc("loss.ratio:", "  - {threshold: '== 0', abort_on_fail: 'yes please'}"), 3, "abort_on_fail must be"),
    (doc("loss.ratio:", "  - {threshold: '== 0', delay_abort_eval: soon}"), 3, "cannot read duration"),
    (doc("loss.ratio:", "  - {abort_on_fail: true}"), 3, "needs a 'threshold' key"),
    (doc("loss.ratio: [== 0"), 3, "not valid YAML"),
    ("thresholds:\n  loss.ratio: ['== 0']\nslo: {}\n", 3, "slo: unknown key; allowed: thresholds"),
    ("- loss.ratio\n", 1, "expected a mapping with a 'thresholds' key"),
    (doc("loss.ratio: []"), 2, "has no thresholds"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD, ids=[m for _t, _l, m in BAD])
def test_bad_threshold_files_name_the_file_and_line(text, line, message):
    with pytest.raises(ThresholdError) as caught:
        parse_thresholds(text, "slo.yaml")
    assert str(caught.value).startswith(f"slo.yaml:{line}: "), str(caught.value)
    assert message in str(caught.value)


def test_empty_and_sectionless_files_name_the_file():
    for text, message in (("", "empty file"), ("# nothing\n", "empty file"), ("thresholds:\n", "must map")):
        with pytest.raises(ThresholdError, match=f"^slo.yaml(:\\d+)?: .*{message}"):
            parse_thresholds(text, "slo.yaml")


def test_aborting_failures_are_the_failing_abort_on_fail_thresholds(summary):
    thresholds = parse_thresholds(
        doc(
            "duplicates.count: [{threshold: '== 0', abort_on_fail: true}]",  # fails now: aborts
            "loss.count: ['== 0']",  # fails, but not abort_on_fail
            "pending.count: [{threshold: '== 0', abort_on_fail: true}]",  # final-only: never mid-run
            "errors.ratio: [{threshold: '< 1%', abort_on_fail: true, delay_abort_eval: 10s}]",
            "throughput: [{threshold: '>= 10/s', abort_on_fail: true}]",  # passes
            "canary.availability{destination:gone}: [{threshold: '> 0.9', abort_on_fail: true}]",  # no data
        ),
        "slo.yaml",
    )
    early = aborting_failures(thresholds, summary, elapsed=5.0)
    assert [r.threshold.metric for r in early] == ["duplicates.count"]
    assert early[0].value == 30 and "was 30" in early[0].message()
    later = aborting_failures(thresholds, summary, elapsed=15.0)
    assert [r.threshold.metric for r in later] == ["duplicates.count", "errors.ratio"]
    assert [r.threshold.metric for r in aborting_failures(thresholds, summary)] == [
        "duplicates.count",
        "errors.ratio",
    ]
    summary["delivery"]["destinations"]["webhook"]["duplicates"] = 0
    summary["load"]["requests_by_class"] = {"2xx": 2000}
    assert aborting_failures(thresholds, summary, elapsed=60.0) == []


def test_defaults_load_and_the_public_names_hold():
    thresholds = default_thresholds()
    assert {t.metric for t in thresholds} >= {"loss.ratio", "duplicates.count", "delivery.latency"}
    assert (EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE) == (0, 1, 2)


def test_verdict_table_and_dict(summary):
    verdict = evaluate([one("loss.ratio", "== 0"), one("throughput", ">= 500/s")], summary)
    table = verdict.table()
    assert "loss.ratio == 0" in table and "0.5000%" in table and "FAIL" in table and "1,000.0/s" in table
    assert "Verdict: FAIL: loss.ratio == 0 (was 0.5000%)" in table
    data = verdict.to_dict()
    assert data["passed"] is False
    assert data["results"][1] | {"source": ""} == {
        "metric": "throughput",
        "expression": ">= 500/s",
        "value": 1000.0,
        "value_text": "1,000.0/s",
        "passed": True,
        "note": "",
        "abort_on_fail": False,
        "origin": "slo",
        "source": "",
    }


def test_the_verdict_says_in_words_what_the_figures_mean(summary):
    summary["run"]["delivery_wait"] = {
        "window_seconds": 2.0,
        "arriving_at_end": {"webhook": 12, "warehouse": 0},
    }
    verdict = evaluate(default_thresholds(), summary)
    failed = {r.threshold.text() for r in verdict.failures()}
    assert {"refused.ratio == 0", "loss.ratio == 0", "late.count == 0"} <= failed
    text = verdict.table()
    assert "The target refused 100 valid messages (401 ×60, 404 ×40) and accepted 9,900" in text
    assert "refused by source: ios (404 ×40), web (401 ×60)" in text
    assert "lenient): track_without_event ×3" in text
    assert "1 bad-input requests got a target error" in text
    assert "webhook: 99 messages lost" in text
    assert "webhook: 1 messages arrived late (after the 20s loss deadline): late, not lost" in text
    assert "webhook: 2 dedupe leaks (a re-send, new sentAt, delivered) and 30 delivery duplicates" in text
    assert "still arriving when the delivery wait ended (webhook 12 in its last 2s)" in text
    assert verdict.to_dict()["story"] == verdict.story


def test_a_clean_run_has_no_story(summary):
    summary["load"].update(refused=0, refused_by_answer={}, bad_inputs={})
    for row in summary["delivery"]["destinations"].values():
        row.update(lost=0, late=0, pending=0, duplicates=0, dedupe_leaks=0)
    assert evaluate(default_thresholds(), summary).story == []


def test_a_pipeline_that_rewrites_sentAt_is_called_out(summary):
    webhook = summary["delivery"]["destinations"]["webhook"]
    webhook.update(dedupe_leaks=9000, later_send_only=9000)
    text = evaluate(default_thresholds(), summary).table()
    assert "webhook: 9,000 of 9,900 messages arrived only with a sentAt other than their first send's" in text
