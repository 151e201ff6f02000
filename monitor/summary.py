"""The run summary served at `GET /api/summary`: its schema (typed, versioned) and its builder.

The scenarios, the end-of-run report and the CI gate read this document, so its shape is a
contract: fields are only ever added within a version; renaming or removing one bumps
`SUMMARY_VERSION`. All counts are exact (bitmap set algebra, not samples). Times are seconds,
except fields ending in `_ms` (Unix epoch milliseconds).

Field meanings, per destination (and summed in `totals`):
- `expected`: seqs the ingest accepted (per the ledger) from the sources that feed the destination.
- `delivered`: distinct seqs delivered (accepted by the monitor), whether expected or not.
- `delivered_expected`: distinct expected seqs delivered.
- `pending`: expected, not delivered, loss deadline not yet passed.
- `lost`: expected, not delivered, deadline (`sent_until_ms` watermark + `lost_after_seconds`)
  passed. Excludes seqs the monitor refused with a 4xx (correctly discarded), rejected and
  abandoned seqs.
- `late`: seqs first delivered after they had been counted lost (no longer in `lost`).
- `duplicates`: extra deliveries (arrivals − distinct seqs).
- `dedupe_leaks`: deliberate duplicate re-sends (ledger `duplicates`) delivered more than once.
- `rejected_delivered`: seqs the ingest rejected (4xx) that were delivered anyway.
- `abandoned_delivered`: abandoned seqs that were delivered (not an error: their outcome was unknown).
- `redelivered_after_400`: arrivals of messages this monitor had refused with a non-429 4xx
  (a pipeline must discard those, never retry them). These arrivals are not audited further.
- `refused_retry`: distinct seqs refused with 429/5xx; `refused_retry_redelivered`: those that came
  back (a correct pipeline brings them all back; the rest are in `lost` once due).
- `refused_400`: distinct seqs refused with a non-429 4xx.
- `out_of_order`: first deliveries whose seq is lower than the last one delivered for the same user
  (anonymousId, else userId) in the same stream.
- `latency_seconds`: arrival − send time in the id, over every arrival of ours the monitor answered
  200 (duplicates and redelivered-after-400 arrivals included, refused ones not); quantiles read
  from 32-bins-per-doubling histograms (each bin 2.2% wide, value = bin's upper edge).
- `lost_samples`: up to `lost_samples` lost messages (see `Audit.lost_ids` for how ids are rebuilt).
"""

from __future__ import annotations

from typing import TypedDict

from monitor.audit import Audit, CellStats, DestinationAudit
from monitor.canary import CanaryProber
from monitor.latency import LatencyHistogram
from monitor.probes import Prober

SUMMARY_FORMAT = "cdp-harness/monitor-summary"
SUMMARY_VERSION = 1


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


class DeliveryCounts(TypedDict):
    expected: int
    delivered: int
    delivered_expected: int
    pending: int
    lost: int
    late: int
    duplicates: int
    dedupe_leaks: int
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


class RunSummary(TypedDict):
    run: int
    name: str
    has_ledger: bool
    """False: deliveries of this run arrived but no ledger did (they count as foreign)."""
    streams: list[StreamSummary]
    all_final: bool
    destinations: dict[str, DestinationSummary]
    totals: DeliveryCounts


class ForeignSummary(TypedDict):
    foreign_ids: int
    """Events whose messageId is missing, not a string, or not one of ours."""
    unknown_run_deliveries: int
    """Arrivals with our id format for a run the monitor has no ledger for."""
    total: int


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


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def ratios(counts: DeliveryCounts | dict) -> Ratios:
    return Ratios(
        delivered=ratio(counts["delivered_expected"], counts["expected"]),
        lost=ratio(counts["lost"], counts["expected"]),
        duplicate=ratio(counts["duplicates"], counts["delivered"]),
    )


def _latency(hist: LatencyHistogram) -> LatencySummary:
    q = hist.quantiles()
    return LatencySummary(
        count=hist.count, p50=q["p50"], p90=q["p90"], p95=q["p95"], p99=q["p99"], max=q["max"]
    )


def _counts(stats: CellStats) -> DeliveryCounts:
    doc = {name: getattr(stats, name) for name in CellStats.__slots__}
    doc["ratios"] = ratios(doc)
    return DeliveryCounts(**doc)


