"""Sliding-window messageId dedupe with bounded memory (about 12 bytes per remembered id).

Each id is reduced to a 64-bit hash of (source, messageId) and stored with a 32-bit time stamp
(tenths of a second since 2020). Recent ids sit in a small Python dict (fast inserts); it is merged
into a sorted numpy "mid" tier when it reaches `buffer_size`, and the mid tier into the sorted "big"
tier when it reaches `mid_size`, so each id is copied only a few times and lookups are one dict probe
plus two binary searches. Merges drop expired ids; when more than `max_ids` remain the oldest are
evicted (counted). Written by hand because no installed library offers a time-windowed set.

Collision trade-off: two different ids share a 64-bit hash with probability about n²/2⁶⁵ for n ids
in the window: for 10 million remembered ids that is about 3 in a million per window, and a collision
only makes the sandbox treat one new message as a duplicate. 128-bit keys would halve the risk
exponent at 20 bytes per id; 64 bits is the usual choice for this trade.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

_EPOCH = 1_577_836_800.0  # 2020-01-01T00:00:00Z; time stamps are uint32 tenths of a second from here
_EMPTY_KEYS = np.empty(0, dtype=np.int64)
_EMPTY_TIMES = np.empty(0, dtype=np.uint32)


_SOURCE_HASHERS: dict[str, Any] = {}  # source -> blake2b state after "<source>\x00"


def _source_hasher(source: str) -> Any:
    """The blake2b state of one source's prefix: copying it costs less than a new hasher per id."""
    hasher = _SOURCE_HASHERS.get(source)
    if hasher is None:
        if len(_SOURCE_HASHERS) >= 1024:
            _SOURCE_HASHERS.clear()
        prefix = f"{source}\x00".encode("utf-8", "surrogatepass")
        hasher = _SOURCE_HASHERS[source] = hashlib.blake2b(prefix, digest_size=8)
    return hasher


def id_hash(source: str, message_id: str) -> int:
    """Stable signed 64-bit hash of one (source, messageId); stable across restarts for the saved state.

    It is blake2b-64 of `<source>` NUL `<messageId>` in UTF-8 (lone surrogates passed through).
    """
    h = _source_hasher(source).copy()
    h.update(message_id.encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "little", signed=True)


def id_hashes(source: str, message_ids: list[str]) -> list[int]:
    """`id_hash` of each messageId of one request (the same values), with the per-call work done once.

    The source's prefix state is copied per id (the hasher's constructor costs more than hashing a
    short id) and the digests become ints in one numpy call: well under half the cost of a new
    hasher and `int.from_bytes` per message.
    """
    if len(message_ids) < 4:
        return [id_hash(source, m) for m in message_ids]  # numpy's call overhead is not worth it
    copy = _source_hasher(source).copy
    digests = []
    append = digests.append
    for m in message_ids:
        h = copy()
        h.update(m.encode("utf-8", "surrogatepass"))
        append(h.digest())
    return np.frombuffer(b"".join(digests), dtype="<i8").tolist()


def tick_of(now: float) -> int:
    """The dedupe clock: tenths of a second since the deduper's epoch."""
    return int((now - _EPOCH) * 10)


