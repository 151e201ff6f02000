"""The sent ledgers the monitor has received, kept as 32-bit roaring bitmaps keyed like the audit.

`loadgen.ledger` ships 64-bit bitmaps; the audit keys 32-bit `BitMap`s by (run, stream, seq >> 32)
because they are several times faster to update on the hot path, so each delta is split once here.
Accepted seqs wait in `pending` until their delta's `sent_until_ms` watermark plus the loss deadline
has passed; the audit then folds them into each destination's `due` set (see `Audit.sweep`).
"""

from __future__ import annotations

import array
import bisect
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from pyroaring import BitMap, BitMap64

from loadgen.ledger import LedgerDelta

LOW_32 = 0xFFFFFFFF
STREAM_OVERHEAD_BYTES = 1024
"""Charged per (run, stream) on top of its bitmaps: the records and dicts that hold them."""


class LedgerLimitError(ValueError):
    """A delta that would take the ledgers past a memory bound; nothing of it was merged."""


@dataclass(frozen=True, slots=True)
class LedgerLimits:
    """Memory bounds of the ledgers (`monitor/default.yaml` documents them)."""

    max_runs: int = 1024
    max_run_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024


def bitmap_bytes(bitmap: BitMap | BitMap64) -> int:
    """Bytes a roaring bitmap holds: its containers plus about 48 bytes of header."""
    st = bitmap.get_statistics()
    return (
        48
        + st["n_containers"] * 16
        + st["n_bytes_array_containers"]
        + st["n_bytes_bitset_containers"]
        + st["n_bytes_run_containers"]
    )


def bitmap_of(lo: np.ndarray) -> BitMap:
    """A 32-bit BitMap from a uint32 numpy array (via array.array, the fastest pyroaring input)."""
    values = array.array("I")
    values.frombytes(np.ascontiguousarray(lo, dtype=np.uint32).tobytes())
    return BitMap(values)


def split64(bitmap: BitMap64) -> dict[int, BitMap]:
    """A 64-bit bitmap as 32-bit bitmaps keyed by the high 32 bits."""
    if not bitmap:
        return {}
    values = np.frombuffer(bitmap.to_array(), dtype=np.uint64)
    high = values >> np.uint64(32)
    if high[-1] == high[0]:
        return {int(high[0]): bitmap_of((values & np.uint64(LOW_32)).astype(np.uint32))}
    out: dict[int, BitMap] = {}
    for hi in np.unique(high):
        part = values[high == hi]
        out[int(hi)] = bitmap_of((part & np.uint64(LOW_32)).astype(np.uint32))
    return out


def _merge(into: dict[int, BitMap], parts: dict[int, BitMap]) -> None:
    for hi, bitmap in parts.items():
        if hi in into:
            into[hi] |= bitmap
        else:
            into[hi] = bitmap


@dataclass(slots=True)
class PendingDelta:
    """Accepted seqs of one delta, per source, not yet past their loss deadline."""

    due_ms: float
    accepted: dict[str, dict[int, BitMap]]


@dataclass(slots=True)
class StreamLedger:
    """Everything one (run, stream) reported so far."""

    run: int
    stream: int
    accepted: dict[str, dict[int, BitMap]] = field(default_factory=dict)
    rejected: dict[int, BitMap] = field(default_factory=dict)
    abandoned: dict[int, BitMap] = field(default_factory=dict)
    duplicates: dict[int, BitMap] = field(default_factory=dict)
    sent_until_ms: int = 0
    final: bool = False
    deltas: int = 0
    pending: deque[PendingDelta] = field(default_factory=deque)
    watermark_seqs: list[int] = field(default_factory=list)
    watermark_ms: list[int] = field(default_factory=list)
    nbytes: int = STREAM_OVERHEAD_BYTES
    """What `measure` found last: bitmaps, pending deltas and watermarks."""

    def measure(self) -> int:
        """Bytes this stream's ledger holds now."""
        parts = [b for by_hi in self.accepted.values() for b in by_hi.values()]
        for by_hi in (self.rejected, self.abandoned, self.duplicates):
            parts.extend(by_hi.values())
        for pending in self.pending:
            parts.extend(b for by_hi in pending.accepted.values() for b in by_hi.values())
        return STREAM_OVERHEAD_BYTES + 16 * len(self.watermark_ms) + sum(map(bitmap_bytes, parts))

    def accepted_for(self, sources: tuple[str, ...] | None, hi: int) -> BitMap:
        """Union of the accepted seqs (high part `hi`) of the given sources (all when None)."""
        names = self.accepted.keys() if sources is None else [s for s in sources if s in self.accepted]
        parts = [self.accepted[s][hi] for s in names if hi in self.accepted[s]]
        return BitMap.union(*parts) if parts else BitMap()

    def high_parts(self) -> set[int]:
        parts: set[int] = set()
        for by_hi in self.accepted.values():
            parts.update(by_hi)
        for by_hi in (self.rejected, self.abandoned, self.duplicates):
            parts.update(by_hi)
        return parts

    def watermark_for(self, seq: int) -> int:
        """The `sent_until_ms` of the first delta that could hold `seq` (seqs grow with send time)."""
        i = bisect.bisect_left(self.watermark_seqs, seq)
        return self.watermark_ms[min(i, len(self.watermark_ms) - 1)] if self.watermark_ms else 0


