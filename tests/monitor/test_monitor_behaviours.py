"""Signatures and destination behaviours, and that every refusal is remembered by class."""

from __future__ import annotations

import gzip
import time

import orjson

from loadgen import ids
from loadgen.ledger import SentLedger


def test_signature_checked_counted_and_never_audited(start_monitor, events, signer):
    mon = start_monitor(
        {"destinations": {"signed": {"secret_env": "TEST_MONITOR_SECRET"}, "open": {}}},
        env={"TEST_MONITOR_SECRET": "s3cret-value"},
    )
    run = ids.run_id_from_name("sig")
    body = orjson.dumps(events(run, 1, range(10)))
    good = mon.deliver("signed", body, headers={"x-signature": signer("s3cret-value", body)})
    assert good.status_code == 200
    assert mon.deliver("signed", body, headers={"x-signature": signer("wrong", body)}).status_code == 401
    assert mon.deliver("signed", body).status_code == 401
    other = orjson.dumps(events(run, 1, range(10, 20)))
    assert (
        mon.deliver("signed", other, headers={"x-signature": signer("s3cret-value", body)}).status_code == 401
    )
    # gzip: the signature covers the body bytes as sent (compressed)
    packed = gzip.compress(orjson.dumps(events(run, 1, range(20, 25))))
    headers = {"x-signature": signer("s3cret-value", packed), "content-encoding": "gzip"}
    assert mon.deliver("signed", packed, headers=headers).status_code == 200
    assert mon.deliver("open", body).status_code == 200  # no secret configured: no check
    single = events(run, 1, [99])[0]  # one event object, not an array
    assert mon.deliver("open", single).status_code == 200

    summary = mon.summary(run)
    assert summary["destinations"]["signed"]["delivered"] == 15  # 0..9 and 20..24, nothing unsigned
    assert summary["destinations"]["signed"]["duplicates"] == 0
    assert summary["destinations"]["open"]["delivered"] == 11
    assert summary["receiver"]["bad_signatures"] == 3
    metrics = mon.metrics()
    assert 'monitor_bad_signatures_total{destination="signed"} 3.0' in metrics
    assert "s3cret-value" not in metrics and "s3cret-value" not in mon.log.read_text()


def test_unknown_destination_and_routes(start_monitor):
    mon = start_monitor({"destinations": {"hook": {}}})
    response = mon.deliver("nope", b"[]")
    assert response.status_code == 404 and response.json()["code"] == "unknown_destination"
    assert mon.http.get("/webhook/hook").status_code == 405
    assert mon.http.get("/api/nothing").status_code == 404
    assert mon.http.get("/api/lost", params={"destination": "nope"}).status_code == 400
    assert mon.http.get("/api/lost", params={"destination": "hook", "limit": "x"}).status_code == 400


def _statuses(mon, run, seqs, events, destination="hook"):
    out = []
    for seq in seqs:
        response = mon.deliver(destination, events(run, 1, [seq]))
        out.append((seq, response.status_code, response.headers.get("retry-after")))
    return out


def test_flaky_refusals_are_deterministic_and_retries_are_correct(start_monitor, events):
    mon = start_monitor(
        {
            "seed": 7,
            "lost_after_seconds": 0.5,
            "sweep_interval_seconds": 0.05,
            "destinations": {"hook": {"behaviour": {"kind": "flaky", "share": 0.4, "status": 503}}},
        }
    )
    run = ids.run_id_from_name("flaky")
    first = _statuses(mon, run, range(50), events)
    refused = [seq for seq, status, _ in first if status == 503]
    assert {status for _, status, _ in first} == {200, 503}
    assert 8 <= len(refused) <= 35
    # the same seed gives the same decisions after a reset of the behaviour
    mon.http.put("/api/destinations/hook/behaviour", json={"kind": "flaky", "share": 0.4, "status": 503})
    again = _statuses(mon, ids.run_id_from_name("flaky-2"), range(50), events)
    assert [s for _, s, _ in again] == [s for _, s, _ in first]

    ledger = SentLedger(run, 1)
    ledger.record_accepted("web", range(50), int(time.time() * 1000))
    assert mon.post_ledger(ledger.take_delta(final=True)).status_code == 202
    hook = mon.summary(run)["destinations"]["hook"]
    assert hook["refused_retry"] == len(refused)
    assert hook["delivered"] == 50 - len(refused)

    # a correct pipeline retries every 5xx-refused message until it is accepted
    mon.http.put("/api/destinations/hook/behaviour", json={"kind": "healthy"})
    for seq in refused:
        assert mon.deliver("hook", events(run, 1, [seq])).status_code == 200
    time.sleep(0.8)
    hook = mon.summary(run)["destinations"]["hook"]
    assert hook["refused_retry_redelivered"] == len(refused)
    assert hook["delivered"] == 50 and hook["duplicates"] == 0 and hook["lost"] == 0
    assert hook["redelivered_after_400"] == 0


