"""Hypothesis fuzzing of every monitor endpoint (`tests/fuzzing.py`): never a 5xx, every error a JSON
`{code, message}`, and a run audited before the fuzz is still intact after it."""

from __future__ import annotations

import time

import pytest

from loadgen import ids
from loadgen.ledger import SentLedger
from tests import fuzzing

pytestmark = pytest.mark.e2e

EXAMPLES = 40


def test_fuzz_every_monitor_endpoint(start_monitor, events, signer):
    mon = start_monitor(fuzzing.MONITOR_CONFIG, env={"HARNESS_MONITOR_TOKEN": fuzzing.MONITOR_TOKEN})
    auth = {"authorization": f"Bearer {fuzzing.MONITOR_TOKEN}"}
    run = ids.run_id_from_name("before-the-fuzz")
    ledger = SentLedger(run, 1, run_name="before-the-fuzz")
    ledger.record_accepted("web", range(100), int(time.time() * 1000))
    assert (
        mon.http.post("/api/ledger", content=ledger.take_delta().to_wire(), headers=auth).status_code == 202
    )
    assert mon.deliver("open", events(run, 1, range(60))).status_code == 200
    before = mon.http.get("/api/summary", params={"run": run}, headers=auth).json()["destinations"]["open"]
    problems, statuses = fuzzing.fuzz_endpoints(mon.http, fuzzing.MONITOR_ENDPOINTS, EXAMPLES)
    assert not problems, problems[:5]
    assert {200, 202, 400, 401, 404} <= statuses, statuses
    summary = mon.http.get("/api/summary", params={"run": run}, headers=auth)
    assert summary.status_code == 200
    after = summary.json()["destinations"]["open"]
    assert (after["expected"], after["delivered_expected"]) == (
        before["expected"],
        before["delivered_expected"],
    )
    assert mon.server.process.poll() is None
