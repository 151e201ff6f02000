"""The end of a run: the run summary document, the terminal table, and the files written for it.

The summary is one JSON document: `run` (what was run), `load` (the generator's half: throughput,
request latency measured and corrected, answers by status class), `delivery` (the monitor's
`/api/summary` for this run) and `history` (per-interval rates and latencies for the charts). The
CI gate and the thresholds read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gate.summary_format import ERROR_CLASSES, QUANTILES, RUN_SUMMARY_FORMAT, RUN_SUMMARY_VERSION
from harness.report_html import render_html
from harness.stats import BAD_INPUT_OUTCOMES, LoadStats
from harness.tables import DESTINATION_COLUMNS, destination_rows, load_lines, text_table

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
    users: int = 0
    """Users across all workers, sized from the target rate (the plan)."""
    requests: dict[str, Any] | None = None
    """Locust's own statistics: `endpoints` and `failures` rows (harness.locust_stats)."""

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
        for (source, code), value in stats.refused.items():
            add(source, "refused", value)
            answers = by_source[source]["refused_by_answer"]
            answers[code] = answers.get(code, 0) + value
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
                "users": self.users,
                "started_at": _iso(self.started_at),
                "ended_at": _iso(self.ended_at),
                "duration_seconds": round(duration, 3),
                "streams": self.streams,
            },
            "load": {
                "messages": stats.total_messages(),
                "accepted": sum(stats.accepted.values()),
                "refused": sum(stats.refused.values()),
                "refused_by_answer": _refused_by_answer(stats),
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
                "bad_inputs": _bad_inputs(stats),
                "by_source": by_source,
            },
            "delivery": self.delivery or {},
            "requests": self.requests or {},
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
            *_ingest_lines(s["load"]),
        ]
        destinations = (s["delivery"] or {}).get("destinations") or {}
        if destinations:
            lines += ["  " + line for line in text_table(DESTINATION_COLUMNS, destination_rows(destinations))]
            lines.append("  (order: share of deliveries that came before an earlier message of the same user)")
        else:
            lines.append("  delivery  no monitor data (no --monitor-url, or the monitor did not answer)")
        lines.append(verdict.table())
        return "\n".join(lines)


def _ingest_lines(load: dict[str, Any]) -> list[str]:
    """Accepted and refused messages, per source and per answer (refused: a non-429 4xx)."""
    refused = load.get("refused", 0)
    answers = ", ".join(f"{code} ×{n:,}" for code, n in sorted((load.get("refused_by_answer") or {}).items()))
    lines = [
        f"  ingest    accepted {load.get('accepted', 0):,}, refused {refused:,}"
        + (f" ({answers})" if answers else "")
    ]
    if refused:
        for name, row in sorted((load.get("by_source") or {}).items()):
            codes = ", ".join(f"{c} ×{n:,}" for c, n in sorted((row.get("refused_by_answer") or {}).items()))
            lines.append(
                f"    {name:<12} accepted {row.get('accepted', 0):>9,}  refused {row.get('refused', 0):>9,}  {codes}"
            )
    return lines


def _source_row() -> dict[str, Any]:
    counts: dict[str, Any] = dict.fromkeys(
        ("messages", "paced_messages", "accepted", "refused", "requests", "retries", "bytes", "missed_sends"),
        0,
    )
    counts["requests_by_class"] = {}
    counts["refused_by_answer"] = {}
    return counts


def _refused_by_answer(stats: LoadStats) -> dict[str, int]:
    out: dict[str, int] = {}
    for (_source, code), value in sorted(stats.refused.items()):
        out[code] = out.get(code, 0) + value
    return out


def _bad_inputs(stats: LoadStats) -> dict[str, Any]:
    """Bad-input requests by outcome, in total and per case (`lenient`: the target accepted one)."""
    totals: dict[str, Any] = dict.fromkeys(BAD_INPUT_OUTCOMES, 0)
    by_case: dict[str, dict[str, int]] = {}
    for (case, outcome), value in sorted(stats.bad_inputs.items()):
        totals[outcome] = totals.get(outcome, 0) + value
        row = by_case.setdefault(case, dict.fromkeys(BAD_INPUT_OUTCOMES, 0))
        row[outcome] = row.get(outcome, 0) + value
    totals["by_case"] = by_case
    return totals


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
