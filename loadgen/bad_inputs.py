"""The bad-input catalogue: requests a correct ingest API must refuse, each with the answer it should give.

A case starts from valid messages (made by the traffic model, so they carry real harness ids) and
breaks one thing. Request-level faults (malformed JSON, an oversized body, too many events, bad gzip)
get `400`; a bad or missing write key gets `401`; a bad item inside an otherwise valid batch gets
`200` with only that item rejected (`rejected` lists its index), because the valid messages that
arrived alongside it must not be lost.
"""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from loadgen.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class BadCase:
    name: str
    description: str
    item_level: bool  # the fault is in one message: 200 + item rejected in a batch, 400 when sent alone


CASES: dict[str, BadCase] = {
    c.name: c
    for c in (
        BadCase("malformed_json", "body cut off mid-way: not JSON", False),
        BadCase("oversized_message", "one message over 32 KB", True),
        BadCase("oversized_batch", "batch body over 500 KB (each message under 32 KB)", False),
        BadCase("too_many_events", "2,501 events in one batch (body under 500 KB)", False),
        BadCase("missing_user_id", "a message with neither userId nor anonymousId", True),
        BadCase("track_without_event", "a track call with no event name", True),
        BadCase("wrong_types", "userId an object, properties a list, timestamp not a date", True),
        BadCase("message_id_too_long", "messageId over 100 characters", True),
        BadCase("bad_gzip", "Content-Encoding: gzip on a body that is not gzip", False),
        BadCase("bad_write_key", "a write key the API does not know", False),
        BadCase("missing_write_key", "no Authorization header and no writeKey in the body", False),
    )
}
CASE_NAMES: tuple[str, ...] = tuple(CASES)


@dataclass(slots=True)
class BadRequest:
    """The broken request: where and how to send it, and what a correct API answers."""

    path: str
    headers: dict[str, str]
    body: bytes
    expected_status: int
    rejected: list[int]  # indexes (into the messages given) rejected inside a 200 answer
    message_count: int  # how many of the given messages the body carries


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode("ascii")


def _pad(message: dict[str, Any], size: int) -> dict[str, Any]:
    """The message with a filler property that brings its encoded size to about `size` bytes."""
    out = dict(message)
    props = dict(out.get("properties") or {})
    props["notes"] = ""
    out["properties"] = props
    props["notes"] = "x" * max(0, size - len(orjson.dumps(out)))
    return out


def _minimal(message: dict[str, Any]) -> dict[str, Any]:
    """The smallest valid track call with the same messageId (for the too-many-events case)."""
    return {"type": "track", "event": "Ping", "userId": "u", "messageId": message["messageId"],
            "timestamp": message["timestamp"]}  # fmt: skip


def _break_item(case: str, item: dict[str, Any]) -> dict[str, Any]:
    """One message broken the way an item-level case says."""
    if case == "oversized_message":
        return _pad(item, MAX_MESSAGE_BYTES + 512)
    if case == "missing_user_id":
        item.pop("userId", None)
        item.pop("anonymousId", None)
    elif case == "track_without_event":
        item["type"] = "track"
        item.pop("event", None)
        item.pop("name", None)
        item.pop("traits", None)
        item.setdefault("properties", {})
    elif case == "wrong_types":
        item["userId"] = {"id": item.get("userId") or "42"}
        item["properties"] = ["not", "an", "object"]
        item["timestamp"] = "yesterday afternoon"
    elif case == "message_id_too_long":
        item["messageId"] = "x" * (101 - len(item["messageId"])) + "-" + item["messageId"]
    return item


def build_bad_request(
    case: str,
    messages: list[dict[str, Any]],
    *,
    single_path: Callable[[str], str] | None,
    batch_path: str,
    headers: dict[str, str],
    write_key: str,
    sent_at: str,
    rng: random.Random,
) -> BadRequest:
    """Break `messages` (valid, from one source) the way `case` says.

    `single_path` maps a call type to the one-message endpoint it goes to (None when the library only
    batches); `headers` are the library's own, with a valid Authorization when it uses one.
    Cases that need many messages (oversized batch, too many events) use as many of `messages` as
    they need: pass at least 2,501.
    """
    spec = CASES[case]
    headers = dict(headers)
    headers.pop("Content-Encoding", None)
    body_key = {"writeKey": write_key} if "Authorization" not in headers else {}

    def batch_body(items: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"batch": items, "sentAt": sent_at, **body_key})

    if spec.item_level:
        items = [messages[0]] if single_path is not None else list(messages[: min(len(messages), 10)])
        position = 0 if single_path is not None else rng.randrange(len(items))
        items[position] = _break_item(case, dict(items[position]))
        if single_path is not None:
            body = orjson.dumps({**items[0], "sentAt": sent_at, **body_key})
            return BadRequest(single_path(str(items[0].get("type"))), headers, body, 400, [], 1)
        return BadRequest(batch_path, headers, batch_body(items), 200, [position], len(items))

    if case == "malformed_json":
        items = messages[: min(len(messages), 5)]
        body = batch_body(items)
        return BadRequest(batch_path, headers, body[: len(body) * 2 // 3], 400, [], len(items))
    if case == "oversized_batch":
        per = MAX_MESSAGE_BYTES - 2048
        count = MAX_BATCH_BYTES // per + 2
        items = [_pad(m, per) for m in messages[:count]]
        return BadRequest(batch_path, headers, batch_body(items), 400, [], len(items))
    if case == "too_many_events":
        items = [_minimal(m) for m in messages[: MAX_BATCH_EVENTS + 1]]
        if len(items) <= MAX_BATCH_EVENTS:
            raise ValueError(f"too_many_events needs {MAX_BATCH_EVENTS + 1} messages, got {len(items)}")
        return BadRequest(batch_path, headers, batch_body(items), 400, [], len(items))
    items = messages[: min(len(messages), 5)]
    if case == "bad_gzip":
        raw = batch_body(items)
        body = zlib.compress(raw, 6)  # a zlib stream where gzip was announced: wrong header and trailer
        return BadRequest(batch_path, dict(headers, **{"Content-Encoding": "gzip"}), body[: len(body) - 4], 400, [],
                          len(items))  # fmt: skip
    if case == "bad_write_key":
        wrong = f"wk_wrong_{rng.getrandbits(64):016x}"
        if "Authorization" in headers:
            headers["Authorization"] = basic_auth(wrong)
            return BadRequest(batch_path, headers, batch_body(items), 401, [], len(items))
        return BadRequest(batch_path, headers, orjson.dumps({"batch": items, "sentAt": sent_at, "writeKey": wrong}),
                          401, [], len(items))  # fmt: skip
    if case == "missing_write_key":
        headers.pop("Authorization", None)
        return BadRequest(
            batch_path, headers, orjson.dumps({"batch": items, "sentAt": sent_at}), 401, [], len(items)
        )
    raise KeyError(case)
