"""`harness profile fit SAMPLE -o PROFILE`: a traffic profile fitted to a sample of real events.

SAMPLE is JSON lines of messages (a Segment or RudderStack export) or of captured requests (what
`harness traffic` prints). The profile carries shares, shapes and statistics, never the sample's
values; the fit report on stderr says what was inferred and what was assumed.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = actions.add_parser("fit", help="fit a profile to a sample of events", description=__doc__)
    fit.add_argument("sample", help="JSON lines: messages, or requests as `harness traffic` prints them")
    fit.add_argument("-o", "--output", required=True, help="where to write the profile YAML")
    fit.add_argument("--name", default=None, help="the profile's name (default: the output file's stem)")
    fit.add_argument("--enum-max-values", type=int, default=20,
                     help="a string property with more distinct values keeps none of them (default 20)")  # fmt: skip
    fit.add_argument("--enum-min-count", type=int, default=5,
                     help="a string value seen fewer times is never kept (default 5)")  # fmt: skip
    fit.add_argument("--min-event-count", type=int, default=2,
                     help="event names seen fewer times are left out (default 2)")  # fmt: skip
    fit.add_argument("--schema-sample", type=int, default=1000,
                     help="messages per event whose properties shape the event's schema (default 1000)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from loadgen.fit import FitError, fit, read_sample, render
    from loadgen.infer_schema import Privacy
    from loadgen.profile import ProfileError, load_profile

    for flag in ("enum_max_values", "enum_min_count", "min_event_count", "schema_sample"):
        if getattr(args, flag) < 1:
            print(f"harness profile fit: --{flag.replace('_', '-')} must be 1 or more", file=sys.stderr)
            return 2
    output = Path(args.output)
    privacy = Privacy(enum_max_values=args.enum_max_values, enum_min_count=args.enum_min_count)
    try:
        result = fit(read_sample(args.sample), privacy, name=args.name or output.stem,
                     schema_sample=args.schema_sample, min_event_count=args.min_event_count)  # fmt: skip
    except FitError as exc:
        print(f"harness profile fit: {exc}", file=sys.stderr)
        return 2
    try:
        output.write_text(render(result), encoding="utf-8")
    except OSError as exc:
        print(f"harness profile fit: {output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        load_profile(output)
    except ProfileError as exc:  # a fit this module cannot load is a bug: say so plainly
        print(f"harness profile fit: the written profile does not load: {exc}", file=sys.stderr)
        return 1
    print("\n".join(result.report), file=sys.stderr)
    print(f"wrote {output}", file=sys.stderr)
    return 0
