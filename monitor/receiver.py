"""Reading one webhook delivery: signature, gzip, JSON body, and the messageId and user columns.

Every body is validated whole (invalid JSON is a malformed body, never audited), but only the
top-level `messageId`, `userId`, `anonymousId` and `sentAt` of each event are read. Three paths, fastest first:

1. simdjson (`pysimdjson`) validates the body into its C++ tape (SIMD, about twice as fast as
   msgspec on 1 KB events) and the three keys are looked up per event without building the rest.
   It is taken only when the result is certain to equal path 2's: a JSON array of objects (or one
   object) whose four fields are strings or null. Anything else, including every body simdjson
   refuses (it is stricter: 64-bit integers only, no infinite floats), goes to path 2.
2. The reference: a msgspec schema keeping the three fields (it validates the whole document but
   skips the other fields without building Python objects).
3. Valid JSON of an unexpected shape (an id that is a number, an array holding a non-object) is read
   with `orjson` item by item, so the good events in it are still audited and only the bad items
   are counted.

The one known difference: an event that repeats one of the three keys (RFC 8259 leaves duplicate
names undefined; no serializer of a real pipeline writes them) reads the first occurrence on path
1 and the last on paths 2 and 3. Either way it is one event, audited once.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from dataclasses import dataclass
from itertools import repeat

import msgspec
import orjson
import simdjson


class Event(msgspec.Struct):
    """The fields of a delivered event the audit reads; everything else is skipped unread."""

    messageId: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    sentAt: str | None = None


_DECODER = msgspec.json.Decoder(list[Event] | Event)


class BodyError(ValueError):
    """A delivery body that cannot be read at all; `status` is the HTTP answer (400 or 413)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(slots=True)
class Delivery:
    """The columns of one delivery request the audit needs."""

    message_ids: list
    users: list
    """Per event: anonymousId when present (stable per device), else userId, else None."""
    bad_items: int = 0
    """Array items that were not JSON objects (counted as malformed, not audited)."""
    sent_at: list | None = None
    """Per event: its `sentAt` text (which send of the message this copy came from), or None."""


def signature_ok(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether `signature` is the hex HMAC-SHA1 of the raw request body under `secret`."""
    if not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing one that inflates past `limit` bytes (a gzip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise BodyError(400, "bad_gzip", f"body is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise BodyError(413, "too_large", f"gzip body inflates past the {limit}-byte limit")
    if not inflater.eof:
        raise BodyError(400, "bad_gzip", "gzip body is truncated")
    return out


def _user_of(item: dict) -> str | None:
    user = item.get("anonymousId") or item.get("userId")
    if user is None or isinstance(user, str):
        return user
    return orjson.dumps(user).decode()  # a number or object as an id: still one user


MAX_DEPTH = 1024
"""Deepest nesting of arrays and objects a delivery body may have (orjson's and simdjson's limit)."""


def _parse_loosely(body: bytes) -> Delivery:
    """The slow path for valid JSON of an unexpected shape: keep every event that is an object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise BodyError(
                400, "too_deep", f"body nests arrays and objects deeper than the {MAX_DEPTH}-level limit"
            ) from None
        raise BodyError(400, "malformed", f"body is not valid JSON: {exc}") from None
    items = doc if isinstance(doc, list) else [doc]
    ids, users, sent, bad = [], [], [], 0
    for item in items:
        if not isinstance(item, dict):
            bad += 1
            continue
        ids.append(item.get("messageId"))
        users.append(_user_of(item))
        sent_at = item.get("sentAt")
        sent.append(sent_at if isinstance(sent_at, str) else None)
    return Delivery(ids, users, bad, sent)


_STRING_OR_NULL = frozenset((str, type(None)))
_GET = simdjson.Object.get


def _all_strings(values: list) -> bool:
    """Whether every value is a str (the common case, tested by one C-level join)."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


class FastParser:
    """Path 1: simdjson, with a parser (and its buffers) reused across requests."""

    def __init__(self) -> None:
        self.parser = simdjson.Parser()

    def parse(self, body: bytes) -> Delivery | None:
        """The events of `body`, or None when path 2 must decide (invalid or unusual JSON)."""
        try:
            doc = self.parser.parse(body)
        except ValueError:  # invalid JSON (UnicodeDecodeError included): path 2 names the error
            return None
        except RuntimeError:  # a 64-bit overflow, or a parser pinned by a leaked proxy
            self.parser = simdjson.Parser()
            return None
        if isinstance(doc, simdjson.Array):
            items = doc
        elif isinstance(doc, simdjson.Object):
            items = (doc,)
        else:
            return None
        try:  # (bytes keys: pysimdjson would encode a str key on every lookup)
            objects = list(items)
            ids = list(map(_GET, objects, repeat(b"messageId")))
            anonymous = list(map(_GET, objects, repeat(b"anonymousId")))
            # the user as on path 2: anonymousId, or userId when that is missing or empty
            if all(anonymous):
                users = anonymous
            else:
                user_ids = list(map(_GET, objects, repeat(b"userId")))
                users = (
                    user_ids
                    if not any(anonymous)
                    else [a or u for a, u in zip(anonymous, user_ids, strict=True)]
                )
            sent = list(map(_GET, objects, repeat(b"sentAt")))
        except TypeError:  # an item that is not an object
            return None
        # (the proxies in `objects` pin the parser's buffers until this returns; should one leak,
        # the next parse raises RuntimeError and a fresh parser takes over)
        if not (_all_strings(ids) and _all_strings(users) and _all_strings(sent)):
            kinds = set(map(type, ids))
            kinds.update(map(type, users))
            kinds.update(map(type, sent))
            if not kinds <= _STRING_OR_NULL:
                return None  # a number, bool, array or object where a string belongs: path 3
        return Delivery(ids, users, 0, sent)


FAST_PARSER = FastParser()
"""The shared fast parser (`parse_delivery` falls back to the reference parser when it declines)."""


def parse_delivery(body: bytes) -> Delivery:
    """The events of a webhook body: one JSON object or an array of them."""
    fast = FAST_PARSER.parse(body)
    if fast is not None:
        return fast
    return parse_delivery_reference(body)


def parse_delivery_reference(body: bytes) -> Delivery:
    """Paths 2 and 3 (see the module docstring): what `parse_delivery` must always agree with."""
    try:
        doc = _DECODER.decode(body)
    except (msgspec.ValidationError, RecursionError):  # msgspec recurses on the C stack below orjson's limit
        return _parse_loosely(body)
    except msgspec.DecodeError as exc:
        raise BodyError(400, "malformed", f"body is not valid JSON: {exc}") from None
    if isinstance(doc, Event):
        return Delivery([doc.messageId], [doc.anonymousId or doc.userId], 0, [doc.sentAt])
    return Delivery(
        [e.messageId for e in doc], [e.anonymousId or e.userId for e in doc], 0, [e.sentAt for e in doc]
    )