class Deduper:
    """Remembers (source, messageId) hashes for `window_seconds`, at most `max_ids` of them."""

    def __init__(
        self, window_seconds: float, max_ids: int, buffer_size: int = 16384, mid_size: int = 1 << 20
    ) -> None:
        self.window_ticks = max(1, int(window_seconds * 10))
        self.max_ids = max_ids
        self.buffer_size = buffer_size
        self.mid_size = min(mid_size, max_ids)
        self.buffer: dict[int, int] = {}
        self.mid_keys, self.mid_times = _EMPTY_KEYS, _EMPTY_TIMES
        self.big_keys, self.big_times = _EMPTY_KEYS, _EMPTY_TIMES
        self.hits = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.buffer) + len(self.mid_keys) + len(self.big_keys)

    def nbytes(self) -> int:
        """Bytes held by the sorted tiers (the buffer is bounded by `buffer_size`)."""
        return self.mid_keys.nbytes + self.mid_times.nbytes + self.big_keys.nbytes + self.big_times.nbytes

    def seen_many(self, keys: list[int], now: float | None = None) -> list[bool]:
        """For each key: True if it was seen inside the window (a duplicate), else remember it."""
        tick = tick_of(time.time() if now is None else now)
        oldest = tick - self.window_ticks
        out = [False] * len(keys)
        if len(keys) <= 8:
            # a few keys (single-event requests): scalar searches beat a dozen small numpy calls
            old = [self._scalar_hit(k, oldest) for k in keys]
        elif len(self.mid_keys) or len(self.big_keys):
            arr = np.fromiter(keys, dtype=np.int64, count=len(keys))
            # sorted needles let numpy's binary search reuse its previous bounds (far fewer cache misses)
            order = np.argsort(arr)
            needles = arr[order]
            hit = self._tier_hits(self.mid_keys, self.mid_times, needles, oldest)
            hit |= self._tier_hits(self.big_keys, self.big_times, needles, oldest)
            old_hit = np.empty_like(hit)
            old_hit[order] = hit
            old = old_hit.tolist()
        else:
            old = out
        buffer = self.buffer
        for i, k in enumerate(keys):
            t = buffer.get(k)
            if (t is not None and t >= oldest) or old[i]:
                out[i] = True
                continue
            buffer[k] = tick
        self.hits += out.count(True)
        if len(buffer) >= self.buffer_size:
            self._flush(tick)
        return out

    def _scalar_hit(self, key: int, oldest: int) -> bool:
        for tier_keys, tier_times in ((self.mid_keys, self.mid_times), (self.big_keys, self.big_times)):
            n = len(tier_keys)
            if n:
                i = int(tier_keys.searchsorted(key))
                # .item(): plain-int comparisons instead of numpy scalars (this runs per single event)
                if i < n and tier_keys.item(i) == key and tier_times.item(i) >= oldest:
                    return True
        return False

    @staticmethod
    def _tier_hits(tier_keys: np.ndarray, tier_times: np.ndarray, arr: np.ndarray, oldest: int) -> np.ndarray:
        if not len(tier_keys):
            return np.zeros(len(arr), dtype=bool)
        idx = np.searchsorted(tier_keys, arr)
        np.minimum(idx, len(tier_keys) - 1, out=idx)
        return (tier_keys[idx] == arr) & (tier_times[idx] >= oldest)

    def _flush(self, tick: int) -> None:
        keys = np.fromiter(self.buffer.keys(), dtype=np.int64, count=len(self.buffer))
        times = np.fromiter(self.buffer.values(), dtype=np.uint32, count=len(self.buffer))
        self.buffer = {}
        order = np.argsort(keys)
        self.mid_keys, self.mid_times = self._merge(
            self.mid_keys, self.mid_times, keys[order], times[order], tick
        )
        if len(self.mid_keys) >= self.mid_size:
            self.big_keys, self.big_times = self._merge(
                self.big_keys, self.big_times, self.mid_keys, self.mid_times, tick
            )
            self.mid_keys, self.mid_times = _EMPTY_KEYS, _EMPTY_TIMES
        excess = len(self) - self.max_ids
        if excess > 0:
            self._evict_oldest(excess)

    def _merge(
        self, ak: np.ndarray, at: np.ndarray, bk: np.ndarray, bt: np.ndarray, tick: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merge sorted tier (bk, bt) into sorted tier (ak, at), dropping expired ids; O(n), no re-sort.

        Each tier holds a key once. A key in both (seen again after it expired) keeps the newer time.
        """
        oldest = tick - self.window_ticks
        live = at >= oldest
        if not live.all():
            ak, at = ak[live], at[live]
        live = bt >= oldest
        if not live.all():
            bk, bt = bk[live], bt[live]
        pos = np.searchsorted(ak, bk)
        if len(ak) and len(bk):
            clipped = np.minimum(pos, len(ak) - 1)
            exists = ak[clipped] == bk
            if exists.any():
                at = at.copy()
                at[clipped[exists]] = np.maximum(at[clipped[exists]], bt[exists])
                fresh = ~exists
                bk, bt, pos = bk[fresh], bt[fresh], pos[fresh]
        return np.insert(ak, pos, bk), np.insert(at, pos, bt)

    def _evict_oldest(self, excess: int) -> None:
        """Forget the `excess` oldest ids of the big tier (the mid tier if the big one is empty)."""
        keys, times = (
            (self.big_keys, self.big_times) if len(self.big_keys) else (self.mid_keys, self.mid_times)
        )
        excess = min(excess, len(keys))
        cut = np.partition(times, excess - 1)[excess - 1]
        keep = times > cut
        dropped = len(keys) - int(keep.sum())
        self.evicted += dropped
        if keys is self.big_keys:
            self.big_keys, self.big_times = keys[keep], times[keep]
        else:
            self.mid_keys, self.mid_times = keys[keep], times[keep]

    def save(self, path: str | Path) -> None:
        """Write the remembered ids, so a restart keeps deduping retries of earlier messages."""
        self._flush(tick_of(time.time()))
        keys, times = self._merge(
            self.big_keys, self.big_times, self.mid_keys, self.mid_times, tick_of(time.time())
        )
        tmp = Path(f"{path}.tmp")
        with tmp.open("wb") as f:
            np.savez(f, keys=keys, times=times)
        tmp.replace(path)

    def load(self, path: str | Path) -> int:
        """Read a state file written by `save`; returns how many ids were restored."""
        with np.load(path) as data:
            keys, times = data["keys"].astype(np.int64), data["times"].astype(np.uint32)
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            raise ValueError("dedupe state keys are not sorted and unique")
        self.big_keys, self.big_times = self._merge(
            self.big_keys, self.big_times, keys, times, tick_of(time.time())
        )
        return len(keys)
