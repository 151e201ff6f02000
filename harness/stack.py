"""The bundled target: the sandbox pipeline and the monitor as child processes on loopback.

With no `--host`, the master starts both on free ports, with fresh write keys and destination
secrets passed through the environment (never written to disk or logged), the sandbox's
destinations pointed at the monitor's receiver, and a canary through the sandbox. Both are stopped
by pid when Locust quits.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from harness.processes import HOST, ChildServer, free_port

DESTINATIONS = (
    # name, messages per webhook POST, POSTs in flight. Delivery throughput is at most in-flight ×
    # batch ÷ round trip: with 4 in flight the webhook queue, not the CPU, capped the loop near
    # 15k msg/s (bench/loop.py, server profile: delivery p99 from 30 s down to 73 ms at 16)
    ("webhook", 20, 16),
    ("warehouse", 200, 4),
)
CANARY_SOURCE = "canary"
LOST_AFTER_SECONDS = 60.0


def monitor_workers_for(cores: int) -> int:
    """The bundled monitor's processes on a machine of `cores`: one per 8 cores, at most 8.

    Locust and the sandbox take most of a loop's CPU (bench/loop.py: the monitor is about a tenth),
    and each added monitor process costs ~12% more CPU per message (bench/monitor.py), so small
    machines keep the single process.
    """
    return max(1, min(8, cores // 8))


@dataclass
class SandboxStack:
    """A running sandbox with the monitor as its destinations' receiver."""

    sandbox: ChildServer
    monitor: ChildServer
    write_keys: dict[str, str] = field(repr=False)
    workdir: tempfile.TemporaryDirectory = field(repr=False)

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
        monitor_workers: int = 0,
    ) -> SandboxStack:
        workdir = tempfile.TemporaryDirectory(prefix="harness-stack-")
        folder = Path(workdir.name)
        env = dict(os.environ)
        write_keys = {source: secrets.token_hex(16) for source in (*sources, CANARY_SOURCE)}
        for i, source in enumerate(write_keys):
            env[f"HARNESS_STACK_KEY_{i}"] = write_keys[source]
        for i, _destination in enumerate(DESTINATIONS):
            env[f"HARNESS_STACK_SECRET_{i}"] = secrets.token_hex(16)
        sandbox_port, monitor_port = free_port(), free_port()
        monitor_url = f"http://{HOST}:{monitor_port}"
        sandbox_config = {
            "seed": None,
            "sources": [
                {"name": source, "write_key_env": f"HARNESS_STACK_KEY_{i}"}
                for i, source in enumerate(write_keys)
            ],
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
                name: {"secret_env": f"HARNESS_STACK_SECRET_{i}"}
                for i, (name, _b, _c) in enumerate(DESTINATIONS)
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
        harness = [sys.executable, "-m", "harness"]
        workers = monitor_workers or monitor_workers_for(os.cpu_count() or 1)
        workers = str(monitor_workers or monitor_workers_for(os.cpu_count() or 1))
        config = str(folder / "monitor.yaml")
        monitor = ChildServer(
            "monitor",
            monitor_port,
            [*harness, "monitor", "--config", config, "--port", str(monitor_port), "--workers", workers],
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
        stack = cls(sandbox, monitor, {s: k for s, k in write_keys.items() if s != CANARY_SOURCE}, workdir)
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
            return httpx.get(f"{self.sandbox.url}/admin/stats", timeout=5.0).json()
        except (httpx.HTTPError, ValueError):
            return None

    def stop(self) -> None:
        self.sandbox.stop()
        self.monitor.stop()
        self.workdir.cleanup()
