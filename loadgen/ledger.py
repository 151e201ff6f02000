"""The sent ledger: what the ingest API did with each message a stream sent, as compressed bitmaps.

A stream (one Locust worker process) records, by sequence number, which messages the ingest
accepted (a 2xx answer), rejected (a 4xx other than 429: these must never be delivered), and
abandoned (retries exhausted with no 2xx: the outcome is unknown, so neither delivery nor loss of
them is an error), and which messages were deliberate duplicate re-sends. Accepted seqs are kept
per source, because a pipeline routes by source.

The ledger is shipped to the monitor in deltas. Each delta carries `sent_until_ms`, a watermark: every
seq in it was first sent at or before that time, so the monitor can call a seq lost once the
watermark plus its delivery deadline has passed. The wire form is JSON holding portable roaring
bitmaps in base64, readable by any roaring implementation.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pyroaring import BitMap64

from loadgen.ids import MAX_MESSAGE_ID_LENGTH, MAX_MS, MAX_RUN, MAX_SEQ, MAX_STREAM

WIRE_FORMAT = "cdp-harness/ledger"
WIRE_VERSION = 1
MAX_SOURCES = 64
"""Sources one delta may name in `accepted`."""
MAX_NAME_CHARS = 200
"""Longest `run_name` and source name."""
_RANGES = (("run", MAX_RUN), ("stream", MAX_STREAM), ("sent_until_ms", MAX_MS))


class LedgerFormatError(ValueError):
    """A ledger document that cannot be read; the message names the field."""


def _bitmap_to_text(bitmap: BitMap64) -> str:
    return base64.b64encode(bitmap.serialize()).decode("ascii")


def _bitmap_from_text(text: Any, where: str) -> BitMap64:
    """A bitmap field; an absent one is empty (a delta need not carry what it did not see)."""
    if text is None:
        return BitMap64()
    if not isinstance(text, str):
        raise LedgerFormatError(f"ledger field {where!r} must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise LedgerFormatError(f"ledger field {where!r} is not base64: {exc}") from None
    try:
        bitmap = BitMap64.deserialize(raw)
    except Exception as exc:  # pyroaring raises several types for a corrupt buffer
        raise LedgerFormatError(f"ledger field {where!r} is not a serialized roaring bitmap: {exc}") from None
    if bitmap and bitmap.max() > MAX_SEQ:
        raise LedgerFormatError(
            f"ledger field {where!r} holds seq {bitmap.max()}, outside the id scheme's 0..{MAX_SEQ}"
        )
    return bitmap


def _name_from(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
        raise LedgerFormatError(f"ledger field {where!r} must be a string of at most {MAX_NAME_CHARS} chars")
    return value


@dataclass(slots=True)
class LedgerDelta:
    """What one stream learned since its previous delta."""

    run: int
    stream: int
    sent_until_ms: int
    run_name: str = ""
    accepted: dict[str, BitMap64] = field(default_factory=dict)
    rejected: BitMap64 = field(default_factory=BitMap64)
    abandoned: BitMap64 = field(default_factory=BitMap64)
    duplicates: BitMap64 = field(default_factory=BitMap64)
    final: bool = False

    def is_empty(self) -> bool:
        return not (any(self.accepted.values()) or self.rejected or self.abandoned or self.duplicates)

    def accepted_all(self) -> BitMap64:
        return BitMap64.union(BitMap64(), *self.accepted.values())

    def to_wire(self) -> bytes:
        return orjson.dumps(
            {
                "format": WIRE_FORMAT,
                "version": WIRE_VERSION,
                "run": self.run,
                "run_name": self.run_name,
                "stream": self.stream,
                "sent_until_ms": self.sent_until_ms,
                "final": self.final,
                "accepted": {source: _bitmap_to_text(b) for source, b in self.accepted.items()},
                "rejected": _bitmap_to_text(self.rejected),
                "abandoned": _bitmap_to_text(self.abandoned),
                "duplicates": _bitmap_to_text(self.duplicates),
            }
        )

    @classmethod
    def from_wire(cls, body: bytes) -> LedgerDelta:
        doc = _envelope(body, WIRE_FORMAT, WIRE_VERSION, "ledger", LedgerFormatError)
        for name, limit in _RANGES:
            value = doc.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise LedgerFormatError(f"ledger field {name!r} must be an integer in 0..{limit}")
        final = doc.get("final", False)
        if not isinstance(final, bool):
            raise LedgerFormatError("ledger field 'final' must be true or false")
        accepted = doc.get("accepted", {})
        if not isinstance(accepted, Mapping):
            raise LedgerFormatError("ledger field 'accepted' must map source names to bitmaps")
        if len(accepted) > MAX_SOURCES:
            raise LedgerFormatError(
                f"ledger field 'accepted' names {len(accepted)} sources; at most {MAX_SOURCES}"
            )
        return cls(
            run=doc["run"],
            stream=doc["stream"],
            sent_until_ms=doc["sent_until_ms"],
            run_name=_name_from(doc.get("run_name", ""), "run_name"),
            final=final,
            accepted={
                _name_from(s, "accepted"): _bitmap_from_text(t, f"accepted.{s}") for s, t in accepted.items()
            },
            rejected=_bitmap_from_text(doc.get("rejected"), "rejected"),
            abandoned=_bitmap_from_text(doc.get("abandoned"), "abandoned"),
            duplicates=_bitmap_from_text(doc.get("duplicates"), "duplicates"),
        )


class SentLedger:
    """Records one stream's outcomes and hands them out as deltas."""

    def __init__(self, run: int, stream: int, run_name: str = "") -> None:
        self.run = run
        self.stream = stream
        self.run_name = run_name
        self._delta = self._new_delta()
        self.totals = {"accepted": 0, "rejected": 0, "abandoned": 0, "duplicates": 0}

    def _new_delta(self) -> LedgerDelta:
        return LedgerDelta(run=self.run, stream=self.stream, sent_until_ms=0, run_name=self.run_name)

    def _note_sent(self, sent_ms: int) -> None:
        self._delta.sent_until_ms = max(self._delta.sent_until_ms, sent_ms)

    def record_accepted(self, source: str, seqs: range | list[int], sent_ms: int) -> None:
        """A 2xx answer for these seqs of `source`, first sent at sent_ms."""
        bitmap = self._delta.accepted.setdefault(source, BitMap64())
        if isinstance(seqs, range) and seqs.step == 1:
            bitmap.add_range(seqs.start, seqs.stop)
        else:
            bitmap.update(seqs)
        self.totals["accepted"] += len(seqs)
        self._note_sent(sent_ms)

    def record_rejected(self, seqs: range | list[int], sent_ms: int) -> None:
        """A non-retryable 4xx answer: these seqs must never be delivered."""
        self._delta.rejected.update(seqs)
        self.totals["rejected"] += len(seqs)
        self._note_sent(sent_ms)

    def record_abandoned(self, seqs: range | list[int], sent_ms: int) -> None:
        """Retries ran out with no 2xx: the ingest may or may not have kept these."""
        self._delta.abandoned.update(seqs)
        self.totals["abandoned"] += len(seqs)
        self._note_sent(sent_ms)

    def record_duplicates(self, seqs: range | list[int]) -> None:
        """Seqs re-sent on purpose with their original messageId (the dedupe test)."""
        self._delta.duplicates.update(seqs)
        self.totals["duplicates"] += len(seqs)

    def restore(self, delta: LedgerDelta) -> None:
        """Put back a delta that could not be delivered, so the next delta carries it again."""
        for source, bitmap in delta.accepted.items():
            self._delta.accepted.setdefault(source, BitMap64()).update(bitmap)
        self._delta.rejected.update(delta.rejected)
        self._delta.abandoned.update(delta.abandoned)
        self._delta.duplicates.update(delta.duplicates)
        self._note_sent(delta.sent_until_ms)

    def take_delta(self, *, final: bool = False) -> LedgerDelta:
        """Everything recorded since the last call; the ledger starts a new delta."""
        delta, self._delta = self._delta, self._new_delta()
        delta.final = final
        self._delta.sent_until_ms = delta.sent_until_ms
        return delta


