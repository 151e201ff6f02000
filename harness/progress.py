"""The headless delivery progress line: what was sent and accepted, and each destination's audit so far."""

from __future__ import annotations

from typing import Any

from harness.stats import LoadStats
from harness.units import duration_text


def progress_line(elapsed: float, stats: LoadStats, delivery: dict[str, Any] | None) -> str:
    """One line: `delivery 15s: sent 14,950 accepted 14,950 | webhook delivered 14,020 pending 930 ...`."""
    parts = [
        f"delivery {elapsed:,.0f}s: sent {stats.total_messages():,} accepted {sum(stats.accepted.values()):,}"
    ]
    destinations = (delivery or {}).get("destinations") or {}
    for name, d in sorted(destinations.items()):
        p99 = (d.get("latency_seconds") or {}).get("p99")
        parts.append(
            f"{name} delivered {d.get('delivered_expected', 0):,} pending {d.get('pending', 0):,} "
            f"lost {d.get('lost', 0):,} p99 {duration_text(p99)}"
        )
    if not destinations:
        parts.append("no monitor data yet")
    return " | ".join(parts)
