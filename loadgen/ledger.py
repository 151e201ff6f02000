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

from loadgen.ids import MAX_MS, MAX_RUN, MAX_SEQ, MAX_STREAM

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
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise LedgerFormatError(f"ledger is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != WIRE_FORMAT:
            raise LedgerFormatError(f"ledger field 'format' must be {WIRE_FORMAT!r}")
        if doc.get("version") != WIRE_VERSION:
            raise LedgerFormatError(f"ledger field 'version' must be {WIRE_VERSION}")
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
