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
(`gate.promql`). Every error names the file, the line and what is wrong.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config_reader import TOP, ConfigError, Reader
from gate.metrics import METRICS, STATUS_CLASSES, NoData
from gate.story import story
from gate.summary_format import QUANTILES

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
AGGREGATIONS = tuple(QUANTILES)
KIND_AGGREGATIONS = {"ratio": "rate", "rate": "rate", "count": "count"}
"""k6's optional aggregation word for non-latency metrics (`rate < 1%`, `count == 0`)."""
UNITS: dict[str, dict[str, float]] = {
    "duration": {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0},
    "ratio": {"": 1.0, "%": 0.01},
    "rate": {"": 1.0, "/s": 1.0, "/m": 1 / 60, "/min": 1 / 60, "/h": 1 / 3600},
    "count": {"": 1.0},
}
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


class ThresholdError(ConfigError):
    """A thresholds file that cannot be used; the message names the file, line and problem."""


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
    story: list[str] = field(default_factory=list)
    """What the figures mean, in words (`gate.story`), printed above the verdict line."""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "results": [r.to_dict() for r in self.results], "story": self.story}

    def table(self) -> str:
        rows = [("threshold", "value", "result")]
        rows += [(r.threshold.text(), r.value_text, "PASS" if r.passed else "FAIL") for r in self.results]
        width = max(len(row[0]) for row in rows)
        lines = [f"  {a:<{width}}  {b:>14}  {c}" for a, b, c in rows]
        words = [f"  * {line}" for line in self.story]
        return "\n".join(["", "SLO verdict", *lines, *self.notes(), *words, f"Verdict: {self.status_line()}"])

    def notes(self) -> list[str]:
        """One line per distinct note (one cause often leaves several thresholds without data)."""
        by_note: dict[str, list[str]] = {}
        for r in self.results:
            if r.note:
                by_note.setdefault(r.note, []).append(r.threshold.label)
        return [f"  note ({', '.join(dict.fromkeys(labels))}): {note}" for note, labels in by_note.items()]

    def status_line(self) -> str:
        """PASS, or FAIL with the failed thresholds named once each (their values are in the table)."""
        failures = self.failures()
        if not failures:
            return "PASS"
        measured = [f"{r.threshold.text()} (was {r.value_text})" for r in failures if r.value is not None]
        missing = [r.threshold.label for r in failures if r.value is None]
        if missing:
            measured.append(f"no data for {', '.join(dict.fromkeys(missing))} (see the note)")
        return "FAIL: " + "; ".join(measured)


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


def _item(data: Any, key: str, where: str, line: int) -> Threshold:
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
    doc, r = Reader.parse(text, source, ThresholdError)
    if doc is None:
        raise ThresholdError(f"{source}: empty file; expected a 'thresholds:' mapping")
    if not isinstance(doc, dict):
        raise r.fail(TOP, "expected a mapping with a 'thresholds' key")
    if "thresholds" not in r.mapping(doc, TOP, ("thresholds",)):
        raise ThresholdError(f"{source}: no 'thresholds' key")
    section = doc["thresholds"]
    if not isinstance(section, dict):
        raise r.fail("thresholds", "must map metrics to lists of thresholds")
    thresholds = []
    for key, value in section.items():
        path = f"thresholds.{key}"
        items = value if isinstance(value, list) else [value]
        if not items:
            raise r.fail(path, f"{key!r} has no thresholds")
        for index, item in enumerate(items):
            line = r.lines.get(f"{path}[{index}]" if isinstance(value, list) else path, 0)
            thresholds.append(_item(item, str(key), f"{source}:{line}", line))
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
    return Verdict([check(t, *measure(t, summary)) for t in thresholds], story(summary))


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
