"""The stream as the sending engine's `Feed`: its pacers say when, its traffic model says what.

Slots follow each source's pacer on the load shape's rate (missed sends counted as the users
counted them), the requests come from the traffic model as they are due, and the engine's batches
of answers are accounted with `harness.outcomes`, as a user's own answers are.
"""

from __future__ import annotations

from harness.engine import Attempt, Outcome, SendingEngine
from harness.ingest_client import Target
from harness.outcomes import record_attempt, record_outcome
from harness.stream import Stream
from loadgen.traffic import PreparedRequest


class StreamFeed:
    """Feeds one stream's traffic to a `SendingEngine` and accounts its answers."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._pacers = stream.pacers
        self._generator = stream.generator
        self._rate = 0.0
        self._rate_at = -1.0

    def _rate_now(self, now: float) -> float:
        if now - self._rate_at > 0.01:  # the shape's rate, taken at most every 10 ms
            self._rate, self._rate_at = self.stream.rate_now(), now
        return self._rate

    def next_due(self, source: str, now: float) -> float:
        next_at = self._pacers[source].next_at
        return now if next_at is None else next_at

    def take(self, source: str, now: float) -> tuple[float, PreparedRequest]:
        intended, missed = self._pacers[source].take(now, self._rate_now(now), self.stream.options.max_lag)
        if missed:
            self.stream.stats.record_missed(source, missed)
        return intended, self._generator.next_request(source)

    def follow_up(self, request: PreparedRequest) -> PreparedRequest | None:
        # A re-send rides on top of the schedule, as an SDK's retry does not stop new events:
        # the slot still carries the source's new traffic.
        return self._generator.next_request(request.source) if request.kind == "duplicate" else None

    def record(self, attempts: list[Attempt], outcomes: list[Outcome]) -> None:
        stream = self.stream
        for a in attempts:
            if a.retried:
                stream.stats.record_retry(a.request.source, a.request.library)
            record_attempt(
                stream, a.request, a.status, a.error, a.body_length, a.measured, a.corrected, a.attempt
            )
        for request, status in outcomes:
            record_outcome(stream, request, status)


def start_engine(stream: Stream, host: str) -> SendingEngine | None:
    """The stream's engine against `host`, started; None for a TLS target (its users send themselves)."""
    target = Target(host)
    if target.tls:
        return None
    generator = stream.generator
    policies = {source: generator.library_of(source).retry for source in stream.pacers}
    engine = SendingEngine(target, StreamFeed(stream), policies)
    engine.start()
    return engine
