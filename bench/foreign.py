"""Benchmark: the monitor's memory per million registered foreign messageIds, and its receive rate for them.

How it measures:
1. Memory (in this process, the monitor's own classes): N foreign ids (random UUIDv4 text, the
   commonest foreign id) are registered for one run in posts of 50,000 with send times, as
   `harness ledger` does, then delivered to two destinations (95% of them, 5% of those twice, in
   requests of 100). Reported: the audit state per id by the monitor's own estimate
   (`ForeignAudit.memory_bytes`: numpy arrays' nbytes plus roaring containers), the kept id
   strings per id (zlib-compressed, for listing lost ids), and what tracemalloc sees retained
   (numpy and Python objects; roaring's C heap is not traced) and at its peak (registration's
   transient arrays: a process's RSS keeps that peak).
   Baseline in the same run: the same message count as harness ids (ledger bitmaps + audit bitmaps,
   `Audit.memory_bytes`), and a Python set of the id strings (what the naive design would hold).
2. Receive rate (over HTTP, `bench/monitor.py`'s harness: the monitor pinned to CPU 0, the load from
   this process pinned to CPU 1, 100-event ~1 KB batches): messages per monitor CPU second for
   registered foreign ids, next to harness ids in the same run (the ratio is the cost of the
   digest and lookups). Foreign ids are 36 characters like a UUID; PRE_REGISTERED of them are
   registered before the window, and ids past those are pooled as unclaimed (the same hashing).

    python bench/foreign.py [--ids 1000000] [--seconds 5] [--connections 4]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
from pyroaring import BitMap64

if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as `python bench/foreign.py`: bench/monitor.py would shadow the monitor package

from harness.processes import free_port
from loadgen.ids import IdStyle, make_message_ids, run_id_from_name
from loadgen.ledger import ForeignIds, SentLedger
from monitor.audit import Audit
from monitor.config import parse_config
from monitor.foreign import ForeignAudit, digests
from monitor.ledger_store import LedgerBook

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_monitor", ROOT / "bench" / "monitor.py")
bench_monitor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_monitor)  # type: ignore[union-attr]

POST = 50_000
BATCH = 100
PRE_REGISTERED = 600_000


def _audit() -> Audit:
    config = parse_config({"lost_after_seconds": 3600, "destinations": {"a": {}, "b": {}}}, "bench")
    audit = Audit(config.destinations, LedgerBook(3600))
    audit.foreign = ForeignAudit(audit.destinations, 3600, 1_000_000)
    return audit


def _deliveries(message_ids: list, rng: np.random.Generator) -> list[list]:
    """95% of the ids, 5% of those twice, in requests of BATCH, in a shuffled order."""
    n = len(message_ids)
    kept = rng.permutation(n)[: n * 95 // 100]
    rows = np.concatenate([kept, kept[: len(kept) // 20]])
    return [[message_ids[i] for i in rows[s : s + BATCH].tolist()] for s in range(0, len(rows), BATCH)]


def memory(n: int) -> dict[str, float]:
    rng = np.random.default_rng(7)
    now = int(time.time() * 1000)
    raw = rng.bytes(16 * n)
    foreign_ids = [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, 16 * n, 16)]
    requests = _deliveries(foreign_ids, rng)

    def fill(audit: Audit) -> tuple[float, float]:
        """Register every id and deliver the requests to both destinations; CPU seconds of each."""
        t0 = time.process_time()
        for start in range(0, n, POST):
            part = foreign_ids[start : start + POST]
            audit.foreign.register(ForeignIds(1, part, "bench", None, [now] * len(part)), now)  # type: ignore[union-attr]
        t1 = time.process_time()
        for dest in audit.destinations.values():
            for request in requests:
                audit.record(dest, request, [None] * len(request), now + 50.0, None)
        audit.flush()
        return t1 - t0, time.process_time() - t1

    register_cpu, deliver_cpu = fill(_audit())  # timed untraced (tracemalloc slows allocation)
    audit = _audit()
    gc.collect()
    tracemalloc.start()
    fill(audit)
    gc.collect()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = audit.foreign.memory_bytes()  # type: ignore[union-attr]
    audit.sweep(now + 1e12)  # every post past its loss deadline: the pending bitmaps fold into `due`
    held_due = audit.foreign.memory_bytes()  # type: ignore[union-attr]
    stats = audit.stats(audit.destinations["a"], 1)
    arrivals = [m for request in requests for m in request]
    assert stats.expected == n and stats.delivered == len(set(arrivals)), stats
    assert stats.duplicates == len(arrivals) - len(set(arrivals)), stats

    # baseline 1: the same count of harness ids (ledger + audit bitmaps)
    base = _audit()
    run = run_id_from_name("bench")
    ledger = SentLedger(run, 0, "bench")
    ledger.record_accepted("web", range(n), now)
    base.ledgers.add(ledger.take_delta(final=True))
    harness_ids = [m.decode() for m in make_message_ids(IdStyle.PLAIN, now, run, 0, np.arange(n, dtype=np.uint64))]
    for dest in base.destinations.values():
        for request in _deliveries(harness_ids, rng):
            base.record(dest, request, [None] * len(request), now + 50.0, None)
    base.flush()
    harness_bytes = base.memory_bytes()
    # baseline 2: a Python set of the strings (the set's table plus the str objects)
    naive = sys.getsizeof(set(foreign_ids)) + sum(map(sys.getsizeof, foreign_ids))
    # baseline 3: the digests in a roaring64 bitmap instead of a sorted array (serialized size: a
    # lower bound of its memory; random 64-bit values share no containers)
    roaring64 = len(BitMap64(np.sort(digests(foreign_ids))).serialize())
    return {
        "ids": n,
        "audit_bytes_per_id": held["audit"] / n,
        "audit_bytes_per_id_after_deadline": held_due["audit"] / n,
        "string_bytes_per_id": held["strings"] / n,
        "traced_retained_bytes_per_id": retained / n,
        "traced_peak_bytes_per_id": peak / n,
        "harness_audit_bytes_per_id": harness_bytes / n,
        "python_set_bytes_per_id": naive / n,
        "roaring64_digest_bytes_per_id": roaring64 / n,
        "register_us_per_id": register_cpu / n * 1e6,
        "audit_us_per_arrival": deliver_cpu / (2 * len(arrivals)) * 1e6,
    }


class ForeignBodies(bench_monitor.BodyFactory):
    """The monitor bench's request bodies with 36-character foreign ids `ext-SSSS-<27 digits>`."""

    def next_body(self) -> bytes:
        seqs = np.arange(self.next_seq, self.next_seq + BATCH, dtype=np.uint64)
        body = super().next_body()  # advances next_seq and writes users; ids are rewritten below
        text = b"".join(f"ext-{self.stream:04d}-{s:027d}".encode() for s in seqs.tolist())
        template = np.frombuffer(body, dtype=np.uint8).copy()
        template[self.columns] = np.frombuffer(text, dtype=np.uint8)
        return template.tobytes()