@dataclass(slots=True)
class RunLedger:
    run: int
    name: str = ""
    streams: dict[int, StreamLedger] = field(default_factory=dict)
    nbytes: int = 0


def delta_bytes(delta: LedgerDelta) -> int:
    """An upper bound of what merging `delta` adds: its bitmaps twice (merged and pending) and a watermark."""
    parts = [*delta.accepted.values(), delta.rejected, delta.abandoned, delta.duplicates]
    accepted = sum(bitmap_bytes(b) for b in delta.accepted.values())
    return STREAM_OVERHEAD_BYTES + 16 + accepted + sum(bitmap_bytes(b) for b in parts)


class LedgerBook:
    """All ledgers received, by run and stream, within `limits`."""

    def __init__(self, lost_after_seconds: float, limits: LedgerLimits | None = None) -> None:
        self.lost_after_ms = lost_after_seconds * 1000.0
        self.limits = limits or LedgerLimits()
        self.runs: dict[int, RunLedger] = {}
        self.nbytes = 0

    def check(self, delta: LedgerDelta) -> None:
        """Raise `LedgerLimitError` when merging `delta` could pass a bound (checked before any change)."""
        limits = self.limits
        run = self.runs.get(delta.run)
        if run is None and len(self.runs) >= limits.max_runs:
            raise LedgerLimitError(
                f"the monitor holds ledgers of {len(self.runs)} runs, its max_runs limit; "
                f"run {delta.run} is refused"
            )
        cost = delta_bytes(delta)
        run_bytes = (run.nbytes if run else 0) + cost
        if run_bytes > limits.max_run_bytes:
            raise LedgerLimitError(
                f"run {delta.run}'s ledgers would hold up to {run_bytes} bytes, over the "
                f"max_ledger_bytes_per_run limit of {limits.max_run_bytes}"
            )
        if self.nbytes + cost > limits.max_total_bytes:
            raise LedgerLimitError(
                f"the ledgers of all runs would hold up to {self.nbytes + cost} bytes, over the "
                f"max_ledger_bytes limit of {limits.max_total_bytes}"
            )

    def _remeasure(self, run: RunLedger, ledger: StreamLedger) -> None:
        change = ledger.measure() - ledger.nbytes
        ledger.nbytes += change
        run.nbytes += change
        self.nbytes += change

    def stream(self, run: int, stream: int) -> StreamLedger | None:
        ledger = self.runs.get(run)
        return ledger.streams.get(stream) if ledger else None

    def add(self, delta: LedgerDelta) -> StreamLedger:
        """Merge one delta; its accepted seqs become due for the loss check after the deadline.

        Raises `LedgerLimitError`, changing nothing, when the delta could pass a memory bound.
        """
        self.check(delta)
        run = self.runs.setdefault(delta.run, RunLedger(delta.run))
        if delta.run_name:
            run.name = delta.run_name
        ledger = run.streams.get(delta.stream)
        if ledger is None:
            ledger = run.streams[delta.stream] = StreamLedger(delta.run, delta.stream)
            run.nbytes += ledger.nbytes
            self.nbytes += ledger.nbytes
        accepted = {source: split64(bitmap) for source, bitmap in delta.accepted.items()}
        for source, parts in accepted.items():
            _merge(ledger.accepted.setdefault(source, {}), parts)
        _merge(ledger.rejected, split64(delta.rejected))
        _merge(ledger.abandoned, split64(delta.abandoned))
        _merge(ledger.duplicates, split64(delta.duplicates))
        ledger.deltas += 1
        ledger.final = ledger.final or delta.final
        ledger.sent_until_ms = max(ledger.sent_until_ms, delta.sent_until_ms)
        top = max((b.max() for b in delta.accepted.values() if b), default=None)
        if top is not None:
            ledger.watermark_seqs.append(top)
            ledger.watermark_ms.append(delta.sent_until_ms)
        if any(accepted.values()):
            ledger.pending.append(PendingDelta(delta.sent_until_ms + self.lost_after_ms, accepted))
        self._remeasure(run, ledger)
        return ledger

    def take_due(self, now_ms: float) -> list[tuple[StreamLedger, PendingDelta]]:
        """Pending deltas whose loss deadline has passed, removed from the pending queues."""
        due = []
        for run in self.runs.values():
            for ledger in run.streams.values():
                if not (ledger.pending and ledger.pending[0].due_ms <= now_ms):
                    continue
                while ledger.pending and ledger.pending[0].due_ms <= now_ms:
                    due.append((ledger, ledger.pending.popleft()))
                self._remeasure(run, ledger)
        return due
