"""Which send a delivered copy of a message came from: the first one, or a later re-send.

Client libraries stamp `sentAt` on every send and keep the messageId on a retry or re-send, and
pipelines keep `sentAt` on the events they deliver (Segment's spec lists it among every message's
common fields; the bundled sandbox keeps it; whether RudderStack's webhook keeps it is not checked).
Our messageIds carry the first send's time (ms), which the generator also writes as that send's
`sentAt`. So a copy whose `sentAt` is the send time in its messageId came from the first send, and a
copy with any other `sentAt` came from a later send: a re-send that got past the dedupe. Two copies
of one send (same `sentAt`) are the pipeline delivering one accepted message twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
UNKNOWN = -1
"""The time of a copy without a readable `sentAt`."""


def ms_of(text: object) -> int:
    """An ISO 8601 time as Unix ms (a naive one is UTC), or UNKNOWN when it is not one."""
    if not isinstance(text, str):
        return UNKNOWN
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return UNKNOWN
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def later_send_rows(sent_at: list | None, sent_ms: np.ndarray) -> np.ndarray | None:
    """Per row, whether the copy came from a later send than the first; None when none did.

    `sent_at` holds each copy's `sentAt` (None where the event has none: such a copy counts as the
    first send's, so a pipeline that drops `sentAt` shows re-sends as duplicates, never as leaks);
    `sent_ms` the send time in each messageId. Each distinct text is parsed once (the copies of one
    ingest request share it), so any spelling of the same instant counts as the first send.
    """
    if sent_at is None or not len(sent_ms):
        return None
    times = {text: ms_of(text) for text in set(sent_at)}
    copy_ms = np.fromiter(map(times.__getitem__, sent_at), dtype=np.int64, count=len(sent_at))
    later = (copy_ms != UNKNOWN) & (copy_ms != sent_ms.astype(np.int64))
    return later if later.any() else None
