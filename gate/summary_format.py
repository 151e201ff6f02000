"""The run-summary formats: the CI gate reads them, the harness and the monitor write them.

`RUN_SUMMARY_FORMAT` is the whole run's document (`reports/<run>/summary.json`: the load half
written by the harness plus the delivery half below). The delivery half is what the monitor serves
at `GET /api/summary`; its schema follows.

The load half (`load`) counts, per source (`load.by_source`) and in total: `accepted` (messages the
ingest accepted on their first send), `refused` and `refused_by_answer` (valid messages, not
bad-input ones, that the ingest refused for good with a non-429 4xx, by status code), and
`bad_inputs` (bad-input requests by outcome: `expected`; `lenient`, the ingest accepted it;
`error`, 5xx or no answer, never retried; `unexpected`; and the same per case in `by_case`).

The scenarios, the end-of-run report and the CI gate read this document, so its shape is a
contract: fields are only ever added within a version; renaming or removing one bumps
the version. All counts are exact (bitmap set algebra, not samples). Times are seconds,
except fields ending in `_ms` (Unix epoch milliseconds).

Field meanings, per destination (and summed in `totals`):
- `expected`: seqs the ingest accepted (per the ledger) from the sources that feed the destination.
- `delivered`: distinct seqs delivered (accepted by the monitor), whether expected or not.
- `delivered_expected`: distinct expected seqs delivered.
- `pending`: expected, not delivered, loss deadline not yet passed.
- `lost`: expected, not delivered, deadline (`sent_until_ms` watermark + `lost_after_seconds`)
  passed. Excludes seqs the monitor refused with a 4xx (correctly discarded), rejected and
  abandoned seqs. At the end of a run's delivery wait it is what never arrived; the harness waits
  until every message is delivered or past its deadline, so a drop is never left as `pending`.
- `late`: seqs first delivered after their loss deadline had passed (counted lost, then arrived:
  no longer in `lost`). Late, lost and pending are disjoint.
- Which send a delivered copy came from: every send of a message carries its own `sentAt` (client
  libraries stamp it on each send and keep the messageId on a retry or re-send; pipelines keep it
  on the delivered event), and our messageIds carry the first send's time. A copy whose `sentAt`
  equals the send time in its messageId, or that has no `sentAt`, is of the first send; a copy
  with another `sentAt` is of a later send (`monitor.copies`).
- `duplicates`: the pipeline delivering one send twice: arrivals of a (seq, send) already
  delivered. `arrivals = delivered + dedupe_leaks − later_send_only + duplicates`
  (refused-then-redelivered arrivals aside).
- `dedupe_leaks`: distinct seqs delivered from a later send: a re-send (same messageId, new
  `sentAt`) that got past the dedupe. A pipeline that drops `sentAt` shows none (its re-sends
  count as duplicates); several later sends of one seq count once.
- `later_send_only`: of those, seqs whose first send's copy has not arrived (the pipeline lost it,
  or it is still on its way). When this is most of `delivered`, the pipeline does not keep the
  first send's `sentAt` (it rewrites it) and `dedupe_leaks` means nothing: the verdict says so.
- `rejected_delivered`: seqs the ingest rejected (4xx) that were delivered anyway.
- `abandoned_delivered`: abandoned seqs that were delivered (not an error: their outcome was unknown).
- `redelivered_after_400`: arrivals of messages this monitor had refused with a non-429 4xx
  (a pipeline must discard those, never retry them). These arrivals are not audited further.
- `refused_retry`: distinct seqs refused with 429/5xx; `refused_retry_redelivered`: those that came
  back (a correct pipeline brings them all back; the rest are in `lost` once due).
- `refused_400`: distinct seqs refused with a non-429 4xx.
- `out_of_order`: first deliveries whose seq is lower than the last one delivered for the same user
  (anonymousId, else userId) in the same stream, i.e. delivered before an earlier message of the
  same user and source; `ratios.out_of_order` = out_of_order ÷ delivered.
- `latency_seconds`: arrival − send time in the id, over every arrival of ours the monitor answered
  200 (duplicates and redelivered-after-400 arrivals included, refused ones not); quantiles read
  from 32-bins-per-doubling histograms (each bin 2.2% wide, value = bin's upper edge).
- `lost_samples`: up to `lost_samples` lost messages (see `Audit.lost_ids` for how ids are rebuilt);
  lost registered foreign ids come after them with their original string, `"foreign": true`,
  `stream` and `seq` null and `sent_ms` their registered send time (null if none was given).

Registered foreign ids (`harness ledger`, `monitor/foreign.py`) count in their run's figures like
the harness's own; `late` and `duplicates` work the same, while the ledger-only figures (rejected,
abandoned, dedupe leaks, refusals, order) cover harness ids only.
"""

