"""SLO thresholds over a run summary, in a syntax that reads like k6's, and the verdict they give.

A thresholds file maps a metric (optionally filtered, `delivery.latency{destination:webhook}`) to a
list of expressions, each `[aggregation] comparator value[unit]`:

    thresholds:
      loss.ratio: ["== 0"]
      delivery.latency: ["p99 < 10s"]
      throughput: [">= 1000/s"]
      errors.ratio{status_class:5xx}: [{threshold: "< 1%", abort_on_fail: true, delay_abort_eval: 10s}]

The same thresholds are evaluated on the run summary at the end of `locust -f scenarios`, during the
run (`aborting_failures`), by `harness gate` on a summary file, and against Prometheus
(`monitor.promql`). Every error names the file, the line and what is wrong.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.yaml")
EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "max": 1.0}
"""Latency aggregations: the quantiles every latency block of the summary holds."""
AGGREGATIONS = tuple(QUANTILES)
KIND_AGGREGATIONS = {"ratio": "rate", "rate": "rate", "count": "count"}
"""k6's optional aggregation word for non-latency metrics (`rate < 1%`, `count == 0`)."""
UNITS: dict[str, dict[str, float]] = {
    "duration": {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0},
    "ratio": {"": 1.0, "%": 0.01},
    "rate": {"": 1.0, "/s": 1.0, "/m": 1 / 60, "/min": 1 / 60, "/h": 1 / 3600},
    "count": {"": 1.0},
}
STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "error")
ERROR_CLASSES = ("5xx", "429", "error")
"""What `errors.ratio` counts with no status_class filter (matches the run summary's error_ratio)."""
ITEM_KEYS = {"threshold", "abort_on_fail", "delay_abort_eval"}
K6_ITEM_KEYS = {"abortOnFail": "abort_on_fail", "delayAbortEval": "delay_abort_eval"}

_EXPRESSION = re.compile(
    r"^\s*(?:(?P<agg>[a-z]\w*(?:\(\s*[\d.]+\s*\))?)\s*)?"
    r"(?P<op>[<>=!]=*|=+)\s*"
    r"(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*"
    r"(?P<unit>\S*)\s*$"
)
_KEY = re.compile(r"^(?P<metric>[A-Za-z_][\w.]*)(?:\{(?P<filter>[^}]*)\})?$")
_K6_PERCENTILE = re.compile(r"^p\(\s*(?P<n>[\d.]+)\s*\)$")


class ThresholdError(ValueError):
    """A thresholds file that cannot be used; the message names the file, line and problem."""


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
    "late.count": Metric("count", _delivery_sum("late"), DEST, "first delivered after counted lost"),
    "out_of_order.count": Metric(
        "count", _delivery_sum("out_of_order"), DEST, "first deliveries older than the user's last"
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


# Thresholds and results -----------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    metric: str
    filters: dict[str, str]
    aggregation: str | None
    comparator: str
    value: float
    expression: str
    abort_on_fail: bool = False
    line: int = 0
    source: str = ""
    """Where it was written (`file:line`), or what made it (`baseline BASE.json`)."""
    delay_abort_eval: float = 0.0
    """Seconds into the run before abort_on_fail applies (k6's delayAbortEval)."""
    origin: str = "slo"
    """`slo` for a thresholds file, `baseline` for a regression check."""

    @property
    def label(self) -> str:
        tags = ",".join(f"{k}:{v}" for k, v in self.filters.items())
        return f"{self.metric}{{{tags}}}" if tags else self.metric

    @property
    def kind(self) -> str:
        return METRICS[self.metric].kind

    def text(self) -> str:
        return f"{self.label} {self.expression}"


@dataclass(frozen=True)
class Result:
    threshold: Threshold
    value: float | None
    passed: bool
    note: str = ""
    """Why there is no value (what the summary lacks), when value is None."""

    @property
    def value_text(self) -> str:
        return "no data" if self.value is None else format_value(self.value, self.threshold.kind)

    def message(self) -> str:
        """One line for a failure: what was required and what was found."""
        found = f"no data: {self.note}" if self.value is None else f"was {self.value_text}"
        return f"{self.threshold.text()} ({found})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.threshold.label,
            "expression": self.threshold.expression,
            "value": self.value,
            "value_text": self.value_text,
            "passed": self.passed,
            "note": self.note,
            "abort_on_fail": self.threshold.abort_on_fail,
            "origin": self.threshold.origin,
            "source": self.threshold.source,
        }


