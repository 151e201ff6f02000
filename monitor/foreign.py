"""The exact audit of registered foreign messageIds: arbitrary id strings told to the monitor per run.

Ids the harness did not make carry no run, stream or seq, so each is known by a 64-bit digest
(BLAKE2b-64 of its UTF-8 bytes) and numbered in registration order (its *index* in the run):

- per run: the digests sorted, with each one's index beside it (8 + 4 bytes an id), each index's
  send time as a uint32 millisecond offset (4 bytes; UNKNOWN when not given), per-source and
  due sets of indexes as roaring bitmaps (ranges: a few bytes in all), and the id strings
  themselves, zlib-compressed per registration post, read only to list lost ids;
- per run and destination: a roaring bitmap of delivered indexes (dense: about a bit an id) and
  counters (arrivals, duplicates, late).

A delivery's ids that are not in the harness format are digested and looked up in every run's
sorted digests (binary search, one numpy call per run). An id not registered (yet) is kept in its
destination's *unclaimed* pool (digest and arrival time, 16 bytes a row, at most
`foreign_unclaimed_max_ids` rows) so a registration that comes after the deliveries, as from
`harness ledger` after a test, still finds them; rows beyond the cap are only counted.

Two distinct ids share a digest with probability 2^-64 each pair (BLAKE2b modelled as a random
function), so among n registered ids and m other foreign arrivals the chance that any figure is
off is at most (n^2/2 + n*m) / 2^64: about 3e-8 for n = m = 10^6 (docs/auditing-your-traffic.md).
"""

from __future__ import annotations

import hashlib
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
from pyroaring import BitMap

from loadgen.foreign_ledger import ForeignIds
from monitor.audit import CellStats, DestinationAudit
from monitor.ledger_store import bitmap_of

UNKNOWN_SENT = np.uint32(0xFFFFFFFF)
"""Send-time offset of an id registered without one (latency is not measured for it)."""
_OFFSET_SPAN_MS = 0xFFFFFFFE
_DIGEST_STATE = hashlib.blake2b(digest_size=8, person=b"cdp-foreign")


def digests(message_ids: Sequence[str]) -> np.ndarray:
    """The 64-bit digest of each id (BLAKE2b-64 of its UTF-8 bytes, keyed by a fixed personalisation)."""
    copy = _DIGEST_STATE.copy
    out = bytearray()
    for message_id in message_ids:
        h = copy()
        h.update(message_id.encode("utf-8", "surrogatepass"))
        out += h.digest()
    return np.frombuffer(bytes(out), dtype="<u8").astype(np.uint64)


@dataclass(slots=True)
class ForeignCell:
    """Audit state of one (run, destination)."""

    delivered: BitMap = field(default_factory=BitMap)
    arrivals: int = 0
    duplicates: int = 0
    late: int = 0


@dataclass(slots=True)
class _Strings:
    """The id strings of one registration post, compressed, for listing lost ids."""

    first: int
    count: int
    blob: bytes

    def read(self) -> list[str]:
        return orjson.loads(zlib.decompress(self.blob))