def test_refused_retry_never_redelivered_is_lost(start_monitor, events):
    mon = start_monitor(
        {
            "lost_after_seconds": 0.3,
            "sweep_interval_seconds": 0.05,
            "destinations": {"hook": {"behaviour": {"kind": "flaky", "share": 1.0}}},
        }
    )
    run = ids.run_id_from_name("never-retried")
    assert mon.deliver("hook", events(run, 1, range(5))).status_code == 500
    ledger = SentLedger(run, 1)
    ledger.record_accepted("web", range(5), int(time.time() * 1000))
    mon.post_ledger(ledger.take_delta())
    time.sleep(0.6)
    hook = mon.summary(run)["destinations"]["hook"]
    assert hook["refused_retry"] == 5 and hook["refused_retry_redelivered"] == 0 and hook["lost"] == 5


def test_rejecting_refusals_must_never_come_back(start_monitor, events):
    mon = start_monitor(
        {
            "seed": 3,
            "lost_after_seconds": 0.3,
            "sweep_interval_seconds": 0.05,
            "destinations": {"hook": {"behaviour": {"kind": "rejecting", "share": 0.5}}},
        }
    )
    run = ids.run_id_from_name("rejecting")
    first = _statuses(mon, run, range(40), events)
    rejected = [seq for seq, status, _ in first if status == 400]
    assert 5 <= len(rejected) <= 35
    ledger = SentLedger(run, 1)
    ledger.record_accepted("web", range(40), int(time.time() * 1000))
    mon.post_ledger(ledger.take_delta())
    mon.http.put("/api/destinations/hook/behaviour", json={"kind": "healthy"})
    # a wrong pipeline retries three of them: each arrival is reported, none is audited as delivered
    wrong = rejected[:3]
    assert mon.deliver("hook", events(run, 1, wrong)).status_code == 200
    assert mon.deliver("hook", events(run, 1, wrong[:1])).status_code == 200
    time.sleep(0.6)
    hook = mon.summary(run)["destinations"]["hook"]
    assert hook["refused_400"] == len(rejected)
    assert hook["redelivered_after_400"] == 4
    assert hook["delivered"] == 40 - len(rejected)
    assert hook["lost"] == 0  # refused with a 4xx: correctly discarded, not lost
    assert 'monitor_redelivered_after_400_total{destination="hook"} 4.0' in mon.metrics()


def test_rate_limited_slow_and_down(start_monitor, events):
    mon = start_monitor(
        {
            "destinations": {
                "limited": {"behaviour": {"kind": "rate_limited", "share": 1.0, "retry_after_seconds": 2}},
                "slow": {"behaviour": {"kind": "slow", "distribution": "fixed", "seconds": 0.3}},
                "down": {"behaviour": {"kind": "down", "seconds": 1.0, "status": 503}},
            }
        }
    )
    run = ids.run_id_from_name("behaviours")
    response = mon.deliver("limited", events(run, 1, [1]))
    assert response.status_code == 429 and response.headers["retry-after"] == "2"
    started = time.monotonic()
    assert mon.deliver("slow", events(run, 1, [1])).status_code == 200
    assert time.monotonic() - started >= 0.3
    # the window starts when the behaviour is set (start-up, or here a PUT, so a slow start cannot eat it)
    mon.http.put("/api/destinations/down/behaviour", json={"kind": "down", "seconds": 1.0, "status": 503})
    assert mon.deliver("down", events(run, 1, [1])).status_code == 503
    time.sleep(1.1)
    assert mon.deliver("down", events(run, 1, [1])).status_code == 200
    hook = mon.summary(run)["destinations"]
    assert hook["limited"]["refused_retry"] == 1 and hook["limited"]["delivered"] == 0
    assert hook["down"]["refused_retry"] == 1 and hook["down"]["refused_retry_redelivered"] == 1
    metrics = mon.metrics()
    assert (
        'monitor_webhook_requests_total{code="429",destination="limited",reason="rate_limited"} 1.0'
        in metrics
    )
    assert 'monitor_refused_messages_total{destination="down",reason="down"} 1.0' in metrics


def test_behaviour_api_validates(start_monitor):
    mon = start_monitor({"destinations": {"hook": {}}})
    bad = mon.http.put("/api/destinations/hook/behaviour", json={"kind": "flaky", "share": 2})
    assert bad.status_code == 400 and "share" in bad.json()["message"]
    bad = mon.http.put("/api/destinations/hook/behaviour", json={"kind": "sleepy"})
    assert bad.status_code == 400 and "kind" in bad.json()["message"]
    assert mon.http.put("/api/destinations/zz/behaviour", json={}).status_code == 404
    ok = mon.http.put("/api/destinations/hook/behaviour", json={"kind": "down", "seconds": 5})
    assert ok.status_code == 200 and ok.json()["kind"] == "down" and ok.json()["down_seconds_left"] > 4
    assert mon.http.get("/api/destinations").json()["hook"]["kind"] == "down"
