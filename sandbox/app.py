"""The sandbox process: the pipeline (dedupe, queues, delivery, spool) and its RSGI app for granian."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST

from sandbox.auth import TOKEN_ENV, authorized
from sandbox.config import Config, ConfigError, faults_to_dict, parse_faults
from sandbox.dedupe import Deduper
from sandbox.delivery import DestinationQueue, Router
from sandbox.faults import FaultInjector
from sandbox.ingest import JSON_HEADERS, ROUTES, Ingest, error_response
from sandbox.metrics import Stats
from sandbox.rudderstack import RudderStackIngest
from sandbox.spool import read_spool, write_spool

log = logging.getLogger("sandbox")


class Pipeline:
    """Everything behind the HTTP surface; `start` and `stop` run on the server's event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = Stats()
        self.faults = FaultInjector(config.faults, config.seed)
        self.dedupe = Deduper(config.dedupe.window_seconds, config.dedupe.max_ids)
        self.queues = [
            DestinationQueue(d, config.delivery, self.stats, self.faults, config.seed)
            for d in config.destinations
        ]
        self.router = Router(self.queues, [s.name for s in config.sources])
        ingest = RudderStackIngest if config.dialect == "rudderstack" else Ingest
        self.ingest = ingest(config, self.stats, self.dedupe, self.router, self.faults)
        self.stats.queue_probe = lambda: {q.name: q.depth() for q in self.queues}
        self.stats.dedupe_probe = self._dedupe_figures

    def _dedupe_figures(self) -> dict[str, float]:
        n = len(self.dedupe)
        return {
            "remembered_ids": n,
            "memory_bytes": self.dedupe.nbytes(),
            "evicted": self.dedupe.evicted,
            "window_seconds": self.config.dedupe.window_seconds,
        }

    async def start(self) -> None:
        """Restore the dedupe state and the spool, then start every destination's workers."""
        state = self.config.dedupe.state_path
        if state and Path(state).exists():
            try:
                log.info("restored %d dedupe ids from %s", self.dedupe.load(state), state)
            except (OSError, ValueError, KeyError) as exc:
                log.error("%s: cannot read the dedupe state (%s); starting with an empty window", state, exc)
        by_name = {q.name: q for q in self.queues}
        for name, entries in read_spool(self.config.delivery.spool_path).items():
            queue = by_name.get(name)
            if queue is None:
                log.error(
                    "spool: %d message(s) for unknown destination %r were not restored", len(entries), name
                )
                continue
            queue.restore(entries)
            log.info("spool: restored %d message(s) for %s", len(entries), name)
        for q in self.queues:
            q.start()

    async def stop(self) -> None:
        """Stop delivery and write every undelivered message to the spool (and the dedupe state)."""
        grace = self.config.delivery.shutdown_grace_seconds
        left: dict[str, list[tuple[bytes, float]]] = {}
        for q in self.queues:
            entries = await q.stop(grace)
            if entries:
                left[q.name] = entries
                self.stats.spooled[q.name] += len(entries)
        if left:
            n = write_spool(self.config.delivery.spool_path, left)
            log.info("spooled %d undelivered message(s) to %s", n, self.config.delivery.spool_path)
        if self.config.dedupe.state_path:
            self.dedupe.save(self.config.dedupe.state_path)


ADMIN_ENDPOINTS = ("/healthz", "/metrics", "/admin/stats", "/admin/faults")


def _endpoint(path: str) -> str:
    """The `endpoint` label for a path outside /v1/."""
    return path.lstrip("/") if path in ADMIN_ENDPOINTS else "other"


class SandboxApp:
    """RSGI application: ingest under /v1/, admin under /admin/, plus /healthz and /metrics."""

    def __init__(self, pipeline: Pipeline, token: str | None = None) -> None:
        self.pipeline = pipeline
        self.token = token
        self.ingest = pipeline.ingest
        self.stats = pipeline.stats
        self.max_body = max(pipeline.config.ingest.max_batch_bytes, pipeline.config.ingest.max_message_bytes)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path = scope.path
        headers = scope.headers
        # every body is read, on every route: granian closes a connection whose request body was
        # left unread right after the answer, and a client reusing it meanwhile sees a reset
        raw = await self._read_body(headers, proto)
        if raw is None:
            status, hdrs, body = error_response(
                400, "payload_too_large", f"the request body exceeds {self.max_body} bytes"
            )
            # the rest of the body was not read: the connection cannot be reused
            hdrs = [*hdrs, ("connection", "close")]
            if path.startswith("/v1/"):
                self.stats.requests[ROUTES.get(path, ("other",))[0], 400] += 1
                self.stats.rejected["unknown", "payload_too_large"] += 1
            else:
                self.stats.requests[_endpoint(path), 400] += 1
        elif path.startswith("/v1/"):
            status, hdrs, body = self.ingest.handle(scope.method, path, headers.get, raw)
        elif path.startswith("/admin/") and not authorized(self.token, headers.get("authorization")):
            status, hdrs, body = error_response(
                401, "unauthorized", f"{path[:100]} needs 'Authorization: Bearer <{TOKEN_ENV}>'"
            )
            self.stats.requests[_endpoint(path), 401] += 1
        else:
            status, hdrs, body = self._other(scope.method, path, raw)
        proto.response_bytes(status, hdrs, body)

    async def _read_body(self, headers: Any, proto: Any) -> bytes | None:
        """The body, or None when it is bigger than any limit (so a huge upload is never buffered)."""
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_body:
                return None
            return await proto()
        chunks, size = [], 0
        async for chunk in proto:
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _other(self, method: str, path: str, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if path == "/healthz":
            out = 200, JSON_HEADERS, b'{"status":"ok"}'
        elif path == "/metrics" and method == "GET":
            out = 200, [("content-type", CONTENT_TYPE_LATEST)], self.stats.exposition()
        elif path == "/admin/stats" and method == "GET":
            doc = self.stats.to_json()
            doc["time"] = time.time()
            out = 200, JSON_HEADERS, orjson.dumps(doc)
        elif path == "/admin/faults" and method == "GET":
            out = 200, JSON_HEADERS, orjson.dumps(faults_to_dict(self.pipeline.faults.faults))
        elif path == "/admin/faults" and method == "PUT":
            out = self._put_faults(raw)
        elif path in ADMIN_ENDPOINTS:
            out = error_response(405, "method_not_allowed", f"{method} is not allowed on {path}")
        else:
            out = error_response(404, "not_found", f"no such endpoint: {path[:100]}")
        self.stats.requests[_endpoint(path), out[0]] += 1
        return out

    def _put_faults(self, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return error_response(400, "invalid_json", f"the body is not valid JSON: {exc}")
        names = {d.name for d in self.pipeline.config.destinations}
        try:
            faults = parse_faults(doc, names)
        except ConfigError as exc:
            return error_response(400, "invalid_faults", str(exc))
        self.pipeline.faults.faults = faults
        log.info("faults replaced: %s", faults_to_dict(faults))
        return 200, JSON_HEADERS, orjson.dumps(faults_to_dict(faults))
