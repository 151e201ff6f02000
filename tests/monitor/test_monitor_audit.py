"""Exact audit counts over real HTTP: one scripted run whose every figure is known in advance."""

from __future__ import annotations

import time
import uuid

import orjson

from loadgen import ids
from loadgen.ledger import SentLedger

LOST_AFTER = 3.0  # long enough that the deliveries before the deadline finish on a busy machine


def test_every_count_is_exact(start_monitor, events):
    mon = start_monitor(
        {
            "lost_after_seconds": LOST_AFTER,
            "sweep_interval_seconds": 0.05,
            "destinations": {"hook": {}, "serveronly": {"sources": ["server"]}},
        }
    )
    run = ids.run_id_from_name("audit-test")
    other_run = ids.run_id_from_name("no-ledger-run")
    now = int(time.time() * 1000)

    ledger = SentLedger(run, 3, run_name="audit-test")
    ledger.record_accepted("web", range(0, 1000), now)
    ledger.record_accepted("server", range(2000, 2010), now)
    ledger.record_rejected(range(1000, 1010), now)
    ledger.record_abandoned(range(1010, 1020), now)
    ledger.record_duplicates([5, 6, 7])

    def deliver(seqs, **kw):
        response = mon.deliver("hook", events(run, 3, seqs, sent_ms=now, **kw))
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}

    # in order 0..879 in batches of 100 (one of them delivered before the ledger arrives)
    for start in range(0, 880, 100):
        deliver(range(start, min(start + 100, 880)))
        if start == 0:
            assert mon.post_ledger(ledger.take_delta(final=True)).status_code == 202
    deliver(range(890, 900))
    deliver(range(880, 890))  # same users (seq % 7) as later seqs already delivered: out of order
    deliver([5, 6], sent_at_ms=now + 4000)  # re-sends (a later sentAt) delivered: dedupe leaks
    deliver([7, 7], sent_at_ms=now + 4000)  # a re-send delivered twice: a leak and a duplicate
    deliver([10, 11, 12, 12])  # plain duplicates (12 twice in one batch)
    deliver([13], sent_at_ms=now)  # a copy of the first send (sentAt = the id's time): a duplicate
    deliver([1000, 1001])  # rejected by the ingest, delivered anyway
    deliver([1010])  # abandoned and delivered: not an error
    deliver(range(2000, 2010))  # server source: expected on both destinations
    assert mon.deliver("serveronly", events(run, 3, range(2000, 2005))).status_code == 200

    # foreign ids, unknown run, an item that is not an object
    foreign = [
        {"messageId": str(uuid.uuid4()), "userId": "x"},
        {"messageId": "not-an-id", "userId": "x"},
        {"userId": "no id at all"},
        {"messageId": 12345},
    ]
    assert mon.deliver("hook", foreign).status_code == 200
    assert mon.deliver("hook", events(other_run, 1, range(4))).status_code == 200
    mixed = [*events(run, 3, [900]), 5, "text"]
    assert mon.deliver("hook", mixed).status_code == 200  # the good event is still audited

    # malformed bodies
    for body in (b"{not json", b"[1, 2", b"\xff\xfe"):
        assert mon.deliver("hook", body).status_code == 400
    bad_gzip = mon.deliver("hook", b"not gzip", headers={"content-encoding": "gzip"})
    assert bad_gzip.status_code == 400

    before = mon.summary(run)["destinations"]["hook"]
    assert before["lost"] == 0
    assert before["delivered_expected"] == 900 + 1 + 10  # 0..899, 900, 2000..2009
    assert before["pending"] == 1010 - 911

    time.sleep(LOST_AFTER + 0.5)
    deliver(range(950, 960))  # after the deadline: late
    summary = mon.summary(run)
    assert summary["format"] == "cdp-harness/monitor-summary" and summary["version"] == 1
    hook = summary["destinations"]["hook"]
    assert hook["expected"] == 1010
    assert hook["delivered_expected"] == 911 + 10  # + 950..959
    assert hook["delivered"] == 921 + 2 + 1  # + rejected 1000, 1001 + abandoned 1010
    assert hook["lost"] == 1010 - 921
    assert hook["pending"] == 0
    assert hook["late"] == 10
    assert hook["duplicates"] == 6  # 7's re-send twice, 10, 11, 12 twice, 13 (all already delivered)
    assert hook["dedupe_leaks"] == 3  # 5, 6, 7
    assert hook["rejected_delivered"] == 2
    assert hook["abandoned_delivered"] == 1
    assert hook["out_of_order"] == 10 + 1 + 10  # 880..889; then 900 and 950..959 after 2000..2009
    assert hook["redelivered_after_400"] == 0
    assert hook["ratios"]["lost"] == (1010 - 921) / 1010
    assert hook["latency_seconds"]["count"] == hook["arrivals"]

    server_only = summary["destinations"]["serveronly"]
    assert server_only["expected"] == 10 and server_only["delivered"] == 5 and server_only["lost"] == 5

    receiver = mon.summary()["receiver"]
    assert receiver["foreign"]["foreign_ids"] == 4
    assert receiver["foreign"]["unknown_run_deliveries"] == 4
    assert receiver["malformed_bodies"] == 4
    assert receiver["malformed_items"] == 2

    run_doc = summary["runs"][0]
    assert run_doc["name"] == "audit-test" and run_doc["has_ledger"]
    assert run_doc["streams"] == [
        {"stream": 3, "deltas": 1, "final": True, "sent_until_ms": now, "delivered_only": False}
    ]
    assert run_doc["all_final"] is True

    # lost ids: the oldest first, rebuilt from run/stream/seq with the ledger watermark
    lost = mon.http.get("/api/lost", params={"destination": "hook", "limit": 5, "run": run}).json()
    seqs = [item["seq"] for item in lost["lost"]]
    assert seqs == [901, 902, 903, 904, 905]
    for item in lost["lost"]:
        parts = ids.decode_message_id(item["message_id"])
        assert (parts.run, parts.stream, parts.seq, parts.sent_ms) == (run, 3, item["seq"], now)
    assert [s["seq"] for s in hook["lost_samples"]][:3] == [901, 902, 903]
    by_name = mon.summary()["runs"]
    assert {r["run"] for r in by_name} == {run, other_run}
    unknown = next(r for r in by_name if r["run"] == other_run)
    assert not unknown["has_ledger"] and not unknown["all_final"]
    assert unknown["streams"] == [
        {"stream": 1, "deltas": 0, "final": False, "sent_until_ms": 0, "delivered_only": True}
    ]
    assert unknown["destinations"]["hook"]["delivered"] == 4
    assert (
        orjson.loads(mon.http.get("/api/summary", params={"run": "audit-test"}).content)["runs"][0]["run"]
        == run
    )


