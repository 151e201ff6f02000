"""Makes `locust -f scenarios --help` list the harness options.

Locust prints `--help` before it imports any locustfile (locustio/locust#2917), so the scenarios'
`init_command_line_parser` listener is never there in time. `cdp_harness.pth`, installed next to
the package, calls `install()` as Python starts; it does nothing unless the process is `locust`
asked for help with `-f` naming this project's scenarios.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def wants_harness_help(argv: list[str]) -> bool:
    """`locust ... --help` with a locustfile (-f/--locustfile or LOCUST_LOCUSTFILE) in the scenarios."""
    program = Path(argv[0]).name if argv else ""
    if program != "locust" and not argv[0].endswith(os.path.join("locust", "__main__.py")):
        return False
    if not {"-h", "--help"} & set(argv):
        return False
    files = [os.environ.get("LOCUST_LOCUSTFILE", "")]
    for i, arg in enumerate(argv):
        if arg in ("-f", "--locustfile") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--locustfile="):
            files.append(arg.split("=", 1)[1])
    return any(_in_scenarios(name) for part in files for name in part.split(",") if name)


def _in_scenarios(name: str) -> bool:
    path = Path(name).resolve()
    return path == SCENARIOS or SCENARIOS in path.parents


def _command_line() -> list[str]:
    """sys.argv, with `python -m locust` seen as `locust` (while .pth files run, argv[0] is `-m`)."""
    argv = list(sys.argv)
    original = list(getattr(sys, "orig_argv", []))
    if argv[:1] == ["-m"] and "-m" in original:
        at = original.index("-m")
        return [original[at + 1], *original[at + 2 :]] if at + 1 < len(original) else argv
    return argv


def install() -> None:
    try:
        if not wants_harness_help(_command_line()):
            return
        from locust import events

        from harness.options import add_options

        events.init_command_line_parser.add_listener(lambda parser, **_kw: add_options(parser))
    except Exception:  # interpreter start-up must never fail because of a help hook
        return
