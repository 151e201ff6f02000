"""Fixtures for the monitor tests: a monitor subprocess factory and delivery builders.

The monitor is started as `python -m monitor` (the same `monitor.cli` that `harness monitor`
dispatches to) on a free loopback port and always stopped by its pid.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import yaml

from harness.processes import ChildServer, free_port
from loadgen import ids

ROOT = Path(__file__).resolve().parents[2]


class Running:
    """A started monitor: its base URL, an httpx client, and its process."""

    def __init__(self, server: ChildServer) -> None:
        self.server, self.url = server, server.url
        self.http = httpx.Client(base_url=server.url, timeout=30.0)

    @property
    def log(self) -> Path:
        return self.server.log_path

    def deliver(self, destination: str, events: Any, *, headers: dict | None = None) -> httpx.Response:
        body = events if isinstance(events, bytes) else orjson.dumps(events)
        return self.http.post(f"/webhook/{destination}", content=body, headers=headers or {})

    def post_ledger(self, delta: Any) -> httpx.Response:
        return self.http.post(
            "/api/ledger", content=delta.to_wire(), headers={"content-type": "application/json"}
        )

    def summary(self, run: int | None = None) -> dict:
        params = {"run": str(run)} if run is not None else None
        response = self.http.get("/api/summary", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def metrics(self) -> str:
        return self.http.get("/metrics").text


@pytest.fixture
def start_monitor(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """`start_monitor(config_dict, env={...})` starts a monitor; all are stopped at teardown."""
    started: list[Running] = []

    def start(
        config: dict, env: dict[str, str] | None = None, port: int | None = None, args: tuple[str, ...] = ()
    ) -> Running:
        port = port or free_port()
        config_path = tmp_path / f"monitor-{port}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        server = ChildServer(
            "monitor",
            port,
            [sys.executable, "-m", "monitor", "--config", str(config_path), "--port", str(port), *args],
            tmp_path / f"monitor-{port}.log",
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        running = Running(server)
        started.append(running)
        server.start(timeout=20.0)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.http.close()
            running.server.stop()


def iso_ms(ms: int) -> str:
    """Unix ms as the generator writes sentAt: `2026-12-04T18:26:38.123Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def make_events(
    run: int,
    stream: int,
    seqs: Any,
    *,
    sent_ms: int | None = None,
    users: Any = None,
    style: ids.IdStyle = ids.IdStyle.PLAIN,
    sent_at_ms: int | None = None,
) -> list[dict]:
    """Webhook events with harness messageIds; `users(seq)` gives each event's userId.

    `sent_at_ms`: write that time as each event's `sentAt` (a later time than `sent_ms` makes the
    events copies of a re-send); None: no `sentAt`.
    """
    sent_ms = int(time.time() * 1000) if sent_ms is None else sent_ms
    seqs = np.asarray(list(seqs), dtype=np.uint64)
    message_ids = ids.make_message_ids(style, sent_ms, run, stream, seqs)
    events = []
    for seq, mid in zip(seqs.tolist(), message_ids, strict=True):
        event = {
            "type": "track",
            "event": "Order Completed",
            "messageId": mid.decode(),
            "properties": {"order_id": f"o-{seq}", "total": 12.5},
        }
        event["userId"] = users(seq) if users else f"user-{seq % 7}"
        if sent_at_ms is not None:
            event["sentAt"] = iso_ms(sent_at_ms)
        events.append(event)
    return events


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@pytest.fixture
def events() -> Callable[..., list[dict]]:
    return make_events


@pytest.fixture
def signer() -> Callable[[str, bytes], str]:
    return sign


@pytest.fixture
def gzipped() -> Callable[[bytes], bytes]:
    return gzip.compress
