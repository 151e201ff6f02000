"""A request ready to send (`PreparedRequest`), the call types it counts, and the hot path's factory.

Kept apart from the generator so the per-kind sources (loadgen/sources/) and the generator that
hands their requests out (loadgen/traffic.py) both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
IDENTIFY, TRACK, PAGE, SCREEN, GROUP, ALIAS = range(6)
ONE_CALL_TYPE = tuple((t,) for t in range(len(CALL_TYPES)))
"""`call_types` of a request with one message of each type, shared by every such request."""


@dataclass(slots=True)
class PreparedRequest:
    """One HTTP request ready to send, and what the harness needs to account for its messages.

    For `expected_status` 400 or 401 every seq in `seqs` is rejected; for 200, `rejected_seqs` are
    the items a correct API rejects inside an otherwise valid batch.
    """

    source: str
    library: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    seqs: range | list[int]
    message_count: int
    sent_ms: int
    kind: str = "event"  # "event" | "duplicate" | "replay" | "bad"
    bad_case: str | None = None
    expected_status: int = 200
    rejected_seqs: list[int] = field(default_factory=list)
    messages: list[bytes] | None = field(default=None, repr=False)  # each message's JSON (duplicate plan)
    retry_count_header: str | None = field(default=None, repr=False)
    call_types: Sequence[int] = field(default=(), repr=False)  # CALL_TYPES index of each new message

    def for_retry(self, attempt: int) -> PreparedRequest:
        """The same body (same messageIds) as the library re-sends it on retry number `attempt`."""
        headers = dict(self.headers)
        if self.retry_count_header:
            headers[self.retry_count_header] = str(attempt)
        return replace(self, headers=headers)


_new_object = object.__new__


def event_request(source: str, library: str, path: str, headers: dict[str, str], body: bytes, seqs: range,
                  message_count: int, sent_ms: int, messages: list[bytes], retry_count_header: str | None,
                  call_types: Sequence[int]) -> PreparedRequest:  # fmt: skip
    """`PreparedRequest(source, library, "POST", path, ...)` for live events, without calling the class.

    Python 3.11 runs a class's `__init__` through C in a fresh interpreter frame; a plain function
    call stays in the interpreter loop, which makes a browser request's object a third cheaper.
    tests/loadgen check that this sets every field as the class does.
    """
    request = _new_object(PreparedRequest)
    request.source = source
    request.library = library
    request.method = "POST"
    request.path = path
    request.headers = headers
    request.body = body
    request.seqs = seqs
    request.message_count = message_count
    request.sent_ms = sent_ms
    request.kind = "event"
    request.bad_case = None
    request.expected_status = 200
    request.rejected_seqs = []
    request.messages = messages
    request.retry_count_header = retry_count_header
    request.call_types = call_types
    return request
