"""End-to-end latency histograms, the Prometheus export (checked by promtool), and ledger intake."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import orjson
import pytest

from loadgen import ids
from loadgen.ledger import LedgerDelta, SentLedger
from monitor.latency import BUCKETS_SECONDS, LatencyHistogram

PROMTOOL = "/usr/bin/promtool"


def test_fine_quantiles_are_within_one_bin_of_the_truth():
    rng = np.random.default_rng(1)
    latencies = rng.lognormal(mean=np.log(800.0), sigma=1.0, size=200_000)
    hist = LatencyHistogram()
    for chunk in np.array_split(latencies, 100):
        hist.observe_many(chunk)
    for q in (0.5, 0.9, 0.95, 0.99):
        truth = np.quantile(latencies, q) / 1000.0
        assert truth <= hist.quantile_seconds(q) <= truth * 2 ** (1 / 32) * 1.0001
    assert hist.quantiles()["max"] == pytest.approx(latencies.max() / 1000.0)
    assert hist.count == len(latencies)
    cumulative = dict(hist.cumulative_buckets())
    for bound in BUCKETS_SECONDS:
        assert cumulative[repr(bound)] == np.count_nonzero(latencies <= bound * 1000.0)
    assert cumulative["+Inf"] == len(latencies)


def test_sub_millisecond_and_negative_latencies():
    hist = LatencyHistogram()
    hist.observe_many(np.array([-5.0, 0.0, 0.4, 0.9]))
    assert hist.count == 4 and hist.quantile_seconds(0.99) <= 0.001
    assert dict(hist.cumulative_buckets())["0.001"] == 4


def test_latency_from_ids_and_metrics_pass_promtool(start_monitor, events):
    mon = start_monitor({"destinations": {"hook": {}, "other": {}}, "lost_after_seconds": 0.2})
    run = ids.run_id_from_name("latency")
    now = int(time.time() * 1000)
    assert mon.deliver("hook", events(run, 1, range(0, 100), sent_ms=now - 40_000)).status_code == 200
    assert mon.deliver("hook", events(run, 1, range(100, 300), sent_ms=now - 200)).status_code == 200
    ledger = SentLedger(run, 1, run_name="latency")
    ledger.record_accepted("web", range(0, 310), now)
    mon.post_ledger(ledger.take_delta())
    time.sleep(0.4)
    hook = mon.summary(run)["destinations"]["hook"]["latency_seconds"]
    assert hook["count"] == 300
    assert 0.2 <= hook["p50"] < 0.2 * 1.03 + 1.0  # 200 ms plus loopback transit
    assert 40.0 <= hook["p90"] <= 41.5 and 40.0 <= hook["max"] <= 41.5

    text = mon.metrics()
    assert 'monitor_delivery_latency_seconds_bucket{destination="hook",le="30.0"} 200.0' in text
    assert 'monitor_delivery_latency_seconds_bucket{destination="hook",le="60.0"} 300.0' in text
    assert 'monitor_delivery_latency_seconds_count{destination="hook"} 300.0' in text
    assert f'monitor_run_lost_messages{{destination="hook",run="{run}"}} 10.0' in text
    assert f'monitor_run_expected_messages{{destination="other",run="{run}"}} 310.0' in text
    assert f'monitor_run_delivered_expected_messages{{destination="hook",run="{run}"}} 300.0' in text
    assert "monitor_ledger_deltas_total 1.0" in text
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    assert check.stdout.decode().strip() == "" and check.stderr.decode().strip() == ""


def test_ledger_intake_errors_name_the_field(start_monitor):
    mon = start_monitor({"destinations": {"hook": {}}})
    post = mon.http.post
    ok = SentLedger(1, 1)
    ok.record_accepted("web", range(5), 1)
    response = mon.post_ledger(ok.take_delta())
    assert response.status_code == 202 and response.json() == {"accepted": True}
    good = orjson.loads(SentLedger(1, 2).take_delta().to_wire())
    cases = {
        b"not json": "JSON",
        b'{"format": "other"}': "'format'",
        orjson.dumps({**good, "version": 9}): "'version'",
        orjson.dumps({**good, "run": -1}): "'run'",
        orjson.dumps({**good, "accepted": {"web": "@@@"}}): "accepted.web",
        orjson.dumps({**good, "rejected": 5}): "'rejected'",
        orjson.dumps({**good, "run": 70000}): "'run'",
        orjson.dumps({**good, "stream": 5000}): "'stream'",
    }
    for body, field in cases.items():
        response = post("/api/ledger", content=body)
        assert response.status_code == 400, body
        doc = response.json()
        assert doc["code"] == "bad_ledger" and field in doc["message"], (body, doc)
    assert "monitor_ledger_rejected_total 8.0" in mon.metrics()
    # the valid delta sent before the bad ones is intact
    assert mon.summary(1)["destinations"]["hook"]["expected"] == 5
    assert LedgerDelta.from_wire(ok.take_delta().to_wire()).run == 1
