"""The spool: undelivered messages written at shutdown and queued again at the next start.

One JSON line per queued message: `{"destination": name, "received": unix time, "message": {...}}`.
The file is written to a temporary name and renamed, so a crash while spooling never leaves a
half-written spool; it is renamed to `<path>.restored` once read so it is not delivered twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson

log = logging.getLogger("sandbox.spool")
Entry = tuple[bytes, float]


def write_spool(path: str | Path, entries: dict[str, list[Entry]]) -> int:
    """Write every destination's undelivered entries; returns the number written."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("wb") as f:
        for name, items in entries.items():
            prefix = b'{"destination":' + orjson.dumps(name) + b',"received":'
            for body, received in items:
                f.write(prefix + orjson.dumps(received) + b',"message":' + body + b"}\n")
                count += 1
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return count


def read_spool(path: str | Path) -> dict[str, list[Entry]]:
    """Read a spool file (if any) and move it aside; bad lines are logged by line number and skipped."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, list[Entry]] = {}
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                name, received, message = row["destination"], float(row["received"]), row["message"]
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                log.error("%s:%d: skipped an unreadable spool line (%s)", path, lineno, exc)
                continue
            out.setdefault(name, []).append((orjson.dumps(message), received))
    path.replace(path.with_name(path.name + ".restored"))
    return out
