"""The messageId scheme: a valid UUIDv7 that carries send time, run, stream and sequence number.

Layout of the 128 bits (RFC 9562 UUIDv7):

    48 bits  unix_ts_ms      the send time in milliseconds
     4 bits  version = 7
    12 bits  rand_a          ┐
     2 bits  variant = 0b10  │ 74 payload bits:
    62 bits  rand_b          ┘ TAG (8) | run (16) | stream (12) | seq (38)

The 8-bit tag marks ids this harness made, so a pipeline's own UUIDv7s are counted as foreign
instead of being mistaken for ours (a random UUIDv7 passes the tag check once in 256, and must then
also name a run the monitor knows). Each library wraps the UUID in its real format: a plain UUID,
`ajs-next-<ms>-<uuid>` (analytics.js) or `node-next-<ms>-<uuid>` (@segment/analytics-node); the
decoder reads the last 36 characters, so it needs no lookup table and ignores the wrapper.

The scalar functions are for clarity and tests; `make_message_ids` and `decode_many` are the fast
paths used by the generator (one numpy pass per request) and by the monitor's audit (one pass per
delivery).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

TAG = 0xC7
RUN_BITS = 16
STREAM_BITS = 12
SEQ_BITS = 38
MAX_RUN = (1 << RUN_BITS) - 1
MAX_STREAM = (1 << STREAM_BITS) - 1
MAX_SEQ = (1 << SEQ_BITS) - 1
MAX_MS = (1 << 48) - 1
CANARY_STREAM = MAX_STREAM
"""The stream number the monitor's canary prober sends on; load generator streams stay below it."""

UUID_LENGTH = 36
MAX_MESSAGE_ID_LENGTH = 100

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_OF_BYTE = np.full(256, 255, dtype=np.uint8)
for _value, _char in enumerate(b"0123456789abcdef"):
    _NIBBLE_OF_BYTE[_char] = _value
    _NIBBLE_OF_BYTE[ord(chr(_char).upper())] = _value
_DASH_COLUMNS = np.array([8, 13, 18, 23])
_HEX_COLUMNS = np.array([i for i in range(UUID_LENGTH) if i not in (8, 13, 18, 23)])
_TAIL = np.arange(UUID_LENGTH, dtype=np.int64) - UUID_LENGTH
_VERSION_TAG_MASK = np.uint64(0xFFF0)
_VERSION_TAG = np.uint64(0x7000 | (TAG << 4))
_VARIANT = np.uint64(0b10)
_STREAM_MASK = np.uint64(MAX_STREAM)
_SEQ_MASK = np.uint64(MAX_SEQ)
_U0F, _U0FFF = np.uint64(0xF), np.uint64(0xFFF)
_U12, _U16, _U38, _U50, _U62 = (np.uint64(v) for v in (12, 16, 38, 50, 62))


class IdStyle(StrEnum):
    """How a client library writes its messageId around the UUID."""

    PLAIN = "plain"
    AJS_NEXT = "ajs-next"
    NODE_NEXT = "node-next"
    MS = "ms"  # `<ms>-<uuid>`: RudderStack's Android (and iOS) SDKs

    def wrap(self, uuid_text: str, sent_ms: int) -> str:
        return self.prefix(sent_ms).decode() + uuid_text

    def prefix(self, sent_ms: int) -> bytes:
        """The bytes that go before the UUID (empty for a plain UUID)."""
        return self.prefix_format() % sent_ms if self is not IdStyle.PLAIN else b""

    def prefix_format(self) -> bytes:
        """`prefix` as a bytes format with one `%d` for the send millisecond (empty for a plain UUID)."""
        if self is IdStyle.PLAIN:
            return b""
        if self is IdStyle.MS:
            return b"%d-"
        return self.value.encode() + b"-%d-"


@dataclass(frozen=True, slots=True)
class MessageIdParts:
    """What a harness messageId says about its message."""

    run: int
    stream: int
    seq: int
    sent_ms: int


@dataclass(frozen=True, slots=True)
class DecodedIds:
    """Column-wise decode of many ids; rows where `valid` is False are foreign or malformed."""

    valid: np.ndarray
    run: np.ndarray
    stream: np.ndarray
    seq: np.ndarray
    sent_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)


def new_run_id() -> int:
    """A random run number for a run that was given no name."""
    return secrets.randbelow(MAX_RUN + 1)


def run_id_from_name(name: str) -> int:
    """A stable run number for a run name, so every worker of one run agrees without talking."""
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & MAX_RUN


