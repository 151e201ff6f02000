"""The monitor's HTTP server: an RSGI app (served by `monitor/http_server.py` in our asyncio loop).

Routes:
    GET  /healthz                               200 once serving
    POST /webhook/<destination>                 the receiver (see `monitor/receiver.py`)
    GET  /api/destinations                      destinations and their current behaviours
    PUT  /api/destinations/<name>/behaviour     change a behaviour at run time (JSON mapping)
    POST /api/ledger                            a `loadgen.ledger.LedgerDelta.to_wire()` document
    GET  /api/summary[?run=ID|NAME]             the run summary (`monitor/summary.py`)
    GET  /api/lost?destination=D[&limit=N][&run=ID|NAME]
    GET  /metrics                               Prometheus text format
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from loadgen.ids import MAX_RUN, MAX_STREAM, run_id_from_name
from loadgen.ledger import LedgerDelta, LedgerFormatError
from monitor import metrics
from monitor.audit import Audit, DestinationAudit
from monitor.behaviours import Behaviour
from monitor.canary import CanaryProber
from monitor.config import ConfigError, MonitorConfig, parse_behaviour
from monitor.ledger_store import LedgerBook
from monitor.probes import Prober
from monitor.receiver import BodyError, Delivery, gunzip, parse_delivery, signature_ok
from monitor.summary import build_summary

log = logging.getLogger("monitor")
JSON = [("content-type", "application/json")]
_OK = b'{"success":true}'
LOST_ID_NOTE = (
    "message_id is the UUIDv7 rebuilt from run, stream and seq (exact) with the sent_until_ms "
    "watermark of the ledger delta that reported it as its time field (the true send time is at "
    "or before it)"
)


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Monitor:
    """The monitor's whole state and its RSGI entry point."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self.ledgers = LedgerBook(config.lost_after_seconds)
        self.audit = Audit(config.destinations, self.ledgers)
        now = time.monotonic()
        self.behaviours = {
            name: Behaviour(d.behaviour, seed=self._seed(name), started_at=now)
            for name, d in config.destinations.items()
        }
        self.canary = CanaryProber(config.canary, config.destinations) if config.canary.enabled else None
        if self.canary is not None:
            self.audit.canary_hook = self.canary.on_arrival
        self.prober = Prober(config.probes)
        self.ledger_deltas = 0
        self.ledger_errors = 0

    def _seed(self, destination: str) -> str:
        return f"{self.config.seed}/{destination}"

    # --- background work --------------------------------------------------------------------------

    def sweep(self) -> None:
        now_ms = time.time() * 1000.0
        self.audit.sweep(now_ms)
        if self.canary is not None:
            self.canary.settle(now_ms)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_seconds)
            self.sweep()

    def start_background(self) -> list[asyncio.Task]:
        tasks = [asyncio.create_task(self._sweep_forever())]
        if self.canary is not None:
            tasks.append(asyncio.create_task(self.canary.run_forever()))
        if self.config.probes.targets:
            tasks.append(asyncio.create_task(self.prober.run_forever()))
        return tasks

    def recent_runs(self) -> list[int]:
        """The `metrics_runs` runs with the latest ledger watermark (bounded `run` label values)."""
        runs = sorted(
            self.ledgers.runs.values(),
            key=lambda r: max((s.sent_until_ms for s in r.streams.values()), default=0),
        )
        return [r.run for r in runs[-self.config.metrics_runs :]]

    # --- RSGI -----------------------------------------------------------------------------------------

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        path, method = scope.path, scope.method
        # every body is read, on every route: granian closes a connection whose request body was
        # left unread right after the answer, and a client reusing it meanwhile sees a reset
        body = await self._read_body(scope, proto, self.config.max_body_bytes)
        extra = [("connection", "close")] if isinstance(body, BodyError) else []
        try:
            if path.startswith("/webhook/"):
                if method != "POST":
                    raise HttpError(405, "method_not_allowed", "webhooks take POST")
                status, headers, answer = await self.webhook(path[len("/webhook/") :], scope, body)
                proto.response_bytes(status, headers + extra, answer)
                return
            if isinstance(body, BodyError):
                raise HttpError(body.status, body.code, str(body))
            status, doc, content_type = self.api(method, path, scope, body)
        except HttpError as exc:
            status, doc, content_type = exc.status, {"code": exc.code, "message": exc.message}, None
        except Exception:  # never let one request take the receiver down
            log.exception("error handling %s %s", method, path)
            status, doc, content_type = 500, {"code": "internal", "message": "internal error"}, None
        if content_type is None:
            proto.response_bytes(status, JSON + extra, orjson.dumps(doc))
        else:
            proto.response_bytes(status, [("content-type", content_type), *extra], doc)

    async def _read_body(self, scope: Any, proto: Any, limit: int) -> bytes | BodyError:
        """The body, or the BodyError to answer when it exceeds `limit` (the rest is left unread)."""
        length = scope.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return BodyError(413, "too_large", f"body of {length} bytes exceeds the {limit}-byte limit")
        if length is not None:
            return await proto()
        chunks, size = [], 0
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                return BodyError(413, "too_large", f"body exceeds the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    # --- receiver (the hot path) ----------------------------------------------------------------

    async def webhook(self, name: str, scope: Any, body: bytes | BodyError) -> tuple[int, list, bytes]:
        dest = self.audit.destinations.get(name)
        if dest is None:
            raise HttpError(404, "unknown_destination", f"no destination named {name!r} is configured")
        try:
            if isinstance(body, BodyError):
                raise body
            arrival_ms = time.time() * 1000.0
            secret = dest.config.secret
            if secret is not None and not signature_ok(secret, body, scope.headers.get("x-signature")):
                dest.bad_signatures += 1
                dest.count_request(401, "bad_signature")
                return 401, JSON, b'{"code":"bad_signature","message":"X-Signature missing or wrong"}'
            if scope.headers.get("content-encoding", "").lower() == "gzip":
                body = gunzip(body, self.config.max_body_bytes)
            delivery = parse_delivery(body)
        except BodyError as exc:
            dest.malformed_bodies += 1
            dest.count_request(exc.status, exc.code)
            return exc.status, JSON, orjson.dumps({"code": exc.code, "message": str(exc)})
        return await self._audit(dest, delivery, arrival_ms)

    async def _audit(
        self, dest: DestinationAudit, delivery: Delivery, arrival_ms: float
    ) -> tuple[int, list, bytes]:
        dest.malformed_items += delivery.bad_items
        decision = self.behaviours[dest.config.name].decide(time.monotonic())
        self.audit.record(dest, delivery.message_ids, delivery.users, arrival_ms, decision.refusal_class)
        dest.count_request(decision.status, decision.reason)
        if decision.refused:
            dest.refused_messages[decision.reason] = dest.refused_messages.get(decision.reason, 0) + len(
                delivery.message_ids
            )
            headers = list(JSON)
            if decision.retry_after_seconds is not None:
                headers.append(("retry-after", str(max(1, round(decision.retry_after_seconds)))))
            body = orjson.dumps({"code": decision.reason, "message": f"destination is {decision.reason}"})
            return decision.status, headers, body
        if decision.delay_seconds > 0:
            await asyncio.sleep(decision.delay_seconds)
        return 200, JSON, _OK

    # --- API ------------------------------------------------------------------------------------

    def api(self, method: str, path: str, scope: Any, body: bytes) -> tuple[int, Any, str | None]:
        query = parse_qs(scope.query_string)
        if path == "/healthz":
            return 200, {"ok": True}, None
        if path == "/metrics" and method == "GET":
            self.sweep()
            return 200, metrics.render(self), metrics.CONTENT_TYPE
        if path == "/api/ledger" and method == "POST":
            return self.post_ledger(body)
        if path == "/api/summary" and method == "GET":
            self.sweep()
            return 200, self.summary(self._run_arg(query)), None
        if path == "/api/lost" and method == "GET":
            self.sweep()
            return 200, self.lost(query), None
        if path == "/api/destinations" and method == "GET":
            now = time.monotonic()
            return 200, {n: b.describe(now) for n, b in self.behaviours.items()}, None
        if path.startswith("/api/destinations/") and path.endswith("/behaviour") and method == "PUT":
            name = path[len("/api/destinations/") : -len("/behaviour")]
            return 200, self.set_behaviour(name, body), None
        raise HttpError(404, "not_found", f"no route for {method} {path}")

    def post_ledger(self, body: bytes) -> tuple[int, Any, None]:
        try:
            delta = LedgerDelta.from_wire(body)
        except LedgerFormatError as exc:
            self.ledger_errors += 1
            raise HttpError(400, "bad_ledger", str(exc)) from None
        except Exception as exc:  # e.g. a bitmap that deserializes to garbage inside pyroaring
            self.ledger_errors += 1
            raise HttpError(400, "bad_ledger", f"ledger cannot be read: {exc}") from None
        for name, value, limit in (("run", delta.run, MAX_RUN), ("stream", delta.stream, MAX_STREAM)):
            if value > limit:
                self.ledger_errors += 1
                raise HttpError(400, "bad_ledger", f"ledger field {name!r} must be at most {limit}")
        self.ledgers.add(delta)
        self.ledger_deltas += 1
        self.audit.sweep(time.time() * 1000.0)
        return 202, {"accepted": True}, None

    def _run_arg(self, query: dict[str, list[str]]) -> int | None:
        values = query.get("run")
        if not values:
            return None
        text = values[0]
        if text.isdigit():
            run = int(text)
            if run > MAX_RUN:
                raise HttpError(400, "bad_run", f"query parameter 'run' must be at most {MAX_RUN}")
            return run
        for ledger in self.ledgers.runs.values():
            if ledger.name == text:
                return ledger.run
        return run_id_from_name(text)

    def summary(self, run: int | None) -> dict:
        return dict(
            build_summary(
                self.audit,
                self.canary,
                self.prober,
                run=run,
                lost_after_seconds=self.config.lost_after_seconds,
                lost_samples=self.config.lost_samples,
                now_ms=int(time.time() * 1000),
            )
        )

    def lost(self, query: dict[str, list[str]]) -> dict:
        name = (query.get("destination") or [""])[0]
        dest = self.audit.destinations.get(name)
        if dest is None:
            raise HttpError(
                400, "bad_destination", f"query parameter 'destination' names no destination: {name!r}"
            )
        limit_text = (query.get("limit") or ["100"])[0]
        if not limit_text.isdigit() or not 0 < int(limit_text) <= 100_000:
            raise HttpError(400, "bad_limit", "query parameter 'limit' must be an integer in 1..100000")
        run = self._run_arg(query)
        lost = self.audit.lost_ids(dest, run, int(limit_text))
        return {"destination": name, "run": run, "count": len(lost), "lost": lost, "note": LOST_ID_NOTE}

    def set_behaviour(self, name: str, body: bytes) -> dict:
        if name not in self.behaviours:
            raise HttpError(404, "unknown_destination", f"no destination named {name!r} is configured")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HttpError(400, "bad_behaviour", f"behaviour is not JSON: {exc}") from None
        try:
            config = parse_behaviour(doc, "behaviour")
        except ConfigError as exc:
            raise HttpError(400, "bad_behaviour", str(exc)) from None
        now = time.monotonic()
        self.behaviours[name] = Behaviour(config, seed=self._seed(name), started_at=now)
        return self.behaviours[name].describe(now)


async def serve(
    config: MonitorConfig,
    host: str,
    port: int,
    monitor: Monitor | None = None,
    *,
    reuse_port: bool = False,
    listen: bool = True,
) -> None:
    """Run the monitor (or `monitor`, one of `monitor/workers.py`'s; with `listen` false, its
    background work only) until SIGTERM or SIGINT."""
    from monitor.http_server import HttpServer

    monitor = Monitor(config) if monitor is None else monitor
    server = HttpServer(
        monitor, host, port, max_body_bytes=config.max_body_bytes, reuse_port=reuse_port, listen=listen
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    tasks = monitor.start_background()
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
