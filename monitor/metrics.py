"""`/metrics`: the monitor's state as `monitor_*` Prometheus families, built at scrape time.

A custom collector reads the audit's own counters and histograms when scraped, so the hot path
never touches a prometheus_client metric (no lock or per-message call per delivery). Labels are
bounded: destination, probe target, status code and reason, and `run` only for the
`metrics_runs` most recent runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from monitor.latency import LatencyHistogram

if TYPE_CHECKING:
    from monitor.app import Monitor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_CELL_COUNTERS = (
    ("arrivals", "monitor_delivery_arrivals", "Audited message arrivals (refused ones excluded)."),
    ("duplicate_deliveries", "monitor_duplicate_deliveries", "Extra arrivals of one send of a seq."),
    ("late", "monitor_late_deliveries", "First deliveries that came after their loss deadline."),
    ("out_of_order", "monitor_out_of_order_deliveries", "First deliveries older than the user's last."),
    (
        "redelivered_after_discard",
        "monitor_redelivered_after_400",
        "Arrivals of messages the monitor had refused with a non-429 4xx (must never be retried).",
    ),
    ("refused_arrivals", "monitor_refused_arrivals", "Message arrivals the monitor refused on purpose."),
)

_RUN_GAUGES = (
    ("expected", "monitor_run_expected_messages", "Seqs the ingest accepted for this destination."),
    ("delivered", "monitor_run_delivered_messages", "Distinct seqs delivered (expected or not)."),
    ("delivered_expected", "monitor_run_delivered_expected_messages", "Distinct expected seqs delivered."),
    ("pending", "monitor_run_pending_messages", "Expected seqs not yet delivered, deadline not passed."),
    ("lost", "monitor_run_lost_messages", "Expected seqs not delivered by their deadline."),
    ("late", "monitor_run_late_messages", "Seqs first delivered after their loss deadline (not lost)."),
    (
        "out_of_order",
        "monitor_run_out_of_order_messages",
        "First deliveries before an earlier message of the user.",
    ),
    (
        "dedupe_leaks",
        "monitor_run_dedupe_leaks",
        "Seqs delivered from a later send (a re-send that passed dedupe).",
    ),
    ("rejected_delivered", "monitor_run_rejected_delivered_messages", "Rejected seqs delivered."),
)


def _histogram(name: str, doc: str, labels: list[str], series: dict[tuple[str, ...], LatencyHistogram]):
    family = HistogramMetricFamily(name, doc, labels=labels)
    for label_values, hist in series.items():
        family.add_metric(list(label_values), hist.cumulative_buckets(), hist.sum_ms / 1000.0)
    return family


class MonitorCollector:
    """Yields every `monitor_*` family from a `Monitor`'s current state."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        audit = m.audit
        dests = audit.destinations
        for attr, name, doc in _CELL_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["destination"])
            for dname, d in dests.items():
                family.add_metric([dname], sum(getattr(c, attr) for c in d.cells.values()))
            yield family
        delivered = CounterMetricFamily(
            "monitor_delivered_messages", "Distinct seqs delivered, over all runs.", labels=["destination"]
        )
        for dname, d in dests.items():
            delivered.add_metric([dname], sum(len(c.delivered) for c in d.cells.values()))
        yield delivered
        for attr, name, doc in (
            ("foreign_ids", "monitor_foreign_ids", "Events whose messageId is not one of ours."),
            ("malformed_bodies", "monitor_malformed_bodies", "Delivery bodies that could not be read."),
            ("malformed_items", "monitor_malformed_items", "Array items that were not JSON objects."),
            ("bad_signatures", "monitor_bad_signatures", "Deliveries with a missing or wrong X-Signature."),
        ):
            family = CounterMetricFamily(name, doc, labels=["destination"])
            for dname, d in dests.items():
                family.add_metric([dname], getattr(d, attr))
            yield family
        requests = CounterMetricFamily(
            "monitor_webhook_requests",
            "Webhook requests by answer.",
            labels=["destination", "code", "reason"],
        )
        refused = CounterMetricFamily(
            "monitor_refused_messages",
            "Messages refused on purpose, by behaviour.",
            labels=["destination", "reason"],
        )
        for dname, d in dests.items():
            for (status, reason), count in sorted(d.requests.items()):
                requests.add_metric([dname, str(status), reason], count)
            for reason, count in sorted(d.refused_messages.items()):
                refused.add_metric([dname, reason], count)
        yield requests
        yield refused

        latency: dict[tuple[str, ...], LatencyHistogram] = {}
        for dname, d in dests.items():
            merged = LatencyHistogram()
            for hist in d.latency.values():
                merged.merge(hist)
            latency[(dname,)] = merged
        yield _histogram(
            "monitor_delivery_latency_seconds",
            "End-to-end latency: arrival at the destination minus the send time in the messageId.",
            ["destination"],
            latency,
        )

        runs = m.recent_runs()
        gauges = {
            attr: GaugeMetricFamily(name, doc, labels=["run", "destination"])
            for attr, name, doc in _RUN_GAUGES
        }
        for run in runs:
            for dname, d in dests.items():
                stats = audit.stats(d, run)
                for attr, family in gauges.items():
                    family.add_metric([str(run), dname], getattr(stats, attr))
        yield from gauges.values()

        yield CounterMetricFamily("monitor_ledger_deltas", "Ledger deltas accepted.", value=m.ledger_deltas)
        yield CounterMetricFamily(
            "monitor_ledger_rejected",
            "Ledger posts refused (unreadable, out of range, over a bound).",
            value=m.ledger_errors,
        )
        yield GaugeMetricFamily(
            "monitor_ledger_memory_bytes",
            "Bytes held by the sent ledgers (bounded by max_ledger_bytes).",
            value=m.ledgers.nbytes,
        )
        yield GaugeMetricFamily(
            "monitor_audit_user_table_bytes",
            "Bytes of the per-user order tables (part of monitor_audit_memory_bytes).",
            value=audit.user_table_bytes(),
        )
        yield GaugeMetricFamily(
            "monitor_audit_memory_bytes",
            "Bytes held by audit bitmaps and per-user tables (estimate).",
            value=audit.memory_bytes(),
        )
        if audit.foreign is not None:
            foreign = GaugeMetricFamily(
                "monitor_foreign_memory_bytes",
                "Bytes held for registered foreign ids: audit state, kept id strings, unclaimed arrivals.",
                labels=["part"],
            )
            for part, value in audit.foreign.memory_bytes().items():
                foreign.add_metric([part], value)
            yield foreign
        yield from self._canary()
        yield from self._probes()

    def _canary(self) -> Iterator[Metric]:
        canary = self.monitor.canary
        if canary is None:
            return
        for attr, name, doc in (
            ("sent", "monitor_canary_sent", "Canaries sent through the ingest API."),
            ("send_errors", "monitor_canary_send_errors", "Canaries the ingest did not accept."),
            ("settled", "monitor_canary_settled", "Canaries whose SLA has passed."),
            ("delivered_within_sla", "monitor_canary_delivered_within_sla", "Canaries delivered in SLA."),
        ):
            family = CounterMetricFamily(name, doc, labels=["destination"])
            for dname, state in canary.states.items():
                family.add_metric([dname], getattr(state, attr))
            yield family
        availability = GaugeMetricFamily(
            "monitor_canary_availability_ratio",
            "Canaries delivered within SLA ÷ canaries settled.",
            labels=["destination"],
        )
        for dname, state in canary.states.items():
            if state.availability is not None:
                availability.add_metric([dname], state.availability)
        yield availability
        yield _histogram(
            "monitor_canary_latency_seconds",
            "End-to-end latency of canaries.",
            ["destination"],
            {(dname,): s.latency for dname, s in canary.states.items()},
        )

    def _probes(self) -> Iterator[Metric]:
        prober = self.monitor.prober
        success = GaugeMetricFamily(
            "monitor_probe_success", "1 if the last probe succeeded.", labels=["target"]
        )
        duration = GaugeMetricFamily(
            "monitor_probe_duration_seconds", "Duration of the last probe.", labels=["target"]
        )
        status = GaugeMetricFamily(
            "monitor_probe_http_status_code",
            "HTTP status of the last probe (0: no answer).",
            labels=["target"],
        )
        checks = CounterMetricFamily("monitor_probe_checks", "Probes run.", labels=["target"])
        failures = CounterMetricFamily("monitor_probe_failures", "Probes that failed.", labels=["target"])
        for name, result in prober.results.items():
            success.add_metric([name], float(result.success))
            duration.add_metric([name], result.duration_seconds)
            status.add_metric([name], float(result.status_code or 0))
        for name in prober.checks:
            checks.add_metric([name], prober.checks[name])
            failures.add_metric([name], prober.failures[name])
        yield from (success, duration, status, checks, failures)


def render(monitor: Monitor) -> bytes:
    """The Prometheus text exposition of the monitor's state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return generate_latest(registry)