def _check_fields(sent_ms: int, run: int, stream: int, seq: int) -> None:
    for name, value, limit in (
        ("sent_ms", sent_ms, MAX_MS),
        ("run", run, MAX_RUN),
        ("stream", stream, MAX_STREAM),
        ("seq", seq, MAX_SEQ),
    ):
        if not 0 <= value <= limit:
            raise ValueError(f"messageId field {name}={value} is outside 0..{limit}")


def _halves(sent_ms: int, run: int, stream: int, seq: int) -> tuple[int, int]:
    rand_a = (TAG << 4) | (run >> 12)
    high = (sent_ms << 16) | 0x7000 | rand_a
    low = (0b10 << 62) | ((run & 0xFFF) << 50) | (stream << 38) | seq
    return high, low


def make_uuid(sent_ms: int, run: int, stream: int, seq: int) -> str:
    """The canonical lowercase text of the UUIDv7 for one message."""
    _check_fields(sent_ms, run, stream, seq)
    high, low = _halves(sent_ms, run, stream, seq)
    h = f"{high:016x}{low:016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def make_message_id(style: IdStyle, sent_ms: int, run: int, stream: int, seq: int) -> str:
    """One messageId in the format of the library that `style` names."""
    return style.wrap(make_uuid(sent_ms, run, stream, seq), sent_ms)


def decode_message_id(message_id: str | bytes) -> MessageIdParts | None:
    """Decode one messageId; None when it is not one of ours (foreign or malformed)."""
    decoded = decode_many([message_id])
    if not decoded.valid[0]:
        return None
    return MessageIdParts(
        run=int(decoded.run[0]),
        stream=int(decoded.stream[0]),
        seq=int(decoded.seq[0]),
        sent_ms=int(decoded.sent_ms[0]),
    )


