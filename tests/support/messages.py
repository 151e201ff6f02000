"""Reference message builders for every call type, as plain dicts, for tests.

The traffic model writes messages as pre-encoded bytes (`loadgen.encoding`, `loadgen.traffic`);
tests build the same messages the slow, obvious way here and check that the two agree.
"""

from __future__ import annotations

from typing import Any


def _common(
    kind: str,
    *,
    message_id: str,
    timestamp: str,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    context: dict[str, Any] | None = None,
    integrations: dict[str, Any] | None = None,
    sent_at: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": kind, "messageId": message_id}
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    if user_id is not None:
        message["userId"] = user_id
    message["timestamp"] = timestamp
    message["context"] = context if context is not None else {}
    message["integrations"] = integrations if integrations is not None else {}
    if sent_at is not None:
        message["sentAt"] = sent_at
    return message


def identify(*, traits: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {**_common("identify", **common), "traits": traits}


def track(*, event: str, properties: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {**_common("track", **common), "event": event, "properties": properties}


def page(*, name: str, properties: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {**_common("page", **common), "name": name, "properties": properties}


def screen(*, name: str, properties: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {**_common("screen", **common), "name": name, "properties": properties}


def group(*, group_id: str, traits: dict[str, Any], **common: Any) -> dict[str, Any]:
    return {**_common("group", **common), "groupId": group_id, "traits": traits}


def alias(*, previous_id: str, **common: Any) -> dict[str, Any]:
    if common.get("user_id") is None:
        raise ValueError("an alias call needs user_id")
    return {**_common("alias", **common), "previousId": previous_id}


def batch(
    messages: list[dict[str, Any]],
    *,
    sent_at: str,
    write_key: str | None = None,
    context: dict[str, Any] | None = None,
    integrations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A /v1/batch or /v1/import body; batch-level context and integrations merge into every item."""
    body: dict[str, Any] = {"batch": messages}
    if context is not None:
        body["context"] = context
    if integrations is not None:
        body["integrations"] = integrations
    body["sentAt"] = sent_at
    if write_key is not None:
        body["writeKey"] = write_key
    return body
