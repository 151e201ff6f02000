"""How a destination answers each delivery: healthy, slow, flaky, rate-limited, rejecting or down.

Every refusal is decided per request from a seeded `random.Random`, so a run with the same seed and
the same request order refuses the same requests. A refusal's class tells the audit what a correct
pipeline must do next: `retry` (429 and 5xx: the messages must come back) or `discard` (other 4xx:
they must never come back). `down` answers a 5xx for its window (it does not refuse connections:
the receiver shares its listening socket with the API).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from monitor.config import BehaviourConfig

ACCEPT = 200
RETRY = "retry"
DISCARD = "discard"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one delivery request."""

    status: int = ACCEPT
    delay_seconds: float = 0.0
    retry_after_seconds: float | None = None
    reason: str = "accepted"
    """Bounded label for metrics: accepted, slow, server_error, rate_limited, rejected, down."""

    @property
    def refused(self) -> bool:
        return self.status != ACCEPT

    @property
    def refusal_class(self) -> str | None:
        """`retry` when a correct pipeline must redeliver, `discard` when it must not, else None."""
        if self.status == ACCEPT:
            return None
        return RETRY if self.status == 429 or self.status >= 500 else DISCARD


class Behaviour:
    """The behaviour of one destination, with its own RNG and (for `down`) its time window."""

    def __init__(self, config: BehaviourConfig, seed: int | str, started_at: float) -> None:
        self.config = config
        self.started_at = started_at
        self._rng = random.Random(config.seed if config.seed is not None else seed)

    def describe(self, now: float) -> dict[str, object]:
        """The behaviour as JSON for the API (the config plus, when down, the seconds left)."""
        doc: dict[str, object] = {
            name: getattr(self.config, name)
            for name in self.config.__slots__  # type: ignore[attr-defined]
        }
        if self.config.kind == "down":
            doc["down_seconds_left"] = max(0.0, self.started_at + self.config.seconds - now)
        return doc

    def _delay(self) -> float:
        c, rng = self.config, self._rng
        if c.distribution == "uniform":
            return rng.uniform(c.low, c.high)
        if c.distribution == "exponential":
            return rng.expovariate(1.0 / c.mean) if c.mean > 0 else 0.0
        if c.distribution == "lognormal":
            return rng.lognormvariate(0.0, c.sigma) * c.median if c.median > 0 else 0.0
        return c.seconds

    def decide(self, now: float) -> Decision:
        """The answer to the next request arriving at `now` (monotonic seconds)."""
        c = self.config
        if c.kind == "healthy":
            return Decision()
        if c.kind == "slow":
            return Decision(delay_seconds=self._delay(), reason="slow")
        if c.kind == "down":
            if now < self.started_at + c.seconds:
                return Decision(status=c.status, reason="down")
            return Decision()
        if self._rng.random() >= c.share:
            return Decision()
        if c.kind == "flaky":
            return Decision(status=c.status, reason="server_error")
        if c.kind == "rate_limited":
            return Decision(status=429, retry_after_seconds=c.retry_after_seconds, reason="rate_limited")
        return Decision(status=c.status, reason="rejected")
