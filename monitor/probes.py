"""Destination probes: direct HTTP checks of partner endpoints, blackbox-exporter style."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from monitor.config import ProbesConfig, ProbeTarget


@dataclass(slots=True)
class ProbeResult:
    success: bool
    status_code: int | None
    duration_seconds: float
    checked_at_ms: int
    error: str | None = None


class Prober:
    """Checks each configured target every `interval_seconds`; keeps the latest result per target."""

    def __init__(self, config: ProbesConfig) -> None:
        self.config = config
        self.results: dict[str, ProbeResult] = {}
        self.checks: dict[str, int] = {t.name: 0 for t in config.targets}
        self.failures: dict[str, int] = {t.name: 0 for t in config.targets}

    async def check(self, client: httpx.AsyncClient, target: ProbeTarget) -> ProbeResult:
        started = time.perf_counter()
        checked_at_ms = int(time.time() * 1000)
        try:
            response = await client.request(target.method, target.url)
            status: int | None = response.status_code
            error = None if status in target.expect_status else f"unexpected status {status}"
        except httpx.HTTPError as exc:
            status, error = None, type(exc).__name__
        result = ProbeResult(error is None, status, time.perf_counter() - started, checked_at_ms, error)
        self.results[target.name] = result
        self.checks[target.name] += 1
        self.failures[target.name] += not result.success
        return result

    async def check_all(self, client: httpx.AsyncClient) -> None:
        await asyncio.gather(*(self.check(client, t) for t in self.config.targets))

    async def run_forever(self) -> None:
        async with httpx.AsyncClient(timeout=self.config.timeout_seconds) as client:
            while True:
                await self.check_all(client)
                await asyncio.sleep(self.config.interval_seconds)
