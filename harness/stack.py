"""The bundled target: the sandbox pipeline and the monitor as child processes on loopback.

With no `--host`, the master starts both on free ports, with fresh write keys, destination
secrets and one bearer token for both control APIs (HARNESS_MONITOR_TOKEN, HARNESS_SANDBOX_TOKEN)
passed through the environment (never written to disk or logged), the sandbox's
destinations pointed at the monitor's receiver, and a canary through the sandbox. Both are stopped
by pid when Locust quits.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from harness.processes import HOST, ChildServer, free_port, run_command
from monitor.auth import TOKEN_ENV as MONITOR_TOKEN_ENV

SANDBOX_TOKEN_ENV = "HARNESS_SANDBOX_TOKEN"
"""The sandbox's admin token variable (`sandbox.auth.TOKEN_ENV`; harness does not import the sandbox)."""

DESTINATIONS = (
    # name, messages per webhook POST, POSTs in flight. Delivery throughput is at most in-flight ×
    # batch ÷ round trip: with 4 in flight the webhook queue, not the CPU, capped the loop near
    # 15k msg/s (bench/loop.py, server profile: delivery p99 from 30 s down to 73 ms at 16)
    ("webhook", 20, 16),
    ("warehouse", 200, 4),
)
CANARY_SOURCE = "canary"
LOST_AFTER_SECONDS = 20.0


@dataclass
class SandboxStack:
    """A running sandbox with the monitor as its destinations' receiver."""

    sandbox: ChildServer
    monitor: ChildServer
    write_keys: dict[str, str] = field(repr=False)
    workdir: tempfile.TemporaryDirectory = field(repr=False)
    token: str = field(default="", repr=False)
    """The run's bearer token of the monitor's and the sandbox's control APIs."""

    @property
    def ingest_url(self) -> str:
        return self.sandbox.url

    @property
    def monitor_url(self) -> str:
        return self.monitor.url

    @classmethod
    def start(
        cls,
        sources: tuple[str, ...],
        faults: dict | None = None,
        loss_deadline: float = LOST_AFTER_SECONDS,
        canary_interval: float = 1.0,
        dialect: str = "any",
        dedupe: bool | None = None,
    ) -> SandboxStack:
        """Start both; `dedupe=False` turns the sandbox's dedupe off (every re-send is delivered);
        None keeps the dialect's default (on, except in the rudderstack dialect, as RudderStack's)."""
        workdir = tempfile.TemporaryDirectory(prefix="harness-stack-")
        folder = Path(workdir.name)
        sandbox_port, monitor_port = free_port(), free_port()
        token = secrets.token_hex(16)
        env, write_keys = _write_configs(
            folder, sources, faults, sandbox_port, monitor_port, loss_deadline, canary_interval, dialect, dedupe
        )
        env.update({MONITOR_TOKEN_ENV: token, SANDBOX_TOKEN_ENV: token})
        harness = HARNESS
        monitor = ChildServer(
            "monitor",
            monitor_port,
            [*harness, "monitor", "--config", str(folder / "monitor.yaml"), "--port", str(monitor_port)],
            folder / "monitor.log",
            env,
        )
        sandbox = ChildServer(
            "sandbox",
            sandbox_port,
            [*harness, "sandbox", "--config", str(folder / "sandbox.yaml"), "--port", str(sandbox_port)],
            folder / "sandbox.log",
            env,
        )
        keys = {s: k for s, k in write_keys.items() if s != CANARY_SOURCE}
        stack = cls(sandbox, monitor, keys, workdir, token)
        try:
            monitor.start(wait=False)
            sandbox.start(wait=False)
            monitor.wait_ready()
            sandbox.wait_ready()
        except BaseException:
            stack.stop()
            raise
        return stack

    def sandbox_stats(self) -> dict | None:
        """The sandbox's own counts (accepted, delivered, injected faults), for the run summary."""
        try:
            auth = {"authorization": f"Bearer {self.token}"}
            return httpx.get(f"{self.sandbox.url}/admin/stats", headers=auth, timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            return None

    def stop(self) -> None:
        self.sandbox.stop()
        self.monitor.stop()
        self.workdir.cleanup()


HARNESS = [sys.executable, "-m", "harness"]


def check_sandbox_faults(sources: tuple[str, ...], faults: dict) -> str | None:
    """The sandbox's own verdict on a `faults:` mapping (`harness sandbox --check`): its error, or None."""
    with tempfile.TemporaryDirectory(prefix="harness-check-") as name:
        folder = Path(name)
        env, _keys = _write_configs(folder, sources, faults, 0, 0, LOST_AFTER_SECONDS, 0.0)
        config = str(folder / "sandbox.yaml")
        result = run_command([*HARNESS, "sandbox", "--config", config, "--check"], timeout=60.0, env=env)
    if result.code == 0:
        return None
    problem = result.err.strip().removeprefix("sandbox: bad config: ")
    # The temporary file means nothing to the user: the caller names theirs instead.
    return re.sub(rf"^{re.escape(config)}(:\d+)?: ", "", problem) or f"exit code {result.code}"


def _write_configs(
    folder: Path,
    sources: tuple[str, ...],
    faults: dict | None,
    sandbox_port: int,
    monitor_port: int,
    loss_deadline: float,
    canary_interval: float,
    dialect: str = "any",
    dedupe: bool | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Write sandbox.yaml and monitor.yaml into `folder`: (the child environment, write keys by source)."""
    env = dict(os.environ)
    write_keys = {source: secrets.token_hex(16) for source in (*sources, CANARY_SOURCE)}
    for i, source in enumerate(write_keys):
        env[f"HARNESS_STACK_KEY_{i}"] = write_keys[source]
    for i, _destination in enumerate(DESTINATIONS):
        env[f"HARNESS_STACK_SECRET_{i}"] = secrets.token_hex(16)
    monitor_url = f"http://{HOST}:{monitor_port}"
    sandbox_config = {
        "seed": None,
        "dialect": dialect,
        "sources": [
            {"name": source, "write_key_env": f"HARNESS_STACK_KEY_{i}"} for i, source in enumerate(write_keys)
        ],
        "dedupe": {"enabled": dedupe},  # None: the dialect's default
        "delivery": {"spool_path": str(folder / "sandbox-spool.jsonl")},
        "faults": faults or {},
        "destinations": [
            {
                "name": name,
                "url": f"{monitor_url}/webhook/{name}",
                "secret_env": f"HARNESS_STACK_SECRET_{i}",
                "batch_size": batch_size,
                "concurrency": concurrency,
            }
            for i, (name, batch_size, concurrency) in enumerate(DESTINATIONS)
        ],
    }
    monitor_config = {
        "lost_after_seconds": loss_deadline,
        "destinations": {
            name: {"secret_env": f"HARNESS_STACK_SECRET_{i}"} for i, (name, _b, _c) in enumerate(DESTINATIONS)
        },
        "canary": {
            "enabled": canary_interval > 0,
            "ingest_url": f"http://{HOST}:{sandbox_port}",
            "write_key_env": f"HARNESS_STACK_KEY_{len(write_keys) - 1}",
            "interval_seconds": canary_interval or 1.0,
        },
    }
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(sandbox_config, sort_keys=False))
    (folder / "monitor.yaml").write_text(yaml.safe_dump(monitor_config, sort_keys=False))
    return env, write_keys
