"""`harness ledger`: tell the monitor which messageIds a client sent for a run, so it audits them.

Reads ids from files (`harness.sent_files`: one a line, JSON lines of events, or a capture) and posts:
- ids in the harness's format (from `harness ids` or `loadgen.external.HarnessIds`) as ordinary
  ledger deltas (`POST /api/ledger`) of their own run and stream, accepted, rejected or abandoned;
- every other id the ingest accepted as a foreign registration of `--run` (`POST /api/foreign`),
  audited by digest and listed by its string when lost (`monitor/foreign.py`).
Foreign ids that were rejected or abandoned are not registered (the monitor expects only what the
ingest accepted). Prints one JSON line of counts.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_MONITOR = "http://127.0.0.1:8089"
CHUNK = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="files of sent messageIds ('-' for stdin)")
    parser.add_argument("--run", required=True, help="run name the foreign ids belong to")
    parser.add_argument(
        "--monitor", default=DEFAULT_MONITOR, help=f"monitor base URL (default {DEFAULT_MONITOR})"
    )
    parser.add_argument(
        "--source",
        default=None,
        help="ledger source the ids came from (the ingest's source name for the write key used); "
        "destinations whose `sources` leave it out do not expect them (default: every destination)",
    )
    parser.add_argument(
        "--format", default="auto", choices=["auto", "ids", "events", "capture"], help="file format"
    )
    parser.add_argument(
        "--not-final",
        action="store_true",
        help="more registrations for this run will follow (the run is not marked final)",
    )
    parser.add_argument("--chunk", type=int, default=CHUNK, help=f"ids per POST (default {CHUNK})")


def register_sent(
    monitor: Any, sent: Any, run_name: str, *, source: str | None, final: bool, chunk: int = CHUNK
) -> dict[str, int]:
    """Post `sent` (a `SentIds`) to `monitor` (a `MonitorClient`); the counts of what went where."""
    import numpy as np

    from loadgen.ids import decode_many, run_id_from_name
    from loadgen.ledger import ForeignIds, SentLedger

    run = run_id_from_name(run_name)
    ledgers: dict[tuple[int, int], SentLedger] = {}
    counts = {"harness_ids": 0, "foreign_registered": 0, "foreign_duplicates": 0, "foreign_not_accepted": 0}
    foreign_accepted = np.zeros(0, dtype=bool)
    for kind in ("accepted", "rejected", "abandoned"):
        ids = getattr(sent, kind)
        if not ids:
            continue
        decoded = decode_many(ids)
        counts["harness_ids"] += int(decoded.valid.sum())
        if kind == "accepted":
            foreign_accepted = ~decoded.valid
        else:
            counts["foreign_not_accepted"] += int((~decoded.valid).sum())
        keys = (decoded.run.astype(np.int64) << 12) | decoded.stream
        for key in np.unique(keys[decoded.valid]).tolist():
            rows = decoded.valid & (keys == key)
            seqs, sent_ms = decoded.seq[rows].tolist(), int(decoded.sent_ms[rows].max())
            stream_key = (key >> 12, key & 0xFFF)
            ledger = ledgers.get(stream_key)
            if ledger is None:
                name = run_name if stream_key[0] == run else ""
                ledger = ledgers[stream_key] = SentLedger(*stream_key, run_name=name)
            if kind == "accepted":
                ledger.record_accepted(source or "external", seqs, sent_ms)
            elif kind == "rejected":
                ledger.record_rejected(seqs, sent_ms)
            else:
                ledger.record_abandoned(seqs, sent_ms)
    for ledger in ledgers.values():
        monitor.post_ledger(ledger.take_delta(final=final))

    rows = np.flatnonzero(foreign_accepted).tolist()
    chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]  # the last one carries `final`
    for n, part in enumerate(chunks):
        times = [sent.sent_ms[i] for i in part]
        answer = monitor.register_foreign(
            ForeignIds(
                run=run,
                ids=[sent.accepted[i] for i in part],
                run_name=run_name,
                source=source,
                sent_ms=times if any(t is not None for t in times) else None,
                final=final and n == len(chunks) - 1,
            )
        )
        counts["foreign_registered"] += int(answer.get("registered", 0))
        counts["foreign_duplicates"] += int(answer.get("duplicates", 0))
    return counts


def run(args: argparse.Namespace) -> int:
    import orjson

    from harness.monitor_client import MonitorClient, MonitorError
    from harness.sent_files import SentFileError, SentIds, read_sent_ids
    from loadgen.ids import run_id_from_name

    if args.chunk < 1:
        print("harness ledger: --chunk must be at least 1", file=sys.stderr)
        return 2
    sent = SentIds()
    try:
        for path in args.files:
            part = read_sent_ids(path, args.format)
            sent.accepted += part.accepted
            sent.sent_ms += part.sent_ms
            sent.rejected += part.rejected
            sent.abandoned += part.abandoned
            sent.without_id += part.without_id
    except SentFileError as exc:
        print(f"harness ledger: {exc}", file=sys.stderr)
        return 2
    try:
        with MonitorClient(args.monitor, timeout=60.0) as monitor:
            counts = register_sent(
                monitor, sent, args.run, source=args.source, final=not args.not_final, chunk=args.chunk
            )
    except MonitorError as exc:
        print(f"harness ledger: {exc}", file=sys.stderr)
        return 1
    doc = {
        "run": args.run,
        "run_id": run_id_from_name(args.run),
        "read": {
            "accepted": len(sent.accepted),
            "rejected": len(sent.rejected),
            "abandoned": len(sent.abandoned),
            "without_id": sent.without_id,
        },
        **counts,
    }
    sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    return 0
