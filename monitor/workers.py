"""`harness monitor --workers N`: N receiver processes on one port, one exact audit.

The first process (the primary) is a whole `Monitor`: it receives deliveries like the others and
holds the one audit, the ledgers, the canary and the probes. The N-1 workers bind the same port
(`monitor/http_server.py` sets SO_REUSEPORT, so the kernel spreads connections over all N) and do the per-request
work: HTTP, signature, gzip, JSON parsing and the behaviour's answer. A worker forwards what the
audit reads (each request's messageIds, users, arrival time and refusal class, as
`Audit.record` takes them) and its receiver counters to the primary over a Unix socket, every
FORWARD_ROWS rows or FORWARD_SECONDS. The primary audits those rows through the same
`Audit.record` as its own, so every figure (duplicates across workers, order, lateness) is what
one process would compute; the audit is batched numpy work, a small part of a request's cost.

Control-API requests a worker receives are answered by the primary, proxied over the socket.
Before answering any of them the primary has every worker forward what it holds (a barrier), so
an answer counts every delivery answered before it was asked for; a behaviour change reaches
every worker before its PUT is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import orjson

from monitor.app import JSON, Monitor, serve
from monitor.audit import DestinationAudit
from monitor.config import MonitorConfig
from monitor.http_server import Exchange, Scope
from monitor.receiver import BodyError, Delivery

log = logging.getLogger("monitor")

FORWARD_ROWS = 4096
"""Rows a worker holds before forwarding them (the primary audits in batches of 8192)."""
FORWARD_SECONDS = 0.02
"""The longest a worker holds a row before forwarding it."""
BACKLOG_BYTES = 8 << 20
"""Unsent bytes to the primary past which a worker's requests wait (back-pressure on the pipeline)."""
BARRIER_TIMEOUT = 30.0
START_TIMEOUT = 30.0
DEDICATED_AUDIT_FROM = 4
"""From this many receiving processes on, the primary only audits (see `receiving_primary`)."""
_HEAD = struct.Struct(">II")
_NOT_FORWARDED = frozenset(("config", "cells", "latency", "foreign_ids"))
"""DestinationAudit fields a worker never sets (its audit never runs) or that are not counters."""


# --- framing: a header (JSON) and a body (bytes) ----------------------------------------------------


def frame(header: list, body: bytes = b"") -> bytes:
    head = orjson.dumps(header)
    return _HEAD.pack(len(head), len(body)) + head + body


