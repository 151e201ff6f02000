"""`harness monitor --workers N`: deliveries spread over real processes, one exact audit.

Every delivery goes over its own loopback connection (the kernel's SO_REUSEPORT hash picks the
process), so duplicates, refusals and losses are split between the primary and its workers; the
figures must be exactly those of the single-process audit.
"""

from __future__ import annotations

import re
import sys
import time

import httpx
import orjson
import pytest
import yaml

from harness.processes import ChildServer, free_port
from loadgen import ids
from loadgen.ledger import SentLedger
from monitor.workers import DEDICATED_AUDIT_FROM

pytestmark = pytest.mark.e2e

LOST_AFTER = 4.0
CONNECTIONS = 16


@pytest.fixture(params=["3", "4"], ids=["primary-receives", "primary-only-audits"])
def workers_monitor(tmp_path, request):
    port = free_port()
    config = {
        "lost_after_seconds": LOST_AFTER,
        "sweep_interval_seconds": 0.05,
        "destinations": {
            "flaky": {"behaviour": {"kind": "flaky", "share": 0.3, "status": 503}},
            "calm": {},
        },
    }
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        sys.executable,
        "-m",
        "monitor",
        "--config",
        str(path),
        "--port",
        str(port),
        "--workers",
        request.param,
    ]
    server = ChildServer("monitor", port, argv, tmp_path / "monitor.log")
    server.start(timeout=30.0)
    server.workers = int(request.param)
    try:
        yield server
    finally:
        server.stop()


def _worker_counts(metrics: str) -> dict[str, float]:
    found = re.findall(r'monitor_worker_forwarded_messages_total\{worker="(\d+)"\} (\S+)', metrics)
    return {index: float(n) for index, n in found}


def test_workers_share_one_exact_audit(workers_monitor, events):
    url = workers_monitor.url
    clients = [httpx.Client(base_url=url, timeout=30.0) for _ in range(CONNECTIONS)]
    run = ids.run_id_from_name("workers-audit")
    now = int(time.time() * 1000)
    ledger = SentLedger(run, 2, run_name="workers-audit")
    ledger.record_accepted("web", range(600), now)
    ledger.record_duplicates([7, 8, 9])

    posts: dict[tuple[str, int], int] = {}
    refused, refused_seqs = 0, set()

    def post(i: int, destination: str, body: object) -> int:
        response = clients[i % CONNECTIONS].post(f"/webhook/{destination}", content=orjson.dumps(body))
        posts[(destination, response.status_code)] = posts.get((destination, response.status_code), 0) + 1
        return response.status_code

    try:
        assert (
            clients[0].post("/api/ledger", content=ledger.take_delta(final=True).to_wire()).status_code == 202
        )
        # one event per POST, 0..589 (590..599 never come: lost); a refused one is retried, as a
        # pipeline must, on the next connection (often another process)
        for seq in range(590):
            event = events(run, 2, [seq])[0]
            attempt = seq
            while post(attempt, "flaky", event) != 200:
                refused += 1
                refused_seqs.add(seq)
                attempt += 1
            assert post(seq + 1, "calm", event) == 200
        # re-sends on another connection: 7..9 are the ledger's deliberate duplicates (dedupe
        # leaks), 100..104 plain duplicates; each lands on a different connection than the first
        for seq in [7, 8, 9, *range(100, 105)]:
            assert post(seq + 5, "calm", events(run, 2, [seq])[0]) == 200
        # a batch of 50 already-delivered seqs on one connection
        assert post(3, "calm", events(run, 2, range(200, 250))) == 200
        # a body no process can read: counted once, wherever it lands
        assert clients[5].post("/webhook/calm", content=b"{not json").status_code == 400

        time.sleep(LOST_AFTER + 0.5)
        summary = clients[1].get("/api/summary", params={"run": run}).json()
        calm = summary["destinations"]["calm"]
        assert calm["expected"] == 600
        assert calm["delivered"] == calm["delivered_expected"] == 590
        assert calm["duplicates"] == 8 + 50
        assert calm["dedupe_leaks"] == 3
        assert calm["lost"] == 10 and calm["pending"] == 0
        assert calm["arrivals"] == 590 + 8 + 50
        flaky = summary["destinations"]["flaky"]
        assert flaky["delivered"] == 590 and flaky["duplicates"] == 0 and flaky["lost"] == 10
        assert flaky["refused_retry"] == flaky["refused_retry_redelivered"] == len(refused_seqs) > 0
        assert flaky["arrivals"] == 590  # refused arrivals are not audited as deliveries
        totals = clients[2].get("/api/summary").json()
        assert totals["receiver"]["malformed_bodies"] == 1

        for i in range(3):  # whichever process answers, the same exact list
            lost = clients[i].get("/api/lost", params={"destination": "calm", "run": run}).json()
            assert [item["seq"] for item in lost["lost"]] == list(range(590, 600))

        metrics = clients[4].get("/metrics").text
        for (destination, status), n in posts.items():
            reason = {200: "accepted", 503: "server_error"}[status]
            line = f'monitor_webhook_requests_total{{code="{status}",destination="{destination}",reason="{reason}"}} {float(n)}'
            assert line in metrics, line
        assert (
            f'monitor_refused_messages_total{{destination="flaky",reason="server_error"}} {float(refused)}'
            in metrics
        )
        forwarded = _worker_counts(metrics)
        all_rows = 590 + refused + 590 + 8 + 50  # every messageId of every POST, refused ones too
        assert all(n > 0 for n in forwarded.values()), forwarded  # every worker did receive
        if workers_monitor.workers < DEDICATED_AUDIT_FROM:
            assert set(forwarded) == {str(i) for i in range(1, workers_monitor.workers)}
            assert sum(forwarded.values()) < all_rows  # and so did the primary
        else:
            assert set(forwarded) == {str(i) for i in range(1, workers_monitor.workers + 1)}
            assert sum(forwarded.values()) == all_rows  # the primary received nothing itself

        # a behaviour change reaches every process before its PUT is answered
        change = {"kind": "rejecting", "share": 1.0, "status": 400}
        response = clients[6].put("/api/destinations/calm/behaviour", content=orjson.dumps(change))
        assert response.status_code == 200, response.text
        statuses = {post(i, "calm", events(run, 2, [700 + i])[0]) for i in range(CONNECTIONS)}
        assert statuses == {400}
        after = clients[7].get("/api/summary", params={"run": run}).json()["destinations"]["calm"]
        assert after["refused_400"] == CONNECTIONS and after["delivered"] == 590
    finally:
        for client in clients:
            client.close()
