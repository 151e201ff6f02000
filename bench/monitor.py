"""Benchmark: the monitor receiver's messages/s per core on batched deliveries, with the audit on.

How it measures: the monitor runs as its own process (`python -m monitor`) pinned to CPU 0; a load
generator in this process, pinned to CPU 1, POSTs Segment-style webhook batches (JSON arrays of 100
realistic ~1 KB `track` events, every messageId new) over loopback HTTP/1.1 keep-alive connections
for a fixed time. The figure is messages accepted ÷ CPU seconds the monitor process used
(utime + stime from /proc/<pid>/stat), i.e. messages per second per fully used core (the monitor
audits in batches; the window's CPU includes auditing its last queued messages, forced by reading
/metrics, whose own cost is counted too). As a baseline
in the same run, the same load goes to a minimal granian RSGI server that only parses each body
with `orjson.loads` (no audit), and to one that only reads the body (the HTTP floor).

Audit memory is the monitor's own estimate of its bitmap and per-user order-table bytes
(`monitor_audit_memory_bytes`). The order tables grow with distinct users per stream, not with
messages, so the warm-up first sends every user once on every stream; `audit_bytes_per_million`
is then the growth of audit memory over the measured window per million messages (the bitmaps),
and the full tables are reported beside it, with the process RSS growth.

    python bench/monitor.py [--seconds 8] [--connections 8] [--users 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from harness import processes
from harness.processes import free_port
from loadgen.ids import UUID_LENGTH, encode_uuids, run_id_from_name

ROOT = Path(__file__).resolve().parent.parent

BATCH = 100
PYTHON = sys.executable

BASELINE_SERVER = """
import asyncio, orjson, signal
from granian.constants import HTTPModes, Interfaces
from granian.server.embed import Server

import os, sys
PARSE = sys.argv[2] == "parse"

class App:
    async def __rsgi__(self, scope, proto):
        body = await proto()
        if scope.method == "POST" and PARSE:
            orjson.loads(body)
        proto.response_bytes(200, [("content-type", "application/json")], b'{"success":true}')

async def main(port):
    if OWN_SERVER:  # the monitor's own server (httptools on uvloop) with nothing behind it
        from monitor.http_server import HttpServer
        server = HttpServer(App(), "127.0.0.1", port, max_body_bytes=1 << 24)
    else:
        server = Server(App(), address="127.0.0.1", port=port, interface=Interfaces.RSGI,
                        websockets=False, http=HTTPModes.http1, backlog=1024)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, server.stop)
    await server.serve()

OWN_SERVER = len(sys.argv) > 3 and sys.argv[3] == "own"
if OWN_SERVER:
    import uvloop
    uvloop.run(main(int(sys.argv[1])))
else:
    asyncio.run(main(int(sys.argv[1])))