def _destination(audit: Audit, dest: DestinationAudit, runs: list[int], samples: int) -> DestinationSummary:
    stats, hist = CellStats(), LatencyHistogram()
    lost: list[LostSample] = []
    for run in runs:
        stats.add(audit.stats(dest, run))
        if run in dest.latency:
            hist.merge(dest.latency[run])
        if len(lost) < samples:
            lost += audit.lost_ids(dest, run, samples - len(lost))  # type: ignore[arg-type]
    return DestinationSummary(**_counts(stats), latency_seconds=_latency(hist), lost_samples=lost)


def _total(parts: list[DeliveryCounts]) -> DeliveryCounts:
    stats = CellStats()
    for part in parts:
        stats.add(CellStats(**{name: part[name] for name in CellStats.__slots__}))  # type: ignore[literal-required]
    return _counts(stats)


def build_summary(
    audit: Audit,
    canary: CanaryProber | None,
    prober: Prober,
    *,
    run: int | None,
    lost_after_seconds: float,
    lost_samples: int,
    now_ms: int,
) -> Summary:
    """The summary of one run (or of every run the monitor has seen, when `run` is None)."""
    ledgered = set(audit.ledgers.runs)
    runs = sorted(audit.runs_seen()) if run is None else [run]
    # over all runs: only those with a ledger (the rest are foreign); a run asked for by id: always
    known = [r for r in runs if r in ledgered] if run is None else runs
    run_docs: list[RunSummary] = []
    unknown_run_deliveries = 0
    for r in runs:
        dests = {name: _destination(audit, d, [r], lost_samples) for name, d in audit.destinations.items()}
        ledger = audit.ledgers.runs.get(r)
        ledger_streams = ledger.streams if ledger else {}
        seen = set(ledger_streams)
        for d in audit.destinations.values():
            seen.update(stream for (cell_run, stream, _) in d.cells if cell_run == r)
        streams = []
        for stream in sorted(seen):
            s = ledger_streams.get(stream)
            streams.append(
                StreamSummary(
                    stream=stream,
                    deltas=s.deltas if s else 0,
                    final=s.final if s else False,
                    sent_until_ms=s.sent_until_ms if s else 0,
                    delivered_only=s is None,
                )
            )
        if ledger is None:
            unknown_run_deliveries += sum(d["arrivals"] for d in dests.values())
        run_docs.append(
            RunSummary(
                run=r,
                name=ledger.name if ledger else "",
                has_ledger=ledger is not None,
                streams=streams,
                all_final=bool(streams) and all(s["final"] for s in streams),
                destinations=dests,
                totals=_total(list(dests.values())),
            )
        )
    destinations = {
        name: _destination(audit, d, known, lost_samples) for name, d in audit.destinations.items()
    }
    foreign_ids = sum(d.foreign_ids for d in audit.destinations.values())
    canaries: dict[str, CanarySummary] = {}
    if canary is not None:
        for name, state in canary.states.items():
            canaries[name] = CanarySummary(
                sent=state.sent,
                send_errors=state.send_errors,
                settled=state.settled,
                delivered_within_sla=state.delivered_within_sla,
                availability=state.availability,
                sla_seconds=state.sla_ms / 1000.0,
                latency_seconds=_latency(state.latency),
            )
    probes = {
        t.name: ProbeSummary(
            url=t.url,
            success=r.success if r else None,
            status_code=r.status_code if r else None,
            duration_seconds=r.duration_seconds if r else None,
            checked_at_ms=r.checked_at_ms if r else None,
            error=r.error if r else None,
        )
        for t in prober.config.targets
        for r in [prober.results.get(t.name)]
    }
    return Summary(
        format=SUMMARY_FORMAT,
        version=SUMMARY_VERSION,
        generated_at_ms=now_ms,
        lost_after_seconds=lost_after_seconds,
        runs=run_docs,
        destinations=destinations,
        totals=_total(list(destinations.values())),
        receiver=ReceiverSummary(
            malformed_bodies=sum(d.malformed_bodies for d in audit.destinations.values()),
            malformed_items=sum(d.malformed_items for d in audit.destinations.values()),
            bad_signatures=sum(d.bad_signatures for d in audit.destinations.values()),
            foreign=ForeignSummary(
                foreign_ids=foreign_ids,
                unknown_run_deliveries=unknown_run_deliveries,
                total=foreign_ids + unknown_run_deliveries,
            ),
        ),
        canary=canaries,
        probes=probes,
    )