def test_order_of_ledger_and_deliveries_does_not_matter(start_monitor, events):
    """The same deliveries and ledger, in two orders, give the same figures (late aside)."""
    results = []
    for ledger_first in (True, False):
        mon = start_monitor({"lost_after_seconds": 30, "destinations": {"hook": {}}})
        run = ids.run_id_from_name(f"order-{ledger_first}")
        ledger = SentLedger(run, 1)
        ledger.record_accepted("web", range(0, 300), int(time.time() * 1000))
        ledger.record_duplicates(range(0, 300, 10))
        ledger.record_rejected([400, 401], int(time.time() * 1000))
        delta = ledger.take_delta()
        if ledger_first:
            assert mon.post_ledger(delta).status_code == 202
        for batch in (range(0, 150), range(100, 250), [400]):
            assert mon.deliver("hook", events(run, 1, batch)).status_code == 200
        if not ledger_first:
            assert mon.post_ledger(delta).status_code == 202
        doc = mon.summary(run)["destinations"]["hook"]
        results.append({k: v for k, v in doc.items() if k not in ("latency_seconds", "lost_samples")})
    assert results[0] == results[1]
    # the overlap is the pipeline's duplicates, re-sent seqs (every 10th) among them: no sentAt says
    # a copy came from a later send, so none is a dedupe leak
    assert results[0]["duplicates"] == 50 and results[0]["dedupe_leaks"] == 0
    assert results[0]["delivered_expected"] == 250 and results[0]["pending"] == 50
    assert results[0]["rejected_delivered"] == 1
