"""The end of a run: the run summary document, the terminal table, and the files written for it.

The summary is one JSON document: `run` (what was run), `load` (the generator's half: throughput,
request latency measured and corrected, answers by status class), `delivery` (the monitor's
`/api/summary` for this run) and `history` (per-interval rates and latencies for the charts). The
CI gate and the thresholds read it.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gate.summary_format import ERROR_CLASSES, QUANTILES, RUN_SUMMARY_FORMAT, RUN_SUMMARY_VERSION
from harness.stats import LoadStats
from harness.units import duration_text

if TYPE_CHECKING:
    from gate.thresholds import Verdict
    from harness.options import HarnessOptions

# What the schedule paces to the target rate; duplicate re-sends ride on top of it, and one bad-input
# request may carry 2,501 invalid messages.
PACED_KINDS = ("event", "replay")


@dataclass
class RunReport:
    run_name: str
    run_id: int
    options: HarnessOptions
    target: str
    started_at: float
    ended_at: float
    streams: int
    stats: LoadStats
    delivery: dict[str, Any] | None
    history: list[dict[str, Any]]
    target_rate_source: str = "--target-rate"

    def summary(self) -> dict[str, Any]:
        duration = max(self.ended_at - self.started_at, 1e-9)
        stats = self.stats
        requests = stats.total_requests()
        by_class = stats.requests_by_class()
        first_sends = requests - sum(stats.retries.values())
        missed = sum(stats.missed.values())
        by_source: dict[str, dict[str, Any]] = {}

        def add(source: str, field: str, value: int) -> None:
            row = by_source.setdefault(source, _source_row())
            row[field] += value

        for (source, _library, kind), value in stats.messages.items():
            add(source, "messages", value)
            if kind in PACED_KINDS:
                add(source, "paced_messages", value)
        for (source, _library, cls), value in stats.requests.items():
            add(source, "requests", value)
            classes = by_source[source]["requests_by_class"]
            classes[cls] = classes.get(cls, 0) + value
        for (source, _library), value in stats.retries.items():
            add(source, "retries", value)
        for (source, _library), value in stats.bytes.items():
            add(source, "bytes", value)
        for source, value in stats.missed.items():
            add(source, "missed_sends", value)
        for source, value in stats.accepted.items():
            add(source, "accepted", value)
        for row in by_source.values():
            row["throughput"] = row["paced_messages"] / duration
            row["request_rate"] = row["requests"] / duration
        return {
            "format": RUN_SUMMARY_FORMAT,
            "version": RUN_SUMMARY_VERSION,
            "run": {
                "name": self.run_name,
                "id": self.run_id,
                "target": self.target,
                "profile": str(self.options.traffic_profile),
                "load_shape": self.options.load_shape,
                "target_rate": self.options.target_rate,
                "target_rate_source": self.target_rate_source,
                "started_at": _iso(self.started_at),
                "ended_at": _iso(self.ended_at),
                "duration_seconds": round(duration, 3),
                "streams": self.streams,
            },
            "load": {
                "messages": stats.total_messages(),
                "accepted": sum(stats.accepted.values()),
                "requests": requests,
                "throughput": stats.total_messages(PACED_KINDS) / duration,
                "bad_input_messages": stats.total_messages(("bad",)),
                "messages_by_kind": {
                    "paced": stats.total_messages(PACED_KINDS),
                    "duplicate": stats.total_messages(("duplicate",)),
                    "bad": stats.total_messages(("bad",)),
                },
                "request_rate": requests / duration,
                "requests_by_class": by_class,
                "error_ratio": sum(by_class.get(c, 0) for c in ERROR_CLASSES) / requests if requests else 0.0,
                "latency_seconds": {
                    kind: {name: stats.combined_latency(kind).quantile(q) for name, q in QUANTILES.items()}
                    for kind in ("measured", "corrected")
                },
                "missed_sends": missed,
                "missed_ratio": missed / (first_sends + missed) if first_sends + missed else 0.0,
                "retries": sum(stats.retries.values()),
                "duplicates_sent": sum(
                    v for (_s, _l, kind), v in stats.messages.items() if kind == "duplicate"
                ),
                "bad_inputs": {
                    "expected": sum(v for (_c, a), v in stats.bad_inputs.items() if a == "expected"),
                    "unexpected": sum(v for (_c, a), v in stats.bad_inputs.items() if a == "unexpected"),
                },
                "by_source": by_source,
            },
            "delivery": self.delivery or {},
            "history": self.history,
        }

    def terminal_table(self, verdict: Verdict) -> str:
        s = self.summary()
        run = s["run"]
        lines = [
            "",
            f"Run {run['name']} against {run['target']}: {run['duration_seconds']:.0f}s, {run['streams']} stream(s), "
            f"target {run['target_rate']:,.0f} msg/s (from {run.get('target_rate_source', '--target-rate')})",
            *(f"  {label:<10}{text}" for label, text in load_lines(s["load"])),
        ]
        destinations = (s["delivery"] or {}).get("destinations") or {}
        if destinations:
            lines += ["  " + line for line in text_table(DESTINATION_COLUMNS, destination_rows(destinations))]
        else:
            lines.append("  delivery  no monitor data (no --monitor-url, or the monitor did not answer)")
        lines.append(verdict.table())
        return "\n".join(lines)


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
        ("answers", ", ".join(f"{k} {v:,}" for k, v in sorted(load["requests_by_class"].items()))),
        (
            "latency",
            "  ".join(
                f"{kind} p50 {duration_text(q['p50'])} p95 {duration_text(q['p95'])} p99 {duration_text(q['p99'])}"
                for kind, q in latency.items()
            ),
        ),
    ]


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
    Column("pending", "pending"),
    Column("duplicates", "dupes"),
    Column("dedupe_leaks", "leaks"),
    Column("p50", "p50", duration_text),
    Column("p95", "p95", duration_text),
    Column("p99", "p99", duration_text),
]
"""The delivery table's columns, in order: a new audit figure is one more entry here."""


