"""The fast path's building blocks: messageIds and timestamps as ready-made bytes, and gzip.

Written for speed on purpose (bench/generator.py measures it): the per-message work of the
generator is joining pre-encoded byte strings, so everything here hands out bytes from caches that
are filled in bulk.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable

import numpy as np
from isal import isal_zlib

from loadgen.ids import TAG, UUID_LENGTH, IdStyle, encode_seq_halves, encode_uuids

MS3 = [f"{i:03d}Z".encode() for i in range(1000)]
"""The milliseconds and the closing Z of a timestamp, by millisecond."""
MS3Q = [milli + b'"' for milli in MS3]
"""`MS3` with the timestamp's closing quote."""
TIMESTAMP_KEY = b'","timestamp":"'
"""What follows a messageId in every message: the id's closing quote and the timestamp's key."""
_HOURS = [b"%02d:" % hour for hour in range(24)]
_MINUTES_SECONDS = [b"%02d:%02d." % divmod(s, 60) for s in range(3600)]
_SEQ_BLOCK = 65536
_MS_PART = 18  # "xxxxxxxx-xxxx-7xxx": the UUID's first 18 characters depend only on (ms, run)


class TimestampCache:
    """Encoded timestamps; the part down to the second is cached, the milliseconds come from a table.

    `stamps` maps a millisecond to its quoted-and-closed form (`2026-11-23T13:35:12.345Z"`), the
    form the message hot path joins; it is cleared when it grows past `limit` entries.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.seconds: dict[int, bytes] = {}
        self.days: dict[int, bytes] = {}
        self.stamps: dict[int, bytes] = {}
        self._limit = limit

    def second(self, second: int) -> bytes:
        """The encoded part down to the second (`2026-11-23T13:35:12.`), cached.

        Mobile batches and replays reach many seconds once each (events seconds apart, hours
        late): the date comes from a per-day cache and the time of day from tables, which is
        several times faster than `time.strftime` for each new second.
        """
        prefix = self.seconds.get(second)
        if prefix is None:
            if len(self.seconds) >= self._limit:
                self.seconds.clear()
                self.days.clear()
            day, in_day = divmod(second, 86_400)
            date = self.days.get(day)
            if date is None:
                date = self.days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400)).encode()
            hour, in_hour = divmod(in_day, 3600)
            prefix = self.seconds[second] = date + _HOURS[hour] + _MINUTES_SECONDS[in_hour]
        return prefix

    def encode(self, ms: int) -> bytes:
        second, milli = divmod(ms, 1000)
        return (self.seconds.get(second) or self.second(second)) + MS3[milli]

    def stamp(self, ms: int) -> bytes:
        """`encode(ms)` followed by the closing quote, cached by millisecond (see `stamps`)."""
        stamp = self.stamps.get(ms)
        if stamp is None:
            if len(self.stamps) >= self._limit:
                self.stamps.clear()
            stamp = self.stamps[ms] = self.encode(ms) + b'"'
        return stamp


class IdEncoder:
    """messageIds of one stream as bytes, built from two cached halves.

    A harness UUID's first 18 characters depend only on the send millisecond and the run, the last
    18 only on the run, stream and seq (see loadgen.ids). Both halves come from `encode_uuids`, in
    bulk: seq halves 65,536 at a time, the millisecond half once per millisecond and library style.
    Each seq half is handed out with `TIMESTAMP_KEY` already appended, so a message joins one part
    fewer.
    """

    def __init__(self, run: int, stream: int, timestamp_key: bytes = TIMESTAMP_KEY) -> None:
        """`timestamp_key`: what follows each seq half (a library that writes `originalTimestamp`)."""
        self.timestamp_key = timestamp_key
        self.run = run
        self.stream = stream
        self.block_start = self.block_end = 0
        self.block: list[bytes] = []
        self._heads: dict[tuple[IdStyle, int], bytes] = {}
        self._checked_head = False
        self._high_bits = 0x7000 | (TAG << 4) | (run >> 12)

    def head(self, style: IdStyle, sent_ms: int) -> bytes:
        """Library prefix plus the millisecond half of the UUID."""
        key = (style, sent_ms)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) > 64:
                self._heads.clear()
            head = style.prefix(sent_ms) + self.ms_half(sent_ms)
            self._heads[key] = head
        return head

    def ms_half(self, sent_ms: int) -> bytes:
        """The UUID's first 18 characters, which depend only on the send millisecond and the run."""
        # the UUID's high 64 bits: unix_ts_ms (48) | version 7 | rand_a = TAG (8) | run >> 12 (4)
        high = b"%016x" % ((sent_ms << 16) | self._high_bits)
        text = high[:8] + b"-" + high[8:12] + b"-" + high[12:]
        if not self._checked_head:
            # the first one also comes from encode_uuids, proving this shortcut agrees with it
            if encode_uuids(sent_ms, self.run, self.stream, [0]).tobytes()[:_MS_PART] != text:
                raise AssertionError("IdEncoder.ms_half disagrees with loadgen.ids.encode_uuids")
            self._checked_head = True
        return text

    def tails(self, start: int, count: int) -> list[bytes]:
        """The seq halves of seqs start .. start+count-1, each followed by `TIMESTAMP_KEY`."""
        offset = start - self.block_start
        if offset < 0 or offset + count > len(self.block):
            self._fill(start, max(_SEQ_BLOCK, count))
            offset = 0
        return self.block[offset : offset + count]

    def tail(self, seq: int) -> bytes:
        """`tails(seq, 1)[0]`, without the list."""
        offset = seq - self.block_start
        if 0 <= offset < len(self.block):
            return self.block[offset]
        return self.tails(seq, 1)[0]

    def _fill(self, start: int, count: int) -> None:
        halves = encode_seq_halves(self.run, self.stream, np.arange(start, start + count, dtype=np.uint64))
        key = self.timestamp_key
        width = UUID_LENGTH - _MS_PART + len(key)
        parts = np.empty((count, width), dtype=np.uint8)
        parts[:, : UUID_LENGTH - _MS_PART] = halves
        parts[:, UUID_LENGTH - _MS_PART :] = np.frombuffer(key, dtype=np.uint8)
        # fixed-width bytes to a list of bytes in one C loop (no NUL can occur: every byte is ASCII text)
        self.block = np.frombuffer(parts.tobytes(), dtype=f"S{width}").tolist()
        self.block_start = start
        self.block_end = start + count


