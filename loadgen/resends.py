"""The duplicate plan: accepted messages re-sent later with the same messageId, as SDK retries do.

A share of the messages the ingest accepted is kept, each with a due time drawn from the profile's
delay classes (immediate, minutes, hours). Memory is bounded: at most `max_pending` messages wait at
once (further candidates are counted in `dropped` and not kept), and each is kept as its encoded JSON
only (no request, headers or gzip), enough to rebuild a byte-identical message.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from loadgen.profile import DelayClass


class DuplicatePlan:
    def __init__(
        self, *, share: float, delays: Sequence[DelayClass], max_pending: int, rng: random.Random
    ) -> None:
        self.share = share
        self.delays = [d for d in delays if d.weight > 0]
        self.weights = [d.weight for d in self.delays]
        self.max_pending = max_pending
        self.rng = rng
        self._queues: dict[str, list[tuple[int, int, bytes]]] = {}
        self.pending = 0
        self.scheduled = 0
        self.dropped = 0

    def offer(
        self,
        source: str,
        seqs: Sequence[int],
        messages: Sequence[bytes],
        accepted: Sequence[int],
        sent_ms: int,
    ) -> None:
        """Messages of one accepted request; a `share` of the accepted ones is scheduled for re-sending."""
        if not self.share or not self.delays:
            return
        rng = self.rng
        chosen = [i for i in range(len(accepted)) if rng.random() < self.share]
        if not chosen:
            return
        index_of = {seq: i for i, seq in enumerate(seqs)} if not isinstance(seqs, range) else None
        queue = self._queues.setdefault(source, [])
        for k in chosen:
            seq = accepted[k]
            if self.pending >= self.max_pending:
                self.dropped += 1
                continue
            i = seq - seqs.start if index_of is None else index_of.get(seq)
            if i is None or not 0 <= i < len(messages):
                continue
            delay = rng.choices(self.delays, self.weights)[0]
            due = sent_ms + int(rng.uniform(delay.min_seconds, delay.max_seconds) * 1000)
            heapq.heappush(queue, (due, seq, messages[i]))
            self.pending += 1
            self.scheduled += 1

    def has_due(self, source: str, now_ms: int) -> bool:
        queue = self._queues.get(source)
        return bool(queue) and queue[0][0] <= now_ms

    def take_due(self, source: str, now_ms: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` due (seq, message) pairs of `source`, oldest due first."""
        queue = self._queues.get(source, [])
        out = []
        while queue and queue[0][0] <= now_ms and len(out) < limit:
            _, seq, message = heapq.heappop(queue)
            out.append((seq, message))
        self.pending -= len(out)
        return out
