"""The monitor's HTTP/1.1 server: httptools parsing on an asyncio protocol, serving an RSGI app.

Why not granian: a webhook POST through granian's RSGI bridge costs about four times the CPU of
the same exchange parsed by httptools in an asyncio protocol on uvloop (bench/monitor.py, single
events), and one event per POST is how real pipelines deliver (RudderStack's webhook). The app
keeps its RSGI entry point (`Monitor.__rsgi__`); each request is handed to it with a scope and a
protocol object built here. A webhook request is run to its end without a task when it never
waits (the common case); one that waits (a slow behaviour, a worker's back-pressure) and every
API request run as tasks. Requests on one connection are answered in order (pipelining included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

log = logging.getLogger("monitor")

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MAX_QUEUED = 64
"""Requests parsed ahead on one connection before it stops reading (pipelining clients)."""


class Scope:
    """The parts of an RSGI scope the monitor reads."""

    __slots__ = ("headers", "method", "path", "query_string")
    proto = "http"

    def __init__(self, method: str, path: str, query_string: str, headers: dict[str, str]) -> None:
        self.method, self.path, self.query_string, self.headers = method, path, query_string, headers


class Exchange:
    """An RSGI protocol object over a body already read; the answer is kept for the caller."""

    __slots__ = ("answer", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.answer: tuple[int, list, bytes] | None = None

    async def __call__(self) -> bytes:
        return self.body

    async def __aiter__(self):
        yield self.body

    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.answer = (status, headers, body)


def encode_response(status: int, headers: list, body: bytes, close: bool) -> bytes:
    head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
    head += [f"{name}: {value}\r\n".encode("latin-1") for name, value in headers if name != "connection"]
    if close:
        head.append(b"connection: close\r\n")
    head.append(b"content-length: %d\r\n\r\n" % len(body))
    return b"".join(head) + body


class _Request:
    __slots__ = ("body", "close", "headers", "method", "too_large", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.method = ""
        self.too_large = False
        self.close = False


class Connection(asyncio.Protocol):
    """One client connection: parse requests, run them through the app one at a time, answer."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app, self.limit = server.app, server.max_body_bytes
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request = _Request()
        self.size = 0
        self.queue: deque[_Request] = deque()
        self.busy = False
        self.closing = False

    # --- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrade_refused", "protocol upgrades are not served")
        except httptools.HttpParserError as exc:
            self._fail(400, "bad_request", f"request cannot be parsed: {exc}")

    # --- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = _Request()
        self.size = 0

    def on_url(self, url: bytes) -> None:
        self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self.request
        request.method = self.parser.get_method().decode("latin-1")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            self._too_large(request)
        elif request.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.request.too_large:
            return
        self.size += len(body)
        if self.size > self.limit:
            # as if the length had been announced: the app answers 413 without reading a body
            self.request.headers["content-length"] = str(self.size)
            self._too_large(self.request)
            return
        self.request.body.append(body)

    def _too_large(self, request: _Request) -> None:
        """Hand a request whose body exceeds the limit to the app now; the rest is never read."""
        request.too_large, request.close, request.body = True, True, []
        self._queue(request)

    def on_message_complete(self) -> None:
        request = self.request
        if request.too_large:
            return
        request.close = not self.parser.should_keep_alive()
        self._queue(request)

    def _queue(self, request: _Request) -> None:
        self.queue.append(request)
        if len(self.queue) > _MAX_QUEUED and self.transport is not None:
            self.transport.pause_reading()
        if not self.busy:
            self._next()

    # --- running requests -----------------------------------------------------------------------

    def _next(self) -> None:
        while self.queue and not self.closing:
            request = self.queue.popleft()
            if self.transport is not None and len(self.queue) == _MAX_QUEUED:
                self.transport.resume_reading()
            parsed = httptools.parse_url(request.url)
            scope = Scope(
                request.method,
                unquote(parsed.path.decode("latin-1")),
                (parsed.query or b"").decode("latin-1"),
                request.headers,
            )
            exchange = Exchange(b"".join(request.body))
            coro = self.app.__rsgi__(scope, exchange)
            if scope.path.startswith("/webhook/"):
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    self._answer(exchange, request.close)
                    continue
                except Exception:
                    log.exception("error handling %s %s", scope.method, scope.path)
                    self._answer(exchange, True)
                    return
                self.busy = True
                self.server.spawn(self._finish(_resume(coro, waiting), exchange, request.close))
                return
            self.busy = True
            self.server.spawn(self._finish(coro, exchange, request.close))
            return

    async def _finish(self, coro: Coroutine, exchange: Exchange, close: bool) -> None:
        try:
            await coro
        except Exception:
            log.exception("error handling a request")
        self.busy = False
        self._answer(exchange, close)
        self._next()

    def _answer(self, exchange: Exchange, close: bool) -> None:
        status, headers, body = exchange.answer or (500, [("content-type", "application/json")], b"{}")
        close = close or any(name == "connection" and value == "close" for name, value in headers)
        if self.transport is None or self.closing:
            return
        self.transport.write(encode_response(status, headers, body, close))
        if close:
            self.closing = True
            self.transport.close()

    def _fail(self, status: int, code: str, message: str) -> None:
        import orjson

        exchange = Exchange(b"")
        exchange.answer = (
            status,
            [("content-type", "application/json")],
            orjson.dumps({"code": code, "message": message}),
        )
        self.queue.clear()
        self._answer(exchange, True)


async def _resume(coro: Coroutine, waiting: Any) -> Any:
    """Run a coroutine that was started by hand and is waiting on `waiting` (a future or None)."""
    while True:
        if waiting is None:
            await asyncio.sleep(0)
        else:
            waiting._asyncio_future_blocking = False  # taken over, as asyncio.Task does
            with contextlib.suppress(Exception):
                await waiting  # its outcome reaches the coroutine when it is resumed
        try:
            waiting = coro.send(None)
        except StopIteration as done:
            return done.value


class HttpServer:
    """Serves `app` (an RSGI app) on host:port until `stop()`; with `reuse_port`, several processes
    share the port (SO_REUSEPORT: the kernel spreads connections over them); with `listen` false,
    `serve` only waits for `stop()` (a monitor primary that audits and does not receive)."""

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        *,
        max_body_bytes: int,
        reuse_port: bool = False,
        listen: bool = True,
    ) -> None:
        self.app, self.host, self.port, self.reuse_port = app, host, port, reuse_port
        self.listen = listen
        self.max_body_bytes = max_body_bytes
        self.connections: set[Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._stopped = asyncio.Event()

    def spawn(self, coro: Coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        self._stopped.set()

    async def serve(self) -> None:
        if not self.listen:
            await self._stopped.wait()
            return
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(self), self.host, self.port, reuse_port=self.reuse_port, backlog=1024
        )
        log.info("listening on http://%s:%d", self.host, self.port)
        try:
            await self._stopped.wait()
        finally:
            server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.close()
            for task in list(self._tasks):
                task.cancel()
            await server.wait_closed()
