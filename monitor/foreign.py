"""The exact audit of registered foreign messageIds: arbitrary id strings told to the monitor per run.

Ids the harness did not make carry no run, stream or seq, so each is known by a 64-bit digest
(BLAKE2b-64 of its UTF-8 bytes) and by its *position* in its run's sorted digests:

- per run: the sorted digests (8 bytes an id), each one's send time as a uint32 millisecond offset
  beside it (4 bytes; UNKNOWN when not given), and roaring bitmaps of positions per source and of
  positions past their loss deadline (dense: about a bit an id each); the id strings themselves are
  kept zlib-compressed per registration post, read (and digested again) only to list lost ids;
- per run and destination: a roaring bitmap of delivered positions and counters (arrivals,
  duplicates, late).
A registration merges its new digests into the sorted array and shifts every position bitmap by
the count of new digests below each position (one numpy pass each), so no per-id index is kept.

A delivery's ids that are not in the harness format are digested and looked up in every run's
sorted digests (binary search, one numpy call per run). An id not registered (yet) is kept in its
destination's *unclaimed* pool (digest and arrival time, 16 bytes a row, at most
`foreign_unclaimed_max_ids` rows) so a registration that comes after the deliveries, as from
`harness ledger` after a test, still finds them; rows beyond the cap are only counted.

Two distinct ids share a digest with probability 2^-64 each pair (BLAKE2b modelled as a random
function), so among n registered ids and m other foreign arrivals the chance that any figure is
off is at most (n^2/2 + n*m) / 2^64: about 8e-8 for n = m = 10^6 (docs/auditing-your-traffic.md).
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

from loadgen.ledger import ForeignIds
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
class _Post:
    """One registration post: its id strings, compressed, and when its loss deadline started."""

    blob: bytes
    deadline_from_ms: int

    def read(self) -> list[str]:
        return orjson.loads(zlib.decompress(self.blob))


def _shifted(bitmap: BitMap, shift: np.ndarray) -> BitMap:
    """`bitmap`'s positions moved up by `shift[position]` (new digests merged in below them)."""
    if not bitmap:
        return bitmap
    positions = np.frombuffer(bitmap.to_array(), dtype=np.uint32).astype(np.int64)
    return bitmap_of((positions + shift[positions]).astype(np.uint32))


