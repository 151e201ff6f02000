"""Control APIs checked before they change anything, memory bounds, bearer tokens, nesting limits."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import orjson
import pytest
from pyroaring import BitMap64

from loadgen import ids
from loadgen.ledger import SentLedger

pytestmark = pytest.mark.e2e

TOKEN = "t0ken-for-the-hardening-test"


def _wire(**fields) -> bytes:
    doc = {"format": "cdp-harness/ledger", "version": 1, "run": 7, "stream": 1, "sent_until_ms": 1, **fields}
    return orjson.dumps(doc)


def _bitmap(*values: int) -> str:
    return base64.b64encode(BitMap64(values).serialize()).decode()


def _good_run(mon, events, name: str) -> int:
    run = ids.run_id_from_name(name)
    ledger = SentLedger(run, 1, run_name=name)
    ledger.record_accepted("web", range(0, 200), int(time.time() * 1000))
    assert mon.post_ledger(ledger.take_delta()).status_code == 202
    assert mon.deliver("hook", events(run, 1, range(0, 150))).status_code == 200
    return run


BAD_LEDGERS = {
    "seq 2**40": (_wire(accepted={"web": _bitmap(5, 2**40)}), "accepted.web"),
    "seq 2**38 rejected": (_wire(rejected=_bitmap(2**38)), "rejected"),
    "run 2**16": (_wire(run=2**16), "'run'"),
    "stream 2**12": (_wire(stream=2**12), "'stream'"),
    "canary stream": (_wire(stream=ids.CANARY_STREAM), "canary"),
    "sent_until_ms 2**48": (_wire(sent_until_ms=2**48), "sent_until_ms"),
    "run as bool": (_wire(run=True), "'run'"),
    "final as text": (_wire(final="yes"), "final"),
    "long run name": (_wire(run_name="x" * 201), "run_name"),
    "run name not text": (_wire(run_name=["a"]), "run_name"),
    "65 sources": (_wire(accepted={f"s{i}": _bitmap(i) for i in range(65)}), "sources"),
    "long source": (_wire(accepted={"s" * 201: _bitmap(1)}), "accepted"),
    "bitmap not base64": (_wire(abandoned="%%%"), "abandoned"),
    "not json": (b"{" * 3000, "not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_LEDGERS))
def test_a_bad_ledger_is_refused_and_changes_nothing(start_monitor, events, case):
    mon = start_monitor({"destinations": {"hook": {}}, "lost_after_seconds": 60})
    run = _good_run(mon, events, "intact")
    before = mon.summary()
    body, named = BAD_LEDGERS[case]
    response = mon.http.post("/api/ledger", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "bad_ledger" and named in response.json()["message"]
    after = mon.summary()
    assert {k: after[k] for k in ("runs", "destinations")} == {k: before[k] for k in ("runs", "destinations")}
    assert mon.summary(run)["destinations"]["hook"]["delivered_expected"] == 150
    assert mon.http.get("/api/lost", params={"destination": "hook"}).status_code == 200
    assert "monitor_ledger_rejected_total 1.0" in mon.metrics()


def test_memory_bounds_answer_413_and_change_nothing(start_monitor, events):
    mon = start_monitor(
        {
            "destinations": {"hook": {}},
            "max_runs": 2,
            "max_ledger_bytes_per_run": 1 << 20,
            "max_ledger_bytes": 1 << 21,
        }
    )
    run = _good_run(mon, events, "first")
    before = mon.summary()
    big = SentLedger(run, 2, run_name="first")
    big.record_accepted("web", list(range(0, 2**25, 50)), 1)  # array containers: 1.3 MB, twice
    response = mon.post_ledger(big.take_delta())
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "ledger_limit"
    assert "max_ledger_bytes_per_run limit of 1048576" in response.json()["message"]
    assert mon.summary()["runs"] == before["runs"]

    _good_run(mon, events, "second")
    third = SentLedger(ids.run_id_from_name("third"), 1, run_name="third")
    third.record_accepted("web", range(10), 1)
    response = mon.post_ledger(third.take_delta())
    assert response.status_code == 413 and "max_runs" in response.json()["message"], response.text
    summary = mon.summary()
    assert len(summary["runs"]) == 2
    assert mon.summary(run)["destinations"]["hook"]["delivered_expected"] == 150


def test_a_deeply_nested_delivery_gets_400_naming_the_limit(start_monitor, signer):
    secret = "nest-secret"
    mon = start_monitor({"destinations": {"hook": {"secret": secret}}})
    for body in (b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[" * 5000 + b"]" * 5000):
        response = mon.deliver("hook", body, headers={"x-signature": signer(secret, body)})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "too_deep" and "1024" in response.json()["message"]
    assert mon.summary()["receiver"]["malformed_bodies"] == 2


def test_with_a_token_the_control_api_needs_it(start_monitor, events):
    mon = start_monitor({"destinations": {"hook": {}}}, env={"HARNESS_MONITOR_TOKEN": TOKEN})
    for method, path in (
        ("GET", "/api/summary"),
        ("GET", "/api/lost?destination=hook"),
        ("POST", "/api/ledger"),
        ("GET", "/api/destinations"),
        ("PUT", "/api/destinations/hook/behaviour"),
    ):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            response = mon.http.request(method, path, headers=headers, content=b"{}")
            assert response.status_code == 401, (method, path, headers)
            assert "HARNESS_MONITOR_TOKEN" in response.json()["message"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert mon.http.get("/api/summary", headers=auth).status_code == 200
    assert mon.http.get("/metrics").status_code == 200 and mon.http.get("/healthz").status_code == 200
    run = ids.run_id_from_name("tokened")
    assert mon.deliver("hook", events(run, 1, range(5))).status_code == 200  # webhooks: signatures only
    assert mon.http.get("/api/summary", headers={"authorization": f"bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_a_non_loopback_bind_needs_a_token(host):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--host", host, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "HARNESS_MONITOR_TOKEN" in done.stderr and "not a loopback address" in done.stderr
