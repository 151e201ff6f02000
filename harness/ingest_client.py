"""The HTTP path to the ingest API: pre-built requests over one kept-alive connection per user.

Written by hand on purpose: Locust's stock clients, and geventhttpclient under FastHttpUser, spend
more Python per request (header objects, a connection pool with a liveness probe, a callback
parser) than the traffic model spends building the request. This writes the generator's finished
head and body bytes to a gevent socket in one call and reads back only what the harness uses: the
status, `Retry-After`, and the framing (Content-Length, chunked, or close) needed to find the end
of the answer. It speaks HTTP/1.1 with one request in flight per connection, as the real client
libraries do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import urlsplit

import gevent
from gevent import socket

CONNECT_TIMEOUT = 5.0
NETWORK_TIMEOUT = 10.0
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
_RECV = 65536
MAX_KEPT_HEADS = 4096


class Answer(NamedTuple):
    """What the ingest API said: status None means no answer (timeout, refused, reset).

    A NamedTuple: one is made per request, and a frozen dataclass costs several times more to build.
    """

    status: int | None
    retry_after: float | None = None
    error: str = ""
    body: bytes = b""


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.x response this client can frame."""


class _Closed(Exception):
    """The connection ended before a complete answer."""


class Target:
    """An ingest API's base URL, parsed once: where to connect and how to write a request's bytes."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"target URL must be http(s)://host[:port], got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.base_path = parts.path.rstrip("/")
        self.family = _ip_family(self.host)
        """The address family of an IP-literal host, None for a name (which needs the resolver)."""
        default_port = self.port == (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = f"Host: {host if default_port else f'{host}:{self.port}'}\r\n"
        self._starts: dict[tuple, bytes] = {}

    def head_bytes(self, method: str, path: str, headers: dict[str, str], body_length: int) -> bytes:
        """The request line and headers, as the real libraries send them (Host first)."""
        return self._head_start(method, path, headers) + b"Content-Length: %d\r\n\r\n" % body_length

    def encode(self, request) -> bytes:
        """A `loadgen.traffic.PreparedRequest`'s whole bytes on the wire."""
        start = self._head_start(request.method, request.path, request.headers)
        return b"".join((start, b"Content-Length: %d\r\n\r\n" % len(request.body), request.body))

    def _head_start(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        """Everything before Content-Length; a source sends few distinct ones, so they are kept."""
        key = (method, path, *headers.items())
        start = self._starts.get(key)
        if start is None:
            if len(self._starts) >= MAX_KEPT_HEADS:
                self._starts.clear()
            lines = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
            start = f"{method} {self.base_path}{path} HTTP/1.1\r\n{self._host_header}{lines}".encode(
                "latin-1"
            )
            self._starts[key] = start
        return start


class IngestClient:
    """One connection to the target's ingest API, opened on first use and after any failure."""

    def __init__(
        self,
        base_url: str,
        *,
        network_timeout: float = NETWORK_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.target = target = Target(base_url)
        self.host, self.port, self.tls = target.host, target.port, target.tls
        self.network_timeout = network_timeout
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._family = target.family
        self._awaiting: _ResponseReader | None = None

    def head_bytes(self, method: str, path: str, headers: dict[str, str], body_length: int) -> bytes:
        """The request line and headers, as the real libraries send them (Host first)."""
        return self.target.head_bytes(method, path, headers, body_length)

    def send(self, request) -> Answer:
        """Send one `loadgen.traffic.PreparedRequest` and wait for its answer."""
        return self._within_deadline(
            self._exchange_with_one_retry_on_stale_connection, self.target.encode(request)
        )

    def _within_deadline(self, exchange: Callable[..., Answer], *args: bytes) -> Answer:
        """Run an exchange under one timer (not one per socket operation); failures become answers.

        A new timer each time: a gevent Timeout cancelled and started again can keep its first
        expiry and fire at once.
        """
        deadline = gevent.Timeout(self.network_timeout)
        deadline.start()
        try:
            return exchange(*args)
        except (OSError, _Closed, ProtocolError, gevent.Timeout) as exc:
            if isinstance(exc, gevent.Timeout) and exc is not deadline:
                raise
            self.close()
            text = "no answer in time" if exc is deadline else str(exc)
            return Answer(None, error=f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
        finally:
            deadline.close()

    def _exchange_with_one_retry_on_stale_connection(self, data: bytes) -> Answer:
        reused = self._sock is not None
        try:
            return self._exchange(data)
        except (_Closed, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # The server closed a kept-alive connection while it was idle, before reading this
            # request; like browsers and urllib3, send it once more on a fresh connection.
            self.close()
            return self._exchange(data)

    def close(self) -> None:
        self._awaiting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _connect(self) -> socket.socket:
        if self._family is not None:  # an IP literal: no resolver round trip (gevent's runs in a thread)
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect((self.host, self.port))
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            from gevent import ssl

            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        sock.settimeout(None)  # the exchange's deadline times out the whole request instead
        self._sock = sock
        return sock

    def _exchange(self, data: bytes) -> Answer:
        sock = self._sock or self._connect()
        sent = sock.send(data)  # one syscall for the usual whole write (gevent's sendall adds a getsockopt)
        if sent < len(data):
            sock.sendall(memoryview(data)[sent:])
        self._awaiting = _ResponseReader(sock)
        return self._read_answer()

    def _read_answer(self) -> Answer:
        status, head, body, keep_alive = self._awaiting.read()
        self._awaiting = None
        if not keep_alive:
            self.close()
        return Answer(status, _retry_after(head), body=body)

    @property
    def awaiting_answer(self) -> bool:
        """A request was sent in full and its answer is not read yet (the read was interrupted)."""
        return self._awaiting is not None

    def finish(self) -> Answer:
        """Read the answer to a request whose read was interrupted (by a kill), within the deadline."""
        if self._awaiting is None:
            raise RuntimeError("no request is awaiting its answer")
        return self._within_deadline(self._read_answer)


class _ResponseReader:
    """Reads one response. Every byte received stays in `received` until the response is complete,
    so a read interrupted at a blocking point (a greenlet kill) can be resumed without loss."""

    __slots__ = ("received", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = b""

    def read(self) -> tuple[int, bytes, bytes, bool]:
        """(status, lower-cased head, body, keep-alive) of the response."""
        closed = False
        while (frame := frame_response(self.received, closed)) is None:
            if closed:
                raise _Closed("connection closed before the answer was complete")
            chunk = self.sock.recv(_RECV)
            if chunk:
                self.received += chunk
            else:
                closed = True
        return frame


def frame_response(received: bytes, closed: bool) -> tuple[int, bytes, bytes, bool] | None:
    """(status, lower-cased head, body, keep-alive) once `received` holds one whole response, else None.

    `closed`: the server has closed the connection (which ends a close-delimited body). Raises
    ProtocolError for bytes no HTTP/1.x framing explains, or for bytes after the response (one
    request is in flight per connection, so there must be none).
    """
    end = received.find(b"\r\n\r\n")
    if end < 0:
        if len(received) > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head longer than {MAX_HEAD_BYTES} bytes")
        return None
    head = received[:end].lower()
    if not head.startswith(b"http/1.") or len(head) < 12 or not head[9:12].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {received[:40]!r}")
    status = int(head[9:12])
    if status < 200:
        raise ProtocolError(f"interim answer {status}: this client sends no Expect and takes none")
    if head[7:8] == b"1":
        keep_alive = b"\r\nconnection: close" not in head
    else:
        keep_alive = b"\r\nconnection: keep-alive" in head
    start = end + 4
    if status in (204, 304):
        stop = start
    elif b"\r\ntransfer-encoding:" in head and b"chunked" in _header(head, b"transfer-encoding"):
        body = _chunked_body(received, start)
        return None if body is None else (status, head, body, keep_alive)
    elif (length_text := _header(head, b"content-length")) is None:
        if len(received) - start > MAX_BODY_BYTES:
            raise ProtocolError(f"body longer than {MAX_BODY_BYTES} bytes")
        return (status, head, received[start:], False) if closed else None
    else:
        try:
            length = int(length_text)
        except ValueError:
            raise ProtocolError(f"bad Content-Length {length_text!r}") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ProtocolError(f"Content-Length {length} out of range")
        stop = start + length
        if len(received) < stop:
            return None
    if len(received) > stop:
        raise ProtocolError("bytes after the response (one request is in flight)")
    return status, head, received[start:stop], keep_alive


def _chunked_body(received: bytes, position: int) -> bytes | None:
    """The body of a chunked response starting at `position`, None while incomplete."""
    body = []
    total = 0
    while True:
        line_end = received.find(b"\r\n", position)
        if line_end < 0:
            return None
        size_text = received[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        total += size
        if total > MAX_BODY_BYTES:
            raise ProtocolError(f"chunked body longer than {MAX_BODY_BYTES} bytes")
        position = line_end + 2
        if size == 0:
            while (trailer_end := received.find(b"\r\n", position)) != position:
                if trailer_end < 0:
                    return None
                position = trailer_end + 2  # a trailer line, skipped
            if len(received) > position + 2:
                raise ProtocolError("bytes after the response (one request is in flight)")
            return b"".join(body)
        if len(received) < position + size + 2:
            return None
        body.append(received[position : position + size])
        position += size + 2


def _ip_family(host: str) -> int | None:
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return None
    return socket.AF_INET6 if version == 6 else socket.AF_INET


def _header(head: bytes, name: bytes) -> bytes | None:
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def _retry_after(head: bytes) -> float | None:
    value = _header(head, b"retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the library's own backoff applies
