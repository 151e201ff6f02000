"""What one answer means for a stream: its statistics, Locust's statistics, the ledger, the traffic model.

Shared by both ways of sending (the engine's batches and a user's own client), so an answer is
accounted the same way whichever sent it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.stats import bad_input_outcome
from loadgen.traffic import PreparedRequest

if TYPE_CHECKING:
    from harness.stream import Stream


def record_attempt(
    stream: Stream, request: PreparedRequest, status: int | None, error: str, body_length: int,
    measured: float, corrected: float, attempt: int,
) -> None:  # fmt: skip
    """Latency, counts and Locust's statistics for one attempt (`request` as sent on that attempt)."""
    stats = stream.stats
    if attempt == 0 and request.call_types:
        stats.record_call_types(request.source, request.library, request.call_types)
    stats.record_request(
        source=request.source,
        library=request.library,
        kind=request.kind,
        messages=request.message_count if attempt == 0 else 0,
        body_bytes=len(request.body),
        status=status,
        measured=measured,
        corrected=corrected,
    )
    if request.kind == "bad":
        name = f"{request.path} (bad: {request.bad_case})"
        failure = (
            None
            if status == request.expected_status
            else f"expected HTTP {request.expected_status}, got {status}"
        )
    else:
        name = f"{request.path} ({request.library})"
        failure = None if status is not None and 200 <= status < 300 else (error or f"HTTP {status}")
    stream.request_log.record(name, measured * 1000, body_length, failure)


def record_outcome(stream: Stream, request: PreparedRequest, status: int | None) -> None:
    """The ledger and the traffic model learn a request's last answer, after every retry."""
    ledger = stream.ledger
    sent_ms = request.sent_ms
    if request.kind == "duplicate":
        ledger.record_duplicates(request.seqs)
    if request.kind == "bad":
        stream.stats.record_bad_input(request.bad_case or "", bad_input_outcome(status, request.expected_status))
    accepted: list[int] | range = []
    if status is not None and 200 <= status < 300:
        rejected = set(request.rejected_seqs) if request.rejected_seqs else ()
        accepted = request.seqs if not rejected else [s for s in request.seqs if s not in rejected]
        if accepted:
            ledger.record_accepted(request.source, accepted, sent_ms)
            if request.kind != "duplicate":
                stream.stats.record_accepted(request.source, len(accepted))
        if rejected:
            ledger.record_rejected(sorted(rejected), sent_ms)
    elif status is not None and 400 <= status < 500 and status != 429:
        if request.seqs:
            ledger.record_rejected(request.seqs, sent_ms)
            if request.kind not in ("bad", "duplicate"):
                stream.stats.record_refused(request.source, status, request.message_count)
    elif request.seqs:
        ledger.record_abandoned(request.seqs, sent_ms)
    stream.generator.on_answer(request, status, accepted)
