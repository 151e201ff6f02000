"""Load shapes as target-rate curves: the share of the peak message rate at each second of the run.

Users are sized once for the peak and each paces itself on the curve, so the master's shape and
every worker compute the same rate from the same options, with no messages between them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_SHAPED_DURATION = 600.0
"""Length of a ramp, steps, spike or diurnal run when `-t/--run-time` is not given."""


@dataclass(frozen=True)
class Shape:
    """A named curve: `share(elapsed, duration)` is the fraction (0..1] of the peak rate."""

    summary: str
    share: Callable[[float, float], float]
    needs_duration: bool = True


def _ramp(elapsed: float, duration: float) -> float:
    ramp_time = duration / 2
    return min(1.0, 0.1 + 0.9 * elapsed / ramp_time) if ramp_time > 0 else 1.0


def _steps(elapsed: float, duration: float, steps: int = 5) -> float:
    step = min(steps - 1, int(elapsed / (duration / steps))) if duration > 0 else steps - 1
    return (step + 1) / steps


def _spike(elapsed: float, duration: float) -> float:
    start, end = 0.45 * duration, 0.55 * duration
    return 1.0 if start <= elapsed < end else 0.1


def _diurnal(elapsed: float, duration: float) -> float:
    # One day compressed into the run: trough at the start, peak half way.
    return 0.55 - 0.45 * math.cos(2 * math.pi * elapsed / duration) if duration > 0 else 1.0


SHAPES: dict[str, Shape] = {
    "constant": Shape("the target rate from start to end", lambda _e, _d: 1.0, needs_duration=False),
    "ramp": Shape("10% to 100% over the first half, then hold", _ramp),
    "steps": Shape("five equal steps up to the target rate", _steps),
    "spike": Shape("10% of the target, with a sudden ×10 spike to 100% in the middle tenth", _spike),
    "diurnal": Shape("a day's curve compressed into the run, 10% to 100%", _diurnal),
    "soak": Shape(
        "the target rate held for a long run (default 4 h)", lambda _e, _d: 1.0, needs_duration=False
    ),
}

SOAK_DEFAULT_DURATION = 4 * 3600.0


def shape_duration(name: str, run_time: float | None) -> float | None:
    """How long a shaped run lasts: `-t` if given, else the shape's default (None: until stopped)."""
    if run_time:
        return float(run_time)
    if name == "soak":
        return SOAK_DEFAULT_DURATION
    return DEFAULT_SHAPED_DURATION if SHAPES[name].needs_duration else None


def rate_at(name: str, peak_rate: float, elapsed: float, duration: float | None) -> float:
    """Target messages/s at `elapsed` seconds into the run."""
    return peak_rate * SHAPES[name].share(elapsed, duration or DEFAULT_SHAPED_DURATION)
