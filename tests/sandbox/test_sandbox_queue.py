"""The delivery queue's fast paths, in process: chunked queuing, batch bodies, routing, latency weights.

A request's messages are queued as one chunk and batches are cut across chunk boundaries; these tests
check that what comes out (order, counts, bodies, spool entries, histogram) is what a plain
one-entry-per-message queue gives.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.config import Faults, parse_config
from sandbox.delivery import DestinationQueue, Router, batch_body, chunk_entries
from sandbox.faults import FaultInjector
from sandbox.metrics import LatencyHistogram, Stats


def make_queue(name: str = "d", batch_size: int = 1, faults: dict | None = None) -> DestinationQueue:
    cfg = parse_config(
        {
            "sources": [{"name": "web", "write_key": "k"}],
            "destinations": [
                {"name": name, "url": "http://127.0.0.1:9/", "secret": "s", "batch_size": batch_size}
            ],
            "faults": faults or {},
        }
    )
    return DestinationQueue(
        cfg.destinations[0], cfg.delivery, Stats(), FaultInjector(cfg.faults, seed=1), seed=1
    )


def body(i: int) -> bytes:
    return json.dumps({"messageId": f"m-{i}"}).encode()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=12),  # messages per request
    st.lists(st.integers(1, 9), min_size=1, max_size=30),  # sizes of successive takes
)
def test_take_cuts_batches_across_chunks_in_order(requests, takes):
    q = make_queue()
    expected: list[tuple[bytes, float]] = []
    n = 0
    for r, count in enumerate(requests):
        bodies = [body(n + j) for j in range(count)]
        q.enqueue_many(bodies, 1000.0 + r)
        expected.extend((b, 1000.0 + r) for b in bodies)
        n += count
    assert q.queued == n and q.depth()[0] == n
    got: list[tuple[bytes, float]] = []
    for size in takes:
        chunks = q._take(size)
        entries = chunk_entries(chunks)
        assert len(entries) == min(size, n - len(got))
        if chunks:
            assert json.loads(batch_body(chunks)) == [json.loads(b) for b, _ in entries]
        got.extend(entries)
        assert q.queued == n - len(got)
    # what is left comes out in order too, also after a partly taken head chunk is put back
    rest = q._take(3)
    q._put_back(rest)
    assert q.queued == n - len(got)
    got.extend(chunk_entries(q._take(n)))
    assert got == expected and q.queued == 0 and not q.queue


def test_shared_request_list_is_never_mutated():
    a, b = make_queue("a"), make_queue("b")
    bodies = [body(i) for i in range(5)]
    a.enqueue_many(bodies, 1.0)
    b.enqueue_many(bodies, 1.0)
    assert chunk_entries(a._take(2)) == [(bodies[0], 1.0), (bodies[1], 1.0)]
    assert bodies == [body(i) for i in range(5)]
    assert [e[0] for e in chunk_entries(b._take(5))] == bodies


def test_stop_returns_inflight_delayed_and_queued_messages_in_order():
    async def run() -> tuple[list[tuple[bytes, float]], dict]:
        q = make_queue(
            faults={"destinations": {"d": {"delay": {"share": 1.0, "kind": "fixed", "seconds": 60}}}}
        )
        q.enqueue(body(0), 5.0)  # delayed by the fault
        q.faults.faults = Faults()  # faults off from here on
        q.enqueue_many([body(1), body(2), body(3)], 6.0)
        q.inflight[0] = q._take(2)
        left = await q.stop(0.1)
        return left, dict(q.stats.enqueued)

    left, enqueued = asyncio.run(run())
    assert left == [(body(1), 6.0), (body(2), 6.0), (body(0), 5.0), (body(3), 6.0)]
    assert enqueued == {"d": 4}


def test_duplicate_fault_queues_two_copies():
    q = make_queue(faults={"destinations": {"d": {"duplicate": 1.0}}})
    q.enqueue_many([body(1), body(2)], 3.0)
    assert chunk_entries(q._take(10)) == [(body(1), 3.0)] * 2 + [(body(2), 3.0)] * 2
    assert q.stats.faults["duplicate", "d"] == 2 and q.stats.enqueued["d"] == 4


def test_restore_groups_spooled_entries_and_keeps_their_order():
    q = make_queue()
    entries = [(body(0), 1.0), (body(1), 1.0), (body(2), 2.0), (body(3), 1.0)]
    q.restore(entries)
    assert len(q.queue) == 3 and q.queued == 4
    assert q.stats.restored["d"] == 4
    assert chunk_entries(q._take(4)) == entries


def test_router_keeps_order_and_routes_each_message():
    qa, qb = make_queue("A"), make_queue("B")
    router = Router([qa, qb], ["web"])
    bodies = [body(i) for i in range(5)]
    integrations = [None, {"All": False, "B": True}, {"A": False}, {}, {"All": False, "A": {"x": 1}}]
    router.route_many("web", bodies, integrations, 1.0)
    assert [e[0] for e in chunk_entries(qa._take(9))] == [bodies[0], bodies[3], bodies[4]]
    assert [e[0] for e in chunk_entries(qb._take(9))] == [bodies[0], bodies[1], bodies[2], bodies[3]]
    router.route_many("web", bodies, None, 2.0)  # no message has integrations: the same list everywhere
    assert qa.queue[0][0] is bodies and qb.queue[0][0] is bodies


def test_weighted_latency_equals_repeated_observations():
    seconds = np.array([0.001, 0.02, 0.3, 7.0, 20_000.0])
    weights = np.array([3, 1, 500, 2, 4])
    weighted, repeated = LatencyHistogram(), LatencyHistogram()
    weighted.observe_many("d", seconds, weights)
    repeated.observe_many("d", np.repeat(seconds, weights))
    assert weighted.counts["d"].tolist() == repeated.counts["d"].tolist()
    assert abs(weighted.sums["d"] - repeated.sums["d"]) < 1e-6
    assert weighted.counts["d"].dtype == np.int64
