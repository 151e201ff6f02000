"""The metric catalogue of the SLO language: each metric a threshold may name, and how to read it from a run summary.

`gate.thresholds` parses and checks thresholds over these metrics; `gate.promql` reads the same
metrics from Prometheus instead. Adding a metric here makes it available to both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gate.summary_format import ERROR_CLASSES

STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "error")


class NoData(LookupError):
    """The summary has nothing for this metric and filter; the message says what is missing."""


Reader = Callable[[dict[str, Any], dict[str, str], str | None], float]


@dataclass(frozen=True)
class Metric:
    """How to read one metric from a run summary."""

    kind: str  # "duration" (seconds, needs an aggregation), "ratio", "count" or "rate" (per second)
    read: Reader
    filters: tuple[str, ...] = ()
    help: str = ""
    final_only: bool = False
    """Only meaningful once the run is over (e.g. pending): never aborts a run early."""


# Readers --------------------------------------------------------------------------------------


def _dig(node: Any, path: str) -> Any:
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NoData(
            f"{what} is missing from the summary" if value is None else f"{what} is not a number: {value!r}"
        )
    return float(value)


def _load(summary: dict[str, Any]) -> dict[str, Any]:
    load = summary.get("load")
    if not isinstance(load, dict) or not load:
        raise NoData("the summary has no 'load' section")
    return load


def _source_row(summary: dict[str, Any], source: str) -> dict[str, Any]:
    rows = _load(summary).get("by_source") or {}
    if source not in rows:
        raise NoData(
            f"source {source!r} is not in load.by_source (sources: {', '.join(sorted(rows)) or 'none'})"
        )
    return rows[source]


def _duration(summary: dict[str, Any]) -> float:
    seconds = _number(_dig(summary, "run.duration_seconds"), "run.duration_seconds")
    if seconds <= 0:
        raise NoData("run.duration_seconds is 0")
    return seconds


def _per_second(total_key: str, rate_key: str) -> Reader:
    def read(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
        if "source" in filters:
            row = _source_row(summary, filters["source"])
            if rate_key in row:
                return _number(row[rate_key], f"load.by_source.{filters['source']}.{rate_key}")
            return _number(row.get(total_key), f"load.by_source.{filters['source']}.{total_key}") / _duration(
                summary
            )
        return _number(_load(summary).get(rate_key), f"load.{rate_key}")

    return read


def _request_latency(kind: str) -> Reader:
    def read(summary: dict[str, Any], _filters: dict[str, str], agg: str | None) -> float:
        path = f"latency_seconds.{kind}.{agg}"
        value = _dig(_load(summary), path)
        if value is None:
            raise NoData(f"load.{path} is empty (no requests were answered)")
        return _number(value, f"load.{path}")

    return read


def _requests_by_class(summary: dict[str, Any], filters: dict[str, str]) -> tuple[dict[str, int], str]:
    if "source" in filters:
        row = _source_row(summary, filters["source"])
        where = f"load.by_source.{filters['source']}.requests_by_class"
        classes = row.get("requests_by_class")
        if not isinstance(classes, dict):
            raise NoData(f"{where} is missing: this summary has no answers by status class per source")
        return classes, where
    classes = _load(summary).get("requests_by_class")
    if not isinstance(classes, dict):
        raise NoData("load.requests_by_class is missing from the summary")
    return classes, "load.requests_by_class"


def _errors(ratio: bool) -> Reader:
    def read(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
        classes, where = _requests_by_class(summary, filters)
        wanted = (filters["status_class"],) if "status_class" in filters else ERROR_CLASSES
        part = sum(int(classes.get(c, 0)) for c in wanted)
        if not ratio:
            return float(part)
        total = sum(int(v) for v in classes.values())
        if total == 0:
            raise NoData(f"{where} is empty (no requests were answered)")
        return part / total

    return read


def _missed_ratio(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
    if "source" not in filters:
        return _number(_load(summary).get("missed_ratio"), "load.missed_ratio")
    row = _source_row(summary, filters["source"])
    missed = _number(row.get("missed_sends"), f"load.by_source.{filters['source']}.missed_sends")
    # first attempts = requests − retries (retries per source when the summary has them)
    first = _number(row.get("requests"), f"load.by_source.{filters['source']}.requests") - float(
        row.get("retries", 0)
    )
    return missed / (first + missed) if first + missed else 0.0


def _refused(ratio: bool) -> Reader:
    """Valid messages the ingest refused (non-429 4xx), as a count or a share of accepted + refused."""

    def read(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
        if "source" in filters:
            row, where = _source_row(summary, filters["source"]), f"load.by_source.{filters['source']}"
        else:
            row, where = _load(summary), "load"
        if "refused" not in row:
            raise NoData(f"{where}.refused is missing: this summary predates refusal counts")
        answers = row.get("refused_by_answer") or {}
        refused = float(answers.get(filters["answer"], 0)) if "answer" in filters else float(row["refused"])
        if not ratio:
            return refused
        total = float(row.get("accepted", 0)) + float(row["refused"])
        if not total:
            raise NoData(f"{where} has no accepted or refused messages")
        return refused / total

    return read


def _lenient(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
    bad = _load(summary).get("bad_inputs")
    if not isinstance(bad, dict) or "lenient" not in bad:
        raise NoData("load.bad_inputs.lenient is missing: this summary predates lenient counts")
    if "case" not in filters:
        return float(bad["lenient"])
    cases = bad.get("by_case") or {}
    if filters["case"] not in cases:
        raise NoData(
            f"bad-input case {filters['case']!r} was not sent (sent: {', '.join(sorted(cases)) or 'none'})"
        )
    return float(cases[filters["case"]].get("lenient", 0))


def _pick_destination(
    table: dict[str, dict[str, Any]], filters: dict[str, str], *, missing: str, empty: str
) -> dict[str, dict[str, Any]]:
    """The rows of `table` the `destination` filter selects (all without one); NoData if none."""
    if "destination" in filters:
        name = filters["destination"]
        if name not in table:
            raise NoData(missing.format(name=name, known=", ".join(sorted(table)) or "none"))
        return {name: table[name]}
    if not table:
        raise NoData(empty)
    return table


def _destinations(summary: dict[str, Any], filters: dict[str, str]) -> dict[str, dict[str, Any]]:
    delivery = summary.get("delivery")
    if not isinstance(delivery, dict) or not delivery:
        raise NoData("the summary has no 'delivery' section (no monitor data)")
    return _pick_destination(
        delivery.get("destinations") or {},
        filters,
        missing="destination {name!r} is not in delivery.destinations (destinations: {known})",
        empty="delivery.destinations is empty",
    )


def _delivery_sum(field_name: str) -> Reader:
    def read(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
        rows = _destinations(summary, filters)
        return float(
            sum(_number(row.get(field_name, 0), f"{name}.{field_name}") for name, row in rows.items())
        )

    return read


def _delivery_ratio(numerator: str, denominator: str) -> Reader:
    def read(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
        rows = _destinations(summary, filters)
        total = sum(row.get(denominator, 0) for row in rows.values())
        if not total:
            raise NoData(f"no {denominator} messages at {', '.join(sorted(rows))}")
        return sum(row.get(numerator, 0) for row in rows.values()) / total

    return read


def _worst_latency(rows: dict[str, dict[str, Any]], agg: str | None, where: str) -> float:
    # Across destinations the worst one counts: an SLO holds only if it holds everywhere.
    values = [
        row["latency_seconds"][agg]
        for row in rows.values()
        if (row.get("latency_seconds") or {}).get(agg) is not None
    ]
    if not values:
        raise NoData(f"no {where} latency was measured at {', '.join(sorted(rows))}")
    return float(max(values))


def _delivery_latency(summary: dict[str, Any], filters: dict[str, str], agg: str | None) -> float:
    return _worst_latency(_destinations(summary, filters), agg, "delivery")


def _canaries(summary: dict[str, Any], filters: dict[str, str]) -> dict[str, dict[str, Any]]:
    return _pick_destination(
        _dig(summary, "delivery.canary") or {},
        filters,
        missing="no canary for destination {name!r} in delivery.canary (canaries: {known})",
        empty="delivery.canary is empty (the monitor ran no canaries)",
    )


def _canary_availability(summary: dict[str, Any], filters: dict[str, str], _agg: str | None) -> float:
    canaries = _canaries(summary, filters)
    values = [c["availability"] for c in canaries.values() if c.get("availability") is not None]
    if not values:
        raise NoData(f"no canary has settled yet at {', '.join(sorted(canaries))}")
    return float(min(values))


def _canary_latency(summary: dict[str, Any], filters: dict[str, str], agg: str | None) -> float:
    return _worst_latency(_canaries(summary, filters), agg, "canary")


def _receiver(path: str) -> Reader:
    def read(summary: dict[str, Any], _filters: dict[str, str], _agg: str | None) -> float:
        if not isinstance(summary.get("delivery"), dict) or not summary["delivery"]:
            raise NoData("the summary has no 'delivery' section (no monitor data)")
        return _number(_dig(summary, f"delivery.receiver.{path}"), f"delivery.receiver.{path}")

    return read


DEST = ("destination",)
SRC = ("source",)
METRICS: dict[str, Metric] = {
    # load side: what the generator sent and how the ingest answered
    "throughput": Metric(
        "rate",
        _per_second("messages", "throughput"),
        SRC,
        "messages sent per second (bad-input catalogue excluded)",
    ),
    "request.rate": Metric("rate", _per_second("requests", "request_rate"), SRC, "requests sent per second"),
    "request.latency": Metric("duration", _request_latency("measured"), (), "request latency as measured"),
    "request.latency_corrected": Metric(
        "duration", _request_latency("corrected"), (), "request latency from the intended send time"
    ),
    "errors.ratio": Metric(
        "ratio",
        _errors(ratio=True),
        ("status_class", "source"),
        "share of requests answered in status_class (default: 5xx, 429 or no answer)",
    ),
    "errors.count": Metric(
        "count", _errors(ratio=False), ("status_class", "source"), "requests answered in status_class"
    ),
    "missed.ratio": Metric("ratio", _missed_ratio, SRC, "share of sends dropped for starting late"),
    "refused.ratio": Metric(
        "ratio",
        _refused(ratio=True),
        ("source", "answer"),
        "valid messages the ingest refused (non-429 4xx) ÷ accepted + refused; answer: a status code",
    ),
    "refused.count": Metric(
        "count",
        _refused(ratio=False),
        ("source", "answer"),
        "valid messages the ingest refused (non-429 4xx)",
    ),
    "lenient.count": Metric(
        "count", _lenient, ("case",), "bad-input requests the ingest accepted (2xx) instead of refusing"
    ),
    # delivery side: the monitor's exact audit
    "delivery.latency": Metric(
        "duration", _delivery_latency, DEST, "end-to-end delivery latency (worst destination)"
    ),
    "delivered.ratio": Metric(
        "ratio", _delivery_ratio("delivered_expected", "expected"), DEST, "delivered ÷ expected"
    ),
    "loss.ratio": Metric("ratio", _delivery_ratio("lost", "expected"), DEST, "lost ÷ expected"),
    "loss.count": Metric("count", _delivery_sum("lost"), DEST, "messages lost"),
    "pending.count": Metric(
        "count", _delivery_sum("pending"), DEST, "messages still in flight at the end", final_only=True
    ),
    "duplicates.ratio": Metric(
        "ratio", _delivery_ratio("duplicates", "delivered"), DEST, "duplicate deliveries ÷ delivered"
    ),
    "duplicates.count": Metric("count", _delivery_sum("duplicates"), DEST, "duplicate deliveries"),
    "dedupe_leaks.count": Metric(
        "count", _delivery_sum("dedupe_leaks"), DEST, "deliberate re-sends delivered twice"
    ),
    "late.count": Metric(
        "count", _delivery_sum("late"), DEST, "messages first delivered after their loss deadline (not lost)"
    ),
    "late.ratio": Metric("ratio", _delivery_ratio("late", "expected"), DEST, "late ÷ expected"),
    "pending.ratio": Metric(
        "ratio", _delivery_ratio("pending", "expected"), DEST, "pending ÷ expected", final_only=True
    ),
    "out_of_order.count": Metric(
        "count", _delivery_sum("out_of_order"), DEST, "first deliveries older than the user's last"
    ),
    "out_of_order.ratio": Metric(
        "ratio",
        _delivery_ratio("out_of_order", "delivered"),
        DEST,
        "first deliveries before an earlier message of the same user and source ÷ delivered",
    ),
    "rejected_delivered.count": Metric(
        "count", _delivery_sum("rejected_delivered"), DEST, "messages the ingest rejected, delivered anyway"
    ),
    "redelivered_after_400.count": Metric(
        "count", _delivery_sum("redelivered_after_400"), DEST, "re-deliveries of messages refused with a 4xx"
    ),
    "canary.availability": Metric(
        "ratio", _canary_availability, DEST, "canaries delivered within SLA ÷ settled (worst destination)"
    ),
    "canary.latency": Metric("duration", _canary_latency, DEST, "canary end-to-end latency"),
    "bad_signatures.count": Metric(
        "count", _receiver("bad_signatures"), (), "deliveries with a missing or wrong signature"
    ),
    "foreign.count": Metric("count", _receiver("foreign.total"), (), "deliveries that are not ours"),
}
