"""Delivery: one queue and its own worker task(s) per destination, webhook POSTs, retries.

A destination's queue, HTTP connection pool and workers belong to it alone, so a slow, hanging or
failing destination only ever holds back its own messages. A queue entry is `(body, received)`: the
enriched message as JSON bytes (serialized once at ingest and shared by every destination) and its
receivedAt as a unix time (for latency and the retry age limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import itertools
import logging
import time
from collections import deque
from email.utils import parsedate_to_datetime

import httpx
import numpy as np

from sandbox.config import DeliveryConfig, Destination
from sandbox.faults import FaultInjector, seeded_rng
from sandbox.metrics import Stats

log = logging.getLogger("sandbox.delivery")
Entry = tuple[bytes, float]
USER_AGENT = "Segment.io/1.0"


def sign(secret: bytes, body: bytes) -> str:
    """`X-Signature`: hex HMAC-SHA1 of the exact body bytes, keyed by the destination's secret."""
    return hmac.new(secret, body, hashlib.sha1).hexdigest()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class DestinationQueue:
    """The queue, fault decisions at enqueue, and retrying workers of one destination."""

    def __init__(
        self,
        dest: Destination,
        delivery: DeliveryConfig,
        stats: Stats,
        faults: FaultInjector,
        seed: int | None,
    ) -> None:
        self.dest = dest
        self.name = dest.name
        self.delivery = delivery
        self.stats = stats
        self.faults = faults
        self.secret = dest.secret.encode()
        self.queue: deque[Entry] = deque()
        self.delayed: list[tuple[float, int, Entry]] = []  # heap by ready time (monotonic)
        self.inflight: dict[int, list[Entry]] = {}
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.jitter = seeded_rng(seed, f"backoff:{dest.name}")
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    # -- enqueue (called on the ingest path: keep it cheap) --------------------------------------------
    def enqueue(self, body: bytes, received: float) -> None:
        """Queue one message, first applying this destination's drop/duplicate/delay faults."""
        name = self.name
        if self.faults.destination_active(name):
            drop, duplicate, delay = self.faults.decide(name)
            faults = self.stats.faults
            if drop:
                faults["drop", name] += 1
                return
            copies = 2 if duplicate else 1
            if duplicate:
                faults["duplicate", name] += 1
            self.stats.enqueued[name] += copies
            if delay > 0:
                faults["delay", name] += 1
                self.stats.fault_delay_seconds[name] += delay
                ready = time.monotonic() + delay
                for _ in range(copies):
                    heapq.heappush(self.delayed, (ready, next(self._seq), (body, received)))
            else:
                for _ in range(copies):
                    self.queue.append((body, received))
        else:
            self.stats.enqueued[name] += 1
            self.queue.append((body, received))
        if not self.wakeup.is_set():
            self.wakeup.set()

    def enqueue_many(self, bodies: list[bytes], received: float) -> None:
        """Queue the messages of one request (the common case: no fault active, one extend)."""
        if not bodies:
            return
        if self.faults.destination_active(self.name):
            for body in bodies:
                self.enqueue(body, received)
            return
        self.stats.enqueued[self.name] += len(bodies)
        self.queue.extend([(body, received) for body in bodies])
        if not self.wakeup.is_set():
            self.wakeup.set()

    def restore(self, entries: list[Entry]) -> None:
        """Queue messages read back from the spool (their faults were decided before the restart)."""
        self.queue.extend(entries)
        self.stats.restored[self.name] += len(entries)
        self.wakeup.set()

    def depth(self) -> tuple[int, float | None]:
        """(messages waiting or in flight, age in seconds of the oldest one)."""
        n = len(self.queue) + len(self.delayed)
        candidates = [e[1] for batch in self.inflight.values() for e in batch]
        n += len(candidates)
        if self.queue:
            # the queue is filled in arrival order (spooled entries first), so its head is the oldest
            candidates.append(self.queue[0][1])
        candidates.extend(e[1] for _, _, e in self.delayed)
        if not n:
            return 0, None
        return n, max(0.0, time.time() - min(candidates))

    # -- workers ------------------------------------------------------------------------------------------
    def start(self) -> None:
        limits = httpx.Limits(
            max_connections=self.dest.concurrency, max_keepalive_connections=self.dest.concurrency
        )
        self._client = httpx.AsyncClient(timeout=self.dest.timeout_seconds, limits=limits, trust_env=False)
        self._tasks = [
            asyncio.get_running_loop().create_task(self._worker(i), name=f"deliver:{self.name}:{i}")
            for i in range(self.dest.concurrency)
        ]

    async def stop(self, grace: float) -> list[Entry]:
        """Stop the workers (an attempt in flight may finish within `grace`); return what is undelivered."""
        self.stopping.set()
        self.wakeup.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        left: list[Entry] = []
        for batch in self.inflight.values():
            left.extend(batch)
        self.inflight.clear()
        left.extend(e for _, _, e in sorted(self.delayed))
        self.delayed.clear()
        left.extend(self.queue)
        self.queue.clear()
        return left

    def _promote_delayed(self) -> float | None:
        """Move ready delayed entries to the queue; return seconds until the next one is ready."""
        now = time.monotonic()
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            self.queue.append(heapq.heappop(delayed)[2])
        return delayed[0][0] - now if delayed else None

    async def _worker(self, wid: int) -> None:
        size = self.dest.batch_size
        while not self.stopping.is_set():
            wait = self._promote_delayed()
            if not self.queue:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), wait)
                continue
            if size > 1 and len(self.queue) < size and self.dest.linger_seconds:
                # let a batch fill up instead of POSTing one message at a time
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.dest.linger_seconds)
                if self.stopping.is_set() or not self.queue:
                    continue
            q = self.queue
            batch = [q.popleft() for _ in range(min(size, len(q)))]
            self.inflight[wid] = batch
            try:
                done = await self._deliver(batch)
            except Exception:  # a bug must not silently stop this destination: requeue and go on
                log.exception("%s: delivery failed unexpectedly; the batch is queued again", self.name)
                self.queue.extendleft(reversed(self.inflight.pop(wid)))
                await asyncio.sleep(1.0)
                continue
            if done:
                del self.inflight[wid]
            if self.queue and not self.wakeup.is_set():
                self.wakeup.set()  # let sibling workers pick up the rest

    async def _deliver(self, batch: list[Entry]) -> bool:
        """POST one batch until it is delivered, discarded or too old; False if stopped before that."""
        name = self.name
        body = batch[0][0] if self.dest.batch_size == 1 else b"[" + b",".join(e[0] for e in batch) + b"]"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Signature": sign(self.secret, body),
        }
        attempts = self.stats.attempts
        attempt = 0
        while True:
            outcome, retry_after = await self._post(body, headers)
            attempts[name, outcome] += 1
            if outcome == "success":
                now = time.time()
                self.stats.delivered[name] += len(batch)
                received = np.fromiter((e[1] for e in batch), dtype=np.float64, count=len(batch))
                self.stats.latency.observe_many(name, np.maximum(now - received, 0.0))
                return True
            if outcome == "discarded_4xx":
                self.stats.discarded[name, "http_4xx"] += len(batch)
                return True
            attempt += 1
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            oldest = min(e[1] for e in batch)
            if time.time() + delay - oldest > self.delivery.max_age_seconds:
                self.stats.discarded[name, "max_age"] += len(batch)
                log.warning(
                    "%s: gave up on %d message(s) after %d attempts (max age)", name, len(batch), attempt
                )
                return True
            if self.stopping.is_set():
                return False
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
                return False
            except TimeoutError:
                pass

    def _backoff(self, attempt: int) -> float:
        """Randomized exponential backoff: base·2^(attempt-1), capped, times a factor in [0.5, 1.5)."""
        d = self.delivery
        base = min(d.backoff_max_seconds, d.backoff_initial_seconds * (2 ** min(attempt - 1, 30)))
        return base * (0.5 + self.jitter.random())

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[str, float | None]:
        assert self._client is not None
        try:
            resp = await self._client.post(self.dest.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return "retry_timeout", None
        except (httpx.TransportError, OSError):
            return "retry_connection", None
        status = resp.status_code
        if 200 <= status < 300:
            return "success", None
        if status == 429:
            return "retry_429", parse_retry_after(resp.headers.get("retry-after"))
        if status >= 500:
            return "retry_5xx", parse_retry_after(resp.headers.get("retry-after"))
        if 300 <= status < 400:
            return "retry_3xx", None  # a webhook should not redirect; treated as transient
        return "discarded_4xx", None


class Router:
    """Picks the destinations for each accepted message: its source feeds them and `integrations` allows."""

    def __init__(self, queues: list[DestinationQueue], source_names: list[str]) -> None:
        self.queues = queues
        self.by_source: dict[str, list[DestinationQueue]] = {
            s: [q for q in queues if q.dest.sources is None or s in q.dest.sources] for s in source_names
        }

    def route_many(self, source: str, messages: list[tuple[bytes, dict | None]], received: float) -> None:
        """Queue each (body, integrations) of one request at every destination it is routed to.

        `integrations` routing: `{"All": false, "X": true}` sends only to X; `{"X": false}` skips X;
        an options object (`{"X": {...}}`) counts as enabled.
        """
        targets = self.by_source[source]
        if not targets:
            return
        plain = [body for body, integ in messages if not integ]
        routed = [(body, integ) for body, integ in messages if integ]
        for q in targets:
            if not routed:
                q.enqueue_many(plain, received)
                continue
            name = q.name
            chosen = [body for body, integ in routed if integ.get(name, integ.get("All", True)) is not False]
            q.enqueue_many(plain + chosen, received)
