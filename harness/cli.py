"""Dispatch `harness <subcommand>` to the part that owns it.

Each part keeps its command in its own `cli` module with two functions,
`add_arguments(parser)` and `run(args) -> int`. Only the chosen command's module is imported,
so `harness --help` stays fast and `harness sandbox` never loads the harness's other parts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "traffic": ("loadgen.cli", "print the HTTP requests the traffic model would send"),
    "profile": ("loadgen.profile_cli", "fit a traffic profile to a sample of real events (profile fit)"),
    "sandbox": ("sandbox.cli", "run the bundled reference pipeline (ingest, dedupe, delivery)"),
    "monitor": ("monitor.cli", "run the delivery monitor (receiver, audit, probes, /metrics)"),
    "gate": ("gate.cli", "judge a run summary (or Prometheus) against SLO thresholds, for CI"),
    "ids": ("harness.ids_cli", "print messageIds in a run's id space, for clients that set their own"),
    "ledger": ("harness.ledger_cli", "register the messageIds a client sent with the monitor, to audit them"),
    "compare": ("harness.compare", "two run summaries side by side (like for like first, then regressions)"),
}


def version_text() -> str:
    """`harness 0.1.0 (locust 2.47.0, Python 3.11.7)`: what a bug report needs."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"harness {of('cdp-harness')} (locust {of('locust')}, Python {sys.version.split()[0]})"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported, so one part never loads another's code."""
    parser = argparse.ArgumentParser(
        prog="harness", description="Load testing and delivery monitoring for Segment-style pipelines."
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