@dataclass(frozen=True)
class Verdict:
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "results": [r.to_dict() for r in self.results]}

    def table(self) -> str:
        rows = [("threshold", "value", "result")]
        rows += [(r.threshold.text(), r.value_text, "PASS" if r.passed else "FAIL") for r in self.results]
        width = max(len(row[0]) for row in rows)
        lines = [f"  {a:<{width}}  {b:>14}  {c}" for a, b, c in rows]
        notes = [f"  note: {r.threshold.text()}: {r.note}" for r in self.results if r.note]
        status = "PASS" if self.passed else "FAIL: " + "; ".join(r.message() for r in self.failures())
        return "\n".join(["", "SLO verdict", *lines, *notes, f"Verdict: {status}"])


def format_value(value: float, kind: str) -> str:
    if kind == "duration":
        return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.3f}s"
    if kind == "ratio":
        return f"{value:.4%}"
    if kind == "rate":
        return f"{value:,.1f}/s"
    return f"{value:,.0f}"


# Parsing --------------------------------------------------------------------------------------


def parse_duration(text: Any, where: str) -> float:
    """`10s`, `500ms`, `2m` (or a plain number of seconds) → seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zµ]*)\s*", str(text))
    units = UNITS["duration"]
    if not match or (match[2] and match[2] not in units):
        raise ThresholdError(f"{where}: cannot read duration {text!r}; write e.g. 10s, 500ms, 2m")
    return float(match[1]) * (units[match[2]] if match[2] else 1.0)


def _parse_value(number: str, unit: str, kind: str, where: str) -> float:
    units = UNITS[kind]
    if unit not in units:
        allowed = ", ".join(repr(u) if u else "none" for u in units)
        hint = {
            "duration": "a duration needs a unit",
            "ratio": "a ratio takes a plain number or a percentage",
            "rate": "a rate takes a plain number or a per-time unit",
            "count": "a count takes no unit",
        }[kind]
        raise ThresholdError(f"{where}: bad unit {unit or 'none'!r}: {hint} ({allowed})")
    value = float(number) * units[unit]
    if kind == "ratio" and not 0 <= value <= 1:
        raise ThresholdError(f"{where}: a ratio is between 0 and 1 (0% and 100%), got {number}{unit}")
    return value


def _aggregation(raw: str | None, metric_name: str, kind: str, where: str) -> str | None:
    if kind == "duration":
        if raw and (k6 := _K6_PERCENTILE.match(raw)):  # k6's p(99) is our p99
            raw = f"p{float(k6['n']):g}"
        if raw not in AGGREGATIONS:
            raise ThresholdError(
                f"{where}: {metric_name} needs an aggregation ({', '.join(AGGREGATIONS)}), got {raw!r}"
            )
        return raw
    if raw is not None and raw != KIND_AGGREGATIONS[kind]:
        raise ThresholdError(
            f"{where}: {metric_name} takes no aggregation (or {KIND_AGGREGATIONS[kind]!r}), got {raw!r}"
        )
    return None


def parse_threshold(
    key: str,
    expression: Any,
    *,
    where: str,
    abort_on_fail: bool = False,
    line: int = 0,
    delay_abort_eval: float = 0.0,
) -> Threshold:
    """One `metric{filters}` key and one expression, checked against the metric catalogue."""
    key_match = _KEY.match(str(key).strip())
    if not key_match:
        raise ThresholdError(
            f"{where}: cannot read metric key {key!r}; write e.g. delivery.latency{{destination:webhook}}"
        )
    name = key_match["metric"]
    if name not in METRICS:
        raise ThresholdError(f"{where}: unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    metric = METRICS[name]
    filters: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (key_match["filter"] or "").split(","))):
        fname, _, fvalue = (s.strip() for s in part.partition(":"))
        if fname not in metric.filters or not fvalue:
            raise ThresholdError(
                f"{where}: filter {part!r} does not apply to {name} (filters: {', '.join(metric.filters) or 'none'})"
            )
        if fname == "status_class" and fvalue not in STATUS_CLASSES:
            raise ThresholdError(
                f"{where}: unknown status_class {fvalue!r}; known: {', '.join(STATUS_CLASSES)}"
            )
        filters[fname] = fvalue
    if not isinstance(expression, str) or not (match := _EXPRESSION.match(expression)):
        raise ThresholdError(
            f"{where}: cannot read threshold {expression!r}; write e.g. 'p99 < 5s', '== 0' or '>= 1000/s' "
            f"(comparators: {' '.join(COMPARATORS)})"
        )
    if match["op"] not in COMPARATORS:
        raise ThresholdError(
            f"{where}: bad comparator {match['op']!r} in {expression!r}; use one of {' '.join(COMPARATORS)}"
        )
    aggregation = _aggregation(match["agg"], name, metric.kind, where)
    value = _parse_value(match["num"], match["unit"], metric.kind, where)
    return Threshold(
        metric=name,
        filters=filters,
        aggregation=aggregation,
        comparator=match["op"],
        value=value,
        expression=expression.strip(),
        abort_on_fail=abort_on_fail,
        line=line,
        source=where,
        delay_abort_eval=delay_abort_eval,
    )


def _item(item: yaml.Node, key: str, where: str, line: int) -> Threshold:
    data = yaml.safe_load(yaml.serialize(item))
    if not isinstance(data, dict):
        return parse_threshold(key, data, where=where, line=line)
    data = {K6_ITEM_KEYS.get(k, k): v for k, v in data.items()}
    if unknown := set(data) - ITEM_KEYS:
        raise ThresholdError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} in a threshold "
            f"(keys: {', '.join(sorted(ITEM_KEYS))})"
        )
    if "threshold" not in data:
        raise ThresholdError(f"{where}: a threshold mapping needs a 'threshold' key")
    abort = data.get("abort_on_fail", False)
    if not isinstance(abort, bool):
        raise ThresholdError(f"{where}: abort_on_fail must be true or false, got {abort!r}")
    delay = parse_duration(data.get("delay_abort_eval", 0), where)
    return parse_threshold(
        key, data["threshold"], where=where, abort_on_fail=abort, line=line, delay_abort_eval=delay
    )


def parse_thresholds(text: str, source: str = "<thresholds>") -> list[Threshold]:
    """Read a thresholds document; errors name `source` and the line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ThresholdError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if root is None:
        raise ThresholdError(f"{source}: empty file; expected a 'thresholds:' mapping")
    if not isinstance(root, yaml.MappingNode):
        raise ThresholdError(
            f"{source}:{root.start_mark.line + 1}: expected a mapping with a 'thresholds' key"
        )
    section = None
    for key_node, value_node in root.value:
        if key_node.value != "thresholds":
            raise ThresholdError(
                f"{source}:{key_node.start_mark.line + 1}: unknown key {key_node.value!r} (expected 'thresholds')"
            )
        section = value_node
    if section is None:
        raise ThresholdError(f"{source}: no 'thresholds' key")
    if not isinstance(section, yaml.MappingNode):
        raise ThresholdError(
            f"{source}:{section.start_mark.line + 1}: 'thresholds' must map metrics to lists of thresholds"
        )
    thresholds = []
    for key_node, value_node in section.value:
        items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        if not items:
            raise ThresholdError(
                f"{source}:{key_node.start_mark.line + 1}: {key_node.value!r} has no thresholds"
            )
        for item in items:
            line = item.start_mark.line + 1
            thresholds.append(_item(item, str(key_node.value), f"{source}:{line}", line))
    return thresholds


