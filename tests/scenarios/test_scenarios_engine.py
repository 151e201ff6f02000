"""The sending engine against real servers on loopback: framing, failures, retries, stop, connections."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import gevent
import pytest

from harness.engine import Attempt, Outcome, SendingEngine
from harness.ingest_client import Target
from harness.processes import free_port
from loadgen.libraries import RetryOn, RetryPolicy
from loadgen.traffic import PreparedRequest
from tests.support.scripted_server import request

pytestmark = pytest.mark.e2e


class ListFeed:
    """Sends the given requests, one slot each, every slot due at once; keeps every answer."""

    def __init__(self, requests: list[PreparedRequest], follow_ups: dict[str, PreparedRequest] | None = None):
        self.queue = list(requests)
        self.follow_ups = follow_ups or {}
        self.attempts: list[Attempt] = []
        self.outcomes: list[Outcome] = []
        self.batches = 0

    def next_due(self, source: str, now: float) -> float:
        return now if self.queue else now + 3600

    def take(self, source: str, now: float) -> tuple[float, PreparedRequest]:
        return now, self.queue.pop(0)

    def follow_up(self, request: PreparedRequest) -> PreparedRequest | None:
        return self.follow_ups.pop(request.path, None)

    def record(self, attempts: list[Attempt], outcomes: list[Outcome]) -> None:
        self.batches += 1
        self.attempts += attempts
        self.outcomes += outcomes


def run_engine(url: str, feed: ListFeed, *, connections: int = 1, policy: RetryPolicy | None = None,
               timeout: float = 10.0, until: int | None = None) -> SendingEngine:  # fmt: skip
    """Send everything in `feed` and stop once `until` outcomes (all of them by default) are in."""
    until = len(feed.queue) if until is None else until
    engine = SendingEngine(Target(url), feed, {"http": policy}, network_timeout=timeout)
    for _ in range(connections):
        engine.attach("http")
    engine.start()
    deadline = time.monotonic() + 20
    while len(feed.outcomes) < until and time.monotonic() < deadline:
        gevent.sleep(0.01)
    engine.stop()
    return engine


@pytest.mark.parametrize(
    ("path", "status", "length"),
    [("/plain", 200, 17), ("/chunked", 200, 17), ("/close-delimited", 200, 17), ("/http10", 200, 17),
     ("/no-content", 204, 0)],
)  # fmt: skip
def test_every_response_framing_is_read_to_its_end(scripted: str, path: str, status: int, length: int):
    feed = ListFeed([request(path) for _ in range(3)])  # in turn on one connection, kept or reopened
    run_engine(scripted, feed)
    assert [(a.status, a.body_length, a.error) for a in feed.attempts] == [(status, length, "")] * 3
    assert [o.status for o in feed.outcomes] == [status] * 3


def test_many_connections_and_a_large_body_each_get_their_own_answer(scripted: str):
    large = request("/echo-head", body=b"x" * 4_000_000)  # far beyond one send(): written as it drains
    feed = ListFeed([large] + [request("/plain") for _ in range(200)])
    engine = run_engine(scripted, feed, connections=20)
    assert len(feed.attempts) == 201 and {a.status for a in feed.attempts} == {200}
    (echoed,) = [a for a in feed.attempts if a.request is large]
    assert echoed.body_length > 17  # the server echoed the head of the whole 4 MB request
    assert feed.batches < 201  # the answers came out in batches
    assert engine.in_flight == 0


def test_a_kept_alive_connection_the_server_dropped_is_reopened_once(scripted: str):
    feed = ListFeed([request("/stale") for _ in range(4)])
    run_engine(scripted, feed)
    assert [a.status for a in feed.attempts] == [200, 200, 200, 200]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/garbage", "ProtocolError: not an HTTP/1.x status line"),
        ("/extra-bytes", "ProtocolError: bytes after the response"),
        ("/early-hints", "ProtocolError: interim answer 103"),
    ],
)
def test_answers_that_cannot_be_framed_are_errors_not_crashes(scripted: str, path: str, error: str):
    feed = ListFeed([request(path), request("/plain")])
    run_engine(scripted, feed)
    bad, good = feed.attempts
    assert bad.status is None and bad.error.startswith(error), bad
    assert good.status == 200  # a fresh connection after the bad one


def test_no_answer_in_time_is_a_timeout_and_refused_is_an_error(scripted: str):
    feed = ListFeed([request("/slow"), request("/plain")])
    run_engine(scripted, feed, timeout=0.3)
    slow, plain = feed.attempts
    assert slow.status is None and slow.error == "TimeoutError: no answer in time"
    assert 0.3 <= slow.measured < 1.0 and plain.status == 200
    feed = ListFeed([request("/plain")])
    run_engine(f"http://127.0.0.1:{free_port()}", feed)
    assert feed.attempts[0].status is None and "ConnectionRefusedError" in feed.attempts[0].error


def test_retries_follow_the_library_policy_with_its_retry_header(scripted: str):
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=1.0, retry_on=RetryOn.NETWORK_429_5XX,
                         honours_retry_after=False)  # fmt: skip
    first = replace(request("/rate-limited"), retry_count_header="X-Retry-Count")
    feed = ListFeed([first])
    run_engine(scripted, feed, policy=policy)
    assert [(a.status, a.attempt, a.retried) for a in feed.attempts] == [
        (429, 0, True),
        (429, 1, True),
        (429, 2, False),
    ]
    assert [a.request.headers.get("X-Retry-Count") for a in feed.attempts] == [None, "1", "2"]
    assert feed.attempts[2].measured < feed.attempts[2].corrected + 1e-6  # from its own send
    assert feed.outcomes == [Outcome(first, 429)]  # one outcome, after the last attempt
    # a 4xx other than 429 is final for this library
    feed = ListFeed([request("/no-content")])
    run_engine(scripted, feed, policy=policy)
    assert len(feed.attempts) == 1


def test_stop_reads_the_answer_in_flight_and_gives_up_waiting_retries(scripted: str):
    """The engine stops at the test's end: an answer half-read is read whole and recorded."""
    feed = ListFeed([request("/split-slow")])
    engine = SendingEngine(Target(scripted), feed, {"http": None})
    engine.attach("http")
    engine.start()
    gevent.sleep(0.2)  # sent, and half the answer is in
    assert engine.in_flight == 1
    engine.stop()
    assert [(o.status) for o in feed.outcomes] == [200]
    policy = RetryPolicy(max_attempts=5, base_delay=30.0, max_delay=30.0)
    feed = ListFeed([request("/rate-limited")])
    engine = SendingEngine(Target(scripted), feed, {"http": policy})
    engine.attach("http")
    engine.start()
    while not feed.attempts:
        gevent.sleep(0.01)
    assert feed.attempts[0].retried and not feed.outcomes  # waiting 30 s to retry
    started = time.monotonic()
    engine.stop()
    assert time.monotonic() - started < 1 and feed.outcomes == [Outcome(feed.attempts[0].request, 429)]


