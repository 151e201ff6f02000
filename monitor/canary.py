"""The canary prober: a low, steady stream of `track` events through the ingest API to each destination.

Each canary is routed to one destination with `integrations: {"All": false, "<dest>": true}` and
carries a harness messageId on stream `CANARY_STREAM`, so the receiver recognises it on arrival.
Availability per destination = canaries delivered within the destination's SLA ÷ canaries whose SLA
has passed (an ingest error counts as not delivered). It runs whether or not a load test does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import numpy as np

from loadgen.ids import CANARY_STREAM, IdStyle, make_message_id, new_run_id, run_id_from_name
from monitor.config import CanaryConfig, DestinationConfig
from monitor.latency import LatencyHistogram

log = logging.getLogger("monitor.canary")
CANARY_EVENT = "Monitor Canary"


@dataclass(slots=True)
class CanaryState:
    """Canary figures of one destination."""

    sla_ms: float
    sent: int = 0
    send_errors: int = 0
    settled: int = 0
    delivered_within_sla: int = 0
    outstanding: dict[int, int] = field(default_factory=dict)
    """seq → sent_ms of canaries sent, not yet arrived, SLA not yet passed."""
    expired: dict[int, int] = field(default_factory=dict)
    """seq → sent_ms of canaries whose SLA passed before they arrived (kept for their latency)."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def availability(self) -> float | None:
        return self.delivered_within_sla / self.settled if self.settled else None


class CanaryProber:
    """Sends canaries and scores their arrivals (fed by the audit's canary hook)."""

    MAX_EXPIRED = 10_000

    def __init__(self, config: CanaryConfig, destinations: dict[str, DestinationConfig]) -> None:
        self.config = config
        self.run = run_id_from_name(config.run_name) if config.run_name else new_run_id()
        self.states = {name: CanaryState(d.sla_seconds * 1000.0) for name, d in destinations.items()}
        self._next_seq = 0

    def on_arrival(
        self, destination: str, run: np.ndarray, seq: np.ndarray, sent_ms: np.ndarray, arrival_ms: float
    ) -> None:
        """Score canary rows delivered to `destination` (other runs' canaries are ignored)."""
        state = self.states.get(destination)
        if state is None:
            return
        for r, s, sent in zip(run.tolist(), seq.tolist(), sent_ms.tolist(), strict=True):
            if r != self.run:
                continue
            if s in state.outstanding:
                del state.outstanding[s]
                latency = arrival_ms - sent
                state.settled += 1
                if latency <= state.sla_ms:
                    state.delivered_within_sla += 1
            elif s in state.expired:
                latency = arrival_ms - state.expired.pop(s)
            else:
                continue  # a duplicate or an unknown canary
            state.latency.observe_many(np.array([latency]))

    def settle(self, now_ms: float) -> None:
        """Count canaries whose SLA passed without their arrival as failures."""
        for state in self.states.values():
            for s, sent in list(state.outstanding.items()):
                if sent + state.sla_ms <= now_ms:
                    del state.outstanding[s]
                    state.settled += 1
                    state.expired[s] = sent
            while len(state.expired) > self.MAX_EXPIRED:
                state.expired.pop(next(iter(state.expired)))

    def canary_event(self, destination: str, sent_ms: int) -> tuple[int, dict]:
        seq = self._next_seq
        self._next_seq += 1
        message_id = make_message_id(IdStyle.PLAIN, sent_ms, self.run, CANARY_STREAM, seq)
        stamp = datetime.fromtimestamp(sent_ms / 1000, UTC).isoformat(timespec="milliseconds")
        event = {
            "type": "track",
            "event": CANARY_EVENT,
            "messageId": message_id,
            "anonymousId": f"monitor-canary-{destination}",
            "properties": {"destination": destination},
            "integrations": {"All": False, destination: True},
            "timestamp": stamp.replace("+00:00", "Z"),
            "sentAt": stamp.replace("+00:00", "Z"),
            "context": {"library": {"name": "cdp-harness-monitor", "version": "1"}},
        }
        return seq, event

    async def send_round(self, client: httpx.AsyncClient) -> None:
        """Send one canary to every destination."""
        for destination, state in self.states.items():
            sent_ms = int(time.time() * 1000)
            seq, event = self.canary_event(destination, sent_ms)
            state.sent += 1
            try:
                response = await client.post(
                    f"{self.config.ingest_url}/v1/track",
                    json=event,
                    auth=(self.config.write_key or "", ""),
                )
                ok = 200 <= response.status_code < 300
            except httpx.HTTPError as exc:
                log.warning("canary to %s: ingest unreachable: %s", destination, type(exc).__name__)
                ok = False
            if ok:
                state.outstanding[seq] = sent_ms
            else:
                state.send_errors += 1
                state.settled += 1

    async def run_forever(self) -> None:
        async with httpx.AsyncClient(timeout=self.config.timeout_seconds) as client:
            while True:
                await self.send_round(client)
                await asyncio.sleep(self.config.interval_seconds)
