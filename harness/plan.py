"""How many users each source gets and when each request is due, for an open-model target rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

LATENCY_BUDGET = 0.1
"""Default seconds of answer latency the user pool absorbs at the peak rate without falling behind."""
MAX_USERS_PER_SOURCE = 5000


@dataclass(frozen=True)
class SourceSchedule:
    """One source's share of the traffic and the users that send it (counted across all workers)."""

    source: str
    users: int
    message_share: float
    messages_per_request: float

    def request_rate(self, total_rate: float) -> float:
        """Requests/s of this source when the whole test sends `total_rate` messages/s."""
        return total_rate * self.message_share / self.messages_per_request


def plan_sources(
    shares: Mapping[str, float],
    messages_per_request: Mapping[str, float],
    peak_rate: float,
    latency_budget: float = LATENCY_BUDGET,
) -> dict[str, SourceSchedule]:
    """Size each source's pool of users for the peak rate, counted across all workers.

    A pool of ⌈requests/s × latency_budget⌉ users (at least 2) keeps up while answers take up to the
    budget on average (Little's law); slower answers show as corrected latency and, past --max-lag,
    missed sends. Every idle user costs a connection and wake-ups, so a fast target is best driven
    with a budget near its real latency (--latency-budget).
    """
    plan = {}
    for source, share in shares.items():
        if share <= 0:
            continue
        mpr = messages_per_request[source]
        concurrency = math.ceil(peak_rate * share / mpr * latency_budget)
        users = min(MAX_USERS_PER_SOURCE, max(2, concurrency))
        plan[source] = SourceSchedule(source, users, share, mpr)
    return plan


class Pacer:
    """Hands out one source's intended send times in this process (k6's constant-arrival-rate).

    Any idle user takes the next slot, so one slow answer does not hold the schedule back; slots
    come due at this process's share of the rate (its users ÷ all users of the source), so the
    whole test sends at the target rate however Locust spreads users over workers.
    """

    def __init__(self, schedule: SourceSchedule) -> None:
        self.schedule = schedule
        self.users_here = 0
        self.next_at: float | None = None

    def take(self, now: float, total_rate: float, max_lag: float) -> tuple[float, int]:
        """The next intended send time, and how many earlier slots were dropped for being too late."""
        local_rate = self.schedule.request_rate(total_rate) * self.users_here / self.schedule.users
        interval = 1.0 / local_rate if local_rate > 0 else 1.0
        if self.next_at is None:
            self.next_at = now
        missed = 0
        if now - self.next_at > max_lag:
            missed = int((now - self.next_at) / interval + 1e-9)  # 1e-9: 2.0 / 0.01 is 199.999…
            self.next_at += missed * interval
        slot = self.next_at
        self.next_at += interval
        return slot, missed