@dataclass(slots=True)
class ForeignRun:
    """The registered ids of one run and what each destination received of them."""

    run: int
    name: str = ""
    size: int = 0
    sorted_digests: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    sorted_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint32))
    sent_offsets: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint32))
    base_ms: int | None = None
    by_source: dict[str | None, BitMap] = field(default_factory=dict)
    due: BitMap = field(default_factory=BitMap)
    pending: deque[tuple[float, int, int]] = field(default_factory=deque)
    """(due_ms, first index, stop index) of posts not yet past their loss deadline."""
    registered_ms: list[tuple[int, int]] = field(default_factory=list)
    """(first index, the time the loss deadline runs from) per post, for listing lost ids."""
    strings: list[_Strings] = field(default_factory=list)
    cells: dict[str, ForeignCell] = field(default_factory=dict)
    posts: int = 0
    final: bool = False
    duplicate_registrations: int = 0

    def lookup(self, digest: np.ndarray) -> np.ndarray:
        """Each digest's index in this run, or -1 where it is not registered."""
        if not self.size or not len(digest):
            return np.full(len(digest), -1, dtype=np.int64)
        pos = np.searchsorted(self.sorted_digests, digest)
        pos = np.minimum(pos, self.size - 1)
        found = self.sorted_digests[pos] == digest
        return np.where(found, self.sorted_index[pos].astype(np.int64), -1)

    def expected_for(self, sources: tuple[str, ...] | None) -> BitMap:
        """Indexes of ids registered for a source that feeds a destination with these `sources`."""
        parts = [b for s, b in self.by_source.items() if sources is None or s is None or s in sources]
        return BitMap.union(*parts) if parts else BitMap()

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held: the audit state proper, and the compressed strings kept for listing lost ids."""
        bitmaps = [*self.by_source.values(), self.due, *(c.delivered for c in self.cells.values())]
        audit = self.sorted_digests.nbytes + self.sorted_index.nbytes + self.sent_offsets.nbytes
        audit += sum(b.get_statistics()["n_bytes_array_containers"] for b in bitmaps)
        audit += sum(b.get_statistics()["n_bytes_bitset_containers"] for b in bitmaps)
        audit += sum(b.get_statistics()["n_bytes_run_containers"] for b in bitmaps)
        return {"audit": audit, "strings": sum(len(s.blob) for s in self.strings)}


@dataclass(slots=True)
class _Pool:
    """Foreign arrivals at one destination that no registration claimed yet, in arrival order."""

    digests: list[np.ndarray] = field(default_factory=list)
    arrivals: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    overflow: int = 0

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.digests:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64)
        d, a = np.concatenate(self.digests), np.concatenate(self.arrivals)
        self.digests, self.arrivals = [d], [a]
        return d, a

    def keep(self, digest: np.ndarray, arrival: np.ndarray) -> None:
        self.digests, self.arrivals = ([digest], [arrival]) if len(digest) else ([], [])
        self.rows = len(digest)


class ForeignAudit:
    """Registered foreign ids of every run, checked against what each destination receives."""

    def __init__(
        self, destinations: dict[str, DestinationAudit], lost_after_seconds: float, max_unclaimed: int
    ) -> None:
        self.destinations = destinations
        self.lost_after_ms = lost_after_seconds * 1000.0
        self.max_unclaimed = max_unclaimed
        self.runs: dict[int, ForeignRun] = {}
        self.pools = {name: _Pool() for name in destinations}

    # --- registration -----------------------------------------------------------------------------

    def register(self, reg: ForeignIds, now_ms: float) -> dict[str, int]:
        """Add one registration post; deliveries already waiting in the pools are claimed at once."""
        run = self.runs.setdefault(reg.run, ForeignRun(reg.run))
        if reg.run_name:
            run.name = reg.run_name
        run.posts += 1
        run.final = run.final or reg.final
        digest = digests(reg.ids)
        _, first = np.unique(digest, return_index=True)
        first.sort()  # registration order
        fresh = first[run.lookup(digest[first]) < 0]
        run.duplicate_registrations += len(reg.ids) - len(fresh)
        start, stop = run.size, run.size + len(fresh)
        if not len(fresh):
            return {"registered": 0, "duplicates": len(reg.ids)}
        new_digests = digest[fresh]
        all_digests = np.concatenate([run.sorted_digests, new_digests])
        all_index = np.concatenate([run.sorted_index, np.arange(start, stop, dtype=np.uint32)])
        order = np.argsort(all_digests, kind="stable")
        run.sorted_digests, run.sorted_index, run.size = all_digests[order], all_index[order], stop
        run.sent_offsets = np.concatenate([run.sent_offsets, self._offsets(run, reg, fresh)])
        run.by_source.setdefault(reg.source, BitMap()).add_range(start, stop)
        deadline_from = reg.sent_until_ms if reg.sent_until_ms is not None else now_ms
        run.pending.append((deadline_from + self.lost_after_ms, start, stop))
        run.registered_ms.append((start, int(deadline_from)))
        strings = [reg.ids[i] for i in fresh.tolist()]
        run.strings.append(_Strings(start, len(strings), zlib.compress(orjson.dumps(strings), 6)))
        self._claim(run, new_digests, start)
        return {"registered": len(fresh), "duplicates": len(reg.ids) - len(fresh)}

    @staticmethod
    def _offsets(run: ForeignRun, reg: ForeignIds, rows: np.ndarray) -> np.ndarray:
        """Send times of the fresh ids as uint32 ms offsets from the run's base (UNKNOWN if not given)."""
        out = np.full(len(rows), UNKNOWN_SENT, dtype=np.uint32)
        if reg.sent_ms is None:
            return out
        sent = np.array([reg.sent_ms[i] if reg.sent_ms[i] is not None else -1 for i in rows.tolist()], np.int64)
        known = sent >= 0
        if not known.any():
            return out
        if run.base_ms is None:
            run.base_ms = int(sent[known].min()) - _OFFSET_SPAN_MS // 2
        offset = sent - run.base_ms
        fits = known & (offset >= 0) & (offset < _OFFSET_SPAN_MS)
        out[fits] = offset[fits].astype(np.uint32)
        return out

    def _claim(self, run: ForeignRun, new_digests: np.ndarray, start: int) -> None:
        """Audit pooled arrivals of ids just registered (new_digests, indexes from `start`)."""
        order = np.argsort(new_digests)
        sorted_new = new_digests[order]
        for name, pool in self.pools.items():
            pooled, arrival = pool.take()
            if not len(pooled):
                continue
            pos = np.minimum(np.searchsorted(sorted_new, pooled), len(sorted_new) - 1)
            hit = sorted_new[pos] == pooled
            if not hit.any():
                continue
            index = (order[pos[hit]] + start).astype(np.uint32)
            self._deliver(run, self.destinations[name], index, arrival[hit])
            pool.keep(pooled[~hit], arrival[~hit])

    # --- deliveries (called from Audit.flush with each batch's rows) -------------------------------

    def record(
        self, dest: DestinationAudit, message_ids: list, valid: np.ndarray, arrival_ms: float | np.ndarray
    ) -> None:
        """Audit the rows of an accepted delivery batch that are not harness ids (`valid` False)."""
        rows = np.flatnonzero(~valid)
        if not len(rows):
            return
        picked = [(i, message_ids[i]) for i in rows.tolist()]
        picked = [(i, m) for i, m in picked if isinstance(m, str) and m]
        if not picked:
            return
        index_rows = np.fromiter((i for i, _ in picked), dtype=np.int64, count=len(picked))
        digest = digests([m for _, m in picked])
        arrival = np.broadcast_to(np.asarray(arrival_ms, dtype=np.float64), valid.shape)[index_rows]
        unclaimed = np.ones(len(digest), dtype=bool)
        for run in self.runs.values():
            index = run.lookup(digest)
            hit = index >= 0
            if hit.any():
                self._deliver(run, dest, index[hit].astype(np.uint32), arrival[hit])
                unclaimed &= ~hit
        if unclaimed.any():
            pool = self.pools[dest.config.name]
            room = max(0, self.max_unclaimed - pool.rows)
            keep = np.flatnonzero(unclaimed)
            pool.overflow += max(0, len(keep) - room)
            keep = keep[:room]
            if len(keep):
                pool.digests.append(digest[keep])
                pool.arrivals.append(np.array(arrival[keep], dtype=np.float64))
                pool.rows += len(keep)

    def _deliver(self, run: ForeignRun, dest: DestinationAudit, index: np.ndarray, arrival: np.ndarray) -> None:
        """Count arrivals of registered ids (indexes in arrival order) at `dest`."""
        cell = run.cells.get(dest.config.name)
        if cell is None:
            cell = run.cells[dest.config.name] = ForeignCell()
        batch = bitmap_of(index)
        cell.arrivals += len(index)
        cell.duplicates += len(index) - len(batch) + cell.delivered.intersection_cardinality(batch)
        if run.due:
            cell.late += run.due.intersection_cardinality(batch - cell.delivered)
        cell.delivered |= batch
        sent = run.sent_offsets[index]
        known = sent != UNKNOWN_SENT
        if known.any() and run.base_ms is not None:
            latency_ms = arrival[known] - (sent[known].astype(np.float64) + run.base_ms)
            dest.histogram(run.run).observe_many(latency_ms)

    # --- figures ------------------------------------------------------------------------------------

    def sweep(self, now_ms: float) -> None:
        """Posts whose loss deadline has passed become due: their undelivered ids are lost from now on."""
        for run in self.runs.values():
            while run.pending and run.pending[0][0] <= now_ms:
                _, start, stop = run.pending.popleft()
                run.due.add_range(start, stop)

    def stats(self, dest: DestinationAudit, run_id: int) -> CellStats:
        """The registered ids' share of `dest`'s figures for one run (zero when none are registered)."""
        run = self.runs.get(run_id)
        if run is None:
            return CellStats()
        cell = run.cells.get(dest.config.name) or ForeignCell()
        expected = run.expected_for(dest.config.sources)
        due = run.due & expected
        return CellStats(
            expected=len(expected),
            delivered=len(cell.delivered),
            delivered_expected=expected.intersection_cardinality(cell.delivered),
            pending=len(expected - cell.delivered - due),
            lost=len(due - cell.delivered),
            late=cell.late,
            duplicates=cell.duplicates,
            arrivals=cell.arrivals,
        )

    def lost_ids(self, dest: DestinationAudit, run_id: int | None, limit: int) -> list[dict[str, object]]:
        """Up to `limit` lost registered ids of `dest`, by their original string, in registration order."""
        out: list[dict[str, object]] = []
        for run in sorted(self.runs.values(), key=lambda r: r.run):
            if run_id is not None and run.run != run_id:
                continue
            cell = run.cells.get(dest.config.name) or ForeignCell()
            lost = (run.due & run.expected_for(dest.config.sources)) - cell.delivered
            if not lost:
                continue
            starts = [s.first for s in run.strings]
            wanted: dict[int, list[int]] = {}
            for index in lost.to_array()[: limit - len(out)].tolist():
                block = int(np.searchsorted(starts, index, side="right")) - 1
                wanted.setdefault(block, []).append(index)
            for block, indexes in sorted(wanted.items()):
                strings = run.strings[block]
                text = strings.read()
                reg_ms = run.registered_ms[block][1]
                for index in indexes:
                    sent = run.sent_offsets[index]
                    out.append(
                        {
                            "message_id": text[index - strings.first],
                            "run": run.run,
                            "stream": None,
                            "seq": None,
                            "sent_until_ms": reg_ms,
                            "sent_ms": None if sent == UNKNOWN_SENT else int(sent) + (run.base_ms or 0),
                            "foreign": True,
                        }
                    )
            if len(out) >= limit:
                break
        return out[:limit]

    def unclaimed(self) -> dict[str, dict[str, int]]:
        """Per destination: foreign arrivals waiting for a registration, and those beyond the pool's cap."""
        return {name: {"waiting": p.rows, "overflow": p.overflow} for name, p in self.pools.items()}

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held by every run's audit state, their kept strings, and the unclaimed pools."""
        audit = strings = 0
        for run in self.runs.values():
            m = run.memory_bytes()
            audit, strings = audit + m["audit"], strings + m["strings"]
        pools = sum(pool.rows * 16 for pool in self.pools.values())
        return {"audit": audit, "strings": strings, "unclaimed": pools}