def register_ahead(port: int, connections: int, stream: int) -> None:
    from harness.monitor_client import MonitorClient

    per_stream = PRE_REGISTERED // connections
    with MonitorClient(f"http://127.0.0.1:{port}", timeout=120) as client:
        for i in range(connections):
            ids = [f"ext-{stream + i:04d}-{s:027d}" for s in range(per_stream)]
            for start in range(0, per_stream, POST):
                client.register_foreign(ForeignIds(1, ids[start : start + POST], "bench-foreign"))


def receive_rate(args: argparse.Namespace) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitor.yaml"
        config.write_text("lost_after_seconds: 3600\ndestinations:\n  bench: {}\n")
        cmd = [sys.executable, "-m", "monitor", "--config", str(config)]
        port = free_port()
        harness = bench_monitor.measure([*cmd, "--port", str(port)], port, "/webhook/bench", args, stream=0)
        port = free_port()
        original = bench_monitor.BodyFactory
        bench_monitor.BodyFactory = ForeignBodies
        original_wait = bench_monitor.wait_ready

        def wait_then_register(port: int, proc: subprocess.Popen) -> None:
            original_wait(port, proc)
            register_ahead(port, args.connections, 300)

        bench_monitor.wait_ready = wait_then_register
        try:
            foreign = bench_monitor.measure([*cmd, "--port", str(port)], port, "/webhook/bench", args, stream=300)
        finally:
            bench_monitor.BodyFactory, bench_monitor.wait_ready = original, original_wait
    return harness, foreign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--skip-http", action="store_true", help="only the memory part")
    args = parser.parse_args()

    m = memory(args.ids)
    print(f"memory, {m['ids']:,} registered foreign ids (random UUIDv4 text), delivered to 2 destinations:")
    print(
        f"  audit state {m['audit_bytes_per_id']:.2f} B/id ({m['audit_bytes_per_id']:.1f} MB per million ids) "
        "before the loss deadline, "
        f"{m['audit_bytes_per_id_after_deadline']:.2f} B/id after it (monitor's estimate: digests, send "
        f"times, bitmaps); kept strings {m['string_bytes_per_id']:.2f} B/id (zlib); tracemalloc: "
        f"{m['traced_retained_bytes_per_id']:.2f} B/id retained, {m['traced_peak_bytes_per_id']:.2f} B/id at the peak"
    )
    print(
        f"  baselines: harness ids {m['harness_audit_bytes_per_id']:.2f} B/id (ledger + audit bitmaps); "
        f"a Python set of the strings {m['python_set_bytes_per_id']:.1f} B/id; the digests in a roaring64 "
        f"bitmap {m['roaring64_digest_bytes_per_id']:.1f} B/id (serialized) against 8 in a sorted array"
    )
    print(
        f"  CPU: registration {m['register_us_per_id']:.2f} µs/id; audit {m['audit_us_per_arrival']:.2f} "
        "µs per arrival (in process, no HTTP)"
    )
    doc = {k: round(v, 3) for k, v in m.items()}
    if not args.skip_http:
        os.sched_setaffinity(0, {1})
        harness, foreign = receive_rate(args)
        ratio = foreign["msgs_per_sec_per_core"] / harness["msgs_per_sec_per_core"]
        print(
            f"receive rate over HTTP ({args.connections} connections, {args.seconds}s window, monitor on CPU 0): "
            f"foreign ids {foreign['msgs_per_sec_per_core']:,.0f} msg/s per core "
            f"({foreign['total_messages']:,} sent, {PRE_REGISTERED:,} registered ahead, "
            f"{foreign['audited_distinct']:,} audited as delivered in the run), "
            f"harness ids {harness['msgs_per_sec_per_core']:,.0f} msg/s per core; ratio {ratio:.2f}"
        )
        doc |= {
            "foreign_msgs_per_sec_per_core": round(foreign["msgs_per_sec_per_core"]),
            "harness_msgs_per_sec_per_core": round(harness["msgs_per_sec_per_core"]),
            "foreign_to_harness_ratio": round(ratio, 3),
        }
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
