"""Locust's own request statistics, per endpoint and library, as rows for the run summary."""

from __future__ import annotations

from typing import Any

PERCENTILES = (0.5, 0.9, 0.95, 0.99)


def endpoint_rows(stats: Any) -> list[dict[str, Any]]:
    """One row per request name (`/v1/batch (analytics-ios)`): counts, failures, times in ms."""
    rows = []
    for entry in sorted(stats.entries.values(), key=lambda e: (e.name, e.method)):
        path, _sep, library = entry.name.partition(" (")
        rows.append(
            {
                "method": entry.method,
                "endpoint": path,
                "library": library.rstrip(")"),
                "requests": entry.num_requests,
                "failures": entry.num_failures,
                "avg_ms": round(entry.avg_response_time, 1),
                "min_ms": round(entry.min_response_time or 0, 1),
                "max_ms": round(entry.max_response_time, 1),
                **{f"p{round(p * 100)}_ms": entry.get_response_time_percentile(p) for p in PERCENTILES},
                "requests_per_sec": round(entry.total_rps, 2),
                "avg_bytes": round(entry.avg_content_length, 1),
            }
        )
    return rows


def failure_rows(stats: Any) -> list[dict[str, Any]]:
    """Locust's error report: what failed, where, how often."""
    return [
        {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
        for e in sorted(stats.errors.values(), key=lambda e: -e.occurrences)
    ]
