"""Tests' reference checker: messages and batches against the tracking API's limits and required fields.

Every problem names the offending field (as a path such as `batch[3].userId`) and the limit or rule
it breaks, so a failing test or a rejected request says exactly what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from loadgen.limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES, MAX_MESSAGE_ID_LENGTH

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")

_OBJECT_FIELDS = ("context", "integrations", "properties", "traits")
_STRING_FIELDS = ("messageId", "userId", "anonymousId", "event", "groupId", "previousId", "name")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a message or batch."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def check_message(message: Any, where: str = "") -> list[Problem]:
    """Problems with one message (empty when valid); `where` prefixes field paths."""
    at = f"{where}." if where else ""
    if not isinstance(message, dict):
        return [Problem(where or "(message)", f"must be a JSON object, got {type(message).__name__}")]
    problems: list[Problem] = []
    size = len(orjson.dumps(message))
    if size > MAX_MESSAGE_BYTES:
        problems.append(
            Problem(where or "(message)", f"{size} bytes exceeds the {MAX_MESSAGE_BYTES}-byte message limit")
        )
    kind = message.get("type")
    if kind not in CALL_TYPES:
        problems.append(Problem(f"{at}type", f"must be one of {', '.join(CALL_TYPES)}, got {kind!r}"))
    for name in _STRING_FIELDS:
        if name in message and message[name] is not None and not isinstance(message[name], str):
            problems.append(Problem(f"{at}{name}", f"must be a string, got {type(message[name]).__name__}"))
    for name in _OBJECT_FIELDS:
        if name in message and not isinstance(message[name], dict):
            problems.append(Problem(f"{at}{name}", f"must be an object, got {type(message[name]).__name__}"))
    for name in _TIME_FIELDS:
        if name in message and not _is_time(message[name]):
            problems.append(Problem(f"{at}{name}", f"must be an ISO-8601 date-time, got {message[name]!r}"))
    message_id = message.get("messageId")
    if isinstance(message_id, str) and len(message_id) > MAX_MESSAGE_ID_LENGTH:
        problems.append(
            Problem(
                f"{at}messageId",
                f"{len(message_id)} characters exceeds the {MAX_MESSAGE_ID_LENGTH}-character limit",
            )
        )
    if not message.get("userId") and not message.get("anonymousId"):
        problems.append(Problem(f"{at}userId", "missing: a message needs userId or anonymousId"))
    required = {"track": ("event",), "group": ("groupId",), "alias": ("previousId", "userId")}.get(kind, ())
    for name in required:
        if not message.get(name):
            problems.append(
                Problem(
                    f"{at}{name}",
                    f"missing: an {kind} call needs {name}"
                    if kind[0] in "aeiou"
                    else f"missing: a {kind} call needs {name}",
                )
            )
    return problems


def check_batch(body: bytes | dict[str, Any]) -> list[Problem]:
    """Problems with a /v1/batch or /v1/import body (raw bytes are checked for the size limit too)."""
    problems: list[Problem] = []
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_BATCH_BYTES:
            problems.append(
                Problem("(body)", f"{len(body)} bytes exceeds the {MAX_BATCH_BYTES}-byte batch limit")
            )
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return [*problems, Problem("(body)", f"not valid JSON: {exc}")]
    if not isinstance(body, dict):
        return [*problems, Problem("(body)", f"must be a JSON object, got {type(body).__name__}")]
    items = body.get("batch")
    if not isinstance(items, list):
        return [*problems, Problem("batch", "missing or not an array")]
    if len(items) > MAX_BATCH_EVENTS:
        problems.append(Problem("batch", f"{len(items)} events exceeds the {MAX_BATCH_EVENTS}-event limit"))
    for name in ("context", "integrations"):
        if name in body and not isinstance(body[name], dict):
            problems.append(Problem(name, f"must be an object, got {type(body[name]).__name__}"))
    if "sentAt" in body and not _is_time(body["sentAt"]):
        problems.append(Problem("sentAt", f"must be an ISO-8601 date-time, got {body['sentAt']!r}"))
    for i, item in enumerate(items):
        problems += check_message(item, f"batch[{i}]")
    return problems
