"""Reading the messageIds a client sent from a file: one id a line, JSON lines of events, or a capture.

Formats (`auto` picks one from the first non-blank line):
- `ids`: one messageId a line (blank lines and lines starting with `#` are skipped); all accepted.
- `events`: JSON lines, each a sent event (`messageId`, and its `timestamp`, `originalTimestamp` or
  the batch's `sentAt` as the send time when present) or a batch body `{"batch": [...], "sentAt"}`;
  a line's own `status` (the ingest's answer to that send), when present, says what became of it.
- `capture`: JSON lines of requests as `harness traffic` prints them (`body` is an event or a batch);
  the answer is the line's `status`, else its `expected_status`; `rejected_seqs` marks items of a
  2xx batch that the ingest refused.

An answer of 2xx is accepted, another 4xx than 408 and 429 rejected, anything else (and a send that
never got one, `status: null`) abandoned; a line with no status at all counts as accepted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from loadgen.ids import decode_message_id

FORMATS = ("auto", "ids", "events", "capture")
_NO_STATUS = object()


class SentFileError(ValueError):
    """A file that cannot be read as sent messageIds; the message names the file and line."""


@dataclass(slots=True)
class SentIds:
    """What a file says about each messageId sent: accepted (with send times), rejected, abandoned."""

    accepted: list[str] = field(default_factory=list)
    sent_ms: list[int | None] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    without_id: int = 0
    """Events with no messageId string (they cannot be audited: a pipeline gives them new ids)."""


def parse_time_ms(value: Any) -> int | None:
    """An ISO-8601 time (a naive one is UTC) as Unix milliseconds; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _lines(path: str) -> Iterator[tuple[int, str]]:
    handle = sys.stdin if path == "-" else None
    try:
        with handle or Path(path).open(encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield number, text
    except OSError as exc:
        raise SentFileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SentFileError(f"{path}: not UTF-8 text: {exc}") from None


def _outcome(status: Any) -> str:
    if status is _NO_STATUS:
        return "accepted"
    if isinstance(status, int) and not isinstance(status, bool):
        if 200 <= status < 300:
            return "accepted"
        if 400 <= status < 500 and status not in (408, 429):
            return "rejected"
    return "abandoned"


def _events_of(doc: dict[str, Any], where: str) -> tuple[list[Any], Any]:
    """The events of one sent body (a single event or a batch) and the batch's sentAt."""
    batch = doc.get("batch")
    if batch is None:
        return [doc], doc.get("sentAt")
    if not isinstance(batch, list):
        raise SentFileError(f"{where}: 'batch' must be a list of events")
    return batch, doc.get("sentAt")


def _add_events(out: SentIds, events: list[Any], sent_at: Any, outcome: str, rejected_seqs: set, where: str) -> None:
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise SentFileError(f"{where}: event {i} is not a JSON object")
        message_id = event.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            out.without_id += 1
            continue
        kind = outcome
        if rejected_seqs and kind == "accepted":
            parts = decode_message_id(message_id)
            if parts is not None and parts.seq in rejected_seqs:
                kind = "rejected"
        if kind == "accepted":
            out.accepted.append(message_id)
            out.sent_ms.append(
                parse_time_ms(event.get("timestamp"))
                or parse_time_ms(event.get("originalTimestamp"))
                or parse_time_ms(sent_at)
            )
        else:
            getattr(out, kind).append(message_id)


def read_sent_ids(path: str, fmt: str = "auto") -> SentIds:
    """Every messageId in `path` (`-` for stdin) with what became of its send."""
    if fmt not in FORMATS:
        raise SentFileError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    out = SentIds()
    for number, text in _lines(path):
        where = f"{path}:{number}"
        if fmt == "auto":
            fmt = _detect(text, where)
        if fmt == "ids":
            out.accepted.append(text)
            out.sent_ms.append(None)
            continue
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise SentFileError(f"{where}: not JSON ({exc}); use --format ids for one id a line") from None
        if not isinstance(doc, dict):
            raise SentFileError(f"{where}: must be a JSON object")
        if fmt == "capture":
            body = doc.get("body")
            if not isinstance(body, dict):
                continue  # a request whose body was not JSON (a bad-input case): it carried no ids
            status = doc.get("status", doc.get("expected_status", _NO_STATUS))
            rejected = doc.get("rejected_seqs") or []
            events, sent_at = _events_of(body, where)
            _add_events(out, events, sent_at, _outcome(status), set(rejected), where)
        else:
            status = doc.pop("status", _NO_STATUS)
            events, sent_at = _events_of(doc, where)
            _add_events(out, events, sent_at, _outcome(status), set(), where)
    return out


def _detect(text: str, where: str) -> str:
    if not text.startswith("{"):
        return "ids"
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SentFileError(f"{where}: starts like JSON but is not ({exc})") from None
    if isinstance(doc, dict) and "path" in doc and "body" in doc:
        return "capture"
    return "events"
