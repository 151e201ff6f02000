"""`SourceUser`: a Locust User that sends one source's traffic exactly as its client library does.

Each user is one connection; the users of a source share an open-model schedule (k6's
constant-arrival-rate): intended send times advance at the source's share of the target rate
whatever the answers' latency, so latency is reported both as measured and from the intended time
(wrk2's coordinated-omission correction). A send more than `--max-lag` behind is dropped and
counted as missed (k6's dropped iterations). Retries follow the library's policy with the same messageIds,
and every outcome lands in the stream's sent ledger.

Against a plain-HTTP target the user hands its connection to the worker's sending engine
(`harness.engine`), which sends the source's slots in one loop for all users; against TLS it sends
its own slots with its own client, one task per due slot.
"""

from __future__ import annotations

import time
from typing import ClassVar

import gevent
from gevent import GreenletExit
from locust import User, task

from harness.ingest_client import Answer, IngestClient
from harness.outcomes import record_attempt, record_outcome
from harness.plugin import Harness
from harness.stream import Stream
from loadgen.traffic import PreparedRequest

MAX_BURST = 20
ENGINE_USER_WAIT = 1.0
"""Seconds a user whose connection the engine drives waits between its (empty) tasks."""


def stream_of(environment) -> Stream:
    stream = Harness.of(environment).stream
    if stream is None:
        raise RuntimeError("the harness stream is not set up: load scenarios with `locust -f scenarios`")
    return stream


class SourceUser(User):
    """Sends the traffic of `source` (a source named in the profile)."""

    abstract = True
    source: ClassVar[str]

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.stream = stream_of(environment)
        self.pacer = self.stream.pacers[self.source]
        self.library = self.stream.generator.library_of(self.source)
        self.engine = self.stream.engine
        self.client = IngestClient(environment.host)
        self.intended: float | None = None
        self._attempt_started = 0.0

    def on_start(self) -> None:
        self.pacer.users_here += 1
        if self.engine is not None:
            self.engine.attach(self.source)

    def on_stop(self) -> None:
        self.pacer.users_here -= 1
        if self.engine is not None:
            self.engine.detach(self.source)
        self.client.close()

    def wait_time(self) -> float:
        """Locust sleeps this long between tasks (interruptibly): until the slot this user holds."""
        if self.engine is not None:
            return ENGINE_USER_WAIT
        return max(0.0, self.intended - time.monotonic()) if self.intended is not None else 0.0

    @task
    def send_due(self) -> None:
        """Send every slot that is due, back to back; Locust's wait() then sleeps until the next one.

        Up to MAX_BURST sends per task, so a user far behind still returns to Locust's loop often
        enough to stop when told to. With the engine, it sends this user's slots instead.
        """
        if self.engine is not None:
            return
        for _ in range(MAX_BURST):
            if self.intended is None:
                max_lag = self.stream.options.max_lag
                self.intended, missed = self.pacer.take(time.monotonic(), self.stream.rate_now(), max_lag)
                if missed:
                    self.stream.stats.record_missed(self.source, missed)
            if self.intended > time.monotonic():
                return
            intended, self.intended = self.intended, None
            request = self.stream.generator.next_request(self.source)
            self.send(request, intended)
            # A re-send rides on top of the schedule, as an SDK's retry does not stop new events:
            # the slot still carries the source's new traffic.
            while request.kind == "duplicate":
                request = self.stream.generator.next_request(self.source)
                self.send(request, intended)

    def send(self, request: PreparedRequest, intended: float) -> None:
        """Send one request, retrying as the library does, and record what happened."""
        policy = self.library.retry
        attempt = 0
        answer: Answer | None = None
        try:
            answer = self._send_once(request, intended, attempt)
            # A bad-input request answered 5xx is a target error, not overload: never retried.
            retries = request.kind != "bad"
            while retries and policy.should_retry(answer.status) and attempt + 1 < policy.max_attempts:
                attempt += 1
                self.stream.stats.record_retry(request.source, request.library)
                gevent.sleep(policy.delay(attempt, answer.retry_after))
                answer = None
                answer = self._send_once(request.for_retry(attempt), time.monotonic(), attempt)
        except GreenletExit:
            # Locust kills a stopping user asynchronously, so the kill can land after the user woke
            # and sent: read the answer in flight first, or the ingest's accepting it goes unrecorded.
            if self.client.awaiting_answer:
                answer = self.client.finish()
                self._account_attempt(request, answer, self._attempt_started, intended, attempt)
            raise
        finally:
            if answer is not None:
                self._record_outcome(request, answer)

    def _send_once(self, request: PreparedRequest, intended: float, attempt: int) -> Answer:
        started = self._attempt_started = time.monotonic()
        answer = self.client.send(request)
        self._account_attempt(request, answer, started, intended, attempt)
        return answer

    def _account_attempt(
        self, request: PreparedRequest, answer: Answer, started: float, intended: float, attempt: int
    ) -> None:
        """Latency, counts and Locust's statistics for one attempt."""
        finished = time.monotonic()
        record_attempt(self.stream, request, answer.status, answer.error, len(answer.body),
                       finished - started, finished - intended, attempt)  # fmt: skip

    def _record_outcome(self, request: PreparedRequest, answer: Answer) -> None:
        record_outcome(self.stream, request, answer.status)
