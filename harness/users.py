"""`SourceUser`: a Locust User that sends one source's traffic exactly as its client library does.

Each user is one connection; the users of a source share an open-model schedule (k6's
constant-arrival-rate): intended send times advance at the source's share of the target rate
whatever the answers' latency, so latency is reported both as measured and from the intended time
(wrk2's coordinated-omission correction). A send more than `--max-lag` behind is dropped and
counted as missed (k6's dropped iterations). Retries follow the library's policy with the same messageIds,
and every outcome lands in the stream's sent ledger.
"""

from __future__ import annotations

import time
from typing import ClassVar

import gevent
from gevent import GreenletExit
from locust import User, task

from harness.ingest_client import Answer, IngestClient
from harness.plugin import Harness
from harness.stats import bad_input_outcome
from harness.stream import Stream
from loadgen.traffic import PreparedRequest

MAX_BURST = 20


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
        self.client = IngestClient(environment.host)
        self.intended: float | None = None
        self._attempt_started = 0.0

    def on_start(self) -> None:
        self.pacer.users_here += 1

    def on_stop(self) -> None:
        self.pacer.users_here -= 1
        self.client.close()

    def wait_time(self) -> float:
        """Locust sleeps this long between tasks (interruptibly): until the slot this user holds."""
        return max(0.0, self.intended - time.monotonic()) if self.intended is not None else 0.0

    @task
    def send_due(self) -> None:
        """Send every slot that is due, back to back; Locust's wait() then sleeps until the next one.

        Up to MAX_BURST sends per task, so a user far behind still returns to Locust's loop often
        enough to stop when told to.
        """
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
        measured = finished - started
        if attempt == 0 and request.call_types:
            self.stream.stats.record_call_types(request.source, request.library, request.call_types)
        self.stream.stats.record_request(
            source=request.source,
            library=request.library,
            kind=request.kind,
            messages=request.message_count if attempt == 0 else 0,
            body_bytes=len(request.body),
            status=answer.status,
            measured=measured,
            corrected=finished - intended,
        )
        if request.kind == "bad":
            name = f"{request.path} (bad: {request.bad_case})"
            failure = (
                None
                if answer.status == request.expected_status
                else f"expected HTTP {request.expected_status}, got {answer.status}"
            )
        else:
            name = f"{request.path} ({request.library})"
            failure = (
                None
                if answer.status is not None and 200 <= answer.status < 300
                else (answer.error or f"HTTP {answer.status}")
            )
        self.stream.request_log.record(name, measured * 1000, len(answer.body), failure)

    def _record_outcome(self, request: PreparedRequest, answer: Answer) -> None:
        ledger, status = self.stream.ledger, answer.status
        sent_ms = request.sent_ms
        if request.kind == "duplicate":
            ledger.record_duplicates(request.seqs)
        if request.kind == "bad":
            outcome = bad_input_outcome(status, request.expected_status)
            self.stream.stats.record_bad_input(request.bad_case or "", outcome)
        accepted: list[int] | range = []
        if status is not None and 200 <= status < 300:
            rejected = set(request.rejected_seqs) if request.rejected_seqs else ()
            accepted = request.seqs if not rejected else [s for s in request.seqs if s not in rejected]
            if accepted:
                ledger.record_accepted(request.source, accepted, sent_ms)
                if request.kind != "duplicate":
                    self.stream.stats.record_accepted(request.source, len(accepted))
            if rejected:
                ledger.record_rejected(sorted(rejected), sent_ms)
        elif status is not None and 400 <= status < 500 and status != 429:
            if request.seqs:
                ledger.record_rejected(request.seqs, sent_ms)
                if request.kind not in ("bad", "duplicate"):
                    self.stream.stats.record_refused(request.source, status, request.message_count)
        elif request.seqs:
            ledger.record_abandoned(request.seqs, sent_ms)
        self.stream.generator.on_answer(request, status, accepted)
