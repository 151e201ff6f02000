"""The HTTP path to the ingest API: pre-built requests over one kept-alive connection per user.

Locust's stock clients build a request object per call; this sends the generator's finished
headers and body bytes as they are through geventhttpclient (the client FastHttpUser wraps).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed

from loadgen.traffic import PreparedRequest

CONNECT_TIMEOUT = 5.0
NETWORK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What the ingest API said: status None means no answer (timeout, refused, reset)."""

    status: int | None
    retry_after: float | None = None
    error: str = ""
    body: bytes = b""


class IngestClient:
    """One connection to the target's ingest API."""

    def __init__(self, base_url: str, *, network_timeout: float = NETWORK_TIMEOUT) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"target URL must be http(s)://host[:port], got {base_url!r}")
        self.base_path = parts.path.rstrip("/")
        self._http = HTTPClient(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            connection_timeout=CONNECT_TIMEOUT,
            network_timeout=network_timeout,
            concurrency=1,
        )

    def send(self, request: PreparedRequest) -> Answer:
        try:
            response = self._http.request(
                request.method, self.base_path + request.path, body=request.body, headers=request.headers
            )
            try:
                body = response.read()
            finally:
                response.release()
        except (OSError, HTTPConnectionClosed, gevent.Timeout) as exc:
            return Answer(None, error=type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}")
        retry_after = _seconds(response.get("retry-after"))
        return Answer(response.status_code, retry_after, body=body)

    def close(self) -> None:
        self._http.close()


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
