"""The fast path's building blocks: messageIds and timestamps as ready-made bytes, and gzip.

Written for speed on purpose (bench/generator.py measures it): the per-message work of the
generator is joining pre-encoded byte strings, so everything here hands out bytes from caches that
are filled in bulk.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
from isal import isal_zlib

from loadgen.ids import TAG, UUID_LENGTH, IdStyle, encode_uuids

MS3 = [f"{i:03d}Z".encode() for i in range(1000)]
"""The milliseconds and the closing Z of a timestamp, by millisecond."""
_SEQ_BLOCK = 65536
_MS_PART = 18  # "xxxxxxxx-xxxx-7xxx": the UUID's first 18 characters depend only on (ms, run)


class TimestampCache:
    """Encoded timestamps; the part down to the second is cached, the milliseconds come from a table."""

    def __init__(self, limit: int = 200_000) -> None:
        self.seconds: dict[int, bytes] = {}
        self._limit = limit

    def second(self, second: int) -> bytes:
        """The encoded part down to the second (`2026-11-23T13:35:12.`), cached."""
        prefix = self.seconds.get(second)
        if prefix is None:
            if len(self.seconds) >= self._limit:
                self.seconds.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
            self.seconds[second] = prefix
        return prefix

    def encode(self, ms: int) -> bytes:
        second, milli = divmod(ms, 1000)
        return (self.seconds.get(second) or self.second(second)) + MS3[milli]


class IdEncoder:
    """messageIds of one stream as bytes, built from two cached halves.

    A harness UUID's first 18 characters depend only on the send millisecond and the run, the last
    18 only on the run, stream and seq (see loadgen.ids). Both halves come from `encode_uuids`, in
    bulk: seq halves 65,536 at a time, the millisecond half once per millisecond and library style.
    """

    def __init__(self, run: int, stream: int) -> None:
        self.run = run
        self.stream = stream
        self.block_start = 0
        self.block: list[bytes] = []
        self._heads: dict[tuple[IdStyle, int], bytes] = {}
        self._checked_head = False

    def head(self, style: IdStyle, sent_ms: int) -> bytes:
        """Library prefix plus the millisecond half of the UUID."""
        key = (style, sent_ms)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 64:
                self._heads.clear()
            if not self._checked_head:
                # the first head also comes from encode_uuids, proving the shortcut below agrees with it
                reference = encode_uuids(sent_ms, self.run, self.stream, [0]).tobytes()[:_MS_PART]
                self._checked_head = True
            else:
                reference = None
            # the UUID's high 64 bits: unix_ts_ms (48) | version 7 | rand_a = TAG (8) | run >> 12 (4)
            high = f"{(sent_ms << 16) | 0x7000 | (TAG << 4) | (self.run >> 12):016x}"
            text = f"{high[:8]}-{high[8:12]}-{high[12:]}".encode()
            if reference is not None and reference != text:
                raise AssertionError("IdEncoder.head disagrees with loadgen.ids.encode_uuids")
            head = style.prefix(sent_ms) + text
            self._heads[key] = head
        return head

    def tails(self, start: int, count: int) -> list[bytes]:
        """The seq halves of seqs start .. start+count-1."""
        offset = start - self.block_start
        if offset < 0 or offset + count > len(self.block):
            self._fill(start, max(_SEQ_BLOCK, count))
            offset = 0
        return self.block[offset : offset + count]

    def _fill(self, start: int, count: int) -> None:
        table = encode_uuids(0, self.run, self.stream, np.arange(start, start + count, dtype=np.uint64))
        blob = table[:, _MS_PART:].tobytes()
        width = UUID_LENGTH - _MS_PART
        self.block = [blob[i : i + width] for i in range(0, len(blob), width)]
        self.block_start = start


def gzip_bytes(body: bytes, level: int, engine: str = "zlib") -> bytes:
    """A gzip member (RFC 1952), as the mobile SDKs send with Content-Encoding: gzip.

    `engine` "isal" uses ISA-L (python-isal): the same format, several times faster than zlib, which
    matters because compression is the largest single cost of building mobile traffic.
    """
    if engine == "isal":
        return isal_zlib.compress(body, level, wbits=31)
    return zlib.compress(body, level, wbits=31)
