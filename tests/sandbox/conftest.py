"""Fixtures for the sandbox tests: a recording webhook receiver and a sandbox subprocess factory."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.processes import ChildServer, free_port

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEYS = {"web": "key-web", "server": "key-server"}
SECRET = "test-secret"


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST and answers via `behaviour(n)`.

    `behaviour(n)` gets the 0-based request count and returns a status, or (status, headers), or
    ("hang", seconds) to sleep before answering 200.
    """

    def __init__(self, behaviour: Callable[[int], Any] | None = None) -> None:
        self.behaviour = behaviour or (lambda n: 200)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    n = len(receiver.requests)
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "time": time.time()}
                    )
                answer = receiver.behaviour(n)
                headers: dict[str, str] = {}
                if isinstance(answer, tuple) and answer[0] == "hang":
                    time.sleep(answer[1])
                    answer = 200
                elif isinstance(answer, tuple):
                    answer, headers = answer
                self.send_response(answer)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, ok_only: bool = True) -> list[dict[str, Any]]:
        """Every event delivered, flattening arrays; only from requests the behaviour answered 2xx."""
        out: list[dict[str, Any]] = []
        with self.lock:
            reqs = list(enumerate(self.requests))
        for n, r in reqs:
            if ok_only and not _is_ok(self.behaviour, n):
                continue
            doc = json.loads(r["body"])
            out.extend(doc if isinstance(doc, list) else [doc])
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _is_ok(behaviour: Callable[[int], Any], n: int) -> bool:
    answer = behaviour(n)
    if isinstance(answer, tuple):
        return answer[0] == "hang" or 200 <= answer[0] < 300
    return 200 <= answer < 300


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(behaviour: Callable[[int], Any] | None = None) -> Receiver:
        r = Receiver(behaviour)
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            r.close()


class Sandbox:
    """A running `python -m sandbox` subprocess."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "sandbox.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "sandbox", "--config", str(self.config_path), "--port", str(self.port)]
        log_path = workdir / f"sandbox-{self.port}-{time.monotonic_ns()}.log"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.server = ChildServer("sandbox", self.port, argv, log_path, env=full_env, cwd=ROOT)
        # one client for all calls: httpx.post() builds a new client (and TLS context) every time
        self.client = httpx.Client(timeout=10, trust_env=False)

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.server.process

    def start(self) -> Sandbox:
        self.server.start(timeout=20)
        return self

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, wait, then SIGKILL if needed; returns the exit code."""
        try:
            return self.server.stop(timeout)
        finally:
            self.client.close()
            self.client = httpx.Client(timeout=10, trust_env=False)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        key: str | None = "key-web",
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: str = "basic",
    ) -> httpx.Response:
        hdrs = {"content-type": "application/json", **(headers or {})}
        content = raw if raw is not None else json.dumps(body).encode()
        basic = (key, "") if (key is not None and auth == "basic") else None
        return self.client.post(f"{self.url}{path}", content=content, headers=hdrs, auth=basic)

    def stats(self) -> dict[str, Any]:
        return self.client.get(f"{self.url}/admin/stats").json()

    def set_faults(self, faults: dict[str, Any]) -> httpx.Response:
        return self.client.put(f"{self.url}/admin/faults", json=faults)

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if predicate(st) or time.monotonic() > deadline:
                return st
            time.sleep(0.05)


def make_config(destinations: list[dict[str, Any]] | None = None, **sections: Any) -> dict[str, Any]:
    """A sandbox config with the two test sources and the given destinations/sections."""
    cfg: dict[str, Any] = {
        "seed": 7,
        "sources": [{"name": n, "write_key": k} for n, k in WRITE_KEYS.items()],
        "destinations": destinations or [],
        "delivery": {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            "shutdown_grace_seconds": 2,
        },
    }
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def dest(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "secret": SECRET, "timeout_seconds": 2, **extra}


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(
        config: dict[str, Any],
        port: int | None = None,
        workdir: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Sandbox:
        config.setdefault("delivery", {}).setdefault("spool_path", str(tmp_path / "spool.jsonl"))
        sb = Sandbox(config, workdir or tmp_path, port, env).start()
        started.append(sb)
        return sb

    try:
        yield make
    finally:
        for sb in started:
            sb.stop()


def track(i: int, prefix: str = "m", **extra: Any) -> dict[str, Any]:
    """A valid track message with messageId `<prefix>-<i>`."""
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"u{i}",
        "messageId": f"{prefix}-{i}",
        **extra,
    }


def wait_until(pred: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll `pred` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def helpers() -> Any:
    class H:
        make_config = staticmethod(make_config)
        dest = staticmethod(dest)
        track = staticmethod(track)
        free_port = staticmethod(free_port)
        wait_until = staticmethod(wait_until)
        SECRET = SECRET
        WRITE_KEYS = WRITE_KEYS

    return H


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Receiver]]:
    """One sandbox and receiver shared by every example of a fuzz test (started once per module)."""
    workdir = tmp_path_factory.mktemp("fuzz")
    recv = Receiver()
    cfg = make_config([dest("d", recv.url, batch_size=100)])
    cfg["delivery"]["spool_path"] = str(workdir / "spool.jsonl")
    sb = Sandbox(cfg, workdir).start()
    try:
        yield sb, recv
    finally:
        sb.stop()
        recv.close()
