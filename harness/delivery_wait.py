"""How long the end of a run waits for deliveries, and what it saw while waiting.

The wait ends as soon as every stream's final ledger is in and nothing is pending or lost. Past
`--delivery-wait` it goes on while messages are pending (not delivered, loss deadline not passed),
up to the monitor's loss deadline (plus a sweep's margin, at most MAX_DEADLINE_WAIT more): a message
dropped late in the run then counts as lost, not pending. While messages are lost it does not stop
early: `lost` is what never arrived by the end of the delivery wait, and one arriving before then
counts as late. What arrived in its last seconds tells the verdict whether messages were still
arriving when it ended.
"""

from __future__ import annotations

import logging
from typing import Any

DEADLINE_MARGIN = 3.0
"""Seconds past the loss deadline for the monitor's sweep to count a missing message as lost."""
MAX_DEADLINE_WAIT = 600.0
"""The most the delivery wait grows past --delivery-wait to reach the monitor's loss deadline."""
ARRIVING_WINDOW = 2.0
"""Seconds at the end of the delivery wait in which arrivals mean messages were still arriving."""
log = logging.getLogger("harness")


def delivered_by_destination(delivery: dict[str, Any] | None) -> dict[str, int]:
    destinations = (delivery or {}).get("destinations") or {}
    return {name: d.get("delivered", 0) for name, d in destinations.items()}


def _any(delivery: dict[str, Any], field: str) -> bool:
    return any(d.get(field, 0) for d in (delivery.get("destinations") or {}).values())


def settled(delivery: dict[str, Any], run: int, streams: int) -> bool:
    """Every stream's final ledger has arrived and nothing expected is still in flight."""
    runs = [r for r in delivery.get("runs", []) if r.get("run") == run]
    if not runs:
        return False
    final = [s for s in runs[0].get("streams", []) if s.get("final")]
    if len(final) < streams:
        return False
    return not _any(delivery, "pending")


class DeliveryWait:
    """One run's wait: call `over` with each monitor summary until it says so, then `summary`."""

    def __init__(self, started: float, delivery_wait: float, run: int, streams: int) -> None:
        self.started = started
        self.delivery_wait = delivery_wait
        self.run, self.streams = run, streams
        self.points: list[tuple[float, dict[str, int]]] = []

    def over(self, now: float, delivery: dict[str, Any] | None) -> bool:
        """Whether to stop waiting, given the monitor's latest summary (None: it did not answer)."""
        deadline = self.started + self.delivery_wait
        if delivery is not None:
            self.points.append((now, delivered_by_destination(delivery)))
            if settled(delivery, self.run, self.streams) and not _any(delivery, "lost"):
                return True
            if _any(delivery, "pending"):
                needed = float(delivery.get("lost_after_seconds") or 0.0) + DEADLINE_MARGIN
                deadline = max(deadline, self.started + min(needed, self.delivery_wait + MAX_DEADLINE_WAIT))
        if now < deadline:
            return False
        log.warning("delivery wait of %.0fs ended with messages lost or pending", now - self.started)
        return True

    def summary(self, now: float) -> dict[str, Any]:
        """`seconds` waited and, per destination, the messages that arrived in its last seconds."""
        arriving: dict[str, int] = {}
        if self.points:
            last_t, last = self.points[-1]
            earlier = [counts for t, counts in self.points if t <= last_t - ARRIVING_WINDOW]
            base = earlier[-1] if earlier else self.points[0][1]
            arriving = {name: count - base.get(name, 0) for name, count in last.items()}
        return {
            "seconds": round(now - self.started, 3),
            "window_seconds": ARRIVING_WINDOW,
            "arriving_at_end": arriving,
        }
