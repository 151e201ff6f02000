"""Regression checks against a stored baseline run summary, as ordinary thresholds.

Each compared metric of the baseline becomes a threshold on the new run: throughput may fall by at
most `max_regression` of the baseline (`throughput >= base × (1 − share)`), latencies may rise by at
most that share (`p99 <= base × (1 + share)`). A latency must also rise by more than
`latency_floor` (default 1 ms) to count: 1.0 → 1.2 ms is +20% but noise, not a regression. The
checks then go through the same evaluation, table and JUnit file as the SLO thresholds.

Compared (when the baseline has a value for them):
- `throughput` (messages/s), higher is better;
- `request.latency` p50, p95, p99 and `request.latency_corrected` p95, p99, lower is better;
- `delivery.latency` p95 and p99 for each destination of the baseline, lower is better.

Loss, duplicates and errors are not compared with a baseline: they have absolute SLOs (`== 0`,
`< 1%`), and a share of a value near 0 says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gate.thresholds import Threshold, format_value, measure


@dataclass(frozen=True)
class Compared:
    """One metric compared with the baseline, and which way is better."""

    metric: str
    aggregation: str | None
    higher_is_better: bool


COMPARED: tuple[Compared, ...] = (
    Compared("throughput", None, True),
    Compared("request.latency", "p50", False),
    Compared("request.latency", "p95", False),
    Compared("request.latency", "p99", False),
    Compared("request.latency_corrected", "p95", False),
    Compared("request.latency_corrected", "p99", False),
)
PER_DESTINATION: tuple[Compared, ...] = (
    Compared("delivery.latency", "p95", False),
    Compared("delivery.latency", "p99", False),
)
DEFAULT_LATENCY_FLOOR = 0.001


def _probe(metric: str, aggregation: str | None, filters: dict[str, str]) -> Threshold:
    return Threshold(metric, filters, aggregation, ">=", 0.0, "")


def regression_thresholds(
    baseline: dict[str, Any],
    max_regression: float,
    *,
    latency_floor: float = DEFAULT_LATENCY_FLOOR,
    source: str = "baseline",
) -> tuple[list[Threshold], list[str]]:
    """Thresholds that fail on a regression beyond `max_regression` (a share, 0.1 = 10%) of
    `baseline`, and notes on what could not be compared (the baseline has no value for it)."""
    if not 0 <= max_regression < 1:
        raise ValueError(f"max regression must be a share between 0 and 1, got {max_regression:g}")
    destinations = sorted((baseline.get("delivery") or {}).get("destinations") or {})
    wanted = [(c, {}) for c in COMPARED]
    wanted += [(c, {"destination": name}) for name in destinations for c in PER_DESTINATION]
    thresholds, notes = [], []
    for compared, filters in wanted:
        probe = _probe(compared.metric, compared.aggregation, filters)
        base, why = measure(probe, baseline)
        if base is None:
            notes.append(
                f"not compared: {probe.label} {compared.aggregation or ''}: {why}".replace("  ", " ")
            )
            continue
        kind = probe.kind
        if compared.higher_is_better:
            comparator, limit, sign = ">=", base * (1 - max_regression), "−"
        else:
            comparator, limit, sign = "<=", max(base * (1 + max_regression), base + latency_floor), "+"
        agg = f"{compared.aggregation} " if compared.aggregation else ""
        expression = (
            f"{agg}{comparator} {format_value(limit, kind)} "
            f"(baseline {format_value(base, kind)} {sign}{max_regression:.0%})"
        )
        thresholds.append(
            Threshold(
                metric=compared.metric,
                filters=filters,
                aggregation=compared.aggregation,
                comparator=comparator,
                value=limit,
                expression=expression,
                source=source,
                origin="baseline",
            )
        )
    return thresholds, notes