# --- Registrations of foreign messageIds --------------------------------------------------------
#
# Ids the harness did not make, told to the monitor for a run.
#
# Traffic whose ids nobody can choose (an integration test, a replayed production sample, a client
# that makes its own ids) is audited by registering the ids that the ingest accepted with the
# monitor's `POST /api/foreign`. The wire form is JSON:
#
#     {"format": "cdp-harness/foreign-ledger", "version": 1, "run": 1234, "run_name": "my-run",
#      "source": "web" | null, "final": false, "ids": ["id-1", ...],
#      "sent_ms": [1733300000000, null, ...] (optional, one per id), "sent_until_ms": 17333... (optional)}
#
# `source` names the ledger source the ids came from (destinations whose `sources` leave it out do
# not expect them; null: every destination expects them). `sent_ms` holds each id's send time where
# known (latency is measured from it); `sent_until_ms` dates the loss deadline, which otherwise runs
# from the moment the monitor received the registration.

FOREIGN_WIRE_FORMAT = "cdp-harness/foreign-ledger"
FOREIGN_WIRE_VERSION = 1
MAX_IDS_PER_POST = 100_000


class ForeignFormatError(ValueError):
    """A registration that cannot be read; the message names the field (and index) at fault."""


@dataclass(slots=True)
class ForeignIds:
    """Foreign messageIds the ingest accepted for one run and source, with their send times if known."""

    run: int
    ids: list[str]
    run_name: str = ""
    source: str | None = None
    sent_ms: list[int | None] | None = None
    sent_until_ms: int | None = None
    final: bool = False

    def to_wire(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FOREIGN_WIRE_FORMAT,
            "version": FOREIGN_WIRE_VERSION,
            "run": self.run,
            "run_name": self.run_name,
            "source": self.source,
            "final": self.final,
            "ids": self.ids,
        }
        if self.sent_ms is not None:
            doc["sent_ms"] = self.sent_ms
        if self.sent_until_ms is not None:
            doc["sent_until_ms"] = self.sent_until_ms
        return orjson.dumps(doc)

    @classmethod
    def from_wire(cls, body: bytes) -> ForeignIds:
        doc = _envelope(body, FOREIGN_WIRE_FORMAT, FOREIGN_WIRE_VERSION, "registration", ForeignFormatError)
        run = doc.get("run")
        if not _is_int(run) or not 0 <= run <= MAX_RUN:
            raise ForeignFormatError(f"registration field 'run' must be an integer in 0..{MAX_RUN}")
        ids = doc.get("ids")
        if not isinstance(ids, list):
            raise ForeignFormatError("registration field 'ids' must be a list of strings")
        if len(ids) > MAX_IDS_PER_POST:
            raise ForeignFormatError(
                f"registration field 'ids' holds {len(ids)} ids; post at most {MAX_IDS_PER_POST} at a time"
            )
        for i, message_id in enumerate(ids):
            if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
                raise ForeignFormatError(
                    f"registration field 'ids[{i}]' must be a string of 1..{MAX_MESSAGE_ID_LENGTH} characters"
                )
        sent_ms = doc.get("sent_ms")
        if sent_ms is not None:
            if not isinstance(sent_ms, list) or len(sent_ms) != len(ids):
                raise ForeignFormatError("registration field 'sent_ms' must be a list as long as 'ids'")
            for i, value in enumerate(sent_ms):
                if value is not None and (not _is_int(value) or value < 0):
                    raise ForeignFormatError(
                        f"registration field 'sent_ms[{i}]' must be null or a non-negative integer"
                    )
        sent_until = doc.get("sent_until_ms")
        if sent_until is not None and (not _is_int(sent_until) or sent_until < 0):
            raise ForeignFormatError("registration field 'sent_until_ms' must be a non-negative integer")
        source = doc.get("source")
        if source is not None and not isinstance(source, str):
            raise ForeignFormatError("registration field 'source' must be a string or null")
        run_name = doc.get("run_name", "")
        if not isinstance(run_name, str):
            raise ForeignFormatError("registration field 'run_name' must be a string")
        final = doc.get("final", False)
        if not isinstance(final, bool):
            raise ForeignFormatError("registration field 'final' must be true or false")
        return cls(run, ids, run_name, source, sent_ms, sent_until, final)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _envelope(body: bytes, fmt: str, version: int, what: str, error: type[ValueError]) -> dict[str, Any]:
    """A wire document's JSON object, once its `format` and `version` are the ones this code reads."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise error(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{what} field 'format' must be {fmt!r}")
    if doc.get("version") != version:
        raise error(f"{what} field 'version' must be {version}")
    return doc
