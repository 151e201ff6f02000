"""Delivery: one queue and its own worker task(s) per destination, webhook POSTs, retries.

A destination's queue, HTTP connection pool and workers belong to it alone, so a slow, hanging or
failing destination only ever holds back its own messages. The queue holds chunks `(bodies,
received)`: the enriched messages of one request as JSON bytes (serialized once at ingest and shared
by every destination) and their receivedAt as a unix time (for latency and the retry age limit).
Queuing a request's messages is one append, and a batch POST joins the bytes of a few chunks: no
per-message Python objects between ingest and the socket. Outside the queue (the spool, `restore`,
`stop`) a message is an `Entry`, `(body, received)`.

The webhook POSTs go through aiohttp: with it the whole delivery path (join, HMAC, POST) costs about
half the CPU it costs with httpx (`bench/sandbox.py` prints both), and delivery is part of every
ingested message's cost.
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

import aiohttp
import numpy as np

from sandbox.config import DeliveryConfig, Destination
from sandbox.faults import FaultInjector, seeded_rng
from sandbox.metrics import Stats

log = logging.getLogger("sandbox.delivery")
Entry = tuple[bytes, float]
Chunk = tuple[list[bytes], float]  # the messages of one request (or part of them), one receivedAt
USER_AGENT = "Segment.io/1.0"


def sign(secret: bytes, body: bytes) -> str:
    """`X-Signature`: hex HMAC-SHA1 of the exact body bytes, keyed by the destination's secret."""
    return hmac.new(secret, body, hashlib.sha1).hexdigest()


def batch_body(chunks: list[Chunk]) -> bytes:
    """The JSON array of every message in `chunks`, joined from their serialized bytes."""
    if len(chunks) == 1:
        return b"[" + b",".join(chunks[0][0]) + b"]"
    return b"[" + b",".join(itertools.chain.from_iterable(bodies for bodies, _ in chunks)) + b"]"


