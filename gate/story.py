"""The verdict in words: what the figures of a run summary mean, one sentence each.

Thresholds say pass or fail; these sentences say which kind of trouble it was, so a reader does not
mistake refused traffic for a quiet run, late messages for lost ones, or the pipeline's duplicates
for dedupe leaks. Each is derived from the summary alone (also by `harness gate` on a saved file).
"""

from __future__ import annotations

from typing import Any


def _counts(answers: dict[str, int]) -> str:
    return ", ".join(f"{code} ×{n:,}" for code, n in sorted(answers.items()))


def _load_story(load: dict[str, Any]) -> list[str]:
    lines = []
    refused = int(load.get("refused") or 0)
    if refused:
        sources = [
            f"{name} ({_counts(row.get('refused_by_answer') or {})})"
            for name, row in sorted((load.get("by_source") or {}).items())
            if row.get("refused")
        ]
        lines.append(
            f"The target refused {refused:,} valid messages ({_counts(load.get('refused_by_answer') or {})}) "
            f"and accepted {int(load.get('accepted') or 0):,}; refused by source: {', '.join(sources)}."
        )
    lenient = {
        case: row["lenient"]
        for case, row in sorted(((load.get("bad_inputs") or {}).get("by_case") or {}).items())
        if row.get("lenient")
    }
    if lenient:
        lines.append(
            "The target accepted bad input it should refuse (lenient): "
            + ", ".join(f"{case} ×{n:,}" for case, n in lenient.items())
            + "."
        )
    errors = (load.get("bad_inputs") or {}).get("error") or 0
    if errors:
        lines.append(f"{errors:,} bad-input requests got a target error (5xx or no answer) instead of a 4xx.")
    return lines


def _destination_story(name: str, d: dict[str, Any], deadline: float | None) -> list[str]:
    lines = []
    after = f"after the {deadline:g}s loss deadline" if deadline else "after their loss deadline"
    if d.get("lost"):
        lines.append(f"{name}: {d['lost']:,} messages lost (never arrived by the end of the delivery wait).")
    if d.get("late"):
        still = " and none lost" if not d.get("lost") else ""
        lines.append(f"{name}: {d['late']:,} messages arrived late ({after}){still}: late, not lost.")
    if d.get("pending"):
        lines.append(
            f"{name}: {d['pending']:,} messages still pending (neither arrived nor past their deadline) "
            "when the wait ended."
        )
    if d.get("later_send_only", 0) * 2 > d.get("delivered", 0) > 0:
        lines.append(
            f"{name}: {d['later_send_only']:,} of {d['delivered']:,} messages arrived only with a sentAt other "
            "than their first send's: the pipeline seems to rewrite sentAt, so dedupe leaks cannot be told "
            "from delivery duplicates here."
        )
    if d.get("dedupe_leaks") or d.get("duplicates"):
        lines.append(
            f"{name}: {d.get('dedupe_leaks', 0):,} dedupe leaks (a re-send, new sentAt, delivered) and "
            f"{d.get('duplicates', 0):,} delivery duplicates (one send delivered twice)."
        )
    return lines


def _arrival_story(wait: dict[str, Any]) -> list[str]:
    arriving = {name: n for name, n in sorted((wait.get("arriving_at_end") or {}).items()) if n}
    if not arriving:
        return []
    window = wait.get("window_seconds", 0)
    where = ", ".join(f"{name} {n:,}" for name, n in arriving.items())
    return [
        f"Messages were still arriving when the delivery wait ended ({where} in its last {window:g}s): "
        "some counted lost or pending may yet arrive late; a longer --delivery-wait would tell."
    ]


def story(summary: dict[str, Any]) -> list[str]:
    """The sentences for this summary (empty for a clean run)."""
    lines = _load_story(summary.get("load") or {})
    delivery = summary.get("delivery") or {}
    deadline = delivery.get("lost_after_seconds")
    for name, d in sorted((delivery.get("destinations") or {}).items()):
        lines += _destination_story(name, d, deadline)
    lines += _arrival_story((summary.get("run") or {}).get("delivery_wait") or {})
    return lines
