"""A monitor with --state-dir survives SIGKILL: restarted on the same directory, with the sandbox
redelivering what failed meanwhile, its final audit equals the one of a run without the kill."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from harness.processes import ChildServer, free_port
from loadgen import ids
from loadgen.ledger import SentLedger

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "durable-test-key"
SECRET = "durable-test-secret"
LOST_AFTER = 15.0  # longer than the outage with a slow restart on a loaded machine: nothing comes late
MESSAGES = 4000  # a multiple of 4 × BATCH: the run is sent in quarters
BATCH = 100
DESTINATIONS = {"hook": (10, 4), "bulk": (50, 2)}  # name: (messages per POST, POSTs in flight)
UNSTABLE = ("latency_seconds", "lost_samples")  # send and arrival times differ between two runs


def _events(run: int, seqs: np.ndarray, sent_ms: int) -> list[dict]:
    message_ids = ids.make_message_ids(ids.IdStyle.PLAIN, sent_ms, run, 1, seqs)
    return [
        # one user per message: the sandbox's retries after the outage reorder deliveries, which
        # `out_of_order` would rightly count (the in-process test below covers the order state)
        {"type": "track", "event": "Durable", "messageId": m.decode(), "userId": f"u{run}-{s}"}
        for s, m in zip(seqs.tolist(), message_ids, strict=True)
    ]


@contextlib.contextmanager
def _sandbox(tmp_path: Path, monitor_url: str) -> Iterator[httpx.Client]:
    port = free_port()
    config = {
        "seed": 3,
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "delivery": {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.3,
            "spool_path": str(tmp_path / "spool.jsonl"),
        },
        "destinations": [
            {
                "name": name,
                "url": f"{monitor_url}/webhook/{name}",
                "secret": SECRET,
                "batch_size": batch,
                "concurrency": in_flight,
                "timeout_seconds": 2.0,
            }
            for name, (batch, in_flight) in DESTINATIONS.items()
        ],
    }
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "harness", "sandbox", "--config", str(path), "--port", str(port)]
    with (
        ChildServer("sandbox", port, argv, tmp_path / "sandbox.log", cwd=ROOT) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


class Pipeline:
    """Sends one run's messages through the sandbox and its ledger to the monitor (whichever is up)."""

    def __init__(self, name: str, sandbox: httpx.Client) -> None:
        self.run = ids.run_id_from_name(name)
        self.ledger = SentLedger(self.run, 1, run_name=name)
        self.sandbox = sandbox

    def send(self, start: int, stop: int) -> None:
        for first in range(start, stop, BATCH):
            seqs = np.arange(first, first + BATCH, dtype=np.uint64)
            sent_ms = int(time.time() * 1000)
            response = self.sandbox.post(
                "/v1/batch", json={"batch": _events(self.run, seqs, sent_ms), "writeKey": WRITE_KEY}
            )
            assert response.status_code == 200, response.text
            self.ledger.record_accepted("web", range(first, first + BATCH), sent_ms)

    def ship(self, monitor, *, final: bool = False) -> bool:
        """Post the ledger delta; on no answer put it back for the next try (as the Locust plugin does)."""
        delta = self.ledger.take_delta(final=final)
        try:
            assert monitor.post_ledger(delta).status_code == 202
        except httpx.TransportError:
            self.ledger.restore(delta)
            return False
        return True


