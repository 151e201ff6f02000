"""Delivery over real HTTP: signature, batching, routing, retries, isolation, spool across restart."""

from __future__ import annotations

import hashlib
import hmac
import json
import time


def test_webhook_headers_signature_and_batches(sandbox_factory, receiver_factory, helpers):
    single, batched = receiver_factory(), receiver_factory()
    cfg = helpers.make_config(
        [
            helpers.dest("one", single.url),
            helpers.dest("many", batched.url, batch_size=50, secret="other-secret"),
        ]
    )
    sb = sandbox_factory(cfg)
    assert sb.post("/v1/batch", {"batch": [helpers.track(i) for i in range(20)]}).status_code == 200
    assert helpers.wait_until(lambda: len(single.events()) == 20 and len(batched.events()) == 20)
    for recv, secret, is_array in ((single, helpers.SECRET, False), (batched, "other-secret", True)):
        for req in recv.requests:
            h = req["headers"]
            assert h["Content-Type"] == "application/json" and h["User-Agent"] == "Segment.io/1.0"
            expected = hmac.new(secret.encode(), req["body"], hashlib.sha1).hexdigest()
            assert h["X-Signature"] == expected
            assert isinstance(json.loads(req["body"]), list) is is_array
    assert len(single.requests) == 20 and len(batched.requests) < 20
    assert sorted(e["messageId"] for e in batched.events()) == sorted(f"m-{i}" for i in range(20))


def test_sources_and_integrations_routing(sandbox_factory, receiver_factory, helpers):
    a, b, c = receiver_factory(), receiver_factory(), receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("A", a.url), helpers.dest("B", b.url), helpers.dest("C", c.url, sources=["server"])]
    )
    sb = sandbox_factory(cfg)
    batch = [
        helpers.track(0),  # A, B
        helpers.track(1, integrations={"All": False, "B": True}),  # B only
        helpers.track(2, integrations={"A": False}),  # B only
        helpers.track(3, integrations={"All": False}),  # nowhere
        helpers.track(4, integrations={"All": False, "A": {"opt": 1}}),  # A (options object = enabled)
    ]
    assert sb.post("/v1/batch", {"batch": batch}).status_code == 200
    assert sb.post("/v1/track", helpers.track(9), key="key-server").status_code == 200  # A, B, C
    assert helpers.wait_until(lambda: sb.stats()["delivered"] == {"A": 3, "B": 4, "C": 1})
    ids = lambda r: sorted(e["messageId"] for e in r.events())  # noqa: E731
    assert ids(a) == ["m-0", "m-4", "m-9"]
    assert ids(b) == ["m-0", "m-1", "m-2", "m-9"]
    assert ids(c) == ["m-9"]


def test_retries_5xx_429_timeout_until_delivered_and_4xx_discarded(
    sandbox_factory, receiver_factory, helpers
):
    flaky = receiver_factory(lambda n: [500, (429, {"Retry-After": "0"}), 503][n] if n < 3 else 200)
    slow = receiver_factory(lambda n: ("hang", 1.5) if n == 0 else 200)
    bad = receiver_factory(lambda n: 400)
    cfg = helpers.make_config(
        [
            helpers.dest("flaky", flaky.url),
            helpers.dest("slow", slow.url, timeout_seconds=0.5),
            helpers.dest("bad", bad.url),
        ]
    )
    sb = sandbox_factory(cfg)
    assert sb.post("/v1/track", helpers.track(1)).status_code == 200
    st = sb.wait_for(
        lambda s: (
            s["delivered"].get("flaky") == 1 and s["delivered"].get("slow") == 1 and s["discarded"].get("bad")
        )
    )
    assert st["attempts"]["flaky"] == {"retry_5xx": 2, "retry_429": 1, "success": 1}
    assert st["attempts"]["slow"]["retry_timeout"] == 1 and st["attempts"]["slow"]["success"] >= 1
    assert st["attempts"]["bad"] == {"discarded_4xx": 1}
    assert st["discarded"]["bad"] == {"http_4xx": 1}
    assert st["queued"]["bad"] == 0, "a 4xx answer is not queued for a retry"
    # A second message is a barrier: once it is discarded too, a retry of the first would have been sent.
    assert sb.post("/v1/track", helpers.track(2)).status_code == 200
    sb.wait_for(lambda s: s["discarded"]["bad"].get("http_4xx") == 2)
    assert len(bad.requests) == 2, "a 4xx answer is not retried"
    assert [e["messageId"] for e in flaky.events()].count("m-1") == 1, "delivered once after its retries"


