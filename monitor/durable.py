"""The monitor's state directory (`--state-dir DIR`): a snapshot of the audit plus a log of every change since.

Every state change the monitor answers for (an audited delivery, a refused or unreadable one, a
merged ledger delta, a loss-deadline sweep that moved seqs into `due`) is appended to the log with
one `write` before the answer is sent, so a process that dies, even by SIGKILL, loses nothing it
acknowledged: the restarted monitor loads the snapshot and replays the log through the same code.
Deliveries it never answered are retried by the pipeline. The log is not fsynced: a machine crash
(not a process crash) may lose its last records.

Files: `snapshot.pickle` (names the first log to replay) and `log-<N>.bin` (records framed as a
4-byte little-endian length and a msgpack array). A snapshot starts a new log before it is
written, so a crash at any point leaves a snapshot and the logs that follow it. The snapshot is a
pickle: the directory must be as trusted as the monitor's own code.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger("monitor")

SNAPSHOT = "snapshot.pickle"
SNAPSHOT_VERSION = 1
_LENGTH = struct.Struct("<I")
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()


class StateError(RuntimeError):
    """The state directory cannot be used (unreadable snapshot, wrong version)."""


def _log_number(path: Path) -> int:
    return int(path.stem.removeprefix("log-"))


class StateDir:
    """Snapshot and log files of one monitor; `open` before `append`."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{self.dir}: cannot create: {exc.strerror}") from None
        self.generation = 0
        self._fd: int | None = None
        self.snapshots = 0
        self.last_snapshot_seconds = 0.0
        self.last_snapshot_bytes = 0

    def _logs(self) -> list[Path]:
        return sorted(self.dir.glob("log-*.bin"), key=_log_number)

    def load(self) -> tuple[dict[str, Any] | None, Iterator[list]]:
        """The last snapshot's state (None when there is none) and the records logged after it."""
        state = None
        path = self.dir / SNAPSHOT
        if path.exists():
            try:
                state = pickle.loads(path.read_bytes())
            except Exception as exc:
                raise StateError(f"{path}: cannot read the snapshot: {exc}") from None
            if not isinstance(state, dict) or state.get("version") != SNAPSHOT_VERSION:
                raise StateError(f"{path}: not a version-{SNAPSHOT_VERSION} monitor snapshot")
            self.generation = state["next_log"]
        logs = [p for p in self._logs() if _log_number(p) >= self.generation]
        if logs:
            self.generation = _log_number(logs[-1])
        return state, self._records(logs)

    @staticmethod
    def _records(logs: list[Path]) -> Iterator[list]:
        for path in logs:
            data = path.read_bytes()
            at = 0
            while at + _LENGTH.size <= len(data):
                (size,) = _LENGTH.unpack_from(data, at)
                end = at + _LENGTH.size + size
                if end > len(data):
                    break
                yield _DECODER.decode(data[at + _LENGTH.size : end])
                at = end
            if at != len(data):
                log.warning("%s: %d bytes of a torn last record ignored", path, len(data) - at)

    def open(self) -> None:
        """Start appending to a new log (after `load` and the replay)."""
        self.generation += 1
        self._fd = os.open(
            self.dir / f"log-{self.generation}.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )

    def append(self, record: tuple) -> None:
        """Log one change (one `write`, so the record is in the kernel before the answer goes out)."""
        payload = _ENCODER.encode(record)
        assert self._fd is not None, "StateDir.open() first"
        os.write(self._fd, _LENGTH.pack(len(payload)) + payload)

    def snapshot(self, state: dict[str, Any]) -> None:
        """Write `state` whole, then drop the logs it covers (it must hold every change so far)."""
        started = time.perf_counter()
        old = self._fd
        self.open()
        if old is not None:
            os.close(old)
        data = pickle.dumps({**state, "version": SNAPSHOT_VERSION, "next_log": self.generation}, protocol=5)
        tmp = self.dir / f"{SNAPSHOT}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.dir / SNAPSHOT)
        for path in self._logs():
            if _log_number(path) < self.generation:
                path.unlink(missing_ok=True)
        self.snapshots += 1
        self.last_snapshot_seconds = time.perf_counter() - started
        self.last_snapshot_bytes = len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