def encode_uuids(sent_ms: int | np.ndarray, run: int, stream: int, seqs: np.ndarray) -> np.ndarray:
    """UUID texts for many messages of one stream, as an (N, 36) uint8 array of ASCII."""
    seqs = np.asarray(seqs, dtype=np.uint64)
    sent = np.broadcast_to(np.asarray(sent_ms, dtype=np.uint64), seqs.shape)
    if seqs.size:
        _check_fields(int(sent.max()), run, stream, int(seqs.max()))
    rand_a = np.uint64((TAG << 4) | (run >> 12))
    high = (sent << np.uint64(16)) | np.uint64(0x7000) | rand_a
    low_fixed = np.uint64((0b10 << 62) | ((run & 0xFFF) << 50) | (stream << 38))
    low = low_fixed | seqs
    raw = np.stack([high, low], axis=1).astype(">u8").view(np.uint8).reshape(-1, 16)
    hexed = np.empty((len(seqs), 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX_DIGITS[raw >> 4]
    hexed[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
    out = np.empty((len(seqs), UUID_LENGTH), dtype=np.uint8)
    out[:, _DASH_COLUMNS] = ord("-")
    out[:, _HEX_COLUMNS] = hexed
    return out


def encode_seq_halves(run: int, stream: int, seqs: np.ndarray) -> np.ndarray:
    """The last 18 characters (`-xxxx-xxxxxxxxxxxx`) of `encode_uuids`' texts, as an (N, 18) uint8 array.

    They depend only on run, stream and seq, not on the millisecond: the generator encodes them in
    blocks ahead of time and joins them to a per-millisecond first half (half the work of
    `encode_uuids`).
    """
    seqs = np.asarray(seqs, dtype=np.uint64)
    if seqs.size:
        _check_fields(0, run, stream, int(seqs.max()))
    low = np.uint64((0b10 << 62) | ((run & 0xFFF) << 50) | (stream << 38)) | seqs
    # bytes.hex() writes every digit in one C pass: several times faster than two table lookups a byte
    hexed = np.frombuffer(low.astype(">u8").tobytes().hex().encode("ascii"), dtype=np.uint8).reshape(-1, 16)
    out = np.empty((len(seqs), 18), dtype=np.uint8)
    out[:, 0] = out[:, 5] = ord("-")
    out[:, 1:5] = hexed[:, :4]
    out[:, 6:] = hexed[:, 4:]
    return out


def make_message_ids(style: IdStyle, sent_ms: int, run: int, stream: int, seqs: np.ndarray) -> list[bytes]:
    """Encoded messageIds (ASCII bytes, no quotes) for many messages sent in the same millisecond."""
    table = encode_uuids(sent_ms, run, stream, seqs)
    prefix = style.prefix(sent_ms)
    blob = table.tobytes()
    if prefix:
        return [prefix + blob[i : i + UUID_LENGTH] for i in range(0, len(blob), UUID_LENGTH)]
    return [blob[i : i + UUID_LENGTH] for i in range(0, len(blob), UUID_LENGTH)]


def _fields(high: np.ndarray, low: np.ndarray, well_formed: np.ndarray) -> DecodedIds:
    """The columns of ids given as their two 64-bit halves; checks version, variant and tag."""
    valid = well_formed & ((high & _VERSION_TAG_MASK) == _VERSION_TAG) & ((low >> _U62) == _VARIANT)
    run = ((high & _U0F) << _U12) | ((low >> _U50) & _U0FFF)
    return DecodedIds(
        valid=valid,
        run=run.astype(np.uint32),
        stream=((low >> _U38) & _STREAM_MASK).astype(np.uint32),
        seq=low & _SEQ_MASK,
        sent_ms=high >> _U16,
    )


def decode_uuid_table(table: np.ndarray) -> DecodedIds:
    """Decode an (N, 36) uint8 array of UUID texts (any case, any bytes: bad rows are invalid)."""
    n = len(table)
    nibbles = _NIBBLE_OF_BYTE[table[:, _HEX_COLUMNS]]
    well_formed = (nibbles != 255).all(axis=1) & (table[:, _DASH_COLUMNS] == ord("-")).all(axis=1)
    nibbles = np.where(nibbles == 255, 0, nibbles)
    octets = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    halves = np.ascontiguousarray(octets).view(">u8").reshape(n, 2).astype(np.uint64)
    return _fields(halves[:, 0], halves[:, 1], well_formed)


def _decode_joined(joined: str, n: int) -> DecodedIds | None:
    """Decode n UUID texts joined in one ASCII string; None when any is not well formed.

    The fast path behind `decode_many` (the monitor runs it on every delivery): `bytes.fromhex`
    turns every id into its 16 raw bytes in one C call, about twice as fast as the per-nibble
    table of `decode_uuid_table`, which stays the path for anything unusual.
    """
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(n, UUID_LENGTH)
    if not (raw[:, _DASH_COLUMNS] == ord("-")).all():
        return None
    try:
        octets = bytes.fromhex(raw[:, _HEX_COLUMNS].tobytes().decode("ascii"))  # cheaper than str.replace
    except ValueError:
        return None
    if len(octets) != 16 * n:  # fromhex skips whitespace: a short result means there was some
        return None
    halves = np.frombuffer(octets, dtype=">u8").astype(np.uint64).reshape(n, 2)
    return _fields(halves[:, 0], halves[:, 1], np.ones(n, dtype=bool))


def _decode_strings(message_ids: Sequence[object]) -> DecodedIds | None:
    """The fast path for a list of well-formed ASCII strings; None sends the caller to the slow one."""
    n = len(message_ids)
    try:
        joined = "".join(message_ids)  # type: ignore[arg-type]
    except TypeError:  # a None, bytes or number among them
        return None
    if not joined.isascii():
        return None
    if len(joined) != UUID_LENGTH * n or max(map(len, message_ids)) != UUID_LENGTH:  # type: ignore[arg-type]
        lengths = np.fromiter(map(len, message_ids), dtype=np.int64, count=n)  # type: ignore[arg-type]
        if lengths.min() < UUID_LENGTH or lengths.max() > MAX_MESSAGE_ID_LENGTH:
            return None
        # Wrapped ids (`ajs-next-<ms>-<uuid>`): gather each one's last 36 characters in one step.
        buffer = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        joined = buffer[np.cumsum(lengths)[:, None] + _TAIL].tobytes().decode("ascii")
    return _decode_joined(joined, n)


def decode_many(message_ids: Sequence[object]) -> DecodedIds:
    """Decode many messageIds in one numpy pass; anything not ours comes back with valid=False."""
    if message_ids and (fast := _decode_strings(message_ids)) is not None:
        return fast
    return _decode_any(message_ids)


def _decode_any(message_ids: Sequence[object]) -> DecodedIds:
    """The reference path: any mix of strings, bytes and junk, one row at a time into one table."""
    tails: list[bytes] = []
    well_formed = np.ones(len(message_ids), dtype=bool)
    for i, message_id in enumerate(message_ids):
        raw = message_id.encode("utf-8", "replace") if isinstance(message_id, str) else message_id
        if not isinstance(raw, bytes | bytearray) or not UUID_LENGTH <= len(raw) <= MAX_MESSAGE_ID_LENGTH:
            well_formed[i] = False
            raw = b"-" * UUID_LENGTH
        tails.append(bytes(raw[-UUID_LENGTH:]))
    table = np.frombuffer(b"".join(tails), dtype=np.uint8).reshape(-1, UUID_LENGTH)
    decoded = decode_uuid_table(table)
    return DecodedIds(decoded.valid & well_formed, decoded.run, decoded.stream, decoded.seq, decoded.sent_ms)
