"""`harness compare A.json B.json`: two runs side by side, in the terminal and as a report page.

It says first whether the runs are like for like (target, profile, shape, rate, duration); only then
does it name regressions, with the gate's own baseline checks (B judged against A).
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path
from typing import Any

from gate.baseline import regression_thresholds
from gate.cli import UnusableInput, read_summary
from gate.comparable import differences, warning
from gate.thresholds import evaluate
from harness.report_html import STYLE
from harness.tables import Column, text_table
from harness.units import duration_text

ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("target rate (msg/s)", ("run", "target_rate"), "rate"),
    ("duration", ("run", "duration_seconds"), "seconds"),
    ("messages sent", ("load", "messages"), "count"),
    ("accepted", ("load", "accepted"), "count"),
    ("throughput (msg/s, paced)", ("load", "throughput"), "rate"),
    ("error ratio", ("load", "error_ratio"), "share"),
    ("missed sends ratio", ("load", "missed_ratio"), "share"),
    ("request p50", ("load", "latency_seconds", "measured", "p50"), "seconds"),
    ("request p99", ("load", "latency_seconds", "measured", "p99"), "seconds"),
    ("request p99 corrected", ("load", "latency_seconds", "corrected", "p99"), "seconds"),
]
"""(label, path in the run summary, kind): the side-by-side rows; a new figure is one more entry."""
PER_DESTINATION: list[tuple[str, tuple[str, ...], str]] = [
    ("expected", ("expected",), "count"),
    ("delivered", ("delivered_expected",), "count"),
    ("lost", ("lost",), "count"),
    ("duplicates", ("duplicates",), "count"),
    ("delivery p99", ("latency_seconds", "p99"), "seconds"),
]


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _show(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "seconds":
        return duration_text(value)
    if kind == "share":
        return f"{value:.4%}"
    return f"{value:,.0f}" if kind == "count" else f"{value:,.1f}"


def _change(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not a:
        return "-"
    return f"{(b - a) / a:+.1%}"


def side_by_side(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, str]]:
    rows = [{"metric": label, "a": _show(_get(a, p), k), "b": _show(_get(b, p), k),
             "change": _change(_get(a, p), _get(b, p))} for label, p, k in ROWS]  # fmt: skip
    destinations = sorted(set(_destinations(a)) | set(_destinations(b)))
    for name in destinations:
        da, db = _destinations(a).get(name, {}), _destinations(b).get(name, {})
        rows += [{"metric": f"{name} {label}", "a": _show(_get(da, p), k), "b": _show(_get(db, p), k),
                  "change": _change(_get(da, p), _get(db, p))} for label, p, k in PER_DESTINATION]  # fmt: skip
    return rows


def _destinations(summary: dict[str, Any]) -> dict[str, Any]:
    return (summary.get("delivery") or {}).get("destinations") or {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", metavar="A.json", help="the earlier run's summary.json")
    parser.add_argument("run", metavar="B.json", help="the run to compare with it")
    parser.add_argument(
        "--max-regression", type=float, default=0.1, help="a change beyond this share is a regression (0.1)"
    )
    parser.add_argument("--html", metavar="FILE", default="", help="also write the comparison page here")


def run(args: argparse.Namespace) -> int:
    try:
        a = read_summary(Path(args.baseline), "baseline")
        b = read_summary(Path(args.run))
    except UnusableInput as exc:
        print(f"harness compare: {exc}", file=sys.stderr)
        return 2
    unlike = differences(a, b)
    checks, notes = regression_thresholds(a, args.max_regression, source=f"baseline {args.baseline}")
    verdict = evaluate(checks, b)
    columns = [Column("metric", "metric", str), Column("a", f"A {a['run']['name']}", str),
               Column("b", f"B {b['run']['name']}", str), Column("change", "B vs A", str)]  # fmt: skip
    rows = side_by_side(a, b)
    lines = [
        *warning(unlike),
        *(["Like for like: same target, profile, shape, rate and duration."] if not unlike else []),
    ]
    lines += ["", *text_table(columns, rows)]
    regressions = [r for r in verdict.results if not r.passed]
    if unlike and regressions:
        lines.append(f"\n{len(regressions)} change(s) beyond {args.max_regression:.0%}, not called regressions "
                     "because the runs differ (above):")  # fmt: skip
        lines += [f"  {r.threshold.text()} (was {r.value_text})" for r in regressions]
    else:
        lines.append(verdict.table().replace("SLO verdict", f"Regressions beyond {args.max_regression:.0%}"))
    lines += [f"  {note}" for note in notes]
    print("\n".join(lines))
    if args.html:
        Path(args.html).write_text(
            compare_html(a, b, unlike, columns, rows, "\n".join(lines)), encoding="utf-8"
        )
        print(f"Comparison: {args.html}")
    return 1 if regressions and not unlike else 0


def compare_html(
    a, b, unlike: list[str], columns: list[Column], rows: list[dict[str, str]], text: str
) -> str:
    from harness.report_html import html_table

    banner = (
        '<div class="stopped"><b>Not like for like</b><ul>'
        + "".join(f"<li>{html.escape(line)}</li>" for line in unlike)
        + "</ul></div>"
        if unlike
        else "<p>Like for like: same target, profile, shape, rate and duration.</p>"
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Compare {html.escape(a["run"]["name"])} and {html.escape(b["run"]["name"])}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(a["run"]["name"])} (A) vs {html.escape(b["run"]["name"])} (B)</h1>{banner}
{html_table(columns, rows)}<h2>Terminal output</h2><div class="lines">{html.escape(text)}</div></body></html>
"""
