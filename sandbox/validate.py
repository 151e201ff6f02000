"""Per-message checks, written for speed: plain dict lookups, no schema library on the hot path.

`check_message` returns None for a valid message or a `(code, message)` pair naming the problem;
the codes are the `reason` label of `sandbox_messages_rejected_total`.
"""

from __future__ import annotations

from typing import Any

MESSAGE_TYPES = frozenset(("identify", "track", "page", "screen", "group", "alias"))
MAX_MESSAGE_ID_CHARS = 100
_ID_TYPES = (str, int)


def _present_id(value: Any) -> bool:
    """userId/anonymousId/groupId/previousId: a non-empty string or a number (not a bool)."""
    if isinstance(value, str):
        return value != ""
    return isinstance(value, _ID_TYPES) and not isinstance(value, bool)


def check_message(msg: Any) -> tuple[str, str] | None:
    """Check one message's required fields and field types (not its size).

    Runs once per message, so the common case is written for speed: one bound `get`, exact `type()`
    tests before the general `_present_id`, and the object-field checks unrolled. The order of the
    checks decides which problem is reported first.
    """
    if type(msg) is not dict:
        return "invalid_message", f"a message must be a JSON object, got {json_type(msg)}"
    get = msg.get
    kind = get("type")
    if type(kind) is not str or kind not in MESSAGE_TYPES:
        if kind is None:
            return "missing_field", "type is required"
        return "invalid_type", f"type must be one of {sorted(MESSAGE_TYPES)}, got {short_repr(kind)}"
    mid = get("messageId")
    if mid is not None and (type(mid) is not str or not mid or len(mid) > MAX_MESSAGE_ID_CHARS):
        return (
            "invalid_message_id",
            f"messageId must be a non-empty string of at most {MAX_MESSAGE_ID_CHARS} chars",
        )
    # fast test first (a non-empty string userId), `_present_id` only when it fails
    uid = get("userId")
    if not (type(uid) is str and uid) and not _present_id(uid) and not _present_id(get("anonymousId")):
        for key in ("userId", "anonymousId"):
            if key in msg and msg[key] is not None and not isinstance(msg[key], str):
                return "invalid_field", f"{key} must be a string or number, got {json_type(msg[key])}"
        return "missing_field", "userId or anonymousId is required"
    if kind == "track":
        event = get("event")
        if type(event) is not str or not event:
            return (
                "missing_field" if event is None else "invalid_field"
            ), "track needs event (a non-empty string)"
    elif kind == "group" and not _present_id(get("groupId")):
        return "missing_field", "group needs groupId"
    elif kind == "alias" and not (_present_id(get("previousId")) and _present_id(uid)):
        return "missing_field", "alias needs previousId and userId"
    # context, integrations, properties, traits: each a JSON object when present (unrolled)
    value = get("context")
    if value is not None and type(value) is not dict:
        return "invalid_field", f"context must be a JSON object, got {json_type(value)}"
    value = get("integrations")
    if value is not None and type(value) is not dict:
        return "invalid_field", f"integrations must be a JSON object, got {json_type(value)}"
    value = get("properties")
    if value is not None and type(value) is not dict:
        return "invalid_field", f"properties must be a JSON object, got {json_type(value)}"
    value = get("traits")
    if value is not None and type(value) is not dict:
        return "invalid_field", f"traits must be a JSON object, got {json_type(value)}"
    return None


def json_type(value: Any) -> str:
    """A value's JSON type name, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short_repr(value: Any) -> str:
    """A value's repr cut to 40 characters, so an error never echoes a huge input."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
