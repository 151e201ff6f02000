"""What the batching libraries share (mobile SDKs, server libraries, direct HTTP callers): batch
sizes drawn from the flush rule, event times spread back over the flush window, one batch POST."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loadgen.libraries import LibraryModel, batch_fill_lambda
from loadgen.prepared import PreparedRequest, event_request
from loadgen.profile import Profile
from loadgen.sources.base import BUFFER, MESSAGE_BYTES_ESTIMATE, Source


class BatchSource(Source):
    """A library that queues events and posts them in batches of up to `flush_at`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        lib = self.library
        self.rate = self.profile.sender_events_per_second[self.kind]
        self.fill_lambda = self.events_per_flush(lib, self.profile)
        self.timing = [self.batch_timing(count) for count in range(lib.flush_at + 1)]
        self.unguarded = self.batch_guard // MESSAGE_BYTES_ESTIMATE  # larger batches may reach the cap
        self.event_headers = self.headers_by_auth[lib.auth]
        self.user_headers: dict[int, dict[str, str]] = {}
        self._refill()

    def live_messages(self, count: int, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """`build_messages` for a live batch under the size cap, written out for this kind."""
        raise NotImplementedError

    def event_request(self, sent_ms: int) -> PreparedRequest:
        """Live events as one POST of the library's batch endpoint."""
        messages, start, user, kinds = self.live_batch(sent_ms)
        body = b"".join((b'{"batch":[', b",".join(messages), self.last_close))  # set by the builder
        if self.library.gzip:
            body = self.gzip(body)
        headers = self.user_headers.get(user) if self.agent_per_user else self.event_headers
        if headers is None:
            headers = self.agent_headers_for(self.library.auth, user, False)
            if self.per_request_headers:  # a device's own AnonymousId on each of its batches (no SentAt:
                headers = dict(headers)  # only the browser SDK, which sends no batches here, writes one)
                self.add_rudder_headers(headers, user, None)
            self.user_headers[user] = headers
        n = len(messages)
        return event_request(self.name, self.library.name, self.batch_path, headers.copy(), body,
                             range(start, start + n), n, sent_ms, messages, self.retry_count_header, kinds)  # fmt: skip

    def live_batch(self, sent_ms: int) -> tuple[list[bytes], int, int, list[int]]:
        """The next live batch's (messages, first seq, user, types), its size from the draws."""
        if self.pos >= BUFFER:
            self._refill()
        count = self.counts[self.pos]
        if count > self.unguarded:  # a batch that may reach the size cap: the general path measures it
            end_ms, step_ms = self.live_event_times(sent_ms, count)
            return self.build_messages(count, sent_ms, end_ms, step_ms, self.per_message_users)
        return self.live_messages(count, sent_ms)

    def _refill(self) -> None:
        super()._refill()
        lib = self.library
        counts = np.clip(self.rng.poisson(self.fill_lambda, size=BUFFER), 1, lib.flush_at)
        self.counts = self._adjust_counts(counts).tolist()

    def _adjust_counts(self, counts: np.ndarray) -> np.ndarray:
        """Batch sizes as this kind sends them, from the flush rule's (a hook for direct callers)."""
        return counts

    @classmethod
    def events_per_flush(cls, library: LibraryModel, profile: Profile) -> float:
        """The mean events a sender queues before the flush rule sends them (the batch size draw's mean)."""
        return batch_fill_lambda(library, profile.sender_events_per_second[cls.kind])

    @classmethod
    def mean_count(cls, library: LibraryModel, profile: Profile) -> float:
        rng = np.random.default_rng(12345)
        draws = rng.poisson(cls.events_per_flush(library, profile), size=50_000)
        return float(np.clip(draws, 1, library.flush_at).mean())

    # timing --------------------------------------------------------------------------------------

    def batch_timing(self, count: int) -> tuple[float, float, list[int]]:
        """For a live batch of `count` events: (the draw's multiplier giving how long before sending
        the last event happened, ms between events, each event's ms before the last)."""
        span = min(max(self.library.flush_interval_s, 0.1), count / self.rate) * 1000.0 if count else 0.0
        return self._timing(50.0, span, count)

    @staticmethod
    def _timing(mult: float, span: float, count: int) -> tuple[float, float, list[int]]:
        step = span / count if count else 0.0
        return mult, step, [int(step * k) for k in range(count - 1, -1, -1)]

    def last_event_back(self, mult: float) -> float:
        """How long (ms) before sending the batch's last event happened, drawn."""
        return self.r.random() * mult

    def live_event_times(self, sent_ms: int, count: int) -> tuple[int, float]:
        """(end_ms, step_ms) for a request sent now: queued events spread back over the flush window."""
        mult, step, _ = self.timing[count]
        return sent_ms - int(self.last_event_back(mult)), step

    def _claim(self, count: int, sent_ms: int) -> tuple[int, Sequence[bytes], bytes, int, int]:
        """Seqs, id halves and buffer rows for a live batch: (first seq, id parts, id opening, pos, end)."""
        clock = self.clock
        start = clock.next_seq
        clock.next_seq = start + count
        id_parts = self.ids.tails(start, count)
        if sent_ms != self.last_ms:
            self._at_ms(sent_ms)
        pos = self.pos
        if pos + count + 1 > BUFFER:
            self._refill()
            pos = 0
        end = self.pos = pos + count
        return start, id_parts, self.last_id_open, pos, end
