"""Baselines: a regression beyond the configured share fails; within it passes; what is compared."""

from __future__ import annotations

import copy

import pytest

from gate.baseline import regression_thresholds
from gate.thresholds import evaluate


def _judge(baseline: dict, run: dict, share: float = 0.1, **kwargs):
    checks, notes = regression_thresholds(baseline, share, **kwargs)
    return evaluate(checks, run), notes


def test_the_same_run_passes_and_every_compared_metric_is_listed(summary):
    verdict, notes = _judge(summary, summary)
    assert verdict.passed, verdict.table()
    assert notes == []
    assert [r.threshold.text().split(" (")[0] for r in verdict.results] == [
        "throughput >= 900.0/s",
        "request.latency p50 <= 11.0ms",
        "request.latency p95 <= 66.0ms",
        "request.latency p99 <= 110.0ms",
        "request.latency_corrected p95 <= 88.0ms",
        "request.latency_corrected p99 <= 330.0ms",
        "delivery.latency{destination:warehouse} p95 <= 1.100s",
        "delivery.latency{destination:warehouse} p99 <= 3.300s",
        "delivery.latency{destination:webhook} p95 <= 440.0ms",
        "delivery.latency{destination:webhook} p99 <= 880.0ms",
    ]
    assert all(r.threshold.origin == "baseline" for r in verdict.results)


@pytest.mark.parametrize(
    ("path", "factor", "passes"),
    [
        (("load", "throughput"), 0.91, True),  # down 9%: within 10%
        (("load", "throughput"), 0.89, False),  # down 11%
        (("load", "throughput"), 5.0, True),  # faster is never a regression
        (("load", "latency_seconds", "measured", "p99"), 1.09, True),
        (("load", "latency_seconds", "measured", "p99"), 1.11, False),
        (("load", "latency_seconds", "corrected", "p95"), 1.2, False),
        (("load", "latency_seconds", "measured", "p50"), 0.5, True),  # faster
        (("delivery", "destinations", "webhook", "latency_seconds", "p99"), 1.11, False),
        (("delivery", "destinations", "warehouse", "latency_seconds", "p95"), 1.05, True),
    ],
)
def test_regressions_beyond_the_share_fail(summary, path, factor, passes):
    run = copy.deepcopy(summary)
    node = run
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] *= factor
    verdict, _ = _judge(summary, run)
    assert verdict.passed is passes, verdict.table()
    if not passes:
        (failure,) = verdict.failures()
        assert "baseline" in failure.threshold.expression


def test_the_share_is_configurable(summary):
    run = copy.deepcopy(summary)
    run["load"]["throughput"] *= 0.75
    assert not _judge(summary, run, 0.2)[0].passed
    assert _judge(summary, run, 0.3)[0].passed


def test_tiny_latency_rises_under_the_floor_are_noise(summary):
    baseline = copy.deepcopy(summary)
    baseline["load"]["latency_seconds"]["measured"]["p50"] = 0.0010
    run = copy.deepcopy(baseline)
    run["load"]["latency_seconds"]["measured"]["p50"] = 0.0015  # +50%, but only 0.5 ms
    assert _judge(baseline, run)[0].passed
    run["load"]["latency_seconds"]["measured"]["p50"] = 0.0025  # +1.5 ms: past the 1 ms floor
    assert not _judge(baseline, run)[0].passed
    assert _judge(baseline, run, latency_floor=0.002)[0].passed


def test_what_the_baseline_lacks_is_noted_not_failed(summary):
    baseline = copy.deepcopy(summary)
    baseline["load"]["latency_seconds"]["corrected"]["p99"] = None
    baseline["delivery"]["destinations"].pop("warehouse")
    verdict, notes = _judge(baseline, summary)
    assert verdict.passed
    assert len(verdict.results) == 7
    assert notes == [
        "not compared: request.latency_corrected p99: load.latency_seconds.corrected.p99 is empty (no requests were answered)"
    ]


def test_a_destination_missing_from_the_run_fails(summary):
    run = copy.deepcopy(summary)
    run["delivery"]["destinations"].pop("webhook")
    verdict, _ = _judge(summary, run)
    failing = {r.threshold.label for r in verdict.failures()}
    assert failing == {"delivery.latency{destination:webhook}"}
    assert all(r.value is None and "webhook" in r.note for r in verdict.failures())


def test_a_share_outside_0_1_is_refused(summary):
    with pytest.raises(ValueError, match="between 0 and 1"):
        regression_thresholds(summary, 1.5)