def load_thresholds(path: Path) -> list[Threshold]:
    """Read a thresholds file. Raises ThresholdError (bad content) or OSError (cannot read)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ThresholdError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_thresholds(text, str(path))


def default_thresholds() -> list[Threshold]:
    return load_thresholds(DEFAULT_THRESHOLDS)


# Evaluation -----------------------------------------------------------------------------------


def measure(threshold: Threshold, summary: dict[str, Any]) -> tuple[float | None, str]:
    """The threshold's metric in this summary, or None and why there is none."""
    try:
        return METRICS[threshold.metric].read(summary, threshold.filters, threshold.aggregation), ""
    except NoData as exc:
        return None, str(exc)


def check(threshold: Threshold, value: float | None, note: str = "") -> Result:
    """A threshold against a value; no value fails (nothing was proven)."""
    passed = value is not None and COMPARATORS[threshold.comparator](value, threshold.value)
    return Result(threshold, value, passed, note)


def evaluate(thresholds: list[Threshold], summary: dict[str, Any]) -> Verdict:
    """Check each threshold against the summary; a metric with no data fails (nothing was proven)."""
    return Verdict([check(t, *measure(t, summary)) for t in thresholds])


def aborting_failures(
    thresholds: list[Threshold], summary: dict[str, Any], elapsed: float | None = None
) -> list[Result]:
    """Thresholds with abort_on_fail that fail now, on a summary taken during the run.

    A threshold aborts only when it has data and fails; not before `delay_abort_eval` seconds of
    the run (when `elapsed` is given); never for final-only metrics (pending messages are normal
    mid-run). Call it every few seconds; stop the run when the list is not empty.
    """
    failing = []
    for threshold in thresholds:
        if not threshold.abort_on_fail or METRICS[threshold.metric].final_only:
            continue
        if elapsed is not None and elapsed < threshold.delay_abort_eval:
            continue
        result = check(threshold, *measure(threshold, summary))
        if result.value is not None and not result.passed:
            failing.append(result)
    return failing


def catalogue() -> str:
    """The metric catalogue as text (for `harness gate --list-metrics` and the docs)."""
    lines = []
    for name, metric in METRICS.items():
        filters = f"{{{','.join(metric.filters)}}}" if metric.filters else ""
        units = ", ".join(u for u in UNITS[metric.kind] if u) or "none"
        lines.append(f"{name + filters:<44} {metric.kind:<9} units: {units:<22} {metric.help}")
    return "\n".join(lines)