def test_a_duplicate_slot_carries_its_follow_up_on_the_same_connection(scripted: str):
    duplicate = replace(request("/plain"), kind="duplicate")
    follow = request("/chunked")
    feed = ListFeed([duplicate], follow_ups={"/plain": follow})
    run_engine(scripted, feed, until=2)
    assert [o.request.path for o in feed.outcomes] == ["/plain", "/chunked"]
    assert feed.attempts[1].corrected >= feed.attempts[1].measured  # same intended time as its slot


def test_detached_connections_close_once_answered(tmp_path: Path, scripted: str):
    feed = ListFeed([request("/plain") for _ in range(10)])
    engine = SendingEngine(Target(scripted), feed, {"http": None})
    for _ in range(3):
        engine.attach("http")
    engine.start()
    try:
        while len(feed.outcomes) < 10:
            gevent.sleep(0.01)
        assert len(engine.lanes["http"].idle) == 3
        for _ in range(3):
            engine.detach("http")
        assert engine.lanes["http"].idle == []
        feed.queue.append(request("/plain"))
        gevent.sleep(0.1)
        assert len(feed.outcomes) == 10  # no connection left to send on
    finally:
        engine.stop()


def test_tls_targets_are_left_to_the_users_clients():
    with pytest.raises(ValueError, match="plain HTTP"):
        SendingEngine(Target("https://127.0.0.1:8443"), ListFeed([]), {"http": None})
