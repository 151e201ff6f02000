"""The SLO thresholds evaluated against Prometheus, for soak tests too long to judge from one summary.

Each metric of the thresholds catalogue becomes one PromQL expression over the raw `loadgen_*`
(Locust master) and `monitor_*` (monitor) series, over a window (`--range`, e.g. `1h`) ending now:
rates and counts from `rate()`/`increase()` of counters, latency quantiles from
`histogram_quantile()` of the exported histograms (so they are read from the Prometheus buckets,
coarser than the summary's), per-run delivery counts from the monitor's `monitor_run_*` gauges
(`last_over_time`, so a finished run still answers). Raw series only, no recording rules, so it works
with any Prometheus that scrapes the harness.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from gate.metrics import NoData
from gate.summary_format import ERROR_CLASSES, QUANTILES
from gate.thresholds import Threshold, Verdict, check

SENT_KINDS = "event|duplicate|replay|bad"


class PrometheusError(RuntimeError):
    """Prometheus could not be asked (unreachable, or it refused the query)."""


@dataclass(frozen=True)
class Window:
    """What a query covers: the range, the run (monitor gauges) and extra label matchers."""

    range: str = "1h"
    run: int | None = None
    matchers: str = ""
    """Extra label matchers added to every selector, e.g. `job="soak"`."""

    def select(self, metric: str, *matchers: str, run: bool = False) -> str:
        parts = [m for m in (*matchers, self.matchers) if m]
        if run and self.run is not None:
            parts.append(f'run="{self.run}"')
        return f"{metric}{{{','.join(parts)}}}"


def run_label(run: str) -> int:
    """A run as the monitor labels it: its number, or a run name turned into its number."""
    if run.isdigit():
        return int(run)
    # loadgen.ids.run_id_from_name, restated because gate imports nothing of ours; a test pins the two equal.
    return int.from_bytes(hashlib.blake2b(run.encode(), digest_size=4).digest(), "big") & 0xFFFF


def _eq(label: str, filters: dict[str, str], key: str | None = None) -> str:
    value = filters.get(key or label)
    return f'{label}="{value}"' if value is not None else ""


def _quantile(agg: str | None) -> float:
    return QUANTILES[agg or "p99"]


def _or_zero(expr: str) -> str:
    # Counters appear only once something was counted: no series means zero.
    return f"({expr} or vector(0))"


Translate = Callable[[dict[str, str], str | None, Window], str]


def _throughput(f: dict[str, str], _a: str | None, w: Window) -> str:
    sel = w.select("loadgen_messages_total", f'kind=~"{SENT_KINDS}"', _eq("source", f))
    return f"sum(rate({sel}[{w.range}]))"


def _request_rate(f: dict[str, str], _a: str | None, w: Window) -> str:
    return f"sum(rate({w.select('loadgen_requests_total', _eq('source', f))}[{w.range}]))"


def _request_latency(kind: str) -> Translate:
    def translate(_f: dict[str, str], agg: str | None, w: Window) -> str:
        sel = w.select("loadgen_request_duration_seconds_bucket", f'kind="{kind}"')
        return f"histogram_quantile({_quantile(agg)}, sum by (le) (rate({sel}[{w.range}])))"

    return translate


def _errors(ratio: bool) -> Translate:
    def translate(f: dict[str, str], _a: str | None, w: Window) -> str:
        classes = 'status_class=~"' + (f.get("status_class") or "|".join(ERROR_CLASSES)) + '"'
        selected = w.select("loadgen_requests_total", classes, _eq("source", f))
        part = _or_zero(f"sum(increase({selected}[{w.range}]))")
        if not ratio:
            return part
        return f"{part} / sum(increase({w.select('loadgen_requests_total', _eq('source', f))}[{w.range}]))"

    return translate


def _missed_ratio(f: dict[str, str], _a: str | None, w: Window) -> str:
    src = _eq("source", f)
    missed = _or_zero(f"sum(increase({w.select('loadgen_missed_sends_total', src)}[{w.range}]))")
    retries = _or_zero(f"sum(increase({w.select('loadgen_retries_total', src)}[{w.range}]))")
    requests = f"sum(increase({w.select('loadgen_requests_total', src)}[{w.range}]))"
    return f"{missed} / ({requests} - {retries} + {missed})"


def _refused(ratio: bool) -> Translate:
    def translate(f: dict[str, str], _a: str | None, w: Window) -> str:
        src = _eq("source", f)
        refused = _or_zero(
            f"sum(increase({w.select('loadgen_refused_messages_total', src, _eq('answer', f))}[{w.range}]))"
        )
        if not ratio:
            return refused
        every = _or_zero(f"sum(increase({w.select('loadgen_refused_messages_total', src)}[{w.range}]))")
        accepted = _or_zero(f"sum(increase({w.select('loadgen_accepted_messages_total', src)}[{w.range}]))")
        return f"{refused} / ({accepted} + {every})"

    return translate


def _lenient(f: dict[str, str], _a: str | None, w: Window) -> str:
    sel = w.select("loadgen_bad_inputs_total", _eq("case", f), 'answer="lenient"')
    return _or_zero(f"sum(increase({sel}[{w.range}]))")


def _run_gauge(name: str) -> Translate:
    def translate(f: dict[str, str], _a: str | None, w: Window) -> str:
        return f"sum(last_over_time({w.select(name, _eq('destination', f), run=True)}[{w.range}]))"

    return translate


def _run_ratio(numerator: str, denominator: str) -> Translate:
    def translate(f: dict[str, str], a: str | None, w: Window) -> str:
        return f"{_run_gauge(numerator)(f, a, w)} / {_run_gauge(denominator)(f, a, w)}"

    return translate


def _delivered_ratio(f: dict[str, str], a: str | None, w: Window) -> str:
    # No gauge holds delivered-and-expected; expected minus what is still missing is the same count.
    missing = (
        _run_gauge("monitor_run_lost_messages")(f, a, w),
        _run_gauge("monitor_run_pending_messages")(f, a, w),
    )
    return f"1 - ({missing[0]} + {missing[1]}) / {_run_gauge('monitor_run_expected_messages')(f, a, w)}"


def _increase(name: str, by_destination: bool = True) -> Translate:
    def translate(f: dict[str, str], _a: str | None, w: Window) -> str:
        sel = w.select(name, _eq("destination", f) if by_destination else "")
        return _or_zero(f"sum(increase({sel}[{w.range}]))")

    return translate


def _duplicates_ratio(f: dict[str, str], a: str | None, w: Window) -> str:
    delivered = (
        f"sum(increase({w.select('monitor_delivered_messages_total', _eq('destination', f))}[{w.range}]))"
    )
    return f"{_increase('monitor_duplicate_deliveries_total')(f, a, w)} / {delivered}"


def _out_of_order_ratio(f: dict[str, str], a: str | None, w: Window) -> str:
    delivered = (
        f"sum(increase({w.select('monitor_delivered_messages_total', _eq('destination', f))}[{w.range}]))"
    )
    return f"{_increase('monitor_out_of_order_deliveries_total')(f, a, w)} / {delivered}"


def _worst_quantile(name: str) -> Translate:
    def translate(f: dict[str, str], agg: str | None, w: Window) -> str:
        sel = w.select(name, _eq("destination", f))
        return f"max(histogram_quantile({_quantile(agg)}, sum by (le, destination) (rate({sel}[{w.range}]))))"

    return translate


def _canary_availability(f: dict[str, str], _a: str | None, w: Window) -> str:
    within = w.select("monitor_canary_delivered_within_sla_total", _eq("destination", f))
    settled = w.select("monitor_canary_settled_total", _eq("destination", f))
    return (
        f"min(sum by (destination) (increase({within}[{w.range}])) "
        f"/ sum by (destination) (increase({settled}[{w.range}])))"
    )


QUERIES: dict[str, Translate] = {
    "throughput": _throughput,
    "request.rate": _request_rate,
    "request.latency": _request_latency("measured"),
    "request.latency_corrected": _request_latency("corrected"),
    "errors.ratio": _errors(ratio=True),
    "errors.count": _errors(ratio=False),
    "missed.ratio": _missed_ratio,
    "refused.ratio": _refused(ratio=True),
    "refused.count": _refused(ratio=False),
    "lenient.count": _lenient,
    "delivery.latency": _worst_quantile("monitor_delivery_latency_seconds_bucket"),
    "delivered.ratio": _delivered_ratio,
    "loss.ratio": _run_ratio("monitor_run_lost_messages", "monitor_run_expected_messages"),
    "loss.count": _run_gauge("monitor_run_lost_messages"),
    "pending.count": _run_gauge("monitor_run_pending_messages"),
    "duplicates.ratio": _duplicates_ratio,
    "duplicates.count": _increase("monitor_duplicate_deliveries_total"),
    "dedupe_leaks.count": _run_gauge("monitor_run_dedupe_leaks"),
    "late.count": _increase("monitor_late_deliveries_total"),
    "late.ratio": _run_ratio("monitor_run_late_messages", "monitor_run_expected_messages"),
    "pending.ratio": _run_ratio("monitor_run_pending_messages", "monitor_run_expected_messages"),
    "out_of_order.count": _increase("monitor_out_of_order_deliveries_total"),
    "out_of_order.ratio": _out_of_order_ratio,
    "rejected_delivered.count": _run_gauge("monitor_run_rejected_delivered_messages"),
    "redelivered_after_400.count": _increase("monitor_redelivered_after_400_total"),
    "canary.availability": _canary_availability,
    "canary.latency": _worst_quantile("monitor_canary_latency_seconds_bucket"),
    "bad_signatures.count": _increase("monitor_bad_signatures_total", by_destination=False),
    "foreign.count": _increase("monitor_foreign_ids_total", by_destination=False),
}


def to_promql(threshold: Threshold, window: Window) -> str:
    """The PromQL expression whose value is the threshold's metric over the window."""
    return QUERIES[threshold.metric](threshold.filters, threshold.aggregation, window)


