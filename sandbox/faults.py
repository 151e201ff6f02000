"""Fault injection: decide, per request or per message and destination, which fault to inject.

Each target (ingest, each destination, backoff jitter) has its own seeded `random.Random`, so a
run with the same `seed` and the same traffic makes the same decisions, whatever the other
targets do. The caller counts every decision in `Stats.faults`.
"""

from __future__ import annotations

import random

from sandbox.config import Delay, Faults


def seeded_rng(seed: int | None, target: str) -> random.Random:
    """An RNG for one target, reproducible when `seed` is set."""
    return random.Random(f"{seed}:{target}") if seed is not None else random.Random()


class FaultInjector:
    """The live fault settings (replaceable through `PUT /admin/faults`) and their RNGs."""

    def __init__(self, faults: Faults, seed: int | None) -> None:
        self.faults = faults
        self.seed = seed
        self._ingest_rng = seeded_rng(seed, "ingest")
        self._dest_rngs: dict[str, random.Random] = {}

    def ingest_fault(self) -> str | None:
        """None, or the kind of fault to inject for this request: error_5xx, error_429 or accept_then_5xx."""
        f = self.faults.ingest
        if not (f.error_5xx or f.error_429 or f.accept_then_5xx):
            return None
        x = self._ingest_rng.random()
        if x < f.error_5xx:
            return "error_5xx"
        x -= f.error_5xx
        if x < f.error_429:
            return "error_429"
        x -= f.error_429
        if x < f.accept_then_5xx:
            return "accept_then_5xx"
        return None

    def destination_active(self, name: str) -> bool:
        f = self.faults.destinations.get(name)
        return f is not None and bool(f.drop or f.duplicate or f.delay.share)

    def decide(self, name: str) -> tuple[bool, bool, float]:
        """For one message to one destination: (drop, duplicate, delay seconds)."""
        f = self.faults.for_destination(name)
        rng = self._dest_rngs.get(name)
        if rng is None:
            rng = self._dest_rngs[name] = seeded_rng(self.seed, f"destination:{name}")
        if f.drop and rng.random() < f.drop:
            return True, False, 0.0
        duplicate = bool(f.duplicate) and rng.random() < f.duplicate
        delay = 0.0
        if f.delay.share and rng.random() < f.delay.share:
            delay = sample_delay(f.delay, rng)
        return False, duplicate, delay


def sample_delay(delay: Delay, rng: random.Random) -> float:
    """One draw from the configured delay distribution, in seconds (never negative)."""
    p = delay.params
    if delay.kind == "fixed":
        return p["seconds"]
    if delay.kind == "uniform":
        return rng.uniform(p["low"], p["high"])
    if delay.kind == "exponential":
        return rng.expovariate(1.0 / p["mean"]) if p["mean"] > 0 else 0.0
    return rng.lognormvariate(p["mu"], p["sigma"])
