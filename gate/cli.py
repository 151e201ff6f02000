"""`harness gate`: judge a run against SLO thresholds (and a baseline) for CI.

    harness gate --slo slo.yaml reports/<run>/summary.json --junit slo.xml
    harness gate --slo slo.yaml summary.json --baseline baseline.json --max-regression 0.1
    harness gate --slo slo.yaml --prometheus http://127.0.0.1:9090 --run <run> --range 1h

Prints a table of every threshold with its value and verdict. Exit status: 0 every threshold
passed, 1 a threshold failed, 2 unusable input (a file that cannot be read or is not valid; the
message names the file and the line or key).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gate.summary_format import RUN_SUMMARY_FORMAT, RUN_SUMMARY_VERSION


class UnusableInput(Exception):
    """An input the gate cannot judge; the message names the file and what is wrong."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "summary", nargs="?", metavar="SUMMARY.json", help="run summary JSON (reports/<run>/summary.json)"
    )
    parser.add_argument(
        "--slo", default="", help="SLO thresholds YAML (default: the bundled gate/thresholds.yaml)"
    )
    parser.add_argument("--junit", default="", metavar="OUT.xml", help="also write the verdict as JUnit XML")
    parser.add_argument("--json", default="", metavar="OUT.json", help="also write the verdict as JSON")
    parser.add_argument(
        "--baseline", default="", metavar="BASE.json", help="a stored run summary to compare with"
    )
    parser.add_argument(
        "--max-regression",
        type=float,
        default=0.1,
        help="largest regression allowed against --baseline, as a share (0.1: throughput down or "
        "latency up by at most 10%%; default 0.1)",
    )
    parser.add_argument(
        "--latency-floor",
        default="1ms",
        help="a latency must also rise by more than this to count as a regression (default 1ms)",
    )
    parser.add_argument(
        "--prometheus",
        default="",
        metavar="URL",
        help="evaluate against this Prometheus instead of a summary",
    )
    parser.add_argument(
        "--run", default="", help="with --prometheus: the run (name or id) for delivery counts"
    )
    parser.add_argument(
        "--range",
        default="1h",
        help="with --prometheus: the window that rates and quantiles cover (default 1h)",
    )
    parser.add_argument(
        "--match",
        default="",
        metavar="MATCHERS",
        help='with --prometheus: extra label matchers for every series, e.g. job="soak"',
    )
    parser.add_argument("--list-metrics", action="store_true", help="print the metric catalogue and exit")


def read_summary(path: Path, what: str = "summary") -> dict[str, Any]:
    """A run summary file, checked enough to judge: readable JSON, the run-summary format and version."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"{path}: the {what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnusableInput(
            f"{path}:{exc.lineno}:{exc.colno}: the {what} is not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise UnusableInput(f"{path}: the {what} must be a JSON object, got {type(doc).__name__}")
    if doc.get("format") != RUN_SUMMARY_FORMAT:
        raise UnusableInput(f"{path}: key 'format' is {doc.get('format')!r}, expected {RUN_SUMMARY_FORMAT!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= RUN_SUMMARY_VERSION:
        raise UnusableInput(
            f"{path}: key 'version' is {version!r}; this gate reads versions 1..{RUN_SUMMARY_VERSION}"
        )
    for key in ("run", "load"):
        if not isinstance(doc.get(key), dict):
            raise UnusableInput(f"{path}: key {key!r} is missing or not an object")
    if not isinstance(doc.get("delivery", {}), dict):
        raise UnusableInput(f"{path}: key 'delivery' is not an object")
    return doc


def _thresholds(path: str) -> list:
    from gate.thresholds import ThresholdError, default_thresholds, load_thresholds

    try:
        return load_thresholds(Path(path)) if path else default_thresholds()
    except ThresholdError as exc:
        raise UnusableInput(str(exc)) from None
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot read the thresholds ({exc.strerror or exc})") from None


def _judge(args: argparse.Namespace):
    """The verdict, the notes printed under it, and JUnit properties."""
    from gate.thresholds import ThresholdError, Verdict, evaluate, parse_duration

    thresholds = _thresholds(args.slo)
    if args.prometheus:
        if args.summary or args.baseline:
            raise UnusableInput(
                "--prometheus judges live series: give no SUMMARY.json and no --baseline with it"
            )
        from gate.promql import PrometheusClient, PrometheusError, Window, evaluate_prometheus, run_label

        window = Window(range=args.range, run=run_label(args.run) if args.run else None, matchers=args.match)
        client = PrometheusClient(args.prometheus)
        try:
            verdict = evaluate_prometheus(thresholds, client, window)
        except PrometheusError as exc:
            raise UnusableInput(str(exc)) from None
        finally:
            client.close()
        props = {"prometheus": args.prometheus, "range": args.range, "run": args.run or "all"}
        return verdict, [], props
    if not args.summary:
        raise UnusableInput("give a run summary (SUMMARY.json) or --prometheus URL")
    summary = read_summary(Path(args.summary))
    verdict = evaluate(thresholds, summary)
    notes: list[str] = []
    props = {"summary": args.summary, "run": str(summary["run"].get("name", ""))}
    if args.baseline:
        from gate.baseline import regression_thresholds
        from gate.comparable import differences, warning

        if not 0 <= args.max_regression < 1:
            raise UnusableInput(f"--max-regression must be a share in [0, 1), got {args.max_regression:g}")
        try:
            floor = parse_duration(args.latency_floor, "--latency-floor")
        except ThresholdError as exc:
            raise UnusableInput(str(exc)) from None
        baseline = read_summary(Path(args.baseline), "baseline")
        checks, notes = regression_thresholds(
            baseline, args.max_regression, latency_floor=floor, source=f"baseline {args.baseline}"
        )
        verdict = Verdict(verdict.results + evaluate(checks, summary).results, verdict.story)
        props["baseline"] = args.baseline
        unlike = differences(baseline, summary)
        if unlike:
            props["not_like_for_like"] = "; ".join(unlike)
            notes = [*warning(unlike), *notes]
    return verdict, notes, props


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UnusableInput(f"{path}: cannot write it ({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    from gate.thresholds import EXIT_UNUSABLE, catalogue

    if args.list_metrics:
        print(catalogue())
        return 0
    try:
        verdict, notes, props = _judge(args)
        unlike = [note for note in notes if not note.startswith("not compared")]
        for line in unlike:  # before the verdict: the runs may not be comparable at all
            print(line)
        print(verdict.table())
        for note in notes:
            if note not in unlike:
                print(f"  {note}")
        if args.junit:
            from gate.junit import junit_xml

            _write(args.junit, junit_xml(verdict, properties=props))
        if args.json:
            _write(args.json, json.dumps(verdict.to_dict(), indent=2).encode() + b"\n")
    except UnusableInput as exc:
        print(f"harness gate: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return verdict.exit_code
