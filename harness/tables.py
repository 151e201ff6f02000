"""The run's tables as data: labelled load lines and column specs, shared by the terminal and the HTML.

A new figure (a row of the audit, a column of the delivery table) is one more entry here; the
terminal and the report lay every table out from these specs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.units import duration_text


def load_lines(load: dict[str, Any]) -> list[tuple[str, str]]:
    """The load half as labelled lines, reconciling sent, accepted and what destinations expect."""
    kinds = load.get("messages_by_kind") or {}
    bad = load.get("bad_inputs") or {}
    latency = load["latency_seconds"]
    return [
        (
            "sent",
            f"{load['messages']:,} messages in {load['requests']:,} requests = "
            f"paced {kinds.get('paced', 0):,} ({load['throughput']:,.0f} msg/s) + re-sent duplicates "
            f"{kinds.get('duplicate', 0):,} + bad-input {load.get('bad_input_messages', 0):,}",
        ),
        (
            "accepted",
            f"{load['accepted']:,} messages; bad-input requests answered as designed {bad.get('expected', 0):,}, "
            f"not as designed {bad.get('unexpected', 0):,}; missed sends {load['missed_sends']:,}; "
            f"retries {load['retries']:,}",
        ),
        ("answers", answers_text(load["requests_by_class"], bad.get("expected", 0))),
        (
            "latency",
            "  ".join(
                f"{kind} p50 {duration_text(q['p50'])} p95 {duration_text(q['p95'])} p99 {duration_text(q['p99'])}"
                for kind, q in latency.items()
            ),
        ),
    ]


def answers_text(by_class: dict[str, int], refused_as_designed: int) -> str:
    """Answers by status class, with the bad-input requests' 4xx explained (they are sent to be refused)."""
    parts = []
    for cls, count in sorted(by_class.items()):
        text = f"{cls} {count:,}"
        if cls == "4xx" and refused_as_designed:
            text += f" ({min(count, refused_as_designed):,} of them bad-input requests refused as designed)"
        parts.append(text)
    return ", ".join(parts) or "none"


@dataclass(frozen=True)
class Column:
    """One column of the delivery table: the summary key, its title, how to show a value."""

    key: str
    title: str
    show: Callable[[Any], str] = lambda v: f"{v or 0:,}"


DESTINATION_COLUMNS = [
    Column("destination", "destination", str),
    Column("expected", "expected"),
    Column("delivered_expected", "delivered"),
    Column("lost", "lost"),
    Column("late", "late"),
    Column("pending", "pending"),
    Column("duplicates", "dupes"),
    Column("dedupe_leaks", "leaks"),
    Column("out_of_order_share", "order", lambda share: "-" if share is None else f"{share:.2%}"),
    Column("p50", "p50", duration_text),
    Column("p95", "p95", duration_text),
    Column("p99", "p99", duration_text),
]
"""The delivery table's columns, in order: a new audit figure is one more entry here."""


def destination_rows(destinations: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, d in sorted(destinations.items()):
        quantiles = d.get("latency_seconds") or {}
        rows.append(
            {
                **d,
                "destination": name,
                "out_of_order_share": (d.get("ratios") or {}).get("out_of_order"),
                **{q: quantiles.get(q) for q in ("p50", "p95", "p99")},
            }
        )
    return rows


def text_table(columns: list[Column], rows: list[dict[str, Any]]) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart: numbers can never run together."""
    cells = [[c.title for c in columns]] + [[c.show(row.get(c.key)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]


