"""The ingest fast paths give exactly what the plain code they replaced gave (hypothesis-checked).

Each fast path (`check_message`, `parse_time`, `format_time`, `id_hashes`) is compared with a
straightforward reference version kept here: the version the sandbox used before it was tuned.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sandbox.app import Pipeline
from sandbox.config import parse_config
from sandbox.dedupe import id_hash, id_hashes
from sandbox.delivery import batch_body
from sandbox.ingest import format_time, parse_time
from sandbox.validate import MAX_MESSAGE_ID_CHARS, MESSAGE_TYPES, check_message, json_type, short_repr

# -- references ----------------------------------------------------------------------------------------


def reference_parse_time(value: Any) -> float | None:
    if type(value) is not str:
        return None
    try:
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def reference_id_hash(source: str, message_id: str) -> int:
    data = f"{source}\x00{message_id}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def reference_format_time(t: float) -> str:
    sec = math.floor(t)
    prefix = datetime.fromtimestamp(sec, UTC).isoformat()[:19]
    return f"{prefix}.{min(999, int((t - sec) * 1000)):03d}Z"


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return value != ""
    return isinstance(value, str | int) and not isinstance(value, bool)


def reference_check_message(msg: Any) -> tuple[str, str] | None:
    if type(msg) is not dict:
        return "invalid_message", f"a message must be a JSON object, got {json_type(msg)}"
    kind = msg.get("type")
    if type(kind) is not str or kind not in MESSAGE_TYPES:
        if kind is None:
            return "missing_field", "type is required"
        return "invalid_type", f"type must be one of {sorted(MESSAGE_TYPES)}, got {short_repr(kind)}"
    mid = msg.get("messageId")
    if mid is not None and (type(mid) is not str or not mid or len(mid) > MAX_MESSAGE_ID_CHARS):
        return (
            "invalid_message_id",
            f"messageId must be a non-empty string of at most {MAX_MESSAGE_ID_CHARS} chars",
        )
    if not (_present(msg.get("userId")) or _present(msg.get("anonymousId"))):
        for key in ("userId", "anonymousId"):
            if key in msg and msg[key] is not None and not isinstance(msg[key], str):
                return "invalid_field", f"{key} must be a string or number, got {json_type(msg[key])}"
        return "missing_field", "userId or anonymousId is required"
    if kind == "track":
        event = msg.get("event")
        if type(event) is not str or not event:
            return (
                "missing_field" if event is None else "invalid_field"
            ), "track needs event (a non-empty string)"
    elif kind == "group" and not _present(msg.get("groupId")):
        return "missing_field", "group needs groupId"
    elif kind == "alias" and not (_present(msg.get("previousId")) and _present(msg.get("userId"))):
        return "missing_field", "alias needs previousId and userId"
    for key in ("context", "integrations", "properties", "traits"):
        value = msg.get(key)
        if value is not None and type(value) is not dict:
            return "invalid_field", f"{key} must be a JSON object, got {json_type(value)}"
    return None


# -- strategies ----------------------------------------------------------------------------------------

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "user-1", "track", "identify", "group", "alias", "page", "screen"]),
    st.text(max_size=5),
    st.just("m" * (MAX_MESSAGE_ID_CHARS + 1)),
)
json_value = st.one_of(
    json_scalar,
    st.lists(json_scalar, max_size=2),
    st.dictionaries(st.text(max_size=3), json_scalar, max_size=2),
)
FIELDS = ["type", "messageId", "userId", "anonymousId", "event", "groupId", "previousId"]
OBJECTS = ["context", "integrations", "properties", "traits"]
message = st.fixed_dictionaries(
    {},
    optional={
        **{k: json_value for k in FIELDS},
        **{
            k: st.one_of(st.dictionaries(st.text(max_size=3), json_scalar, max_size=2), json_value)
            for k in OBJECTS
        },
        "type": st.one_of(st.sampled_from(sorted(MESSAGE_TYPES)), json_value),
    },
)

# times clients send, around the values that need care (epoch, pre-1970, far future, ms edges)
instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


def _shapes(dt: datetime) -> list[str]:
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    ms, us = f"{dt.microsecond // 1000:03d}", f"{dt.microsecond:06d}"
    return [
        f"{base}.{ms}Z",  # analytics.js
        f"{base}.{us}+00:00",  # Python datetime.isoformat()
        f"{base}.{us}Z",
        f"{base}.{ms}+00:00",  # general path
        f"{base}.{ms}",
        f"{base}",
        f"{base}.{us}+02:00",
        f"{base}.{ms}z",
        f"{base.replace('T', ' ')}.{ms}Z",
    ]


# -- tests ---------------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(message)
@example({"type": "track", "userId": True, "event": "e"})
@example({"type": "alias", "userId": 0, "previousId": "p"})
@example({"type": "group", "anonymousId": 5, "groupId": False})
@example({"type": "identify", "userId": "", "anonymousId": 1.5})
def test_check_message_matches_reference(msg):
    assert check_message(msg) == reference_check_message(msg)
    raw = orjson.loads(orjson.dumps(msg))  # as it arrives: through JSON
    assert check_message(raw) == reference_check_message(raw)


@settings(max_examples=300, deadline=None)
@given(instants)
@example(datetime(1970, 1, 1, tzinfo=UTC))
@example(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
@example(datetime(2026, 1, 1, 0, 0, 0, 999000, tzinfo=UTC))
def test_parse_time_matches_reference(dt):
    for text in _shapes(dt):
        assert parse_time(text) == reference_parse_time(text), text


@given(st.text(alphabet="0123456789-T:.+Z z٣", min_size=18, max_size=31))
@settings(max_examples=400, deadline=None)
@example("2026-01-01T00:00:0٣.000Z")
@example("2026-01-01T00:00:00.0٣0Z")
@example("2026-01-01T00:00+01.000Z")
@example("2026-13-01T00:00:00.000Z")
@example("2026-02-30T00:00:00.000000+00:00")
def test_parse_time_rejects_what_the_reference_rejects(text):
    assert parse_time(text) == reference_parse_time(text)


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=-62_000_000_000.0, max_value=253_000_000_000.0, allow_nan=False))
@example(0.0)
@example(-0.0005)
@example(1_767_225_600.9999999)
def test_format_time_matches_reference(t):
    assert format_time(t) == reference_format_time(t)


def test_skew_correction_roundtrip_is_exact():
    """The corrected timestamp (format of parse + skew) is what the datetime-only code produced."""
    received = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC).timestamp()
    for original in ("2026-03-04T05:06:00.123Z", "2026-03-04T05:06:00.123456+00:00"):
        sent_skew = received - reference_parse_time("2026-03-04T05:06:01.000Z")
        fast = format_time(parse_time(original) + sent_skew)
        slow = reference_format_time(reference_parse_time(original) + sent_skew)
        assert fast == slow
    assert format_time(received + timedelta(seconds=-1).total_seconds()) == "2026-03-04T05:06:06.891Z"


@given(st.text(max_size=3), st.lists(st.text(max_size=40), max_size=20))
def test_id_hashes_match_id_hash(source, ids):
    expected = [reference_id_hash(source, m) for m in ids]
    assert id_hashes(source, ids) == expected
    assert [id_hash(source, m) for m in ids] == expected  # the saved dedupe state stays readable


def test_id_hashes_handle_lone_surrogates_like_id_hash():
    ids = ["a\ud800b", "\udfff", "é", "\U0001f600"]
    assert (
        id_hashes("src", ids)
        == [id_hash("src", m) for m in ids]
        == [reference_id_hash("src", m) for m in ids]
    )


stamps = st.sampled_from(
    [
        "2026-03-04T05:06:00.123Z",
        "2026-03-04T05:06:00.124Z",
        "2026-03-04T05:05:59.999999+00:00",
        "2026-03-04T07:06:00+02:00",
        "yesterday",
        "",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "timestamp": st.one_of(stamps, st.integers(0, 5)),
                "originalTimestamp": stamps,
                "sentAt": st.one_of(stamps, st.none()),
            },
        ),
        min_size=1,
        max_size=12,
    ),
    st.one_of(st.none(), stamps),
)
def test_batch_timestamps_equal_the_per_message_reference(items, sent_at):
    """The per-request cache of corrected timestamps gives every message of a batch what the plain
    datetime computation gives it: receivedAt − (sentAt − originalTimestamp), its own sentAt first."""
    cfg = parse_config(
        {
            "sources": [{"name": "web", "write_key": "k"}],
            "destinations": [{"name": "d", "url": "http://127.0.0.1:9/", "secret": "s", "batch_size": 100}],
        }
    )
    pipeline = Pipeline(cfg)
    now = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC).timestamp()
    batch = [
        {"type": "track", "event": "e", "userId": "u", "messageId": f"m{i}", **m} for i, m in enumerate(items)
    ]
    doc = {"batch": batch, **({"sentAt": sent_at} if sent_at is not None else {})}
    with patch("sandbox.ingest.time.time", return_value=now):
        status, _, _ = pipeline.ingest.handle(
            "POST", "/v1/batch", {"authorization": None}.get, orjson.dumps({**doc, "writeKey": "k"})
        )
    assert status == 200
    delivered = orjson.loads(batch_body(pipeline.queues[0]._take(100)))
    assert [m["messageId"] for m in delivered] == [m["messageId"] for m in batch]
    for sent, got in zip(batch, delivered, strict=True):
        original = sent.get("originalTimestamp", sent.get("timestamp"))
        own = sent.get("sentAt")
        sent_time = reference_parse_time(own if own is not None else sent_at)
        original_time = reference_parse_time(original)
        if original is None:
            expected = reference_format_time(now)
        elif sent_time is None or original_time is None:
            expected = original
        else:
            expected = reference_format_time(original_time + (now - sent_time))
        assert got["timestamp"] == expected, (sent, sent_at)
        assert got["receivedAt"] == reference_format_time(now) and got["version"] == 2
        if original is not None:
            assert got["originalTimestamp"] == original
