"""`harness ids`: print messageIds in a run's id space, for clients that set messageId themselves.

Send with them, then register the ones the ingest accepted with `harness ledger --run NAME FILE`
(the monitor audits them like generated traffic). Ids are unique per (run, stream, seq): two calls
for one run must differ in `--stream` or in their `--first-seq` ranges. In Python, use
`loadgen.external.HarnessIds` instead, which also keeps the ledger.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from loadgen.external import DEFAULT_STREAM, EXTERNAL_STREAMS

    parser.add_argument("--run", required=True, help="run name (the monitor reports runs by name)")
    parser.add_argument("--count", type=int, default=1, help="how many ids to print (default 1)")
    parser.add_argument(
        "--stream",
        type=int,
        default=DEFAULT_STREAM,
        help=f"stream number, {EXTERNAL_STREAMS.start}..{EXTERNAL_STREAMS.stop - 1} keep clear of "
        f"Locust workers' (default {DEFAULT_STREAM})",
    )
    parser.add_argument("--first-seq", type=int, default=0, help="first sequence number (default 0)")
    parser.add_argument(
        "--style",
        default="plain",
        choices=["plain", "ajs-next", "node-next"],
        help="id format: a plain UUIDv7, or wrapped as analytics.js / analytics-node write theirs",
    )


def run(args: argparse.Namespace) -> int:
    from loadgen.external import HarnessIds
    from loadgen.ids import IdStyle

    try:
        ids = HarnessIds(args.run, stream=args.stream, style=IdStyle(args.style), first_seq=args.first_seq)
        out = ids.new_ids(args.count)
    except ValueError as exc:
        print(f"harness ids: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(f"{m}\n" for m in out))
    print(
        f"harness ids: run {args.run!r} (id {ids.run}), stream {args.stream}, seqs "
        f"{args.first_seq}..{args.first_seq + args.count - 1}; next call: --first-seq {args.first_seq + args.count}",
        file=sys.stderr,
    )
    return 0
