"""Whether two runs can be compared at all: a "regression" between runs at different target rates,
against different targets or with different profiles says nothing about the system."""

from __future__ import annotations

from typing import Any

DURATION_TOLERANCE = 0.25
"""Durations within this share of each other count as the same length of run."""
SAME = ("target", "profile", "load_shape", "target_rate", "streams")


def differences(baseline: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """One line per way the runs differ in what was asked of them (empty: like for like)."""
    base, new = baseline.get("run") or {}, run.get("run") or {}
    lines = [
        f"{key.replace('_', ' ')} differs: {_show(base.get(key))} in the baseline, {_show(new.get(key))} in this run"
        for key in SAME
        if base.get(key) != new.get(key)
    ]
    a, b = base.get("duration_seconds") or 0, new.get("duration_seconds") or 0
    if max(a, b) and abs(a - b) > DURATION_TOLERANCE * max(a, b):
        lines.append(f"duration differs: {a:,.0f} s in the baseline, {b:,.0f} s in this run")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}"
    return "none" if value is None else str(value)


def warning(lines: list[str]) -> list[str]:
    """The lines a user reads before any regression verdict."""
    if not lines:
        return []
    return [
        "Not like for like: the runs differ in what was asked of them, so a change below may be that",
        "difference, not a regression:",
        *(f"  - {line}" for line in lines),
    ]
