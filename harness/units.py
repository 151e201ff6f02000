"""Numbers for people: durations that stay readable from microseconds to minutes, in a fixed width."""

from __future__ import annotations

DURATION_WIDTH = 8
"""Every `duration_text` fits in this many characters, so table columns never run together."""


def duration_text(seconds: float | None) -> str:
    """`0.8ms`, `131.4ms`, `2.35s`, `43.4s`, `12m05s`: at most DURATION_WIDTH characters; `-` for none."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 600:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 6000 else f"{minutes // 60}h"
