"""The exact delivery audit: every delivered seq, per destination, run, stream, in roaring bitmaps.

Hot path: `Audit.record` only queues a delivery request's messageId and user columns; `Audit.flush`
audits the queue every FLUSH_ROWS rows and before any figure is read (every reader below, and
`sweep`, flushes first), so the figures are those of auditing each request on arrival. One flush
decodes all its ids in one numpy pass and does a handful of numpy and bitmap operations per
(run, stream) group, with no per-message Python work: it saves the per-request numpy overhead.
The per-user order check is `monitor.order.UserOrder`. Which send a copy came from (first,
or a re-send that passed the dedupe) is read from its `sentAt` (`monitor.copies`). Everything that
needs the ledger (lost, rejected-but-delivered) is computed by set algebra when asked
(`DestinationAudit.stats`), so it does not matter whether a ledger delta arrives before or after
the deliveries it describes. The one time-dependent figure is `late`: a seq first delivered after
its loss deadline had passed (`due` at arrival).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, groupby
from typing import TYPE_CHECKING

import numpy as np
from pyroaring import BitMap

from loadgen.ids import CANARY_STREAM, DecodedIds, decode_many, make_uuid
from monitor.behaviours import DISCARD
from monitor.config import DestinationConfig
from monitor.copies import later_send_rows
from monitor.latency import LatencyHistogram
from monitor.ledger_store import LOW_32, LedgerBook, bitmap_bytes, bitmap_of
from monitor.order import NO_USER, UserOrder, user_keys_of

if TYPE_CHECKING:
    from monitor.foreign import ForeignAudit

log = logging.getLogger("monitor")

FLUSH_ROWS = 8192
"""Queued rows that trigger an audit pass (a few ms of numpy work on the request that reaches it)."""

CanaryHook = Callable[[str, np.ndarray, np.ndarray, np.ndarray, float], None]
"""Called with (destination, run, seq, sent_ms columns, arrival_ms) for canary rows."""


@dataclass(slots=True)
class Cell:
    """Audit state of one (destination, run, stream, seq >> 32)."""

    delivered: BitMap = field(default_factory=BitMap)
    resent: BitMap = field(default_factory=BitMap)
    """Seqs delivered from a later send than the first (`monitor.copies`): dedupe leaks."""
    resent_only: BitMap = field(default_factory=BitMap)
    """Seqs delivered from a later send whose first send has not been delivered (yet)."""
    due: BitMap = field(default_factory=BitMap)
    """Expected seqs whose loss deadline has passed."""
    refused_retry: BitMap = field(default_factory=BitMap)
    refused_discard: BitMap = field(default_factory=BitMap)
    order: UserOrder = field(default_factory=UserOrder)
    arrivals: int = 0
    duplicate_deliveries: int = 0
    late: int = 0
    out_of_order: int = 0
    redelivered_after_discard: int = 0
    refused_arrivals: int = 0

    def accept(self, lo: np.ndarray, user_keys: np.ndarray | None, later: np.ndarray | None = None) -> None:
        """Audit the seqs (low 32 bits, in arrival order) of accepted deliveries.

        `user_keys` holds each row's user hash, with `NO_USER` where the event named none; `later`
        marks the rows that are copies of a later send (None: every row is of the first send).
        """
        batch = bitmap_of(lo)
        if self.refused_discard and not self.refused_discard.isdisjoint(batch):
            # A 400-refused message came back: a retry the pipeline must never make.
            banned = np.isin(lo, np.asarray(list(batch & self.refused_discard), dtype=np.uint32))
            self.redelivered_after_discard += int(banned.sum())
            keep = ~banned
            lo = lo[keep]
            if user_keys is not None:
                user_keys = user_keys[keep]
            if later is not None:
                later = later[keep]
            batch = bitmap_of(lo)
            if not len(lo):
                return
        n = len(lo)
        self.arrivals += n
        already = self.delivered.intersection_cardinality(batch)
        extra = n - len(batch) + already
        first = None
        if extra:
            self.duplicate_deliveries += self._extra_copies(lo, later, extra)
            _, first_index = np.unique(lo, return_index=True)
            first = np.zeros(n, dtype=bool)
            first[first_index] = True
            if already:
                first &= ~np.isin(lo, np.asarray(list(batch & self.delivered), dtype=np.uint32))
            new = batch - self.delivered
        else:
            new = batch
        if later is not None and not extra:
            self._mark_later(bitmap_of(lo[~later]), bitmap_of(lo[later]))
        if self.due:
            self.late += self.due.intersection_cardinality(new)
        self.delivered |= batch
        if user_keys is None:
            return
        rows = user_keys != NO_USER
        if first is not None:
            rows &= first
        self.out_of_order += self.order.check(user_keys[rows], lo[rows])

    def _extra_copies(self, lo: np.ndarray, later: np.ndarray | None, extra: int) -> int:
        """Arrivals of a send already delivered (not of a seq: a re-send's first copy is a leak).

        `extra` is the arrivals of seqs already delivered, whichever send they came from; it is the
        answer when no copy of this batch or before came from a later send.
        """
        if later is None and not self.resent_only:
            return extra
        if later is None:
            later = np.zeros(len(lo), dtype=bool)
        first_lo, later_lo = lo[~later], lo[later]
        first_sends, later_sends = bitmap_of(first_lo), bitmap_of(later_lo)
        # a seq delivered so far only from a re-send has not had its first send delivered
        seen_first = self.delivered.intersection_cardinality(first_sends)
        seen_first -= self.resent_only.intersection_cardinality(first_sends)
        copies = len(first_lo) - len(first_sends) + seen_first
        copies += len(later_lo) - len(later_sends) + self.resent.intersection_cardinality(later_sends)
        self._mark_later(first_sends, later_sends)
        return copies

    def _mark_later(self, first_sends: BitMap, later_sends: BitMap) -> None:
        self.resent_only -= first_sends
        self.resent_only |= later_sends - self.delivered - first_sends
        self.resent |= later_sends

    def refuse(self, lo: np.ndarray, refusal_class: str) -> None:
        """Remember seqs of a refused delivery, so their redelivery can be judged."""
        self.refused_arrivals += len(lo)
        target = self.refused_discard if refusal_class == DISCARD else self.refused_retry
        target |= bitmap_of(lo)

    def memory_bytes(self) -> int:
        """Container bytes of the bitmaps (plus ~48 bytes each) and the per-user table's size."""
        bitmaps = (self.delivered, self.resent, self.resent_only, self.due, self.refused_retry, self.refused_discard)
        return sum(map(bitmap_bytes, bitmaps)) + self.user_table_bytes()

    def user_table_bytes(self) -> int:
        """The per-user order table's arrays."""
        return self.order.nbytes()


@dataclass(slots=True)
class DestinationAudit:
    """All audit state of one destination."""

    config: DestinationConfig
    cells: dict[tuple[int, int, int], Cell] = field(default_factory=dict)
    by_run: dict[int, set[tuple[int, int]]] = field(default_factory=dict)
    """run → the (stream, seq >> 32) of its cells, so one run's figures never scan every run's cells."""
    latency: dict[int, LatencyHistogram] = field(default_factory=dict)
    foreign_ids: int = 0
    malformed_bodies: int = 0
    malformed_items: int = 0
    bad_signatures: int = 0
    requests: dict[tuple[int, str], int] = field(default_factory=dict)
    """(status, reason) → request count."""
    refused_messages: dict[str, int] = field(default_factory=dict)
    """reason → messages refused."""

    def cell(self, run: int, stream: int, hi: int) -> Cell:
        key = (run, stream, hi)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
            self.by_run.setdefault(run, set()).add((stream, hi))
        return cell

    def histogram(self, run: int) -> LatencyHistogram:
        hist = self.latency.get(run)
        if hist is None:
            hist = self.latency[run] = LatencyHistogram()
        return hist

    def count_request(self, status: int, reason: str) -> None:
        key = (status, reason)
        self.requests[key] = self.requests.get(key, 0) + 1


@dataclass(slots=True)
class CellStats:
    """Exact figures of one destination for one run (or summed over runs)."""

    expected: int = 0
    delivered: int = 0
    delivered_expected: int = 0
    pending: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    dedupe_leaks: int = 0
    later_send_only: int = 0
    rejected_delivered: int = 0
    abandoned_delivered: int = 0
    redelivered_after_400: int = 0
    refused_retry: int = 0
    refused_retry_redelivered: int = 0
    refused_400: int = 0
    out_of_order: int = 0
    arrivals: int = 0

    def add(self, other: CellStats) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _sent_at_of(batch: list[_Pending]) -> list | None:
    """The sentAt column of consecutive queued requests (None when none of them had one)."""
    if all(item[5] is None for item in batch):
        return None
    return list(chain.from_iterable(item[5] or [None] * len(item[1]) for item in batch))


def _lost_of(cell: Cell, ledger_parts: tuple[BitMap, ...]) -> BitMap:
    rejected, abandoned = ledger_parts
    return cell.due - cell.delivered - cell.refused_discard - rejected - abandoned


_Pending = tuple[DestinationAudit, list, list, float, str | None, list | None]
"""A queued request: destination, messageIds, users, arrival time (ms), refusal class, sentAts."""


class Audit:
    """The audit of every destination, with the ledger book it checks deliveries against."""

    def __init__(self, destinations: dict[str, DestinationConfig], ledgers: LedgerBook) -> None:
        self.destinations = {name: DestinationAudit(cfg) for name, cfg in destinations.items()}
        self.ledgers = ledgers
        self.canary_hook: CanaryHook | None = None
        self.foreign: ForeignAudit | None = None
        """Registered foreign ids (`monitor.foreign`): their figures are added to their run's."""
        self._pending: list[_Pending] = []
        self._pending_rows = 0

    # --- hot path -------------------------------------------------------------------------------

    def record(
        self,
        dest: DestinationAudit,
        message_ids: list,
        users: list,
        arrival_ms: float,
        refusal_class: str | None,
        sent_at: list | None = None,
    ) -> None:
        """Take one delivery request (or, when `refusal_class` is set, its refusal) for the audit.

        Requests are queued and audited together by `flush` (at FLUSH_ROWS rows, and before any
        figure is read): a few numpy calls per thousands of rows instead of per request. `sent_at`
        holds each event's `sentAt` (see `monitor.copies`), None when the request had none.
        """
        self._pending.append((dest, message_ids, users, arrival_ms, refusal_class, sent_at))
        self._pending_rows += len(message_ids)
        if self._pending_rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Audit every queued request, each destination's in arrival order.

        Consecutive requests of one destination with the same outcome are audited as one batch:
        the same figures as one by one, since duplicates across requests are found as duplicates
        within the batch and the first delivery of each seq keeps its place in arrival order.
        """
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        by_destination: dict[str, list[_Pending]] = {}
        for item in pending:
            by_destination.setdefault(item[0].config.name, []).append(item)
        for items in by_destination.values():
            for refusal_class, run_of_items in groupby(items, key=lambda item: item[4]):
                batch = list(run_of_items)
                dest = batch[0][0]
                sent_at = _sent_at_of(batch)
                if len(batch) == 1:
                    message_ids, users, arrival_ms = batch[0][1], batch[0][2], np.float64(batch[0][3])
                else:
                    message_ids = list(chain.from_iterable(item[1] for item in batch))
                    users = list(chain.from_iterable(item[2] for item in batch))
                    arrival_ms = np.repeat(
                        np.array([item[3] for item in batch]), [len(item[1]) for item in batch]
                    )
                if not message_ids:
                    continue
                try:
                    decoded = decode_many(message_ids)
                    if self.foreign is not None and refusal_class is None:
                        self.foreign.record(dest, message_ids, decoded.valid, arrival_ms)
                    self._record(dest, decoded, users, arrival_ms, refusal_class, sent_at)
                except Exception:  # a bug here must not stop the sweep task that also flushes
                    log.exception("audit of %d queued rows for %s failed", len(message_ids), dest.config.name)

    def _record(
        self,
        dest: DestinationAudit,
        decoded: DecodedIds,
        users: list,
        arrival_ms: np.ndarray,
        refusal_class: str | None,
        sent_at: list | None = None,
    ) -> None:
        """Audit one batch of rows; `arrival_ms` is per row or one value for all."""
        valid = decoded.valid
        stream = decoded.stream
        canary = valid & (stream == CANARY_STREAM)
        if canary.any():
            valid = valid & ~canary
            if refusal_class is None and self.canary_hook is not None:
                self._canary_arrivals(dest, decoded, canary, arrival_ms)
        n_valid = int(np.count_nonzero(valid))
        dest.foreign_ids += len(valid) - n_valid - int(np.count_nonzero(canary))
        if not n_valid:
            return
        run, seq, sent_ms = decoded.run, decoded.seq, decoded.sent_ms
        user_keys = None if refusal_class is not None else user_keys_of(users)
        later = None if refusal_class is not None else later_send_rows(sent_at, sent_ms)
        if n_valid < len(valid):
            rows = np.flatnonzero(valid)
            run, stream, seq, sent_ms = run[rows], stream[rows], seq[rows], sent_ms[rows]
            if user_keys is not None:
                user_keys = user_keys[rows]
            if later is not None:
                later = later[rows]
            if arrival_ms.ndim:
                arrival_ms = arrival_ms[rows]
        high = seq >> np.uint64(32)
        lo = (seq & np.uint64(LOW_32)).astype(np.uint32)
        key = (run.astype(np.uint64) << np.uint64(18)) | (stream.astype(np.uint64) << np.uint64(6)) | high
        if key[0] == key.min() == key.max():
            groups: Iterator[tuple[int, np.ndarray | None]] = iter(((int(key[0]), None),))
        else:
            groups = self._groups(key)
        for k, rows in groups:
            cell = dest.cell(k >> 18, (k >> 6) & 0xFFF, k & 0x3F)
            part = lo if rows is None else lo[rows]
            if refusal_class is not None:
                cell.refuse(part, refusal_class)
                continue
            cell.accept(
                part,
                user_keys if rows is None or user_keys is None else user_keys[rows],
                later if rows is None or later is None else later[rows],
            )
        if refusal_class is not None:
            return
        latency_ms = arrival_ms - sent_ms.astype(np.float64)
        if run[0] == run.min() == run.max():
            dest.histogram(int(run[0])).observe_many(latency_ms)
        else:
            for r in np.unique(run).tolist():
                dest.histogram(r).observe_many(latency_ms[run == r])

    def _canary_arrivals(
        self, dest: DestinationAudit, decoded: DecodedIds, canary: np.ndarray, arrival_ms: np.ndarray
    ) -> None:
        """Hand canary rows to the prober, one call per request (each has its own arrival time)."""
        assert self.canary_hook is not None
        rows = np.flatnonzero(canary)
        arrivals = np.broadcast_to(arrival_ms, canary.shape)[rows]
        bounds = np.flatnonzero(np.r_[True, arrivals[1:] != arrivals[:-1], True])
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            part = rows[start:end]
            self.canary_hook(
                dest.config.name,
                decoded.run[part],
                decoded.seq[part],
                decoded.sent_ms[part],
                float(arrivals[start]),
            )

    @staticmethod
    def _groups(key: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        order = np.argsort(key, kind="stable")
        sorted_keys = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            yield int(sorted_keys[s]), order[s:e]  # ascending: the sort is stable

    # --- ledger-driven ----------------------------------------------------------------------------

    def sweep(self, now_ms: float) -> int:
        """Fold accepted seqs whose loss deadline has passed into each destination's `due` sets.

        Queued deliveries are audited first: `late` is judged against `due` as it was at arrival.
        """
        self.flush()
        if self.foreign is not None:
            self.foreign.sweep(now_ms)
        taken = self.ledgers.take_due(now_ms)
        for ledger, pending in taken:
            for dest in self.destinations.values():
                sources = dest.config.sources
                names = pending.accepted.keys() if sources is None else sources
                his = {hi for s in names for hi in pending.accepted.get(s, {})}
                for hi in his:
                    parts = [pending.accepted[s][hi] for s in names if hi in pending.accepted.get(s, {})]
                    newly_due = BitMap.union(*parts)
                    cell = dest.cell(ledger.run, ledger.stream, hi)
                    cell.due |= newly_due
        return len(taken)

    def stats(self, dest: DestinationAudit, run: int) -> CellStats:
        """Exact figures of `dest` for `run` (a run with no ledger yet has only delivery figures)."""
        self.flush()
        total = CellStats()
        sources = dest.config.sources
        keys = set(dest.by_run.get(run, ()))
        run_ledger = self.ledgers.runs.get(run)
        if run_ledger is not None:
            for stream, ledger in run_ledger.streams.items():
                keys.update((stream, hi) for hi in ledger.high_parts())
        for stream, hi in sorted(keys):
            cell = dest.cells.get((run, stream, hi)) or Cell()
            ledger = self.ledgers.stream(run, stream)
            empty = BitMap()
            s = CellStats(
                delivered=len(cell.delivered),
                late=cell.late,
                duplicates=cell.duplicate_deliveries,
                dedupe_leaks=len(cell.resent),
                later_send_only=len(cell.resent_only),
                out_of_order=cell.out_of_order,
                redelivered_after_400=cell.redelivered_after_discard,
                refused_retry=len(cell.refused_retry),
                refused_retry_redelivered=cell.refused_retry.intersection_cardinality(cell.delivered),
                refused_400=len(cell.refused_discard),
                arrivals=cell.arrivals,
            )
            if ledger is not None:
                expected = ledger.accepted_for(sources, hi)
                rejected = ledger.rejected.get(hi, empty)
                abandoned = ledger.abandoned.get(hi, empty)
                lost = _lost_of(cell, (rejected, abandoned))
                s.expected = len(expected)
                s.delivered_expected = expected.intersection_cardinality(cell.delivered)
                s.lost = len(lost)
                s.pending = len(expected - cell.delivered - cell.due - cell.refused_discard)
                s.rejected_delivered = rejected.intersection_cardinality(cell.delivered)
                s.abandoned_delivered = abandoned.intersection_cardinality(cell.delivered)
            total.add(s)
        if self.foreign is not None:
            total.add(self.foreign.stats(dest, run))
        return total

    def lost_ids(self, dest: DestinationAudit, run: int | None, limit: int) -> list[dict[str, object]]:
        """Up to `limit` lost messages of `dest`, oldest seqs first, with their rebuilt messageIds.

        The send time of a lost message is unknown (it never arrived), so its UUID is rebuilt with
        the `sent_until_ms` watermark of the ledger delta that reported it, an upper bound of the
        true send time: run, stream and seq (the UUID's last 74 bits) are exact, the leading
        48-bit time field may be later than the original by up to one ledger interval.
        """
        self.flush()
        out: list[dict[str, object]] = []
        empty = BitMap()
        if run is None:
            keys = sorted(dest.cells)
        else:
            keys = [(run, stream, hi) for stream, hi in sorted(dest.by_run.get(run, ()))]
        for r, stream, hi in keys:
            cell = dest.cells[(r, stream, hi)]
            ledger = self.ledgers.stream(r, stream)
            if ledger is None or not cell.due:
                continue
            lost = _lost_of(cell, (ledger.rejected.get(hi, empty), ledger.abandoned.get(hi, empty)))
            for lo in lost:
                if len(out) >= limit:
                    return out
                seq = (hi << 32) | lo
                watermark = ledger.watermark_for(seq)
                out.append(
                    {
                        "message_id": make_uuid(watermark, r, stream, seq),
                        "run": r,
                        "stream": stream,
                        "seq": seq,
                        "sent_until_ms": watermark,
                    }
                )
        if self.foreign is not None and len(out) < limit:
            out += self.foreign.lost_ids(dest, run, limit - len(out))
        return out

    def runs_seen(self) -> set[int]:
        self.flush()
        runs = set(self.ledgers.runs)
        if self.foreign is not None:
            runs.update(self.foreign.runs)
        for dest in self.destinations.values():
            runs.update(dest.by_run)
        return runs

    def memory_bytes(self) -> int:
        """Bytes held by the audit's bitmaps and per-user tables (an estimate for the benchmark)."""
        self.flush()
        return sum(cell.memory_bytes() for d in self.destinations.values() for cell in d.cells.values())

    def user_table_bytes(self) -> int:
        """The part of `memory_bytes` held by per-user order tables (bounded by users × streams)."""
        self.flush()
        return sum(cell.user_table_bytes() for d in self.destinations.values() for cell in d.cells.values())
