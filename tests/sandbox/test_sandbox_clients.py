"""The real client libraries (segment-analytics-python, rudder-sdk-python) against the sandbox.

The sandbox answers a share of requests "accepted then 5xx": the messages are kept but the client is
told to retry, so it re-sends the same messageIds. Dedupe must remove those retries: the destination
gets every message exactly once.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

N = 120
LIBRARY_NAMES = {"segment": "analytics-python", "rudder": "analytics-python"}  # both set this name


def run_client(client, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ok, msg = client.track(user_id=f"user-{i}", event="Order Completed", properties={"order_id": i})
        assert ok
        ids.append(msg["messageId"])
    client.flush()
    client.join()
    return ids


@pytest.mark.parametrize("library", ["segment", "rudder"])
def test_client_library_every_message_once(library, sandbox_factory, receiver_factory, helpers):
    logging.getLogger("segment").setLevel(logging.CRITICAL)
    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)
    recv = receiver_factory()
    cfg = helpers.make_config(
        [helpers.dest("d", recv.url, batch_size=20)], faults={"ingest": {"accept_then_5xx": 0.35}}
    )
    sb = sandbox_factory(cfg)
    errors = []
    if library == "segment":
        client = SegmentClient(
            "key-web",
            host=sb.url,
            upload_size=15,
            max_retries=10,
            gzip=True,
            on_error=lambda e, b: errors.append(e),
        )
    else:
        client = RudderClient(
            "key-server", host=sb.url, upload_size=15, max_retries=10, on_error=lambda e, b: errors.append(e)
        )
    ids = run_client(client, N)
    assert not errors
    assert len(set(ids)) == N
    source = "web" if library == "segment" else "server"
    # Settled: every send the client made (retries included) is counted, and nothing waits to be delivered.
    st = sb.wait_for(
        lambda s: (
            s["delivered"].get("d", 0) >= N
            and s["queued"]["d"] == 0
            and s["dedupe_hits"].get(source, 0) == s["accepted"][source] - N
        )
    )
    retried = st["faults"]["accept_then_5xx"]["ingest"]
    assert retried > 0, "the fault must have fired for the test to mean anything"
    assert st["dedupe_hits"][source] > 0 and st["dedupe_hits"][source] == st["accepted"][source] - N
    delivered = Counter(e["messageId"] for e in recv.events())
    assert set(delivered) == set(ids) and max(delivered.values()) == 1, "every message delivered exactly once"
    event = recv.events()[0]
    assert event["context"]["library"]["name"] == LIBRARY_NAMES[library]
    assert event["receivedAt"] and event["version"] == 2