class PrometheusClient:
    """Instant queries against Prometheus's HTTP API (`/api/v1/query`)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def scalar(self, query: str, at: float | None = None) -> float:
        """The single value of an aggregating query; NoData when it has no series or is NaN."""
        params = {"query": query, **({"time": f"{at:.3f}"} if at is not None else {})}
        try:
            response = self.http.get(f"{self.url}/api/v1/query", params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"{self.url}: cannot reach Prometheus ({exc})") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"{self.url}: answered {response.status_code} with a body that is not JSON"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"{self.url}: query refused ({response.status_code} {body.get('errorType', '')}: "
                f"{body.get('error', '')}): {query}"
            )
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            value = float(result[1])
        elif not result:
            raise NoData(f"no series for {query}")
        else:
            value = float(result[0]["value"][1])
        if math.isnan(value):
            raise NoData(f"no data in the window (NaN) for {query}")
        return value


def evaluate_prometheus(
    thresholds: list[Threshold], client: PrometheusClient, window: Window, at: float | None = None
) -> Verdict:
    """Each threshold against its PromQL value at `at` (default: now); a query error is no data."""
    results = []
    for threshold in thresholds:
        try:
            results.append(check(threshold, client.scalar(to_promql(threshold, window), at)))
        except NoData as exc:
            results.append(check(threshold, None, str(exc)))
    return Verdict(results)
