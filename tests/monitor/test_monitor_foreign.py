"""Registered foreign messageIds over real HTTP: exact loss, duplicates, latency and lost ids by string."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from loadgen import ids
from loadgen.ledger import ForeignIds
from monitor.foreign import digests

pytestmark = pytest.mark.e2e

LOST_AFTER = 2.0
ROOT = Path(__file__).resolve().parents[2]


def _post(mon, registration: ForeignIds):
    return mon.http.post("/api/foreign", content=registration.to_wire())


def _deliver(mon, destination: str, message_ids: list[str]) -> None:
    body = [{"type": "track", "event": "Signed Up", "messageId": m, "userId": "u1"} for m in message_ids]
    response = mon.deliver(destination, body)
    assert response.status_code == 200, response.text


def test_foreign_ids_are_audited_exactly(start_monitor):
    mon = start_monitor(
        {
            "lost_after_seconds": LOST_AFTER,
            "sweep_interval_seconds": 0.05,
            "destinations": {"hook": {}, "webonly": {"sources": ["web"]}},
        }
    )
    run = ids.run_id_from_name("foreign-test")
    web = [f"web-{uuid.uuid4()}" for _ in range(300)]
    server = [f"srv:{i}:ünïcode" for i in range(200)]
    now = int(time.time() * 1000)

    # half the web ids arrive before anyone registered them (they wait in the unclaimed pool)
    _deliver(mon, "hook", web[:150])
    _deliver(mon, "webonly", web[:150])
    answer = _post(mon, ForeignIds(run, web, "foreign-test", "web", sent_ms=[now - 1500] * len(web)))
    assert answer.status_code == 202 and answer.json() == {"accepted": True, "registered": 300, "duplicates": 0}
    # a retried post registers nothing twice
    again = _post(mon, ForeignIds(run, web[:10] + web[:5], "foreign-test", "web"))
    assert again.json() == {"accepted": True, "registered": 0, "duplicates": 15}
    assert _post(mon, ForeignIds(run, server, "foreign-test", "server", final=True)).status_code == 202

    _deliver(mon, "hook", web[150:290] + web[200:210])  # web[290:] lost, 10 duplicates
    _deliver(mon, "hook", server[:190] + server[:3])  # server[190:] lost, 3 duplicates
    _deliver(mon, "webonly", web[150:300] + server[:5])  # all web; server ids are not expected here
    _deliver(mon, "hook", ["never-registered-1", "never-registered-2"])

    time.sleep(LOST_AFTER + 0.5)
    summary = mon.summary(run)
    hook, webonly = summary["destinations"]["hook"], summary["destinations"]["webonly"]
    assert (hook["expected"], hook["delivered_expected"], hook["lost"], hook["duplicates"]) == (500, 480, 20, 13)
    assert hook["arrivals"] == 150 + 150 + 193
    assert (webonly["expected"], webonly["lost"], webonly["duplicates"]) == (300, 0, 0)
    assert webonly["delivered"] == 305  # the 5 server ids arrived there too, unexpected
    lost = {s["message_id"] for s in hook["lost_samples"]}
    assert len(lost) == 10 and all(s["foreign"] for s in hook["lost_samples"])  # lost_samples = 10
    listed = mon.http.get("/api/lost", params={"destination": "hook", "run": "foreign-test", "limit": 100}).json()
    assert {x["message_id"] for x in listed["lost"]} == set(web[290:] + server[190:])
    # latency from the registered send times (1.5 s before), only for the web ids that had them
    latency = hook["latency_seconds"]
    assert latency["count"] == 300 and latency["p50"] >= 1.5
    run_doc = summary["runs"][0]
    assert run_doc["name"] == "foreign-test" and run_doc["has_ledger"] and run_doc["all_final"]
    assert run_doc["foreign"] == {"registered": 500, "posts": 3, "duplicate_registrations": 15, "final": True}
    foreign = summary["receiver"]["foreign"]
    assert foreign["registered_arrivals"] == 150 + 150 + 193 + 150 + 155
    assert foreign["total"] == 2 and foreign["unclaimed"]["hook"] == {"waiting": 2, "overflow": 0}
    # a run with only registered ids gets its run-labelled gauges too
    metrics = mon.metrics()
    assert f'monitor_run_lost_messages{{destination="hook",run="{run}"}} 20.0' in metrics
    assert 'monitor_foreign_memory_bytes{part="audit"}' in metrics
    check = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=metrics.encode(), capture_output=True)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (b"[", "not JSON"),
        ({"format": "x"}, "'format'"),
        ({"run": -1}, "'run'"),
        ({"run": 70000}, "'run'"),
        ({"ids": "a"}, "'ids'"),
        ({"ids": ["a", 3]}, "'ids[1]'"),
        ({"ids": ["a", ""]}, "'ids[1]'"),
        ({"ids": ["a"], "sent_ms": [1, 2]}, "'sent_ms'"),
        ({"ids": ["a"], "sent_ms": ["x"]}, "'sent_ms[0]'"),
        ({"source": 5}, "'source'"),
        ({"final": "yes"}, "'final'"),
    ],
)
def test_bad_registrations_are_400_naming_the_field(start_monitor, doc, problem):
    mon = start_monitor({"destinations": {"hook": {}}})
    if isinstance(doc, dict):
        base = {"format": "cdp-harness/foreign-ledger", "version": 1, "run": 1, "ids": ["a"]}
        doc = orjson.dumps({**base, **doc})
    response = mon.http.post("/api/foreign", content=doc)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_registration" and problem in response.json()["message"]


def test_digests_are_stable_and_distinct():
    values = digests(["a", "b", "a", "ü" * 50])
    assert values.dtype == np.uint64 and values[0] == values[2] and len(set(values.tolist())) == 3
    assert digests([]).shape == (0,)


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, cwd=ROOT, timeout=60)


def test_harness_ledger_registers_both_kinds(start_monitor, tmp_path):
    mon = start_monitor({"lost_after_seconds": 1, "sweep_interval_seconds": 0.05, "destinations": {"hook": {}}})
    printed = _harness("ids", "--run", "mixed", "--count", "3").stdout.decode().split()
    path = tmp_path / "sent.txt"
    path.write_text("\n".join([*printed, "foreign-1", "foreign-2", "foreign-1"]) + "\n")
    proc = _harness("ledger", "--run", "mixed", "--monitor", mon.url, "--source", "web", str(path))
    assert proc.returncode == 0, proc.stderr
    report = orjson.loads(proc.stdout)
    assert report["harness_ids"] == 3 and report["foreign_registered"] == 2 and report["foreign_duplicates"] == 1
    body = [{"type": "track", "messageId": m, "userId": "u"} for m in [printed[0], "foreign-2"]]
    assert mon.deliver("hook", body).status_code == 200
    time.sleep(1.5)
    run = mon.summary()["runs"]
    assert [r["name"] for r in run] == ["mixed"] and run[0]["all_final"]
    hook = run[0]["destinations"]["hook"]
    assert (hook["expected"], hook["delivered_expected"], hook["lost"]) == (5, 2, 3)
    lost = mon.http.get("/api/lost", params={"destination": "hook", "run": "mixed"}).json()["lost"]
    assert "foreign-1" in {x["message_id"] for x in lost} and len(lost) == 3
    unreachable = _harness("ledger", "--run", "mixed", "--monitor", "http://127.0.0.1:9", str(path))
    assert unreachable.returncode == 1 and b"no answer" in unreachable.stderr