def chunk_entries(chunks: list[Chunk]) -> list[Entry]:
    """The chunks' messages one by one, in order, as `(body, received)` entries."""
    return [(body, received) for bodies, received in chunks for body in bodies]


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
        self.queue: deque[Chunk] = deque()
        self.queued = 0  # messages in `queue`, less the `head_taken` already taken from its head chunk
        self.head_taken = 0
        self.delayed: list[tuple[float, int, Chunk]] = []  # heap by ready time (monotonic)
        self.inflight: dict[int, list[Chunk]] = {}
        self.wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.jitter = seeded_rng(seed, f"backoff:{dest.name}")
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

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
            chunk = ([body, body], received) if duplicate else ([body], received)
            if duplicate:
                faults["duplicate", name] += 1
            self.stats.enqueued[name] += len(chunk[0])
            if delay > 0:
                faults["delay", name] += 1
                self.stats.fault_delay_seconds[name] += delay
                heapq.heappush(self.delayed, (time.monotonic() + delay, next(self._seq), chunk))
                if not self.wakeup.is_set():
                    self.wakeup.set()  # a worker waiting with no deadline must learn the new one
                return
            self._append(chunk)
        else:
            self.stats.enqueued[name] += 1
            self._append(([body], received))

    def enqueue_many(self, bodies: list[bytes], received: float) -> None:
        """Queue the messages of one request: one append when no fault is active.

        The list is kept as it is (and may be shared with other destinations): it is never mutated.
        """
        if not bodies:
            return
        if self.faults.destination_active(self.name):
            for body in bodies:
                self.enqueue(body, received)
            return
        self.stats.enqueued[self.name] += len(bodies)
        self._append((bodies, received))

    def _append(self, chunk: Chunk) -> None:
        self.queue.append(chunk)
        self.queued += len(chunk[0])
        if not self.wakeup.is_set():
            self.wakeup.set()

    def restore(self, entries: list[Entry]) -> None:
        """Queue messages read back from the spool (their faults were decided before the restart)."""
        for received, group in itertools.groupby(entries, key=lambda e: e[1]):
            self._append(([body for body, _ in group], received))
        self.stats.restored[self.name] += len(entries)

    def depth(self) -> tuple[int, float | None]:
        """(messages waiting or in flight, age in seconds of the oldest one)."""
        n = self.queued + sum(len(c[0]) for _, _, c in self.delayed)
        candidates = [received for chunks in self.inflight.values() for bodies, received in chunks]
        n += sum(len(bodies) for chunks in self.inflight.values() for bodies, _ in chunks)
        if self.queue:
            # the queue is filled in arrival order (spooled entries first), so its head is the oldest
            candidates.append(self.queue[0][1])
        candidates.extend(c[1] for _, _, c in self.delayed)
        if not n:
            return 0, None
        return n, max(0.0, time.time() - min(candidates))

    def _take(self, size: int) -> list[Chunk]:
        """Take up to `size` messages from the head of the queue, as chunks (slices where split)."""
        q = self.queue
        out: list[Chunk] = []
        want = size
        while want and q:
            bodies, received = q[0]
            start = self.head_taken
            left = len(bodies) - start
            if left <= want:
                q.popleft()
                self.head_taken = 0
                out.append((bodies if start == 0 else bodies[start:], received))
                want -= left
            else:
                out.append((bodies[start : start + want], received))
                self.head_taken = start + want
                want = 0
        self.queued -= size - want
        return out

    def _put_back(self, chunks: list[Chunk]) -> None:
        """Return taken chunks to the head of the queue (after an unexpected delivery error)."""
        q = self.queue
        if self.head_taken:
            bodies, received = q.popleft()
            q.appendleft((bodies[self.head_taken :], received))
            self.head_taken = 0
        q.extendleft(reversed(chunks))
        self.queued += sum(len(bodies) for bodies, _ in chunks)

    # -- workers ------------------------------------------------------------------------------------------
    def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.dest.concurrency)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.dest.timeout_seconds),
            skip_auto_headers=("Accept", "Accept-Encoding"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # a webhook sender keeps no cookies
        )
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
        if self._session is not None:
            await self._session.close()
        left: list[Entry] = []
        for chunks in self.inflight.values():
            left.extend(chunk_entries(chunks))
        self.inflight.clear()
        left.extend(chunk_entries([c for _, _, c in sorted(self.delayed)]))
        self.delayed.clear()
        left.extend(chunk_entries(self._take(self.queued)))
        return left

    def _promote_delayed(self) -> float | None:
        """Move ready delayed entries to the queue; return seconds until the next one is ready."""
        now = time.monotonic()
        delayed = self.delayed
        while delayed and delayed[0][0] <= now:
            chunk = heapq.heappop(delayed)[2]
            self.queue.append(chunk)
            self.queued += len(chunk[0])
        return delayed[0][0] - now if delayed else None

    async def _worker(self, wid: int) -> None:
        size = self.dest.batch_size
        while not self.stopping.is_set():
            wait = self._promote_delayed()
            if not self.queued:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), wait)
                continue
            if size > 1 and self.queued < size and self.dest.linger_seconds:
                # let a batch fill up instead of POSTing one message at a time
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.dest.linger_seconds)
                if self.stopping.is_set() or not self.queued:
                    continue
            batch = self.inflight[wid] = self._take(size)
            try:
                done = await self._deliver(batch)
            except Exception:  # a bug must not silently stop this destination: requeue and go on
                log.exception("%s: delivery failed unexpectedly; the batch is queued again", self.name)
                self._put_back(self.inflight.pop(wid))
                await asyncio.sleep(1.0)
                continue
            if done:
                del self.inflight[wid]
            if self.queued and not self.wakeup.is_set():
                self.wakeup.set()  # let sibling workers pick up the rest

    async def _deliver(self, batch: list[Chunk]) -> bool:
        """POST one batch until it is delivered, discarded or too old; False if stopped before that."""
        name = self.name
        body = batch[0][0][0] if self.dest.batch_size == 1 else batch_body(batch)
        count = sum(len(bodies) for bodies, _ in batch)
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
                self.stats.delivered[name] += count
                received = np.fromiter((r for _, r in batch), dtype=np.float64, count=len(batch))
                weights = np.fromiter((len(b) for b, _ in batch), dtype=np.int64, count=len(batch))
                self.stats.latency.observe_many(name, np.maximum(now - received, 0.0), weights)
                return True
            if outcome == "discarded_4xx":
                self.stats.discarded[name, "http_4xx"] += count
                return True
            attempt += 1
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            oldest = min(r for _, r in batch)
            if time.time() + delay - oldest > self.delivery.max_age_seconds:
                self.stats.discarded[name, "max_age"] += count
                log.warning("%s: gave up on %d message(s) after %d attempts (max age)", name, count, attempt)
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
        assert self._session is not None
        try:
            async with self._session.post(
                self.dest.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                await resp.read()  # drain the answer so the connection can be reused
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            return "retry_timeout", None
        except (aiohttp.ClientError, OSError):
            return "retry_connection", None
        if 200 <= status < 300:
            return "success", None
        if status == 429:
            return "retry_429", parse_retry_after(retry_after)
        if status >= 500:
            return "retry_5xx", parse_retry_after(retry_after)
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

    def route_many(
        self, source: str, bodies: list[bytes], integrations: list[dict | None] | None, received: float
    ) -> None:
        """Queue the accepted messages of one request at every destination each is routed to.

        `integrations[i]` is message i's (merged) `integrations` object, and `integrations` is None when
        no message has one (the common case: the same list goes to every destination). Routing:
        `{"All": false, "X": true}` sends only to X; `{"X": false}` skips X; an options object
        (`{"X": {...}}`) counts as enabled.
        """
        targets = self.by_source[source]
        if not targets or not bodies:
            return
        if integrations is None:
            for q in targets:
                q.enqueue_many(bodies, received)
            return
        for q in targets:
            name = q.name
            chosen = [
                body
                for body, integ in zip(bodies, integrations, strict=True)
                if not integ or integ.get(name, integ.get("All", True)) is not False
            ]
            q.enqueue_many(chosen, received)
