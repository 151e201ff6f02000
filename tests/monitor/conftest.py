"""Fixtures for the monitor tests: a monitor subprocess factory and delivery builders.

The monitor is started as `python -m monitor` (the same `monitor.cli` that `harness monitor`
dispatches to) on a free loopback port and always stopped by its pid.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
import socket
import subprocess
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

from loadgen import ids

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate by pid, wait, kill if it does not stop."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not healthy in {timeout}s: {log.read_text()[-2000:]}")


class Running:
    """A started monitor: its base URL, an httpx client, and its process."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.url, self.proc, self.log = url, proc, log
        self.http = httpx.Client(base_url=url, timeout=30.0)

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

    def start(config: dict, env: dict[str, str] | None = None, port: int | None = None) -> Running:
        port = port or free_port()
        config_path = tmp_path / f"monitor-{port}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        log = tmp_path / f"monitor-{port}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config_path), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        running = Running(f"http://127.0.0.1:{port}", proc, log)
        started.append(running)
        wait_healthy(running.url, proc, log)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.http.close()
            stop_process(running.proc)


def make_events(
    run: int,
    stream: int,
    seqs: Any,
    *,
    sent_ms: int | None = None,
    users: Any = None,
    style: ids.IdStyle = ids.IdStyle.PLAIN,
) -> list[dict]:
    """Webhook events with harness messageIds; `users(seq)` gives each event's userId."""
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
