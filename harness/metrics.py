"""`loadgen_*` Prometheus metrics from the merged load statistics, served on the master only."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from harness.stats import LoadStats
from loadgen.traffic import CALL_TYPES


class LoadCollector(Collector):
    """Reads the master's merged `LoadStats` at scrape time (callables: each test in the web UI
    starts new statistics and its own run)."""

    def __init__(
        self,
        stats: Callable[[], LoadStats],
        workers: Callable[[], int],
        users: Callable[[], int],
        run: Callable[[], tuple[int, str]],
    ) -> None:
        self.stats = stats
        self.workers = workers
        self.users = users
        self.run = run

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        messages = CounterMetricFamily(
            "loadgen_messages", "Messages sent (first attempts)", labels=["source", "library", "kind"]
        )
        for (source, library, kind), value in s.messages.items():
            messages.add_metric([source, library, kind], value)
        yield messages

        calls = CounterMetricFamily(
            "loadgen_calls", "New messages sent, by call type", labels=["source", "library", "type"]
        )
        for (source, library, call_type), value in s.call_types.items():
            calls.add_metric([source, library, CALL_TYPES[call_type]], value)
        yield calls

        sent_bytes = CounterMetricFamily(
            "loadgen_sent_bytes", "Request body bytes sent", labels=["source", "library"]
        )
        for (source, library), value in s.bytes.items():
            sent_bytes.add_metric([source, library], value)
        yield sent_bytes

        requests = CounterMetricFamily(
            "loadgen_requests", "Requests by answer class", labels=["source", "library", "status_class"]
        )
        for (source, library, cls), value in s.requests.items():
            requests.add_metric([source, library, cls], value)
        yield requests

        retries = CounterMetricFamily("loadgen_retries", "Retries sent", labels=["source", "library"])
        for (source, library), value in s.retries.items():
            retries.add_metric([source, library], value)
        yield retries

        missed = CounterMetricFamily(
            "loadgen_missed_sends", "Sends dropped for starting more than --max-lag late", labels=["source"]
        )
        for source, value in s.missed.items():
            missed.add_metric([source], value)
        yield missed

        accepted = CounterMetricFamily(
            "loadgen_accepted_messages", "Messages the ingest accepted (first sends)", labels=["source"]
        )
        for source, value in s.accepted.items():
            accepted.add_metric([source], value)
        yield accepted

        refused = CounterMetricFamily(
            "loadgen_refused_messages",
            "Valid messages the ingest refused with a non-429 4xx, by answer (status code)",
            labels=["source", "answer"],
        )
        for (source, code), value in s.refused.items():
            refused.add_metric([source, code], value)
        yield refused

        bad = CounterMetricFamily(
            "loadgen_bad_inputs",
            "Bad-input requests sent, by case and outcome (expected, lenient, error, unexpected)",
            labels=["case", "answer"],
        )
        for (case, answer), value in s.bad_inputs.items():
            bad.add_metric([case, answer], value)
        yield bad

        latency = HistogramMetricFamily(
            "loadgen_request_duration_seconds",
            "Request latency: measured, and from the intended send time (corrected)",
            labels=["library", "kind"],
        )
        for (library, kind), histogram in s.latency.items():
            latency.add_metric([library, kind], histogram.prometheus_buckets(), histogram.total)
        yield latency

        run_info = GaugeMetricFamily(
            "loadgen_run_info",
            "The run this load generator sends (run is the monitor's run label)",
            labels=["run", "name"],
        )
        run, name = self.run()
        run_info.add_metric([str(run), name], 1)
        yield run_info
        yield GaugeMetricFamily(
            "loadgen_workers", "Worker processes (streams) connected", value=self.workers()
        )
        yield GaugeMetricFamily("loadgen_users", "Users running", value=self.users())


def load_registry(collector: LoadCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return registry
