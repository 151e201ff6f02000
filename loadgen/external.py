"""Harness messageIds for traffic the harness does not send itself: your SDK, your tests, your tools.

Any client that can set `messageId` (every Segment and RudderStack SDK can) gets ids in a run's id
space from `HarnessIds`, reports each send's outcome, and posts the resulting ledger delta to the
monitor, which then audits those messages exactly as it audits generated traffic:

    ids = HarnessIds("checkout-test", source="python")
    message_id = ids.new_id()                 # set it as the event's messageId, then send
    ids.accepted([message_id])                # the ingest answered 2xx
    monitor.post_ledger(ids.take_delta(final=True))   # harness.monitor_client.MonitorClient

Each `HarnessIds` owns one stream of the run: ids never collide within it, so two processes sending
for the same run must use different `stream` numbers (EXTERNAL_STREAMS leaves the Locust workers'
low numbers alone). All methods are thread-safe: SDKs report outcomes from their own threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from loadgen.ids import MAX_SEQ, MAX_STREAM, IdStyle, decode_many, make_message_ids, run_id_from_name
from loadgen.ledger import LedgerDelta, SentLedger

EXTERNAL_STREAMS = range(2048, MAX_STREAM - 1)  # 4094 is the preflight's (harness.preflight), 4095 the canary's
"""Stream numbers for ids handed out here; generated traffic uses a run's low stream numbers."""
DEFAULT_STREAM = EXTERNAL_STREAMS.start


class HarnessIds:
    """Hands out messageIds of one run and stream and records what the ingest did with them."""

    def __init__(
        self,
        run_name: str,
        *,
        source: str = "external",
        stream: int = DEFAULT_STREAM,
        style: IdStyle = IdStyle.PLAIN,
        first_seq: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not run_name:
            raise ValueError("HarnessIds needs a run name (the monitor reports runs by name)")
        if not 0 <= stream < MAX_STREAM:
            raise ValueError(f"stream {stream} is outside 0..{MAX_STREAM - 1}")
        if not 0 <= first_seq <= MAX_SEQ:
            raise ValueError(f"first_seq {first_seq} is outside 0..{MAX_SEQ}")
        self.run_name = run_name
        self.run = run_id_from_name(run_name)
        self.stream = stream
        self.source = source
        self.style = IdStyle(style)
        self._clock = clock
        self._next_seq = first_seq
        self._lock = threading.Lock()
        self._ledger = SentLedger(self.run, stream, run_name)

    def new_ids(self, count: int) -> list[str]:
        """`count` fresh messageIds stamped with the current time (the send time the monitor measures from)."""
        if count < 0:
            raise ValueError(f"count must be 0 or more, got {count}")
        with self._lock:
            first = self._next_seq
            if first + count > MAX_SEQ + 1:
                raise ValueError(f"stream {self.stream} of run {self.run_name!r} has no seqs left")
            self._next_seq += count
        sent_ms = int(self._clock() * 1000)
        seqs = np.arange(first, first + count, dtype=np.uint64)
        return [m.decode() for m in make_message_ids(self.style, sent_ms, self.run, self.stream, seqs)]

    def new_id(self) -> str:
        """One fresh messageId."""
        return self.new_ids(1)[0]

    def _seqs(self, message_ids: Iterable[str]) -> tuple[list[int], int]:
        """The seqs of ids this object handed out, and their latest send time; other ids are an error."""
        message_ids = list(message_ids)
        if not message_ids:
            return [], 0
        decoded = decode_many(message_ids)
        mine = decoded.valid & (decoded.run == self.run) & (decoded.stream == self.stream)
        if not mine.all():
            bad = message_ids[int(np.flatnonzero(~mine)[0])]
            raise ValueError(
                f"messageId {bad!r} was not handed out by HarnessIds({self.run_name!r}, stream={self.stream})"
            )
        return decoded.seq.tolist(), int(decoded.sent_ms.max())

    def accepted(self, message_ids: Iterable[str], source: str | None = None) -> int:
        """The ingest answered 2xx for these ids (of `source`, default this object's): they must arrive."""
        seqs, sent_ms = self._seqs(message_ids)
        if seqs:
            with self._lock:
                self._ledger.record_accepted(source or self.source, seqs, sent_ms)
        return len(seqs)

    def rejected(self, message_ids: Iterable[str]) -> int:
        """The ingest refused these ids for good (a 4xx other than 429): they must never arrive."""
        seqs, sent_ms = self._seqs(message_ids)
        if seqs:
            with self._lock:
                self._ledger.record_rejected(seqs, sent_ms)
        return len(seqs)

    def abandoned(self, message_ids: Iterable[str]) -> int:
        """Sending gave up without an answer: the outcome is unknown, neither arrival nor loss is an error."""
        seqs, sent_ms = self._seqs(message_ids)
        if seqs:
            with self._lock:
                self._ledger.record_abandoned(seqs, sent_ms)
        return len(seqs)

    @property
    def totals(self) -> dict[str, int]:
        """Ids recorded so far by outcome (accepted, rejected, abandoned, duplicates)."""
        with self._lock:
            return dict(self._ledger.totals)

    def take_delta(self, *, final: bool = False) -> LedgerDelta:
        """Everything recorded since the last call, as the delta to post to the monitor's /api/ledger."""
        with self._lock:
            return self._ledger.take_delta(final=final)

    def restore(self, delta: LedgerDelta) -> None:
        """Put back a delta whose post failed, so the next one carries it again."""
        with self._lock:
            self._ledger.restore(delta)
