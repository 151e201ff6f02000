"""The sandbox's counters: one source of truth for `/metrics` (Prometheus) and `GET /admin/stats` (JSON).

Hot paths bump plain dict counters (cheaper than a prometheus-client call per message); a custom
collector turns them into `sandbox_*` families at scrape time. Labels are bounded: endpoint names,
status codes, configured source and destination names, fixed reason/outcome/kind words.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)


class Stats:
    """Exact counts of everything the sandbox did, including every injected fault."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (endpoint, status)
        self.accepted: Counter[str] = Counter()  # source
        self.rejected: Counter[tuple[str, str]] = Counter()  # (source, reason)
        self.dedupe_hits: Counter[str] = Counter()  # source
        self.enqueued: Counter[str] = Counter()  # destination
        self.delivered: Counter[str] = Counter()  # destination: messages the destination accepted
        self.discarded: Counter[tuple[str, str]] = Counter()  # (destination, reason)
        self.attempts: Counter[tuple[str, str]] = Counter()  # (destination, outcome)
        self.faults: Counter[tuple[str, str]] = (
            Counter()
        )  # (kind, target): target is "ingest" or a destination
        self.fault_delay_seconds: Counter[str] = Counter()  # destination
        self.spooled: Counter[str] = Counter()  # destination: written to the spool at shutdown
        self.restored: Counter[str] = Counter()  # destination: read back from the spool at start
        self.latency = LatencyHistogram()
        self.registry = CollectorRegistry(auto_describe=True)
        self.queue_probe: Callable[[], dict[str, tuple[int, float | None]]] = dict
        self.dedupe_probe: Callable[[], dict[str, float]] = dict
        self.registry.register(_StatsCollector(self))

    def to_json(self) -> dict[str, Any]:
        """The `GET /admin/stats` document."""
        queues = self.queue_probe()
        return {
            "requests": _nest(self.requests),
            "accepted": dict(self.accepted),
            "accepted_total": sum(self.accepted.values()),
            "rejected": _nest(self.rejected),
            "rejected_total": sum(self.rejected.values()),
            "dedupe_hits": dict(self.dedupe_hits),
            "dedupe_hits_total": sum(self.dedupe_hits.values()),
            "dedupe": self.dedupe_probe(),
            "enqueued": dict(self.enqueued),
            "delivered": dict(self.delivered),
            "discarded": _nest(self.discarded),
            "attempts": _nest(self.attempts),
            "faults": _nest(self.faults),
            "fault_delay_seconds": dict(self.fault_delay_seconds),
            "queued": {name: depth for name, (depth, _) in queues.items()},
            "oldest_queued_age_seconds": {name: age for name, (_, age) in queues.items()},
            "spooled": dict(self.spooled),
            "restored": dict(self.restored),
        }

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class LatencyHistogram:
    """Per-destination delivery latency histogram with a bulk `observe_many` (one numpy call per batch)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self.counts: dict[str, np.ndarray] = {}
        self.sums: dict[str, float] = {}

    def observe_many(self, destination: str, seconds: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Observe each value of `seconds` once, or `weights[i]` times (messages sharing a receivedAt)."""
        counts = self.counts.get(destination)
        if counts is None:
            counts = self.counts[destination] = np.zeros(len(self.bounds) + 1, dtype=np.int64)
            self.sums[destination] = 0.0
        # bucket i counts values <= bounds[i] (Prometheus `le`); the last slot is +Inf
        slots = np.searchsorted(self.bounds, seconds, side="left")
        if weights is None:
            counts += np.bincount(slots, minlength=len(counts))
            self.sums[destination] += float(seconds.sum())
        else:
            counts += np.bincount(slots, weights=weights, minlength=len(counts)).astype(np.int64)
            self.sums[destination] += float(np.dot(seconds, weights))

    def family(self) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(
            "sandbox_delivery_latency_seconds",
            "Time from receivedAt to the destination's 2xx answer, per message.",
            labels=["destination"],
        )
        les = [*(repr(float(b)) for b in self.bounds), "+Inf"]
        for name, counts in self.counts.items():
            cumulative = np.cumsum(counts).tolist()
            fam.add_metric([name], list(zip(les, cumulative, strict=True)), sum_value=self.sums[name])
        return fam


