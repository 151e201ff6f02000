"""Builds the monitor's half of the run summary (`GET /api/summary`); its schema is `gate.summary_format`."""

from __future__ import annotations

from gate.summary_format import (
    MONITOR_SUMMARY_FORMAT,
    MONITOR_SUMMARY_VERSION,
    CanarySummary,
    DeliveryCounts,
    DestinationSummary,
    ForeignRunSummary,
    ForeignSummary,
    LatencySummary,
    LostSample,
    ProbeSummary,
    Ratios,
    ReceiverSummary,
    RunSummary,
    StreamSummary,
    Summary,
)
from monitor.audit import Audit, CellStats, DestinationAudit
from monitor.canary import CanaryProber
from monitor.latency import LatencyHistogram
from monitor.probes import Prober


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def ratios(counts: DeliveryCounts | dict) -> Ratios:
    return Ratios(
        delivered=ratio(counts["delivered_expected"], counts["expected"]),
        lost=ratio(counts["lost"], counts["expected"]),
        duplicate=ratio(counts["duplicates"], counts["delivered"]),
        late=ratio(counts["late"], counts["expected"]),
        pending=ratio(counts["pending"], counts["expected"]),
        out_of_order=ratio(counts["out_of_order"], counts["delivered"]),
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
    foreign_runs = audit.foreign.runs if audit.foreign is not None else {}
    ledgered = set(audit.ledgers.runs) | set(foreign_runs)
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
            seen.update(stream for stream, _ in d.by_run.get(r, ()))
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
        foreign = foreign_runs.get(r)
        if ledger is None and foreign is None:
            unknown_run_deliveries += sum(d["arrivals"] for d in dests.values())
        run_docs.append(
            RunSummary(
                run=r,
                name=(ledger.name if ledger else "") or (foreign.name if foreign else ""),
                has_ledger=ledger is not None or foreign is not None,
                streams=streams,
                all_final=bool(streams or foreign)
                and all(s["final"] for s in streams)
                and (foreign is None or foreign.final),
                destinations=dests,
                totals=_total(list(dests.values())),
                foreign=ForeignRunSummary(
                    registered=foreign.size,
                    posts=foreign.registrations,
                    duplicate_registrations=foreign.duplicate_registrations,
                    final=foreign.final,
                )
                if foreign
                else None,
            )
        )
    destinations = {
        name: _destination(audit, d, known, lost_samples) for name, d in audit.destinations.items()
    }
    foreign_ids = sum(d.foreign_ids for d in audit.destinations.values())
    registered_arrivals = sum(c.arrivals for f in foreign_runs.values() for c in f.cells.values())
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
        format=MONITOR_SUMMARY_FORMAT,
        version=MONITOR_SUMMARY_VERSION,
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
                registered_arrivals=registered_arrivals,
                unclaimed=audit.foreign.unclaimed() if audit.foreign is not None else {},
                unknown_run_deliveries=unknown_run_deliveries,
                total=foreign_ids - registered_arrivals + unknown_run_deliveries,
            ),
        ),
        canary=canaries,
        probes=probes,
    )
