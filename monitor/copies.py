"""Which send a delivered copy of a message came from: the first one, or a later re-send.

Client libraries stamp `sentAt` on every send and keep the messageId on a retry or re-send, and
pipelines keep `sentAt` on the events they deliver (Segment does, and so does the bundled sandbox).
Our messageIds carry the first send's time (ms), which the generator also writes as that send's
`sentAt`. So a copy whose `sentAt` is the send time in its messageId came from the first send, and a
copy with any other `sentAt` came from a later send: a re-send that got past the dedupe. Two copies
of one send (same `sentAt`) are the pipeline delivering one accepted message twice.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np


def _ms_of(text: str) -> int | None:
    """An ISO 8601 time as Unix ms (naive: UTC), or None when it cannot be read."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return int(moment.replace(tzinfo=_UTC).timestamp() * 1000)
    return round(moment.timestamp() * 1000)


_UTC = datetime.fromisoformat("2000-01-01T00:00:00+00:00").tzinfo


def later_send_rows(sent_at: list | None, sent_ms: np.ndarray) -> np.ndarray | None:
    """Per row, whether the copy came from a later send than the first; None when none did.

    `sent_at` holds each copy's `sentAt` (None where the event has none: such a copy counts as the
    first send's, so a pipeline that drops `sentAt` shows re-sends as duplicates, never as leaks);
    `sent_ms` the send time in each messageId. The usual copy's `sentAt` is exactly the text the
    generator wrote (`...T..:..:..mmmZ`), matched in one vectorized comparison; other texts are
    parsed one by one (another format of the same instant still counts as the first send).
    """
    if sent_at is None or not len(sent_ms):
        return None
    stamps = sent_ms.astype(np.int64).astype("datetime64[ms]")
    first = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z")
    texts = np.array([t if t is not None else "" for t in sent_at], dtype=str)
    other = (texts != first) & (texts != "")
    if not other.any():
        return None
    rows = np.flatnonzero(other)
    later = np.zeros(len(texts), dtype=bool)
    for row in rows.tolist():
        ms = _ms_of(str(texts[row]))
        later[row] = ms is not None and ms != int(sent_ms[row])
    return later if later.any() else None