class StreamClock:
    """What all sources of one stream share: the next seq, messageId and timestamp encoders, and the
    parts every request of the current millisecond shares (UUID first half, sentAt).

    The generator owns one and hands it to each source, which reads and bumps `next_seq` itself
    (an attribute, not a call: it is on every request's path).
    """

    def __init__(self, run: int, stream: int) -> None:
        self.next_seq = 0
        self.ids = IdEncoder(run, stream)
        self.timestamps = TimestampCache()
        self.ms = -1
        self.ms_half = self.sent_at = b""

    def id_encoder(self, timestamp_key: str) -> IdEncoder:
        """The stream's messageId encoder for libraries whose event time is `timestamp_key`."""
        if timestamp_key == "timestamp":
            return self.ids
        encoders = self.__dict__.setdefault("_encoders", {})
        encoder = encoders.get(timestamp_key)
        if encoder is None:
            key = b'","' + timestamp_key.encode() + b'":"'
            encoder = encoders[timestamp_key] = IdEncoder(self.ids.run, self.ids.stream, key)
        return encoder

    def at_ms(self, sent_ms: int) -> None:
        """Encode what every request built in millisecond `sent_ms` shares."""
        self.ms = sent_ms
        self.ms_half = self.ids.ms_half(sent_ms)
        self.sent_at = self.timestamps.encode(sent_ms)


def gzip_function(level: int, engine: str = "zlib") -> Callable[[bytes], bytes]:
    """`gzip_bytes` with the level and engine bound: one call less a request on the hot path."""
    return functools.partial(isal_zlib.compress if engine == "isal" else zlib.compress, level=level, wbits=31)


def gzip_bytes(body: bytes, level: int, engine: str = "zlib") -> bytes:
    """A gzip member (RFC 1952), as the mobile SDKs send with Content-Encoding: gzip.

    `engine` "isal" uses ISA-L (python-isal): the same format, several times faster than zlib, which
    matters because compression is the largest single cost of building mobile traffic.
    """
    return gzip_function(level, engine)(body)