os._exit(0)
"""


def event_template(i: int, users: int) -> dict:
    """One realistic ~1 KB analytics.js `track` event as a webhook destination receives it."""
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "0" * UUID_LENGTH,
        "anonymousId": "00000000-anon-4c8e-9d1f-0123456789ab",  # digits rewritten per request
        "userId": f"user-{i % users}",
        "timestamp": "2026-11-23T13:00:00.000Z",
        "sentAt": "2026-11-23T13:00:00.010Z",
        "receivedAt": "2026-11-23T13:00:00.120Z",
        "originalTimestamp": "2026-11-23T13:00:00.000Z",
        "properties": {
            "product_id": "507f1f77bcf86cd799439011",
            "sku": "G-32",
            "category": "Games",
            "name": "Monopoly: 3rd Edition",
            "brand": "Hasbro",
            "variant": "200 pieces",
            "price": 18.99,
            "quantity": 1,
            "coupon": "MAYDEALS",
            "currency": "usd",
            "position": 3,
            "url": "https://www.example.com/product/path",
            "image_url": "https://www.example.com/product/path.jpg",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {
                "path": "/academy/",
                "referrer": "",
                "search": "",
                "title": "Analytics Academy",
                "url": "https://segment.com/academy/",
            },
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36",
            "ip": "108.0.78.21",
            "locale": "en-US",
            "timezone": "Europe/Amsterdam",
        },
        "integrations": {},
        "version": 2,
    }


_POWERS = np.array([10**k for k in range(7, -1, -1)], dtype=np.uint64)


def _find_all(haystack: bytes, needle: bytes) -> list[int]:
    out, pos = [], haystack.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


SINGLE_CHUNK = 512
"""Single-event bodies built per numpy pass (one pass per body would cost the client ~10 µs)."""


class BodyFactory:
    """Request bodies of `batch` events (a JSON array; one bare object when `batch` is 1) with
    fresh messageIds, written into a template by numpy."""

    def __init__(self, run: int, stream: int, users: int, user_offset: int, batch: int = BATCH) -> None:
        self.batch = batch
        size = batch if batch > 1 else SINGLE_CHUNK
        events = [event_template(i + user_offset, users) for i in range(size)]
        parts = [orjson.dumps(events)] if batch > 1 else [orjson.dumps(e) for e in events]
        body = b"".join(parts)
        self.bounds = np.cumsum([0, *map(len, parts)]).tolist()
        self.template = np.frombuffer(body, dtype=np.uint8).copy()
        needle = b'"messageId":"' + b"0" * UUID_LENGTH
        starts = [pos + len(b'"messageId":"') for pos in _find_all(body, needle)]
        self.columns = (np.array(starts)[:, None] + np.arange(UUID_LENGTH)).ravel()
        anon = b'"anonymousId":"'
        user_starts = [pos + len(anon) for pos in _find_all(body, anon)]
        self.user_columns = (np.array(user_starts)[:, None] + np.arange(8)).ravel()
        self.users, self.size = users, size
        self.run, self.stream, self.next_seq = run, stream, 0
        self.ready: list[bytes] = []

    def next_body(self) -> bytes:
        if not self.ready:
            self._fill()
        return self.ready.pop()

    def _fill(self) -> None:
        seqs = np.arange(self.next_seq, self.next_seq + self.size, dtype=np.uint64)
        self.next_seq += self.size
        uuids = encode_uuids(int(time.time() * 1000), self.run, self.stream, seqs)
        self.template[self.columns] = uuids.ravel()
        # each event's user drawn from the population (a multiplicative hash of its seq)
        user = (seqs * np.uint64(2654435761)) % np.uint64(self.users)
        digits = (user[:, None] // _POWERS) % np.uint64(10) + np.uint64(48)
        self.template[self.user_columns] = digits.astype(np.uint8).ravel()
        blob = self.template.tobytes()
        bounds = self.bounds
        self.ready = [blob[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 2, -1, -1)]


async def connection(port: int, path: str, factory: BodyFactory, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    try:
        while time.monotonic() < deadline:
            body = factory.next_body()
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if b" 200 " in status_line:
                counts[0] += factory.batch
            else:
                counts[1] += factory.batch
    finally:
        writer.close()


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of a server and of every process it started (monitor workers), by pid."""
    readings = {p: processes.cpu_seconds(p) for p in [pid, *processes.descendants(pid)]}
    return {p: seconds for p, seconds in readings.items() if seconds is not None}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def audit_memory(port: int) -> dict[str, float]:
    """The monitor's own audit memory gauges, from /metrics."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("monitor_audit_memory_bytes ", "monitor_audit_user_table_bytes "))
    }


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    import httpx

    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not become ready")


def measure(
    cmd: list[str],
    port: int,
    path: str,
    args: argparse.Namespace,
    stream: int,
    *,
    batch: int = BATCH,
    pinned: bool = True,
    connections: int | None = None,
    with_worker_metrics: bool = False,
) -> dict:
    """Run one server (pinned to CPU 0 unless `pinned` is false) and load it from this process."""
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pinned else None,
    )  # fmt: skip
    try:
        wait_ready(port, proc)
        run = run_id_from_name("bench-monitor")
        factories = [
            BodyFactory(run, stream + i, args.users, i * 7919, batch)
            for i in range(connections or args.connections)
        ]
        # warm-up until every stream has sent each user once (the order tables are then full:
        # seq -> user is a permutation of the population), then the measured window; single-event
        # runs only warm up for a second (their memory figures are not reported)
        asyncio.run(load(port, path, factories, 1.0))
        while batch > 1 and min(f.next_seq for f in factories) < args.users:
            asyncio.run(load(port, path, factories, 0.5))
        memory0 = audit_memory(port) if path.startswith("/webhook/") else {}
        forwarded0, audit0 = worker_metrics(port) if with_worker_metrics else (0.0, 0.0)
        time.sleep(0.2)  # the workers' last forwards of the warm-up
        cpu0, rss0, t0 = tree_cpu(proc.pid), rss_bytes(proc.pid), time.monotonic()
        counts = asyncio.run(load(port, path, factories, args.seconds))
        wall = time.monotonic() - t0
        if path.startswith("/webhook/"):
            # the monitor queues deliveries and audits them in batches; reading /metrics audits the
            # queue, so the window's CPU includes the audit of every message it counts
            memory1 = audit_memory(port)
        cpu1 = tree_cpu(proc.pid)
        forwarded1, audit1 = worker_metrics(port) if with_worker_metrics else (0.0, 0.0)
        by_pid = {p: cpu1[p] - cpu0.get(p, 0.0) for p in cpu1}
        cpu = sum(by_pid.values())
        result = {
            "forwarded": forwarded1 - forwarded0,
            "audit_cpu_seconds": audit1 - audit0,
            "cpu_by_process": [by_pid.get(proc.pid, 0.0)] + [v for p, v in by_pid.items() if p != proc.pid],
            "messages": counts[0],
            "refused": counts[1],
            "wall_seconds": wall,
            "server_cpu_seconds": cpu,
            "msgs_per_sec_wall": counts[0] / wall,
            "msgs_per_sec_per_core": counts[0] / cpu if cpu else 0.0,
            "rss_growth_bytes": rss_bytes(proc.pid) - rss0,
            "total_messages": sum(f.next_seq for f in factories),
        }
        if path.startswith("/webhook/"):
            import httpx

            result["audit_memory_bytes"] = memory1["monitor_audit_memory_bytes"]
            result["user_table_bytes"] = memory1["monitor_audit_user_table_bytes"]
            result["audit_growth_bytes"] = (
                memory1["monitor_audit_memory_bytes"] - memory0["monitor_audit_memory_bytes"]
            )
            summary = httpx.get(f"http://127.0.0.1:{port}/api/summary", timeout=30).json()
            result["audited_distinct"] = summary["runs"][0]["totals"]["delivered"] if summary["runs"] else 0
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def load(port: int, path: str, factories: list[BodyFactory], seconds: float) -> list[int]:
    counts = [0, 0]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(connection(port, path, f, deadline, counts) for f in factories))
    return counts


def monitor_cmd(config: Path, port: int, workers: int = 1) -> list[str]:
    return [PYTHON, "-m", "monitor", "--config", str(config), "--port", str(port), "--workers", str(workers)]


def batched_part(args: argparse.Namespace, config: Path, script: Path) -> dict:
    """Batched deliveries: the monitor against an orjson-only server and a bare one, pinned."""
    port = free_port()
    audit = measure(monitor_cmd(config, port), port, "/webhook/bench", args, stream=0)
    port = free_port()
    base = measure([PYTHON, str(script), str(port), "parse"], port, "/", args, stream=100)
    port = free_port()
    bare = measure([PYTHON, str(script), str(port), "bare"], port, "/", args, stream=200)

    body_bytes = len(BodyFactory(0, 0, args.users, 0).next_body())
    print(f"events per request: {BATCH}, request body: {body_bytes} bytes (~{body_bytes // BATCH} B/event)")
    print(
        f"connections: {args.connections}, window: {args.seconds}s after a 1 s warm-up, users: {args.users}"
    )
    print("server pinned to CPU 0, load generator to CPU 1; per-core = messages / server CPU seconds")
    runs = (
        ("monitor (audit on)", audit),
        ("baseline: same granian RSGI setup + orjson.loads only", base),
        ("floor: same granian RSGI setup, body read, no parse", bare),
    )
    for name, r in runs:
        print(
            f"{name}: {r['messages']} msgs in {r['wall_seconds']:.2f}s wall, "
            f"{r['server_cpu_seconds']:.2f}s server CPU -> {r['msgs_per_sec_per_core']:,.0f} msg/s per core "
            f"({r['msgs_per_sec_wall']:,.0f} msg/s wall), refused {r['refused']}"
        )
    per_million = audit["audit_growth_bytes"] / (audit["messages"] / 1e6)
    rss_per_million = audit["rss_growth_bytes"] / (audit["messages"] / 1e6)
    streams = args.connections
    per_user = audit["user_table_bytes"] / (streams * args.users)
    print(
        f"audit: {audit['audited_distinct']} distinct seqs audited of {audit['total_messages']} sent; "
        f"audit memory at the end {audit['audit_memory_bytes']:,.0f} B, of which per-user order tables "
        f"{audit['user_table_bytes']:,.0f} B ({per_user:,.0f} B per user per stream; {args.users} users x "
        f"{streams} streams: bounded by the population, not by the message count)"
    )
    print(
        f"audit memory growth per million messages in the measured window (tables already full): "
        f"{per_million:,.0f} B; process RSS growth in the window: {rss_per_million:,.0f} B per million"
    )
    ratio = (
        audit["msgs_per_sec_per_core"] / base["msgs_per_sec_per_core"] if base["msgs_per_sec_per_core"] else 0
    )
    floor = (
        audit["msgs_per_sec_per_core"] / bare["msgs_per_sec_per_core"] if bare["msgs_per_sec_per_core"] else 0
    )
    print(f"monitor / orjson-baseline per-core ratio: {ratio:.2f}; monitor / HTTP-floor ratio: {floor:.2f}")
    return {
        "msgs_per_sec_per_core": round(audit["msgs_per_sec_per_core"]),
        "audit_bytes_per_million": round(per_million),
        "baseline_msgs_per_sec_per_core": round(base["msgs_per_sec_per_core"]),
        "ratio_to_baseline": round(ratio, 3),
        "http_floor_msgs_per_sec_per_core": round(bare["msgs_per_sec_per_core"]),
        "ratio_to_http_floor": round(floor, 3),
        "msgs_per_sec_wall": round(audit["msgs_per_sec_wall"]),
        "rss_growth_bytes_per_million": round(rss_per_million),
        "user_table_bytes_per_user_per_stream": round(per_user),
    }


def single_part(args: argparse.Namespace, config: Path, script: Path) -> dict:
    """One event per POST (RudderStack's webhook destination): requests/s per core against the floor."""
    port = free_port()
    audit = measure(monitor_cmd(config, port), port, "/webhook/bench", args, stream=300, batch=1)
    port = free_port()
    bare = measure([PYTHON, str(script), str(port), "bare", "own"], port, "/", args, stream=400, batch=1)
    port = free_port()
    granian = measure([PYTHON, str(script), str(port), "bare"], port, "/", args, stream=450, batch=1)
    body = len(BodyFactory(0, 0, args.users, 0, 1).next_body())
    print(f"single-event deliveries: one JSON object per POST ({body} B), {args.connections} connections")
    runs = (
        ("monitor (audit on)", audit),
        ("floor: the monitor's server (httptools, uvloop), body read, nothing else", bare),
        ("granian RSGI (the monitor's server before), body read, nothing else", granian),
    )
    for name, r in runs:
        print(
            f"  {name}: {r['messages']} requests, {r['server_cpu_seconds']:.2f}s server CPU -> "
            f"{r['msgs_per_sec_per_core']:,.0f} requests/s per core ({r['msgs_per_sec_wall']:,.0f}/s wall)"
        )
    per_request_us = 1e6 / audit["msgs_per_sec_per_core"] if audit["msgs_per_sec_per_core"] else 0.0
    floor_us = 1e6 / bare["msgs_per_sec_per_core"] if bare["msgs_per_sec_per_core"] else 0.0
    print(
        f"  CPU per request: monitor {per_request_us:.1f} µs, bare server {floor_us:.1f} µs "
        f"-> {per_request_us - floor_us:.1f} µs of parsing, behaviour and audit beyond the HTTP floor; "
        f"a bare granian server alone costs {1e6 / granian['msgs_per_sec_per_core']:.1f} µs"
    )
    return {
        "single_event_requests_per_sec_per_core": round(audit["msgs_per_sec_per_core"]),
        "single_event_floor_requests_per_sec_per_core": round(bare["msgs_per_sec_per_core"]),
        "single_event_cpu_us_per_request": round(per_request_us, 2),
        "single_event_floor_cpu_us_per_request": round(floor_us, 2),
        "single_event_granian_floor_requests_per_sec_per_core": round(granian["msgs_per_sec_per_core"]),
    }


def worker_metrics(port: int) -> tuple[float, float]:
    """(messages the workers forwarded, the primary's audit CPU seconds) from /metrics."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    forwarded = audit = 0.0
    for line in text.splitlines():
        if line.startswith("monitor_worker_forwarded_messages_total{"):
            forwarded += float(line.split()[-1])
        elif line.startswith("monitor_audit_cpu_seconds_total "):
            audit = float(line.split()[-1])
    return forwarded, audit


def workers_part(args: argparse.Namespace, config: Path) -> dict:
    """1 against 2 monitor processes on one-event POSTs, unpinned, CPU summed over all.

    On a machine with fewer free cores than processes the wall rate cannot show the scaling, so
    it is derived from CPU costs per message measured here (medians over --repeats interleaved
    pairs of runs): S, one process (receive and audit); W, a worker (receive and forward); a, the
    primary's audit per message (its own clock: decoding forwarded rows and auditing). Receiving
    alone costs r = S - a. Capacity on M cores is the rate at which the busiest process fills a
    core: with the primary receiving (M processes) min(M / W, 1 / (r/M + a)); with the primary
    only auditing (M-1 receivers, what `--workers` does from 4 on) min((M-1) / W, 1 / a); the
    better layout counts. Scaling = capacity x S (one process = 1x).
    """
    all_cpus = set(range(os.cpu_count() or 1))
    os.sched_setaffinity(0, all_cpus)
    singles, workers, audits, efficiencies = [], [], [], []
    try:
        for repeat in range(args.repeats):
            runs = {}
            for n in (1, 2):
                port = free_port()
                runs[n] = measure(
                    monitor_cmd(config, port, n), port, "/webhook/bench", args,
                    stream=500 + 10 * repeat + n, batch=1, pinned=False,
                    connections=args.connections * 2, with_worker_metrics=n > 1,
                )  # fmt: skip
            one, two = runs[1], runs[2]
            singles.append(one["server_cpu_seconds"] / one["messages"])
            workers.append(two["cpu_by_process"][1] / two["forwarded"])
            audits.append(two["audit_cpu_seconds"] / two["messages"])
            efficiencies.append(two["msgs_per_sec_per_core"] / one["msgs_per_sec_per_core"])
            for n, r in runs.items():
                cpus = ", ".join(f"{c:.2f}" for c in r["cpu_by_process"])
                print(
                    f"  pair {repeat + 1}, --workers {n}: {r['messages']} requests, {r['server_cpu_seconds']:.2f}s "
                    f"CPU (by process, primary first: {cpus}) -> {r['msgs_per_sec_per_core']:,.0f} requests/s "
                    f"per core, {r['msgs_per_sec_wall']:,.0f}/s wall"
                )
    finally:
        os.sched_setaffinity(0, {1})
    single, worker, audit = (float(np.median(x)) for x in (singles, workers, audits))
    efficiency = float(np.median(efficiencies))
    receive = single - audit
    print(
        f"workers: medians of {args.repeats} pairs: one process S={single * 1e6:.1f} µs a message; a worker "
        f"W={worker * 1e6:.1f} µs (forwarding {(worker - receive) * 1e6:+.1f} µs over receiving alone); the "
        f"primary's audit a={audit * 1e6:.2f} µs; per-core rate of 2 processes / 1: {efficiency:.3f}"
    )
    derived = {}
    for cores in (2, 4, 8, 16):
        receiving = min(cores / worker, 1.0 / (receive / cores + audit))
        dedicated = min((cores - 1) / worker, 1.0 / audit)
        layout = "audit-only primary" if dedicated > receiving else "receiving primary"
        derived[cores] = (max(receiving, dedicated) * single, layout)
    print(
        "  derived scaling on M cores (throughput / one process's): "
        + ", ".join(f"{c}: {x:.2f}x = {x / c:.2f} per core ({how})" for c, (x, how) in derived.items())
    )
    return {
        "workers_per_core_rate_2v1": round(efficiency, 3),
        "workers_cpu_us_per_message": {
            "one_process": round(single * 1e6, 2),
            "worker": round(worker * 1e6, 2),
            "primary_audit": round(audit * 1e6, 2),
        },
        "workers_derived_scaling": {str(c): round(x, 2) for c, (x, _) in derived.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved 1-vs-2 pairs in the workers part")
    parser.add_argument(
        "--parts", default="batched,single,workers", help="comma-separated: batched, single, workers"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    os.sched_setaffinity(0, {1})
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "monitor.yaml"
        config.write_text("lost_after_seconds: 3600\ndestinations:\n  bench: {}\n")
        script = Path(tmp) / "baseline.py"
        script.write_text(BASELINE_SERVER)
        if "batched" in parts:
            figures.update(batched_part(args, config, script))
        if "single" in parts:
            figures.update(single_part(args, config, script))
        if "workers" in parts:
            figures.update(workers_part(args, config))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
