"""What `--state-dir` costs the monitor: the log on the hot path, a snapshot, a restart.

How (in process, one core): a `Monitor` with the bundled default destinations audits delivery
requests of 100 events each (harness ids of one run, 100,000 users) through the same `_audit` step the
webhook route runs, once without a state directory (the baseline) and once with one; the
difference per request is the log's cost, and the log's bytes per message are read from its file.
Then, for audits holding 1 and 5 million delivered seqs per destination (plus their ledger),
`snapshot()` is timed (median of five; it blocks the event loop while it runs) with its size, and so is a restart:
loading that snapshot and replaying a log of 10,000 requests. Figures vary with the machine's load.

    python bench/state.py [--millions 1 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import ids  # noqa: E402
from loadgen.ledger import SentLedger  # noqa: E402
from monitor.app import Monitor  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.durable import StateDir  # noqa: E402
from monitor.receiver import Delivery  # noqa: E402

RUN, STREAM, PER_REQUEST, USERS = 11, 1, 100, 100_000


def requests(first_seq: int, count: int) -> list[Delivery]:
    """`count` deliveries of PER_REQUEST consecutive seqs from `first_seq` (ids made up front)."""
    seqs = np.arange(first_seq, first_seq + count * PER_REQUEST, dtype=np.uint64)
    message_ids = [
        m.decode()
        for m in ids.make_message_ids(ids.IdStyle.PLAIN, int(time.time() * 1000), RUN, STREAM, seqs)
    ]
    users = [f"user-{s % USERS}" for s in seqs.tolist()]
    return [
        Delivery(message_ids[i : i + PER_REQUEST], users[i : i + PER_REQUEST])
        for i in range(0, len(message_ids), PER_REQUEST)
    ]


def feed(monitor: Monitor, deliveries: list[Delivery]) -> float:
    """Seconds to audit `deliveries` on every destination, each request as the webhook route does."""
    dests = list(monitor.audit.destinations.values())

    async def run() -> None:
        for delivery in deliveries:
            for dest in dests:
                await monitor._audit(dest, delivery, time.time() * 1000)

    started = time.perf_counter()
    asyncio.run(run())
    monitor.audit.flush()
    return time.perf_counter() - started


def hot_path(config, folder: Path) -> None:
    batch = requests(0, 10_000)
    plain = Monitor(config)
    feed(plain, requests(10**7, 500))  # warm up
    base = feed(plain, batch)
    durable = Monitor(config)
    durable.restore(StateDir(folder / "hot"))
    feed(durable, requests(10**7, 500))
    logged = feed(durable, batch)
    n_dest = len(config.destinations)
    n_requests = len(batch) * n_dest
    log_bytes = sum(p.stat().st_size for p in (folder / "hot").glob("log-*.bin"))
    print(
        f"hot path, {n_requests} requests of {PER_REQUEST} events ({n_dest} destinations):\n"
        f"  without --state-dir {base / n_requests * 1e6:7.1f} µs/request\n"
        f"  with --state-dir    {logged / n_requests * 1e6:7.1f} µs/request "
        f"(+{(logged - base) / n_requests * 1e6:.1f} µs, ×{logged / base:.2f}), "
        f"log {log_bytes / ((len(batch) + 500) * PER_REQUEST * n_dest):.0f} bytes/message"
    )


def snapshot_and_restart(config, folder: Path, millions: float) -> None:
    total = int(millions * 1_000_000)
    monitor = Monitor(config)
    state = StateDir(folder / f"s{millions}")
    monitor.restore(state)
    ledger = SentLedger(RUN, STREAM, run_name="bench")
    ledger.record_accepted("web", range(0, total), int(time.time() * 1000))
    monitor.post_ledger(ledger.take_delta().to_wire())
    chunk = 100_000 // PER_REQUEST
    for first in range(0, total, chunk * PER_REQUEST):
        monitor.state = None  # build the state without logging it; the snapshot below holds it all
        feed(monitor, requests(first, min(chunk, (total - first) // PER_REQUEST)))
    monitor.state = state
    audit_bytes = monitor.audit.memory_bytes()
    times = []
    for _ in range(5):  # the median of five: the machine is shared
        started = time.perf_counter()
        monitor.snapshot()
        times.append(time.perf_counter() - started)
    took = sorted(times)[2]
    feed(monitor, requests(total, 10_000 // len(config.destinations)))
    state.close()
    started = time.perf_counter()
    restored = Monitor(config)
    replayed = restored.restore(StateDir(folder / f"s{millions}"))
    restart = time.perf_counter() - started
    same = restored.summary(RUN)["destinations"] == monitor.summary(RUN)["destinations"]
    print(
        f"{millions:g} M delivered seqs per destination (audit {audit_bytes / 2**20:.1f} MiB):\n"
        f"  snapshot {took * 1000:7.0f} ms (median of 5), {state.last_snapshot_bytes / 2**20:.1f} MiB written\n"
        f"  restart  {restart * 1000:7.0f} ms (load it, replay {replayed} logged requests, snapshot again: "
        f"{restart / replayed * 1e6:.0f} µs per logged request); "
        f"restored summary equals the live one: {same}"
    )
    restored.state.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--millions", type=float, nargs="+", default=[1, 5])
    args = parser.parse_args()
    config = load_config(None)
    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        hot_path(config, Path(tmp))
        for millions in args.millions:
            snapshot_and_restart(config, Path(tmp), millions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