def _nest(counter: Counter[tuple[Any, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (a, b), n in counter.items():
        out.setdefault(str(a), {})[str(b)] = n
    return out


class _StatsCollector(Collector):
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        s = self.stats
        yield s.latency.family()
        yield _counter(
            "sandbox_requests",
            "Ingest and admin requests by endpoint and status.",
            ["endpoint", "status"],
            (((k[0], str(k[1])), v) for k, v in s.requests.items()),
        )
        yield _counter(
            "sandbox_messages_accepted",
            "Messages accepted (answered 2xx) by source.",
            ["source"],
            (((k,), v) for k, v in s.accepted.items()),
        )
        yield _counter(
            "sandbox_messages_rejected",
            "Messages rejected by source and reason.",
            ["source", "reason"],
            s.rejected.items(),
        )
        yield _counter(
            "sandbox_dedupe_hits",
            "Accepted messages dropped as duplicates of an earlier messageId.",
            ["source"],
            (((k,), v) for k, v in s.dedupe_hits.items()),
        )
        yield _counter(
            "sandbox_messages_enqueued",
            "Messages put on a destination's queue.",
            ["destination"],
            (((k,), v) for k, v in s.enqueued.items()),
        )
        yield _counter(
            "sandbox_messages_delivered",
            "Messages a destination answered 2xx for.",
            ["destination"],
            (((k,), v) for k, v in s.delivered.items()),
        )
        yield _counter(
            "sandbox_messages_discarded",
            "Messages given up on (4xx answer or retry age exceeded).",
            ["destination", "reason"],
            s.discarded.items(),
        )
        yield _counter(
            "sandbox_delivery_attempts",
            "Webhook POSTs by destination and outcome.",
            ["destination", "outcome"],
            s.attempts.items(),
        )
        yield _counter(
            "sandbox_faults_injected",
            "Injected faults by kind and target (ingest or a destination).",
            ["kind", "target"],
            s.faults.items(),
        )
        yield _counter(
            "sandbox_fault_delay_seconds",
            "Total delay injected before deliveries.",
            ["destination"],
            (((k,), v) for k, v in s.fault_delay_seconds.items()),
        )
        yield _counter(
            "sandbox_messages_spooled",
            "Undelivered messages written to the spool at shutdown.",
            ["destination"],
            (((k,), v) for k, v in s.spooled.items()),
        )
        yield _counter(
            "sandbox_messages_restored",
            "Messages read back from the spool at start.",
            ["destination"],
            (((k,), v) for k, v in s.restored.items()),
        )
        depth = GaugeMetricFamily(
            "sandbox_queue_depth", "Messages waiting per destination.", labels=["destination"]
        )
        age = GaugeMetricFamily(
            "sandbox_queue_oldest_age_seconds",
            "Age (since receivedAt) of the oldest waiting message.",
            labels=["destination"],
        )
        for name, (n, oldest) in s.queue_probe().items():
            depth.add_metric([name], n)
            age.add_metric([name], oldest or 0.0)
        yield depth
        yield age
        dd = s.dedupe_probe()
        if dd:
            yield GaugeMetricFamily(
                "sandbox_dedupe_remembered_ids",
                "messageIds in the dedupe window.",
                value=dd.get("remembered_ids", 0),
            )
            yield GaugeMetricFamily(
                "sandbox_dedupe_memory_bytes",
                "Bytes held by the dedupe's sorted tiers.",
                value=dd.get("memory_bytes", 0),
            )
            yield _counter(
                "sandbox_dedupe_evicted",
                "Ids forgotten early because max_ids was reached.",
                [],
                [((), dd.get("evicted", 0))],
            )
        yield GaugeMetricFamily(
            "sandbox_up_seconds", "Seconds since the sandbox started.", value=time.monotonic() - _STARTED
        )


_STARTED = time.monotonic()


def _counter(name: str, doc: str, labels: list[str], items: Any) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, doc, labels=labels)
    for key, value in items:
        fam.add_metric(list(key), value)
    return fam