def destination_rows(destinations: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, d in sorted(destinations.items()):
        quantiles = d.get("latency_seconds") or {}
        rows.append({**d, "destination": name, **{q: quantiles.get(q) for q in ("p50", "p95", "p99")}})
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


def _source_row() -> dict[str, Any]:
    counts: dict[str, Any] = dict.fromkeys(
        ("messages", "paced_messages", "accepted", "requests", "retries", "bytes", "missed_sends"), 0
    )
    counts["requests_by_class"] = {}
    return counts


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path


def write_report(summary: dict[str, Any], directory: Path) -> ReportPaths:
    """Write `<dir>/<run>/summary.json` and `report.html` (self-contained, viewable offline)."""
    folder = directory / summary["run"]["name"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(folder / "summary.json", folder / "report.html")
    paths.json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    paths.html.write_text(render_html(summary), encoding="utf-8")
    return paths


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"


# HTML ------------------------------------------------------------------------------------------


def _chart(title: str, history: list[dict[str, Any]], series: list[tuple[str, str, str]]) -> str:
    """An inline SVG line chart; hand-written because the report must render with no network."""
    width, height, pad = 720, 220, 40
    if not history:
        return f"<h3>{html.escape(title)}</h3><p>No samples.</p>"
    t0 = history[0]["t"]
    xs = [row["t"] - t0 for row in history]
    values = [[_lookup(row, key) for row in history] for key, _label, _color in series]
    top = max((v for column in values for v in column if v is not None), default=0) or 1
    x_max = max(xs) or 1

    def point(x: float, y: float) -> str:
        return f"{pad + x / x_max * (width - 2 * pad):.1f},{height - pad - y / top * (height - 2 * pad):.1f}"

    lines = []
    for (_key, label, color), column in zip(series, values, strict=True):
        pts = " ".join(point(x, y) for x, y in zip(xs, column, strict=True) if y is not None)
        lines.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"><title>{label}</title></polyline>'
        )
    legend = " ".join(f'<span style="color:{c}">■ {html.escape(label)}</span>' for _k, label, c in series)
    axis = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#999"/>'
        f'<text x="{pad}" y="{pad - 8}" font-size="11">{top:,.4g}</text>'
        f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" text-anchor="end">{x_max:.0f}s</text>'
    )
    return (
        f"<h3>{html.escape(title)}</h3><div>{legend}</div>"
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">{axis}{"".join(lines)}</svg>'
    )


def _lookup(row: dict[str, Any], key: str) -> float | None:
    """A history value by dotted key (`delivered_per_sec.webhook`)."""
    node: Any = row
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_PALETTE = ("#137333", "#e37400", "#9334e6", "#12b5cb", "#c5221f", "#5f6368")


def render_html(summary: dict[str, Any]) -> str:
    run, load, history = summary["run"], summary["load"], summary.get("history", [])
    destinations = (summary.get("delivery") or {}).get("destinations") or {}
    verdict = summary.get("verdict") or {}
    delivery_rows = [
        [name, d.get("expected", 0), d.get("delivered_expected", 0), d.get("lost", 0), d.get("pending", 0),
         d.get("duplicates", 0), d.get("dedupe_leaks", 0),
         _ms((d.get("latency_seconds") or {}).get("p95")), _ms((d.get("latency_seconds") or {}).get("p99"))]
        for name, d in sorted(destinations.items())
    ]  # fmt: skip
    threshold_rows = [
        [r["metric"], r["expression"], r.get("value_text", ""), "PASS" if r["passed"] else "FAIL"]
        for r in verdict.get("results", [])
    ]
    status = "PASS" if verdict.get("passed", True) else "FAIL"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test {html.escape(run["name"])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child{{text-align:left}}
.PASS{{color:#137333}}.FAIL{{color:#c5221f}}</style></head><body>
<h1>Load test {html.escape(run["name"])} — <span class="{status}">{status}</span></h1>
<p>Target {html.escape(str(run["target"]))}, profile {html.escape(run["profile"])}, shape {html.escape(run["load_shape"])}
at {run["target_rate"]:,.0f} msg/s; {run["started_at"]} to {run["ended_at"]} ({run["duration_seconds"]:.0f}s), {run["streams"]} stream(s).</p>
<p>Sent {load["messages"]:,} messages in {load["requests"]:,} requests ({load["throughput"]:,.0f} msg/s);
missed sends {load["missed_sends"]:,}; retries {load["retries"]:,}; error ratio {load["error_ratio"]:.4%}.</p>
<h2>Verdict</h2>{_table(threshold_rows, ["metric", "threshold", "value", "result"])}
<h2>Delivery</h2>{_table(delivery_rows, ["destination", "expected", "delivered", "lost", "pending", "duplicates", "dedupe leaks", "p95", "p99"])}
{_chart("Message rate (msg/s)", history, [("messages_per_sec", "sent", "#1a73e8")] + [(f"delivered_per_sec.{name}", f"delivered to {name}", color) for name, color in zip(sorted(destinations), _PALETTE, strict=False)])}
{_chart("Request latency p95 (s)", history, [("p95_measured_seconds", "measured", "#1a73e8"), ("p95_corrected_seconds", "corrected (from intended send)", "#c5221f")])}
</body></html>
"""