from __future__ import annotations

from typing import TypedDict

RUN_SUMMARY_FORMAT = "cdp-harness/run-summary"
RUN_SUMMARY_VERSION = 1
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "max": 1.0}
"""The latency aggregations a summary carries and a threshold may name."""
ERROR_CLASSES = ("5xx", "429", "error")
"""The answer classes that count as errors: server errors, throttling, transport failures."""

MONITOR_SUMMARY_FORMAT = "cdp-harness/monitor-summary"
MONITOR_SUMMARY_VERSION = 1


class LatencySummary(TypedDict):
    count: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None


class LostSample(TypedDict):
    message_id: str
    run: int
    stream: int
    seq: int
    sent_until_ms: int


class Ratios(TypedDict):
    delivered: float | None
    """delivered_expected ÷ expected."""
    lost: float | None
    """lost ÷ expected."""
    duplicate: float | None
    """duplicates ÷ delivered."""
    late: float | None
    """late ÷ expected."""
    pending: float | None
    """pending ÷ expected."""
    out_of_order: float | None
    """out_of_order ÷ delivered."""


class DeliveryCounts(TypedDict):
    expected: int
    delivered: int
    delivered_expected: int
    pending: int
    lost: int
    late: int
    duplicates: int
    dedupe_leaks: int
    later_send_only: int
    rejected_delivered: int
    abandoned_delivered: int
    redelivered_after_400: int
    refused_retry: int
    refused_retry_redelivered: int
    refused_400: int
    out_of_order: int
    arrivals: int
    ratios: Ratios


class DestinationSummary(DeliveryCounts):
    latency_seconds: LatencySummary
    lost_samples: list[LostSample]


class StreamSummary(TypedDict):
    stream: int
    deltas: int
    final: bool
    """Whether this stream's final ledger delta (sent when the stream stopped) arrived."""
    sent_until_ms: int
    delivered_only: bool
    """True: deliveries of this stream arrived but none of its ledger deltas did (yet)."""


class ForeignRunSummary(TypedDict):
    registered: int
    """Distinct foreign ids registered for this run (`POST /api/foreign`)."""
    posts: int
    duplicate_registrations: int
    final: bool


class RunSummary(TypedDict):
    run: int
    name: str
    has_ledger: bool
    """False: deliveries of this run arrived but no ledger did (they count as foreign)."""
    streams: list[StreamSummary]
    all_final: bool
    destinations: dict[str, DestinationSummary]
    totals: DeliveryCounts
    foreign: ForeignRunSummary | None
    """Registered foreign ids of this run; None when none were registered."""


class ForeignSummary(TypedDict):
    foreign_ids: int
    """Events whose messageId is missing, not a string, or not one of ours (registered ones included)."""
    registered_arrivals: int
    """Those of them that were registered for a run (and are audited in it)."""
    unclaimed: dict[str, dict[str, int]]
    """Per destination: unregistered foreign arrivals kept for a later registration, and beyond the cap."""
    unknown_run_deliveries: int
    """Arrivals with our id format for a run the monitor has no ledger for."""
    total: int
    """Arrivals audited in no run: foreign_ids - registered_arrivals + unknown_run_deliveries."""


class ReceiverSummary(TypedDict):
    malformed_bodies: int
    malformed_items: int
    bad_signatures: int
    foreign: ForeignSummary


class CanarySummary(TypedDict):
    sent: int
    send_errors: int
    settled: int
    """Canaries whose SLA has passed (the availability denominator)."""
    delivered_within_sla: int
    availability: float | None
    sla_seconds: float
    latency_seconds: LatencySummary


class ProbeSummary(TypedDict):
    url: str
    success: bool | None
    status_code: int | None
    duration_seconds: float | None
    checked_at_ms: int | None
    error: str | None


class Summary(TypedDict):
    format: str
    version: int
    generated_at_ms: int
    lost_after_seconds: float
    runs: list[RunSummary]
    destinations: dict[str, DestinationSummary]
    """Per destination, over the runs in `runs` that have a ledger (or over the one run asked for)."""
    totals: DeliveryCounts
    receiver: ReceiverSummary
    canary: dict[str, CanarySummary]
    probes: dict[str, ProbeSummary]
