"""Auditing traffic the harness did not generate, through the real sandbox with injected faults.

1,000 events through each real Python SDK (segment-analytics-python, rudder-sdk-python) with
harness messageIds (`loadgen.external.HarnessIds`, outcomes from the SDK's own callbacks), and
1,000 arbitrary ids sent by hand and registered from a JSON-lines file with the real
`harness ledger` command. Each path has its own source and destination, where the sandbox drops
5% and duplicates 5%: the monitor must report exactly the counts the sandbox says it injected,
and list the lost ids.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from harness.monitor_client import MonitorClient
from harness.processes import ChildServer, free_port
from harness.sdks import sdk_client
from loadgen import ids
from loadgen.external import HarnessIds

pytestmark = pytest.mark.e2e
pytest.importorskip("segment.analytics", reason="the [sdk] extra is not installed")
pytest.importorskip("rudderstack.analytics", reason="the [sdk] extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
RUN = "own-traffic"
SECRET = "own-traffic-secret"
LOST_AFTER = 4.0
N = 1000
PATHS = {  # source (and its destination) → how its traffic is sent
    "segment": "segment-analytics-python",
    "rudder": "rudder-sdk-python",
    "file": "harness ledger",
}


@contextlib.contextmanager
def _sandbox(tmp_path: Path, monitor_url: str) -> Iterator[str]:
    port = free_port()
    config = {
        "seed": 21,
        "sources": [{"name": name, "write_key": f"key-{name}"} for name in PATHS],
        "delivery": {
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.3,
            "spool_path": str(tmp_path / "spool.jsonl"),
        },
        "destinations": [
            {
                "name": f"to-{name}",
                "url": f"{monitor_url}/webhook/to-{name}",
                "secret": SECRET,
                "sources": [name],
                "batch_size": 10,
                "concurrency": 4,
            }
            for name in PATHS
        ],
        "faults": {"destinations": {f"to-{name}": {"drop": 0.05, "duplicate": 0.05} for name in PATHS}},
    }
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "harness", "sandbox", "--config", str(path), "--port", str(port)]
    with ChildServer("sandbox", port, argv, tmp_path / "sandbox.log", cwd=ROOT) as server:
        yield server.url


def _send_with_sdk(source: str, sandbox_url: str, stream: int) -> HarnessIds:
    """N track calls through the real SDK, every id from HarnessIds; flushed, so every outcome is in."""
    harness_ids = HarnessIds(RUN, source=source, stream=stream)
    client = sdk_client(
        PATHS[source],
        write_key=f"key-{source}",
        host=sandbox_url,
        ids=harness_ids,
        upload_size=100,
        gzip=True,
        max_retries=3,
    )
    for i in range(N):
        ok, _ = client.track(
            user_id=f"user-{i % 40}",
            event="Order Completed",
            properties={"order_id": f"o-{i}", "revenue": i / 10},
            message_id=harness_ids.new_id(),
        )
        assert ok
    client.flush()
    client.join()
    return harness_ids


def _send_by_hand(sandbox_url: str, log: Path) -> list[str]:
    """N events with ids of many shapes, POSTed as batches; every send written to `log` as JSON lines."""
    shapes = [lambda i: f"order-{i}-{uuid.uuid4().hex[:8]}", lambda i: str(uuid.uuid4()), lambda i: f"évt:{i}"]
    sent = []
    with httpx.Client(base_url=sandbox_url, auth=("key-file", ""), timeout=30) as http, log.open("wb") as out:
        for start in range(0, N, 100):
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            batch = [
                {"type": "track", "event": "Replayed", "userId": f"u{i}", "messageId": shapes[i % 3](i), "timestamp": stamp}
                for i in range(start, start + 100)
            ]
            status = http.post("/v1/batch", json={"batch": batch}).status_code
            for event in batch:
                out.write(orjson.dumps({**event, "status": status}) + b"\n")
            sent += [e["messageId"] for e in batch]
    return sent


def _wait_settled(sandbox: httpx.Client, mon: MonitorClient, timeout: float) -> None:
    """Until every destination has all N delivered or dropped by the sandbox."""
    deadline = time.monotonic() + timeout
    seen: dict = {}
    while time.monotonic() < deadline:
        dropped = sandbox.get("/admin/stats").json()["faults"].get("drop", {})
        dests = mon.summary(RUN)["destinations"]
        seen = {n: (d["delivered_expected"], dropped.get(n, 0)) for n, d in dests.items()}
        if all(delivered + drops == N for delivered, drops in seen.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"not all delivered after {timeout}s: {seen}")


def test_sdk_and_file_traffic_audited_exactly(start_monitor, tmp_path):
    logging.getLogger("segment").setLevel(logging.CRITICAL)
    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)
    mon = start_monitor(
        {
            "lost_after_seconds": LOST_AFTER,
            "sweep_interval_seconds": 0.1,
            "lost_samples": 0,
            "destinations": {f"to-{name}": {"secret": SECRET, "sources": [name]} for name in PATHS},
        }
    )
    with _sandbox(tmp_path, mon.url) as sandbox_url, MonitorClient(mon.url) as monitor:
        sdk_ids = {
            source: _send_with_sdk(source, sandbox_url, stream)
            for source, stream in (("segment", 2048), ("rudder", 2049))
        }
        for harness_ids in sdk_ids.values():
            assert harness_ids.totals["accepted"] == N
            monitor.post_ledger(harness_ids.take_delta(final=True))
        log = tmp_path / "sent.jsonl"
        file_ids = _send_by_hand(sandbox_url, log)
        cli = subprocess.run(
            [sys.executable, "-m", "harness", "ledger", "--run", RUN, "--source", "file",
             "--monitor", mon.url, str(log)],
            capture_output=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr.decode()
        report = orjson.loads(cli.stdout)
        assert report["foreign_registered"] == N and report["harness_ids"] == 0
        with httpx.Client(base_url=sandbox_url, timeout=30) as sandbox:
            _wait_settled(sandbox, monitor, timeout=90)
            time.sleep(LOST_AFTER + 0.5)
            faults = sandbox.get("/admin/stats").json()["faults"]
        summary = monitor.summary(RUN)
        lost_lists = {name: monitor.lost(f"to-{name}", limit=N, run=RUN) for name in PATHS}

    for name in PATHS:
        dest = f"to-{name}"
        dropped, duplicated = faults["drop"].get(dest, 0), faults["duplicate"].get(dest, 0)
        assert dropped > 0 and duplicated > 0, (dest, faults)
        figures = summary["destinations"][dest]
        assert figures["expected"] == N, (dest, figures)
        assert (figures["lost"], figures["duplicates"]) == (dropped, duplicated), (dest, figures, faults)
        assert figures["delivered_expected"] == N - dropped and figures["pending"] == 0
        assert len(lost_lists[name]) == dropped
    # lost SDK messages: run, stream and seq exact (the UUID's time field is the ledger watermark)
    for name, stream in (("segment", 2048), ("rudder", 2049)):
        for lost in lost_lists[name]:
            parts = ids.decode_message_id(lost["message_id"])
            assert parts is not None and (parts.run, parts.stream) == (ids.run_id_from_name(RUN), stream)
            assert parts.seq < N
    # lost foreign ids: by their original strings
    lost_strings = [lost["message_id"] for lost in lost_lists["file"]]
    assert set(lost_strings) <= set(file_ids) and all(lost["foreign"] for lost in lost_lists["file"])
    # latency from the events' own timestamps (millisecond precision, so never negative by much)
    latency = summary["destinations"]["to-file"]["latency_seconds"]
    assert latency["count"] == N - faults["drop"]["to-file"] + faults["duplicate"]["to-file"]
    assert 0 < latency["p50"] < 30
    run_doc = next(r for r in summary["runs"] if r["name"] == RUN)
    assert run_doc["all_final"] and run_doc["foreign"]["registered"] == N
