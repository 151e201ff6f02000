"""Benchmark the sandbox: batched and single-event ingest throughput per core, dedupe bytes per id.

How: the sandbox runs as its own process pinned to core 0 (taskset), with one destination whose
receiver is a minimal asyncio HTTP server; `wrk` on core 1 drives it with a Lua script that builds
every request with fresh messageIds (so dedupe, enrichment and delivery all do real work). CPU time
is read from /proc/<pid>/stat (utime + stime, all threads) from the start of the load until every
accepted message has been delivered, so the per-core figures include delivery. A minimal granian
RSGI app that only parses each JSON body is measured the same way (same bodies) as the baseline.
Dedupe bytes per id: tracemalloc around 2 million inserts into `sandbox.dedupe.Deduper`.
Delivery CPU per message: a separate process queues 100,000 enriched messages on one
`sandbox.delivery.DestinationQueue` (batches of 500, 2 connections) and reads its own CPU time until
the same null receiver has them all; the same POSTs sent with an httpx.AsyncClient are the baseline.
The machine is shared, so figures vary run to run; the ratio to the baseline is steadier.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import httpx

from harness.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
DURATION = float(os.environ.get("BENCH_SECONDS", "6"))
BATCH = 100

LUA = textwrap.dedent(
    """
    local counter = 0
    local tcount = 0
    function setup(thread)
      thread:set("tid", tcount)
      tcount = tcount + 1
    end
    function init(args)
      mode = args[1]
      prefix = args[2]
    end
    local function msg(id)
      return '{"type":"track","event":"Order Completed","userId":"user-' .. (id % 5000) ..
        '","messageId":"' .. prefix .. '-' .. tid .. '-' .. id ..
        '","timestamp":"2026-01-01T00:00:00.000Z","properties":{"order_id":"o-' .. id ..
        '","total":42.5,"currency":"USD","products":[{"product_id":"p1","price":42.5,"quantity":1}]},' ..
        '"context":{"library":{"name":"analytics-python","version":"2.3.0"}}}'
    end
    request = function()
      if mode == "batch" then
        local parts = {}
        for i = 1, BATCH_SIZE do
          counter = counter + 1
          parts[i] = msg(counter)
        end
        local body = '{"batch":[' .. table.concat(parts, ",") .. '],"sentAt":"2026-01-01T00:00:01.000Z"}'
        return wrk.format("POST", "/v1/batch", nil, body)
      end
      counter = counter + 1
      return wrk.format("POST", "/v1/track", nil, msg(counter))
    end
    """
)

BASELINE_APP = textwrap.dedent(
    """
    import asyncio, sys, orjson
    from granian.constants import Interfaces, HTTPModes
    from granian.server.embed import Server

    class App:
        async def __rsgi__(self, scope, proto):
            body = await proto()
            if scope.path.startswith("/v1/"):
                orjson.loads(body)
            proto.response_bytes(200, [("content-type", "application/json")], b'{"success":true}')

    async def main():
        s = Server(App(), address="127.0.0.1", port=int(sys.argv[1]), interface=Interfaces.RSGI,
                   http=HTTPModes.http1, websockets=False, log_enabled=False)
        await s.serve()

    asyncio.run(main())
    """
)


DELIVERY_SCRIPT = textwrap.dedent(
    """
    import asyncio, hashlib, hmac, json, sys, time
    import httpx, orjson
    from sandbox.config import parse_config
    from sandbox.app import Pipeline
    from sandbox.delivery import batch_body

    url, n, size = sys.argv[1], int(sys.argv[2]), 500
    msg = {"type": "track", "event": "Order Completed", "userId": "user-1", "messageId": "m-0",
           "timestamp": "2026-01-01T00:00:00.000Z", "originalTimestamp": "2026-01-01T00:00:00.000Z",
           "receivedAt": "2026-01-01T00:00:01.000Z", "version": 2,
           "properties": {"order_id": "o-1", "total": 42.5, "currency": "USD"},
           "context": {"library": {"name": "analytics-python", "version": "2.3.0"}}}
    requests = [[orjson.dumps({**msg, "messageId": f"m-{r}-{i}"}) for i in range(100)] for r in range(n // 100)]

    async def sandbox_queue():
        cfg = parse_config({"sources": [{"name": "s", "write_key": "k"}], "destinations": [
            {"name": "null", "url": url, "secret": "s", "batch_size": size, "concurrency": 2}]})
        p = Pipeline(cfg)
        await p.start()
        q = p.queues[0]
        q.enqueue_many(requests[0], time.time())  # warm-up: connections, first-use imports
        while p.stats.delivered["null"] < 100:
            await asyncio.sleep(0.002)
        t = time.process_time()
        for bodies in requests:
            q.enqueue_many(bodies, time.time())
        while p.stats.delivered["null"] < n + 100:
            await asyncio.sleep(0.002)
        cpu = time.process_time() - t
        await p.stop()
        return cpu

    async def httpx_posts():
        flat = [b for bodies in requests for b in bodies]
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(limits=limits, trust_env=False, timeout=5) as client:
            async def worker(start):
                for i in range(start, n, 2 * size):
                    body = batch_body([(flat[i : i + size], 0.0)])
                    headers = {"Content-Type": "application/json", "User-Agent": "Segment.io/1.0",
                               "X-Signature": hmac.new(b"s", body, hashlib.sha1).hexdigest()}
                    assert (await client.post(url, content=body, headers=headers)).status_code == 200
            assert (await client.post(url, content=b"[]")).status_code == 200  # warm-up
            t = time.process_time()
            await asyncio.gather(worker(0), worker(size))
            return time.process_time() - t

    print(json.dumps({"sandbox": asyncio.run(sandbox_queue()), "httpx": asyncio.run(httpx_posts())}))
    """
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


class NullReceiver:
    """A minimal HTTP/1.1 keep-alive server answering 200 to every request (the null destination).

    It reads with a 1 MB stream buffer, as a real webhook server drains a socket: with asyncio's
    64 KB default it paused reading in the middle of every ~200 KB batch POST, and the sandbox's
    sends then cost it about a quarter more CPU per message (measured), which is not the sandbox's cost.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        time.sleep(0.2)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", self.port, limit=1 << 20)
        )
        self.loop.run_forever()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", "0", *cmd], cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{cmd} did not start: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def run_wrk(port: int, mode: str, prefix: str, lua: Path, connections: int = 32) -> str:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(DURATION)}s",
        "-s",
        str(lua),
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Basic YmVuY2gta2V5Og==",  # bench-key:
        f"http://127.0.0.1:{port}",
        "--",
        mode,
        prefix,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def stats(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/admin/stats", timeout=10).json()


def measure_sandbox(mode: str, workdir: Path, lua: Path, recv: NullReceiver) -> dict:
    port = free_port()
    cfg = {
        "sources": [{"name": "bench", "write_key": "bench-key"}],
        "destinations": [
            {
                "name": "null",
                "url": f"http://127.0.0.1:{recv.port}/",
                "secret": "s",
                "batch_size": 500,
                "concurrency": 2,
            }
        ],
        "delivery": {"spool_path": str(workdir / f"spool-{mode}.jsonl")},
        "dedupe": {"max_ids": 20_000_000},
    }
    (workdir / f"{mode}.yaml").write_text(json.dumps(cfg))
    proc = start(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--config",
            str(workdir / f"{mode}.yaml"),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        port,
        workdir / f"sandbox-{mode}.log",
    )
    try:
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        out = run_wrk(port, mode, f"{mode}{os.getpid()}", lua)
        wall_load = time.monotonic() - t0
        deadline = time.monotonic() + 60
        while True:  # wait for delivery to drain: its CPU belongs to the figure
            st = stats(port)
            if st["queued"]["null"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        cpu = cpu_seconds(proc.pid) - cpu0
        n_req = st["requests"].get("batch" if mode == "batch" else "track", {}).get("200", 0)
        non200 = {k: v for per in st["requests"].values() for k, v in per.items() if k != "200"}
        return {
            "cpu_seconds": cpu,
            "wall_seconds": wall_load,
            "requests_200": n_req,
            "messages": st["accepted_total"],
            "delivered": st["delivered"].get("null", 0),
            "dedupe_hits": st["dedupe_hits_total"],
            "non_200": non200,
            "wrk": out,
        }
    finally:
        stop(proc)


def measure_baseline(mode: str, workdir: Path, lua: Path) -> dict:
    port = free_port()
    script = workdir / "baseline_app.py"
    script.write_text(BASELINE_APP)
    proc = start([sys.executable, str(script), str(port)], port, workdir / "baseline.log")
    try:
        cpu0 = cpu_seconds(proc.pid)
        out = run_wrk(port, mode, "b", lua)
        cpu = cpu_seconds(proc.pid) - cpu0
        reqs = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
        return {"cpu_seconds": cpu, "requests": reqs, "wrk": out}
    finally:
        stop(proc)


def delivery_cpu(recv: NullReceiver, n: int = 100_000) -> dict:
    """CPU seconds of the delivery path (and of plain httpx POSTs) for `n` messages, on core 0."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-c",
            DELIVERY_SCRIPT,
            f"http://127.0.0.1:{recv.port}/",
            str(n),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = json.loads(out.strip().splitlines()[-1])
    return {"messages": n, **cpu}


def dedupe_bytes_per_id(n: int = 2_000_000) -> tuple[float, float]:
    from sandbox.dedupe import Deduper, id_hash

    d = Deduper(window_seconds=86400, max_ids=50_000_000)
    ids = [[id_hash("bench", f"{i}-{j}") for j in range(100)] for i in range(n // 100)]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    for chunk in ids:
        d.seen_many(chunk)
    elapsed = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return traced / len(d), n / elapsed


def main() -> int:
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("needs wrk and taskset", file=sys.stderr)
        return 2
    print(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lua = workdir / "load.lua"
        lua.write_text(LUA.replace("BATCH_SIZE", str(BATCH)))
        recv = NullReceiver()
        try:
            base = measure_baseline("single", workdir, lua)
            base_batch = measure_baseline("batch", workdir, lua)
            single = measure_sandbox("single", workdir, lua, recv)
            batch = measure_sandbox("batch", workdir, lua, recv)
            delivery = delivery_cpu(recv)
        finally:
            recv.close()
    bpi, inserts = dedupe_bytes_per_id()
    base_rps = base["requests"] / base["cpu_seconds"]
    base_mps = base_batch["requests"] * BATCH / base_batch["cpu_seconds"]
    single_rps = single["requests_200"] / single["cpu_seconds"]
    batch_mps = batch["messages"] / batch["cpu_seconds"]
    for name, r in (
        ("baseline single (granian RSGI, parse only)", base),
        ("baseline batch x100 (granian RSGI, parse only)", base_batch),
        ("sandbox single /v1/track", single),
        ("sandbox batch /v1/batch x100", batch),
    ):
        print(f"--- {name}: wrk 1 thread, 32 connections, {DURATION:.0f} s, core 1; server on core 0")
        print(textwrap.indent(r.pop("wrk").strip(), "    "))
        print(f"    {json.dumps(r)}")
    print(f"baseline: {base_rps:,.0f} single requests/s and {base_mps:,.0f} batched messages/s per core")
    print(
        f"single:   {single_rps:,.0f} requests/s per core ({single_rps / base_rps:.2f} x baseline), "
        f"wall {single['requests_200'] / single['wall_seconds']:,.0f}/s"
    )
    print(
        f"batch:    {batch_mps:,.0f} messages/s per core ({batch_mps / base_mps:.2f} x baseline; "
        f"{batch['requests_200']} requests of {BATCH}), "
        f"wall {batch['messages'] / batch['wall_seconds']:,.0f}/s, delivered {batch['delivered']}"
    )
    print(f"dedupe:   {bpi:.1f} bytes per remembered id (tracemalloc, 2M ids), {inserts:,.0f} inserts/s")
    deliver_us = delivery["sandbox"] / delivery["messages"] * 1e6
    httpx_us = delivery["httpx"] / delivery["messages"] * 1e6
    print(
        f"delivery: {deliver_us:.2f} µs CPU per message (queue, HMAC, aiohttp POSTs of 500); "
        f"httpx POSTs of the same batches: {httpx_us:.2f} µs ({deliver_us / httpx_us:.2f} x)"
    )
    ok = single["non_200"] == {} and batch["non_200"] == {} and batch["delivered"] == batch["messages"]
    if not ok:
        print("WARNING: non-200 answers or undelivered messages, see above", file=sys.stderr)
    print(
        json.dumps(
            {
                "batch_msgs_per_sec_per_core": round(batch_mps),
                "single_requests_per_sec_per_core": round(single_rps),
                "dedupe_bytes_per_id": round(bpi, 2),
                "baseline_requests_per_sec_per_core": round(base_rps),
                "single_vs_baseline": round(single_rps / base_rps, 3),
                "baseline_batch_msgs_per_sec_per_core": round(base_mps),
                "batch_vs_baseline": round(batch_mps / base_mps, 3),
                "delivery_us_per_msg": round(deliver_us, 3),
                "httpx_delivery_us_per_msg": round(httpx_us, 3),
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