@dataclass(slots=True)
class ForeignRun:
    """The registered ids of one run and what each destination received of them."""

    run: int
    name: str = ""
    sorted_digests: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    sent_offsets: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint32))
    """Send time of the id at each position, ms after `base_ms` (UNKNOWN_SENT when not given)."""
    base_ms: int | None = None
    by_source: dict[str | None, BitMap] = field(default_factory=dict)
    due: BitMap = field(default_factory=BitMap)
    pending: deque[list] = field(default_factory=deque)
    """[due_ms, positions] of posts not yet past their loss deadline."""
    posts: list[_Post] = field(default_factory=list)
    cells: dict[str, ForeignCell] = field(default_factory=dict)
    registrations: int = 0
    final: bool = False
    duplicate_registrations: int = 0

    @property
    def size(self) -> int:
        return len(self.sorted_digests)

    def lookup(self, digest: np.ndarray) -> np.ndarray:
        """Each digest's position in this run, or -1 where it is not registered."""
        if not self.size or not len(digest):
            return np.full(len(digest), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.sorted_digests, digest), self.size - 1)
        return np.where(self.sorted_digests[pos] == digest, pos, -1)

    def merge(self, digest: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Add new distinct digests (not registered yet) with their send offsets; their positions."""
        order = np.argsort(digest)
        new_sorted = digest[order]
        shift = np.searchsorted(new_sorted, self.sorted_digests)  # new digests below each old one
        old_to = np.arange(self.size, dtype=np.int64) + shift
        new_to = np.arange(len(new_sorted), dtype=np.int64) + np.searchsorted(self.sorted_digests, new_sorted)
        merged = np.empty(self.size + len(new_sorted), dtype=np.uint64)
        merged[old_to], merged[new_to] = self.sorted_digests, new_sorted
        sent = np.empty(len(merged), dtype=np.uint32)
        sent[old_to], sent[new_to] = self.sent_offsets, offsets[order]
        if self.size:
            self.by_source = {s: _shifted(b, shift) for s, b in self.by_source.items()}
            self.due = _shifted(self.due, shift)
            for entry in self.pending:
                entry[1] = _shifted(entry[1], shift)
            for cell in self.cells.values():
                cell.delivered = _shifted(cell.delivered, shift)
        self.sorted_digests, self.sent_offsets = merged, sent
        positions = np.empty(len(digest), dtype=np.int64)
        positions[order] = new_to
        return positions

    def expected_for(self, sources: tuple[str, ...] | None) -> BitMap:
        """Positions of ids registered for a source that feeds a destination with these `sources`."""
        parts = [b for s, b in self.by_source.items() if sources is None or s is None or s in sources]
        return BitMap.union(*parts) if parts else BitMap()

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held: the audit state proper, and the compressed strings kept for listing lost ids."""
        bitmaps = [*self.by_source.values(), self.due, *(c.delivered for c in self.cells.values())]
        bitmaps += [entry[1] for entry in self.pending]
        audit = self.sorted_digests.nbytes + self.sent_offsets.nbytes
        for b in bitmaps:
            st = b.get_statistics()
            audit += 48 + st["n_containers"] * 16 + st["n_bytes_array_containers"]
            audit += st["n_bytes_bitset_containers"] + st["n_bytes_run_containers"]
        return {"audit": audit, "strings": sum(len(p.blob) for p in self.posts)}


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
        run.registrations += 1
        run.final = run.final or reg.final
        digest = digests(reg.ids)
        _, first = np.unique(digest, return_index=True)
        first.sort()  # registration order
        fresh = first[run.lookup(digest[first]) < 0]
        run.duplicate_registrations += len(reg.ids) - len(fresh)
        counts = {"registered": len(fresh), "duplicates": len(reg.ids) - len(fresh)}
        if not len(fresh):
            return counts
        new_digests = digest[fresh]
        positions = bitmap_of(run.merge(new_digests, self._offsets(run, reg, fresh)).astype(np.uint32))
        run.by_source[reg.source] = run.by_source.get(reg.source, BitMap()) | positions
        deadline_from = reg.sent_until_ms if reg.sent_until_ms is not None else int(now_ms)
        run.pending.append([deadline_from + self.lost_after_ms, positions])
        strings = [reg.ids[i] for i in fresh.tolist()]
        run.posts.append(_Post(zlib.compress(orjson.dumps(strings), 6), deadline_from))
        self._claim(run, new_digests)
        return counts

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

    def _claim(self, run: ForeignRun, new_digests: np.ndarray) -> None:
        """Audit pooled arrivals of ids just registered."""
        sorted_new = np.sort(new_digests)
        for name, pool in self.pools.items():
            pooled, arrival = pool.take()
            if not len(pooled):
                continue
            pos = np.minimum(np.searchsorted(sorted_new, pooled), len(sorted_new) - 1)
            hit = sorted_new[pos] == pooled
            if not hit.any():
                continue
            positions = run.lookup(pooled[hit]).astype(np.uint32)
            self._deliver(run, self.destinations[name], positions, arrival[hit])
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
            position = run.lookup(digest)
            hit = position >= 0
            if hit.any():
                self._deliver(run, dest, position[hit].astype(np.uint32), arrival[hit])
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
        """Count arrivals of registered ids (positions, in arrival order) at `dest`."""
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
                run.due |= run.pending.popleft()[1]

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
        """Up to `limit` lost registered ids of `dest`, by their original string, in registration order.

        The strings are found by digesting each post's ids again, post by post, until `limit` are
        found: cheap for the few samples of a summary, a pass over the run for a full listing.
        """
        out: list[dict[str, object]] = []
        for run in sorted(self.runs.values(), key=lambda r: r.run):
            if run_id is not None and run.run != run_id:
                continue
            cell = run.cells.get(dest.config.name) or ForeignCell()
            lost = (run.due & run.expected_for(dest.config.sources)) - cell.delivered
            if not lost:
                continue
            lost_digests = run.sorted_digests[np.frombuffer(lost.to_array(), dtype=np.uint32)]
            for post in run.posts:
                strings = post.read()
                post_digests = digests(strings)
                for row in np.flatnonzero(np.isin(post_digests, lost_digests)).tolist():
                    sent = run.sent_offsets[run.lookup(post_digests[row : row + 1])[0]]
                    out.append(
                        {
                            "message_id": strings[row],
                            "run": run.run,
                            "stream": None,
                            "seq": None,
                            "sent_until_ms": post.deadline_from_ms,
                            "sent_ms": None if sent == UNKNOWN_SENT else int(sent) + (run.base_ms or 0),
                            "foreign": True,
                        }
                    )
                    if len(out) >= limit:
                        return out
        return out

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