async def read_raw_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The next frame's header (undecoded) and body; raises asyncio.IncompleteReadError when the
    peer has gone."""
    head_size, body_size = _HEAD.unpack(await reader.readexactly(_HEAD.size))
    head = await reader.readexactly(head_size)
    body = await reader.readexactly(body_size) if body_size else b""
    return head, body


async def read_frame(reader: asyncio.StreamReader) -> tuple[list, bytes]:
    head, body = await read_raw_frame(reader)
    return orjson.loads(head), body


class AuditClock:
    """CPU seconds the primary spends decoding forwarded rows and auditing (nested calls once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._running = False

    def run(self, work: Callable[..., Any], *args: Any) -> Any:
        if self._running:
            return work(*args)
        self._running, started = True, time.thread_time()
        try:
            return work(*args)
        finally:
            self.seconds += time.thread_time() - started
            self._running = False


# --- receiver counters, moved from a worker to the primary as deltas ---------------------------


def take_counters(destinations: dict[str, DestinationAudit]) -> dict[str, dict[str, Any]]:
    """Every receiver counter of every destination (numbers and count maps), reset to zero."""
    out: dict[str, dict[str, Any]] = {}
    for name, dest in destinations.items():
        doc: dict[str, Any] = {}
        for field in dataclasses.fields(dest):
            if field.name in _NOT_FORWARDED:
                continue
            value = getattr(dest, field.name)
            if isinstance(value, int) and value:
                doc[field.name] = value
                setattr(dest, field.name, 0)
            elif isinstance(value, dict) and value:
                doc[field.name] = [[key, n] for key, n in value.items()]
                setattr(dest, field.name, {})
        if doc:
            out[name] = doc
    return out


def add_counters(destinations: dict[str, DestinationAudit], counters: dict[str, dict[str, Any]]) -> None:
    """Add a worker's counter deltas (from `take_counters`) to the primary's destinations."""
    for name, doc in counters.items():
        dest = destinations.get(name)
        if dest is None:
            continue
        for attr, value in doc.items():
            if isinstance(value, int):
                setattr(dest, attr, getattr(dest, attr) + value)
                continue
            target = getattr(dest, attr)
            for key, n in value:
                key = tuple(key) if isinstance(key, list) else key
                target[key] = target.get(key, 0) + n


# --- the primary --------------------------------------------------------------------------------


class Hub:
    """The primary's end of the workers' Unix sockets: rows in, API requests in, barriers out."""

    def __init__(self, monitor: PrimaryMonitor, path: str) -> None:
        self.monitor, self.path = monitor, path
        self.links: dict[int, asyncio.StreamWriter] = {}
        self.connected = asyncio.Event()
        self.expected = 0
        self._tokens = count(1)
        self._acks: dict[int, tuple[set[int], asyncio.Future]] = {}
        self._server: asyncio.AbstractServer | None = None
        self.forwarded_rows: dict[int, int] = {}
        """Worker index -> messages it forwarded (the primary's own are the rest)."""
        self._tasks: set[asyncio.Task] = set()

    async def start(self, workers: int) -> None:
        self.expected = workers
        self._server = await asyncio.start_unix_server(self._serve_link, self.path, limit=1 << 26)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self.links.values():
            writer.close()

    async def _serve_link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = -1
        try:
            header, _ = await read_frame(reader)
            index = int(header[1])  # ["hello", index]
            self.links[index] = writer
            self.forwarded_rows.setdefault(index, 0)
            if len(self.links) >= self.expected:
                self.connected.set()
            while True:
                head, body = await read_raw_frame(reader)
                if head.startswith(b'["rows"'):
                    self.monitor.clock.run(self._audit_rows, index, head)
                    continue
                header = orjson.loads(head)
                kind = header[0]
                if kind == "api":
                    task = asyncio.create_task(self._answer(writer, header, body))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif kind == "ack":
                    self._ack(index, header[1])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.links.pop(index, None)
            for token in list(self._acks):  # a barrier waits no longer for a worker that is gone
                self._ack(index, token)
            if index >= 0:
                log.warning("monitor worker %d disconnected", index)
            writer.close()

    def _audit_rows(self, index: int, head: bytes) -> None:
        _, rows, counters = orjson.loads(head)
        audit = self.monitor.audit
        destinations = audit.destinations
        forwarded = 0
        for name, message_ids, users, arrival_ms, refusal_class in rows:
            audit.record(destinations[name], message_ids, users, arrival_ms, refusal_class)
            forwarded += len(message_ids)
        self.forwarded_rows[index] = self.forwarded_rows.get(index, 0) + forwarded
        add_counters(destinations, counters)

    def metrics_text(self) -> bytes:
        """Forwarded messages per worker and the audit's CPU seconds, in the text format."""
        lines = [
            "# HELP monitor_audit_cpu_seconds_total CPU the primary spent decoding forwarded rows and auditing.",
            "# TYPE monitor_audit_cpu_seconds_total counter",
            f"monitor_audit_cpu_seconds_total {self.monitor.clock.seconds}",
            "# HELP monitor_worker_forwarded_messages_total Messages a receiver worker handed to the audit.",
            "# TYPE monitor_worker_forwarded_messages_total counter",
        ]
        lines += [
            f'monitor_worker_forwarded_messages_total{{worker="{index}"}} {n}'
            for index, n in sorted(self.forwarded_rows.items())
        ]
        return ("\n".join(lines) + "\n").encode()

    def _ack(self, index: int, token: int) -> None:
        entry = self._acks.get(token)
        if entry is None:
            return
        waiting, future = entry
        waiting.discard(index)
        if not waiting and not future.done():
            future.set_result(None)

    async def barrier(self) -> None:
        """Return once every worker has forwarded every row it held when this was called."""
        if not self.links:
            return
        token = next(self._tokens)
        future = asyncio.get_running_loop().create_future()
        self._acks[token] = (set(self.links), future)
        message = frame(["flush", token])
        for writer in self.links.values():
            writer.write(message)
        try:
            await asyncio.wait_for(future, BARRIER_TIMEOUT)
        except TimeoutError:
            log.warning("monitor workers did not all answer a flush within %.0f s", BARRIER_TIMEOUT)
        finally:
            del self._acks[token]

    def broadcast(self, header: list, body: bytes) -> None:
        message = frame(header, body)
        for writer in self.links.values():
            writer.write(message)

    async def _answer(self, writer: asyncio.StreamWriter, header: list, body: bytes) -> None:
        _, request_id, method, path, query_string, headers = header
        exchange = Exchange(body)
        await self.monitor.__rsgi__(Scope(method, path, query_string, headers), exchange)
        status, answer_headers, answer = exchange.answer or (500, JSON, b'{"code":"internal"}')
        if not writer.is_closing():
            writer.write(frame(["answer", request_id, status, [list(h) for h in answer_headers]], answer))


class PrimaryMonitor(Monitor):
    """The whole monitor, answering its API only after every worker has forwarded its rows."""

    def __init__(self, config: MonitorConfig, socket_path: str) -> None:
        super().__init__(config)
        self.hub = Hub(self, socket_path)
        self._behaviour_changed = False
        self.clock = AuditClock()
        self.audit.flush = functools.partial(self.clock.run, self.audit.flush)  # type: ignore[method-assign]

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        # (`monitor/http_server.py` sends the answer once this returns)
        if scope.proto != "http" or scope.path.startswith("/webhook/") or scope.path == "/healthz":
            await super().__rsgi__(scope, proto)
            return
        await self.hub.barrier()
        await super().__rsgi__(scope, proto)
        if self._behaviour_changed:  # answered once every worker applies it
            self._behaviour_changed = False
            await self.hub.barrier()

    def api(self, method: str, path: str, scope: Any, body: bytes) -> tuple[int, Any, str | None]:
        status, doc, content_type = super().api(method, path, scope, body)
        if path == "/metrics" and status == 200:
            doc += self.hub.metrics_text()
        return status, doc, content_type

    def set_behaviour(self, name: str, body: bytes) -> dict:
        doc = super().set_behaviour(name, body)
        self.hub.broadcast(["behaviour", name], body)
        self._behaviour_changed = True
        return doc


def worker_argv(args: Any, socket_path: str, index: int) -> list[str]:
    argv = [sys.executable, "-m", "harness", "monitor", "--host", args.host, "--port", str(args.port)]
    if args.config:
        argv += ["--config", str(Path(args.config).resolve())]
    return [*argv, "--worker-socket", socket_path, "--worker-index", str(index)]


def receiving_primary(workers: int) -> bool:
    """Whether the primary also receives: with few processes every core must receive; from
    DEDICATED_AUDIT_FROM on, the primary's core is better spent on the audit of all of them alone
    (its receiving share would make it the first to saturate)."""
    return workers < DEDICATED_AUDIT_FROM


async def serve_primary(config: MonitorConfig, args: Any) -> None:
    """Run the primary and its workers until SIGTERM or SIGINT: `args.workers` processes receive
    in all, plus the primary as a process of its own from DEDICATED_AUDIT_FROM on."""
    with socket.create_server((args.host, args.port)):  # a busy port fails here, not silently shared
        pass
    folder = tempfile.mkdtemp(prefix="monitor-workers-")
    socket_path = os.path.join(folder, "hub.sock")
    monitor = PrimaryMonitor(config, socket_path)
    receiving = receiving_primary(args.workers)
    indices = range(1, args.workers) if receiving else range(1, args.workers + 1)
    await monitor.hub.start(len(indices))
    processes = [
        subprocess.Popen(
            worker_argv(args, socket_path, index),
            stdin=subprocess.DEVNULL,  # (a worker stops by itself when the primary's socket closes)
        )
        for index in indices
    ]
    try:
        try:
            await asyncio.wait_for(monitor.hub.connected.wait(), START_TIMEOUT)
        except TimeoutError:
            log.error("only %d of %d monitor workers connected", len(monitor.hub.links), len(indices))
            return
        await serve(config, args.host, args.port, monitor=monitor, reuse_port=True, listen=receiving)
    finally:
        await monitor.hub.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(OSError):
            os.unlink(socket_path)
            os.rmdir(folder)


# --- a worker -----------------------------------------------------------------------------------


class WorkerLink:
    """A worker's end of its Unix socket: rows and counters out, flushes and behaviours in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.monitor: WorkerMonitor | None = None
        self.rows: list[list] = []
        self.row_count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._ids = count(1)
        self._answers: dict[int, asyncio.Future] = {}

    def record(self, dest: DestinationAudit, message_ids: list, users: list, arrival_ms: float, refusal_class: str | None) -> None:  # fmt: skip
        """`Audit.record`'s stand-in: hold the row for the next forward."""
        self.rows.append([dest.config.name, message_ids, users, arrival_ms, refusal_class])
        self.row_count += len(message_ids)
        if self.row_count >= FORWARD_ROWS:
            self.forward()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FORWARD_SECONDS, self.forward)

    def forward(self) -> None:
        """Send the rows held and the counters since the last forward."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self.monitor is not None
        counters = take_counters(self.monitor.audit.destinations)
        if not self.rows and not counters:
            return
        rows, self.rows, self.row_count = self.rows, [], 0
        self.writer.write(frame(["rows", rows, counters]))

    @property
    def backlogged(self) -> bool:
        return self.writer.transport.get_write_buffer_size() > BACKLOG_BYTES

    async def api(self, scope: Any, body: bytes) -> tuple[int, list, bytes]:
        """Have the primary answer an API request."""
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._answers[request_id] = future
        headers = dict(scope.headers.items())
        self.writer.write(
            frame(["api", request_id, scope.method, scope.path, scope.query_string, headers], body)
        )
        try:
            return await future
        finally:
            self._answers.pop(request_id, None)

    async def read_forever(self) -> None:
        """Serve the primary's messages; when the primary goes, stop this process."""
        try:
            while True:
                header, body = await read_frame(self.reader)
                kind = header[0]
                if kind == "flush":
                    self.forward()
                    self.writer.write(frame(["ack", header[1]]))
                elif kind == "answer":
                    future = self._answers.get(header[1])
                    if future is not None and not future.done():
                        future.set_result((header[2], [tuple(h) for h in header[3]], body))
                elif kind == "behaviour":
                    assert self.monitor is not None
                    self.monitor.set_behaviour(header[1], body)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.warning("monitor worker lost its primary; stopping")
        for future in self._answers.values():
            if not future.done():
                future.set_result((503, JSON, b'{"code":"unavailable","message":"monitor primary is gone"}'))
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerMonitor(Monitor):
    """A receiver: answers deliveries itself and has the primary audit them and answer the API."""

    def __init__(self, config: MonitorConfig, link: WorkerLink, index: int) -> None:
        self.index = index
        # the canary and the probes run in the primary only
        config = dataclasses.replace(
            config,
            canary=dataclasses.replace(config.canary, enabled=False),
            probes=dataclasses.replace(config.probes, targets=()),
        )
        super().__init__(config)
        self.link = link
        link.monitor = self
        self.audit.record = link.record  # type: ignore[method-assign]

    def _seed(self, destination: str) -> str:
        return f"{super()._seed(destination)}/worker-{self.index}"

    async def _audit(self, dest: DestinationAudit, delivery: Delivery, arrival_ms: float) -> tuple[int, list, bytes]:  # fmt: skip
        answer = await super()._audit(dest, delivery, arrival_ms)
        if self.link.backlogged:
            await self.link.writer.drain()
        return answer

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http" or scope.path.startswith("/webhook/") or scope.path == "/healthz":
            await super().__rsgi__(scope, proto)
            return
        body = await self._read_body(scope, proto, self.config.max_body_bytes)
        if isinstance(body, BodyError):
            doc = orjson.dumps({"code": body.code, "message": str(body)})
            proto.response_bytes(body.status, [*JSON, ("connection", "close")], doc)
            return
        proto.response_bytes(*await self.link.api(scope, body))

    def start_background(self) -> list[asyncio.Task]:
        return [asyncio.create_task(self.link.read_forever())]


async def serve_worker(config: MonitorConfig, host: str, port: int, socket_path: str, index: int) -> None:
    """Run worker `index` until SIGTERM, SIGINT or the primary's going."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 26)
    writer.write(frame(["hello", index]))
    link = WorkerLink(reader, writer)
    await serve(config, host, port, monitor=WorkerMonitor(config, link, index), reuse_port=True)