def _settled(monitor, run: int) -> dict:
    """The run's summary once every message is delivered and past its loss deadline."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dests = monitor.summary(run)["destinations"]
        if all(d["delivered_expected"] == MESSAGES and d["pending"] == 0 for d in dests.values()):
            time.sleep(LOST_AFTER + 0.5)  # every seq due: `lost` and `late` are final
            return monitor.summary(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run} not settled: {monitor.summary(run)['destinations']}")


def _state(summary: dict) -> dict:
    """The audit part of a summary (no generation time, canary or probes)."""
    return {k: summary[k] for k in ("runs", "destinations", "totals", "receiver")}


def _figures(summary: dict) -> dict:
    return {
        name: {k: v for k, v in d.items() if k not in UNSTABLE} for name, d in summary["destinations"].items()
    }


def test_sigkill_and_restart_keep_the_audit_exact(start_monitor, tmp_path):
    state_dir = tmp_path / "state"
    port = free_port()
    config = {
        "lost_after_seconds": LOST_AFTER,
        "sweep_interval_seconds": 0.1,
        "snapshot_interval_seconds": 1.0,
        "destinations": {name: {"secret": SECRET} for name in DESTINATIONS},
    }
    args = ("--state-dir", str(state_dir))
    monitor = start_monitor(config, port=port, args=args)
    with _sandbox(tmp_path, monitor.url) as sandbox:
        # the baseline: one run, no kill
        base = Pipeline("durable-baseline", sandbox)
        base.send(0, MESSAGES)
        assert base.ship(monitor, final=True)
        baseline = _settled(monitor, base.run)
        figures = _figures(baseline)
        assert all(d["expected"] == MESSAGES and d["lost"] == 0 for d in figures.values()), figures

        # the same run again, with the monitor killed halfway while deliveries are in flight
        killed = Pipeline("durable-killed", sandbox)
        killed.send(0, MESSAGES // 2)
        assert killed.ship(monitor)
        killed.send(MESSAGES // 2, MESSAGES * 3 // 4)
        time.sleep(0.05)
        monitor.server.process.kill()  # SIGKILL: no chance to write anything more
        monitor.server.process.wait(10)
        assert not killed.ship(monitor)  # the ledger waits in the stream, as in a real run
        killed.send(MESSAGES * 3 // 4, MESSAGES)  # the sandbox queues and retries meanwhile
        time.sleep(1.0)

        restarted = start_monitor(config, port=port, args=args)
        assert "logged changes replayed" in restarted.log.read_text()
        assert _state(restarted.summary(base.run)) == _state(baseline), "the finished run is restored exactly"
        assert killed.ship(restarted, final=True)
        after = _figures(_settled(restarted, killed.run))
        attempts = sandbox.get("/admin/stats").json()["attempts"]
        failed = {name: sum(n for o, n in a.items() if o != "success") for name, a in attempts.items()}
        assert all(failed.values()), f"every destination was retried through the outage: {attempts}"
        diff = {
            n: {k: (v, after[n][k]) for k, v in d.items() if after[n][k] != v} for n, d in figures.items()
        }
        assert after == figures, diff


def test_clean_restart_and_bad_state_dir(start_monitor, events, tmp_path):
    state_dir = tmp_path / "state"
    config = {"lost_after_seconds": 60, "destinations": {"hook": {}}}
    port = free_port()
    first = start_monitor(config, port=port, args=("--state-dir", str(state_dir)))
    run = ids.run_id_from_name("clean-restart")
    ledger = SentLedger(run, 2, run_name="clean-restart")
    ledger.record_accepted("web", range(0, 500), int(time.time() * 1000))
    assert first.post_ledger(ledger.take_delta()).status_code == 202
    assert first.deliver("hook", events(run, 2, range(0, 300))).status_code == 200
    assert first.deliver("hook", events(run, 2, range(250, 300))).status_code == 200
    before = _state(first.summary(run))
    assert first.server.stop() == 0  # SIGTERM: a final snapshot, an empty log
    assert (state_dir / "snapshot.pickle").exists()
    second = start_monitor(config, port=port, args=("--state-dir", str(state_dir)))
    assert _state(second.summary(run)) == before
    assert before["destinations"]["hook"]["duplicates"] == 50

    (tmp_path / "not-a-dir").write_text("")
    server = ChildServer(
        "monitor",
        free_port(),
        [sys.executable, "-m", "monitor", "--state-dir", str(tmp_path / "not-a-dir" / "x")],
        tmp_path / "bad.log",
        cwd=ROOT,
    )
    with pytest.raises(RuntimeError, match=r"--state-dir .*cannot create"):
        server.start(timeout=10)