def test_retry_after_is_honoured(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory(lambda n: (429, {"Retry-After": "1"}) if n == 0 else 200)
    sb = sandbox_factory(helpers.make_config([helpers.dest("d", recv.url)]))
    sb.post("/v1/track", helpers.track(1))
    assert helpers.wait_until(lambda: len(recv.requests) == 2)
    gap = recv.requests[1]["time"] - recv.requests[0]["time"]
    assert 0.95 <= gap < 2.0, gap  # backoff alone would be ≤ 0.075 s here


def test_max_age_discards(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory(lambda n: 503)
    cfg = helpers.make_config([helpers.dest("d", recv.url)], delivery={"max_age_seconds": 0.6})
    sb = sandbox_factory(cfg)
    sb.post("/v1/track", helpers.track(1))
    st = sb.wait_for(lambda s: s["discarded"].get("d"))
    assert st["discarded"]["d"] == {"max_age": 1}
    assert 2 <= st["attempts"]["d"]["retry_5xx"] <= 12


def test_hanging_destination_does_not_delay_another(sandbox_factory, receiver_factory, helpers):
    hang = receiver_factory(lambda n: ("hang", 6.0))
    fast = receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("hang", hang.url, timeout_seconds=10), helpers.dest("fast", fast.url)]
    )
    sb = sandbox_factory(cfg)
    start = time.time()
    for i in range(10):
        assert sb.post("/v1/track", helpers.track(i)).status_code == 200
    assert helpers.wait_until(lambda: len(fast.events()) == 10, timeout=4.0)
    # all of them reached the fast destination while the hanging one had not answered even once
    assert max(r["time"] for r in fast.requests) - start < 4.0
    assert len(hang.requests) == 1
    st = sb.stats()
    assert (
        st["queued"]["hang"] == 10 and st["delivered"].get("hang", 0) == 0 and st["delivered"]["fast"] == 10
    )


def test_spool_and_resume_across_sigterm(sandbox_factory, receiver_factory, helpers, tmp_path):
    state = {"down": True}
    recv = receiver_factory(lambda n: 503 if state["down"] else 200)
    port = helpers.free_port()
    spool = tmp_path / "spool.jsonl"
    cfg = helpers.make_config(
        [helpers.dest("d", recv.url, batch_size=7), helpers.dest("e", recv.url)],
        delivery={"spool_path": str(spool)},
        dedupe={"state_path": str(tmp_path / "dd.npz")},
    )
    sb = sandbox_factory(cfg, port=port)
    for k in range(5):
        body = {"batch": [helpers.track(i) for i in range(k * 20, k * 20 + 20)]}
        assert sb.post("/v1/batch", body).status_code == 200
    sb.wait_for(lambda s: s["attempts"].get("d", {}).get("retry_5xx", 0) >= 1)
    assert sb.stop() == 0
    lines = spool.read_text().splitlines()
    assert len(lines) == 200 and {json.loads(x)["destination"] for x in lines} == {"d", "e"}
    state["down"] = False
    before = len(recv.requests)
    sb2 = sandbox_factory(cfg, port=port)
    st = sb2.wait_for(lambda s: s["delivered"] == {"d": 100, "e": 100})
    assert st["restored"] == {"d": 100, "e": 100}
    delivered = [
        e
        for r in recv.requests[before:]
        for e in (lambda d: d if isinstance(d, list) else [d])(json.loads(r["body"]))
    ]
    ids = sorted(e["messageId"] for e in delivered)
    assert ids == sorted([f"m-{i}" for i in range(100)] * 2), "every message once per destination"
    assert not spool.exists() and (tmp_path / "spool.jsonl.restored").exists()
    # the dedupe window survived the restart: a client retry of an old messageId is dropped
    assert sb2.post("/v1/track", helpers.track(5)).status_code == 200
    assert sb2.stats()["dedupe_hits"] == {"web": 1}


def test_delivered_events_keep_sentAt_and_the_dedupe_can_be_switched_off(
    sandbox_factory, receiver_factory, helpers
):
    """A batch's sentAt is kept on each delivered event (as Segment delivers it; the monitor reads it
    to tell a re-send from a delivery duplicate); with `dedupe.enabled: false` a re-send is delivered."""
    recv = receiver_factory(lambda n: 200)
    for enabled, copies in ((True, 1), (False, 2)):
        recv.requests.clear()
        sb = sandbox_factory(helpers.make_config([helpers.dest("d", recv.url)], dedupe={"enabled": enabled}))
        first = {"batch": [helpers.track(1)], "sentAt": "2026-12-04T18:00:00.000Z"}
        again = {"batch": [helpers.track(1)], "sentAt": "2026-12-04T18:00:05.000Z"}
        assert sb.post("/v1/batch", first).status_code == 200
        assert sb.post("/v1/batch", again).status_code == 200
        sb.wait_for(lambda s, copies=copies: s["delivered"].get("d") == copies)
        events = recv.events()
        assert [e["sentAt"] for e in events] == ["2026-12-04T18:00:00.000Z", "2026-12-04T18:00:05.000Z"][
            :copies
        ]
        assert {e["messageId"] for e in events} == {"m-1"}
        sb.stop()
