"""A loopback HTTP server that records every request a client library sends, for the SDK tests.

It answers what the target under imitation answers (`200 {"success":true}` by default), keeps each
request's method, path, headers and raw body, and decodes the body (gunzipped where the headers
say so) on demand.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Captured:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    at: float = field(default_factory=time.time)

    @property
    def body(self) -> Any:
        raw = self.raw
        if self.headers.get("content-encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.body
        return body["batch"] if isinstance(body, dict) and "batch" in body else [body]


class CaptureServer:
    """Records requests on 127.0.0.1:<free port>; `answer` sets the status and body it replies."""

    def __init__(self, status: int = 200, body: bytes = b'{"success":true}',
                 content_type: str = "application/json",
                 pages: dict[str, tuple[str, bytes]] | None = None) -> None:  # fmt: skip
        """`pages`: path -> (content type, body) served to GET and not recorded (a browser's page)."""
        self.requests: list[Captured] = []
        self.pages = dict(pages or {})
        self.answer = (status, body, content_type)
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _record(self) -> None:
                page = outer.pages.get(self.path) if self.command == "GET" else None
                if page is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", page[0])
                    self.send_header("Content-Length", str(len(page[1])))
                    self.end_headers()
                    self.wfile.write(page[1])
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with lock:
                    outer.requests.append(Captured(self.command, self.path,
                                                   {k.lower(): v for k, v in self.headers.items()}, raw))  # fmt: skip
                status, body, ctype = outer.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET = _record

            def do_OPTIONS(self) -> None:  # a browser-style CORS preflight, recorded too
                self._record()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> CaptureServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Captured]:
        """The requests once at least `count` arrived; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived in {timeout} s")
            time.sleep(0.02)
        return list(self.requests)
