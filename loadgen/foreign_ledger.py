"""Registrations of foreign messageIds: ids the harness did not make, told to the monitor for a run.

Traffic whose ids nobody can choose (an integration test, a replayed production sample, a client
that makes its own ids) is audited by registering the ids that the ingest accepted with the
monitor's `POST /api/foreign`. The wire form is JSON:

    {"format": "cdp-harness/foreign-ledger", "version": 1, "run": 1234, "run_name": "my-run",
     "source": "web" | null, "final": false, "ids": ["id-1", ...],
     "sent_ms": [1733300000000, null, ...] (optional, one per id), "sent_until_ms": 17333... (optional)}

`source` names the ledger source the ids came from (destinations whose `sources` leave it out do
not expect them; null: every destination expects them). `sent_ms` holds each id's send time where
known (latency is measured from it); `sent_until_ms` dates the loss deadline, which otherwise runs
from the moment the monitor received the registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from loadgen.ids import MAX_MESSAGE_ID_LENGTH, MAX_RUN

WIRE_FORMAT = "cdp-harness/foreign-ledger"
WIRE_VERSION = 1
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
            "format": WIRE_FORMAT,
            "version": WIRE_VERSION,
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
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ForeignFormatError(f"registration is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != WIRE_FORMAT:
            raise ForeignFormatError(f"registration field 'format' must be {WIRE_FORMAT!r}")
        if doc.get("version") != WIRE_VERSION:
            raise ForeignFormatError(f"registration field 'version' must be {WIRE_VERSION}")
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
