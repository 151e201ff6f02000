"""The state directory restores exactly the live audit at any point: after snapshots, log records of
every kind (deliveries, refusals, bad bodies, ledgers, refused ledgers, sweeps), a torn last record."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from loadgen import ids
from loadgen.ledger import SentLedger
from monitor.app import HttpError, Monitor
from monitor.config import parse_config
from monitor.durable import StateDir, StateError
from monitor.receiver import BodyError, parse_delivery

CONFIG = {
    "lost_after_seconds": 2,
    "seed": 4,
    "destinations": {
        "hook": {"behaviour": {"kind": "flaky", "share": 0.2}},
        "strict": {"sources": ["web"], "behaviour": {"kind": "rejecting", "share": 0.1}},
    },
}


class Clock:
    """A wall clock the test moves, so the live and the restored monitor sweep at the same instants."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock


def _started(directory: Path) -> Monitor:
    """A monitor restored from (or starting) `directory`, logging there."""
    monitor = Monitor(parse_config(CONFIG))
    monitor.restore(StateDir(directory))
    return monitor


def _state(monitor: Monitor) -> dict:
    summary = monitor.summary(None)
    return {k: summary[k] for k in ("runs", "destinations", "totals", "receiver")}


def _deliver(monitor: Monitor, name: str, run: int, seqs: list[int], clock: Clock) -> None:
    message_ids = ids.make_message_ids(
        ids.IdStyle.PLAIN, int(clock.now * 1000) - 500, run, 1, np.asarray(seqs, dtype=np.uint64)
    )
    body = orjson.dumps(
        [{"messageId": m.decode(), "userId": f"u{s % 5}"} for s, m in zip(seqs, message_ids, strict=True)]
    )
    dest = monitor.audit.destinations[name]
    asyncio.run(monitor._audit(dest, parse_delivery(body), clock.now * 1000))


def test_restore_equals_the_live_state_at_every_point(tmp_path, clock):
    live = _started(tmp_path / "live")
    rng = random.Random(7)
    ledgers = {run: SentLedger(run, 1, run_name=f"r{run}") for run in (3, 9)}
    checks = 0
    for step in range(120):
        run = rng.choice((3, 9))
        action = rng.random()
        if action < 0.45:  # a delivery: new seqs, repeats and reorders mixed
            start = rng.randrange(0, 400)
            seqs = [rng.randrange(start, start + 40) for _ in range(rng.randrange(1, 30))]
            _deliver(live, rng.choice(("hook", "strict")), run, seqs, clock)
        elif action < 0.65:  # a ledger delta
            start = rng.randrange(0, 400)
            ledgers[run].record_accepted(
                rng.choice(("web", "app")), range(start, start + 50), int(clock.now * 1000)
            )
            if rng.random() < 0.3:
                ledgers[run].record_rejected([start + 60], int(clock.now * 1000))
            live.post_ledger(ledgers[run].take_delta().to_wire())
        elif action < 0.7:  # refused input of every kind
            with pytest.raises(HttpError):
                live.post_ledger(
                    b'{"format":"cdp-harness/ledger","version":1,"run":1,"stream":1,"sent_until_ms":-1}'
                )
            live._bad_body(live.audit.destinations["hook"], "malformed_bodies", 400, "malformed")
            with pytest.raises(BodyError):
                parse_delivery(b"[" * 2000)
        elif action < 0.85:
            clock.now += rng.uniform(0.1, 1.5)  # deadlines pass: sweeps move seqs into `due`
            live.sweep()
        elif action < 0.9:
            live.snapshot()
        else:  # "kill" here: restore a copy of the directory as it is now, compare, go on
            copy = tmp_path / f"copy-{step}"
            shutil.copytree(tmp_path / "live", copy)
            restored = _started(copy)
            assert _state(restored) == _state(live), f"step {step}"
            restored.state.close()
            checks += 1
    assert checks >= 5
    summary = _state(live)
    totals = summary["totals"]
    assert totals["late"] and totals["duplicates"] and totals["out_of_order"] and totals["refused_retry"]
    assert totals["lost"] and totals["refused_400"] and summary["receiver"]["malformed_bodies"]


def test_a_torn_last_record_is_ignored_and_a_bad_snapshot_named(tmp_path, clock):
    live = _started(tmp_path / "s")
    _deliver(live, "hook", 3, list(range(10)), clock)
    before = _state(live)
    _deliver(live, "hook", 3, list(range(10, 20)), clock)
    log = max((tmp_path / "s").glob("log-*.bin"), key=lambda p: p.stat().st_mtime)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 3])  # the last write was cut short
    restored = Monitor(parse_config(CONFIG))
    assert restored.restore(StateDir(tmp_path / "s")) == 1
    assert _state(restored) == before

    bad = tmp_path / "bad"
    bad.mkdir()
    Path(bad / "snapshot.pickle").write_bytes(b"not a pickle")
    with pytest.raises(StateError, match="cannot read the snapshot"):
        _started(bad)
