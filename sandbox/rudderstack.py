"""The sandbox's `rudderstack` dialect: the ingest API answering as RudderStack's data plane did.

What rudder-server (v1.13-era, see ../shared/docs/tracking-api-facts.md) did with each kind of request,
imitated so the harness's own tests can show a target that refuses another dialect's traffic:
- analytics.js short paths (`/v1/t`, `/p`, `/i`, `/g`, `/a`, `/s`, `/b`): `404 page not found`;
- no Basic `Authorization` header (the write key only in the body, or a Bearer token):
  `401 Failed to read writeKey from header`; an unknown key: `401 Invalid Write Key`;
- success: `200 OK` (plain text, not JSON);
- a message, or any item of a batch, with neither `userId` nor `anonymousId`: the whole request is
  refused, `400 Request neither has anonymousId nor userId`; other per-message checks are not made
  (a `track` without `event` is accepted and delivered);
- a corrupt gzip body: `500 Failed to read body from request`. This 5xx is deliberate imitation of
  RudderStack (a Segment-style API answers 400), the one input this mode answers with a 5xx;
- no dedupe by messageId unless `dedupe.enabled: true` (see Config.dedupe_enabled).
Bodies are plain text, as RudderStack's are; the answer to a request that was not observed there
(bad JSON, an oversized body, a wrong method) keeps the sandbox's status with a text body. The size
limits stay as configured (`ingest.*`): RudderStack accepted a batch over 500 KB; raise
`ingest.max_batch_bytes` to imitate that too.
"""

from __future__ import annotations

from typing import Any

from sandbox.ingest import HeaderGet, Ingest, RequestError, Response
from sandbox.validate import MESSAGE_TYPES, _present_id

TEXT_HEADERS = [("content-type", "text/plain; charset=utf-8")]
SHORT_ROUTES = frozenset({"t", "p", "i", "g", "a", "s", "b"})  # ROUTES labels of the short paths
NO_IDS = "Request neither has anonymousId nor userId"

# code -> (status, RudderStack's words) where they differ from the sandbox's own answer
ANSWERS: dict[str, tuple[int, str]] = {
    "missing_write_key": (401, "Failed to read writeKey from header"),
    "invalid_write_key": (401, "Invalid Write Key"),
    "invalid_authorization": (401, "Failed to read writeKey from header"),
    "invalid_gzip": (500, "Failed to read body from request"),  # deliberate imitation, see the docstring
    "missing_ids": (400, NO_IDS),
    "not_found": (404, "404 page not found"),
}


def check_ids(msg: Any) -> tuple[str, str] | None:
    """RudderStack's per-message check: an object of a known type with a userId or an anonymousId."""
    if type(msg) is not dict:
        return "invalid_message", "a message must be a JSON object"
    if msg.get("type") not in MESSAGE_TYPES:
        return "invalid_type", "unknown message type"
    if not _present_id(msg.get("userId")) and not _present_id(msg.get("anonymousId")):
        return "missing_ids", NO_IDS
    return None


class RudderStackIngest(Ingest):
    """`Ingest` with RudderStack's endpoints, auth rule, answers and checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ok = (200, TEXT_HEADERS, b"OK")
        self.check_message = check_ids

    def _handle(self, method: str, route: tuple[str, str | None] | None, header: HeaderGet, raw: bytes) -> Response:
        if route is None or route[0] in SHORT_ROUTES:
            return self._error(404, "not_found", "404 page not found")
        auth = header("authorization")
        if not auth or auth.strip().partition(" ")[0].lower() != "basic":
            raise RequestError(401, "missing_write_key", "Failed to read writeKey from header")
        return super()._handle(method, route, header, raw)

    def _batch(self, source: str, data: dict[str, Any]) -> Response:
        items = data.get("batch")
        if type(items) is list:
            for item in items:  # one id-less item refuses the whole batch
                if type(item) is dict and not _present_id(item.get("userId")) \
                        and not _present_id(item.get("anonymousId")):  # fmt: skip
                    self.stats.rejected[source, "missing_ids"] += len(items)
                    return self._error(400, "missing_ids", NO_IDS)
        return super()._batch(source, data)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> Response:
        status, words = ANSWERS.get(code, (status, message))
        return status, TEXT_HEADERS, words.encode() + b"\n"
