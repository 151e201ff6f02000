"""Per-user delivery order: which deliveries came after a later message of the same user.

A delivery is out of order when its seq is below the highest seq already first-delivered for the
same user (in the same run, stream and seq range). `UserOrder` keeps that highest seq per user in
an open-addressing hash table held in numpy arrays, and checks a whole batch of rows with a
handful of vectorized steps. It is written by hand because no library here offers a vectorized
int64 -> int64 map: a dict costs a Python-level get and set per row (several times slower on the
receiver's hot path) and more memory (about 93 B a user against 40 to 80 B here).
"""

from __future__ import annotations

import numpy as np

NO_USER = -1
"""The key of an event without a user, and of an empty slot: CPython's `hash` never returns -1."""

_GROUP_SPAN = np.int64(1 << 34)  # above any stored value (seq + 1, seqs being 32-bit)
_MIN_CAPACITY = 1024
BUCKET = 8  # slots per bucket: one 8-byte word of comparison results


def user_keys_of(users: list) -> np.ndarray:
    """Each event's user as an int64 key (`hash` of its text), NO_USER for an event without one.

    Keys are this process's string hashes (64-bit): good for the in-memory table only. The chance
    that two users of one run and stream share a hash is about 3e-12 at 10^4 users, 3e-8 at 10^6.
    """
    keys = np.fromiter(map(hash, users), dtype=np.int64, count=len(users))
    if None in users:
        keys[np.fromiter((u is None for u in users), dtype=bool, count=len(users))] = NO_USER
    return keys


def _no_free_slot_of(free: np.ndarray) -> np.ndarray:
    """Per bucket row of free-slot flags: whether none is set (8 booleans read as one word)."""
    return free.view(np.uint64).ravel() == 0


def _no_free_slot(rows: np.ndarray) -> np.ndarray:
    """Per bucket row of keys: whether it is full."""
    return _no_free_slot_of(rows == NO_USER)


class UserOrder:
    """Highest seq first-delivered per user, and the count of rows that arrived below it."""

    __slots__ = ("_keys", "_scratch", "_size", "_values")

    def __init__(self) -> None:
        self._size = 0
        self._allocate(_MIN_CAPACITY)

    def _allocate(self, capacity: int) -> None:
        self._keys = np.full(capacity, NO_USER, dtype=np.int64)
        self._values = np.zeros(capacity, dtype=np.int64)
        """seq + 1 of the user's highest first-delivered seq (0: a user just added)."""
        self._scratch = np.zeros(capacity, dtype=np.int32)

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        return self._keys.nbytes + self._values.nbytes + self._scratch.nbytes

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """The slot of each key, -1 for a key not in the table.

        The table is buckets of BUCKET slots; a key lives in bucket `key % buckets` or, when that
        one was full, in the next bucket with room. A whole bucket is compared in one step, so a
        batch of known users is found in one vectorized pass (at most half full, the table rarely
        has a full bucket).
        """
        buckets = len(self._keys) // BUCKET
        table = self._keys.reshape(buckets, BUCKET)
        result = np.full(len(keys), -1, dtype=np.int64)
        todo = np.arange(len(keys))
        bucket = keys & (buckets - 1)
        wanted = keys
        while True:
            rows = np.take(table, bucket, axis=0)
            equal = rows == wanted[:, None]
            hit = equal.view(np.uint64).ravel() != 0  # a bucket's 8 booleans as one word
            result[todo[hit]] = bucket[hit] * BUCKET + equal.argmax(axis=1)[hit]
            miss = ~hit
            if not miss.any():
                return result
            # a miss in a bucket with room is a key not in the table; in a full one, look on
            full = _no_free_slot(rows[miss])
            if not full.any():
                return result
            todo, bucket, wanted = todo[miss][full], bucket[miss][full], wanted[miss][full]
            bucket = (bucket + 1) & (buckets - 1)

    def _insert(self, keys: np.ndarray) -> None:
        """Add keys that are not in the table (distinct), each into the first bucket with room."""
        buckets = len(self._keys) // BUCKET
        table = self._keys.reshape(buckets, BUCKET)
        bucket = keys & (buckets - 1)
        self._size += len(keys)
        while len(keys):
            free = np.take(table, bucket, axis=0) == NO_USER
            has_free = ~_no_free_slot_of(free)
            # one key per bucket per pass takes the bucket's first free slot; the others look at
            # the same bucket again, or at the next one when theirs is full
            candidates = np.flatnonzero(has_free)
            claimed, first = np.unique(bucket[candidates], return_index=True)
            winners = candidates[first]
            slots = claimed * BUCKET + free[winners].argmax(axis=1)
            self._keys[slots] = keys[winners]
            self._values[slots] = 0
            left = np.ones(len(keys), dtype=bool)
            left[winners] = False
            keys = keys[left]
            bucket = np.where(has_free[left], bucket[left], (bucket[left] + 1) & (buckets - 1))

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """The slot of each key (keys may repeat), adding the missing ones."""
        slots = self._find(keys)
        absent = slots < 0
        if not absent.any():
            return slots
        new = np.unique(keys[absent])
        if 2 * (self._size + len(new)) > len(self._keys):
            self._grow(2 * (self._size + len(new)))
            self._insert(new)
            return self._find(keys)
        self._insert(new)
        slots[absent] = self._find(keys[absent])
        return slots

    def _grow(self, needed: int) -> None:
        """Rehash into a table of at least `needed` slots (a power of two)."""
        capacity = len(self._keys)
        while capacity < needed:
            capacity *= 2
        used = self._keys != NO_USER
        keys, values = self._keys[used], self._values[used]
        self._size = 0
        self._allocate(capacity)
        self._insert(keys)
        self._values[self._find(keys)] = values

    def check(self, keys: np.ndarray, seqs: np.ndarray) -> int:
        """Record rows (user key, seq; in arrival order) and return how many are out of order."""
        n = len(keys)
        if not n:
            return 0
        slots = self._slots(keys)
        value = seqs.astype(np.int64) + 1
        scratch = self._scratch
        rows = np.arange(n, dtype=np.int32)
        scratch[slots] = rows
        if (scratch[slots] == rows).all():  # every user once in this batch
            before = self._values[slots]
            self._values[slots] = np.maximum(before, value)
            return int(np.count_nonzero(value < before))
        return self._check_grouped(slots, value)

    def _check_grouped(self, slots: np.ndarray, value: np.ndarray) -> int:
        """The general case: a segmented running maximum over rows grouped by user.

        Rows are sorted by slot (stable, so arrival order holds within a user); `maximum.accumulate`
        over values offset by their group's index gives each user's running maximum.
        """
        n = len(slots)
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        value = value[order]
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        np.not_equal(sorted_slots[1:], sorted_slots[:-1], out=starts[1:])
        group = np.cumsum(starts) - 1
        user_slots = sorted_slots[starts]
        previous = self._values[user_slots]
        offset = group * _GROUP_SPAN
        running = np.maximum.accumulate(value + offset) - offset  # per-user max up to each row
        before = np.empty(n, dtype=np.int64)
        before[0] = 0
        before[1:] = running[:-1]
        before[starts] = 0
        before = np.maximum(before, previous[group])
        ends = np.flatnonzero(np.r_[starts[1:], True])
        self._values[user_slots] = np.maximum(running[ends], previous)
        return int(np.count_nonzero(value < before))
