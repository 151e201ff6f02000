"""Destination probes (blackbox style) and starting the monitor through `harness monitor`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from harness.monitor_client import MonitorClient, MonitorError
from harness.processes import ChildServer, free_port
from loadgen.ledger import SentLedger


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_probes_report_success_duration_and_status(start_monitor):
    http_port = _closed_port()
    target = httpx.Client()  # the monitor probes a second monitor's own endpoints
    other = start_monitor({"destinations": {"x": {}}})
    mon = start_monitor(
        {
            "destinations": {"hook": {}},
            "probes": {
                "interval_seconds": 0.2,
                "timeout_seconds": 2,
                "targets": [
                    {"name": "up", "url": f"{other.url}/healthz"},
                    {"name": "wrong-status", "url": f"{other.url}/api/nothing", "expect_status": [200]},
                    {"name": "refused", "url": f"http://127.0.0.1:{http_port}/health"},
                ],
            },
        }
    )
    target.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        probes = mon.summary()["probes"]
        if all(p["checked_at_ms"] for p in probes.values()):
            break
        time.sleep(0.1)
    assert probes["up"]["success"] is True and probes["up"]["status_code"] == 200
    assert 0 < probes["up"]["duration_seconds"] < 2
    assert probes["wrong-status"]["success"] is False and probes["wrong-status"]["status_code"] == 404
    assert probes["refused"]["success"] is False and probes["refused"]["status_code"] is None
    assert probes["refused"]["error"] == "ConnectError"
    text = mon.metrics()
    assert 'monitor_probe_success{target="up"} 1.0' in text
    assert 'monitor_probe_success{target="refused"} 0.0' in text
    assert 'monitor_probe_http_status_code{target="wrong-status"} 404.0' in text
    assert 'monitor_probe_duration_seconds{target="up"}' in text
    check = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text.encode(), capture_output=True
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check


@pytest.mark.e2e
def test_harness_monitor_command_and_client(tmp_path):
    """`python -m harness monitor` serves; the typed client reads the summary; SIGTERM stops it."""
    port = free_port()
    server = ChildServer(
        "monitor",
        port,
        [sys.executable, "-m", "harness", "monitor", "--port", str(port)],
        tmp_path / "monitor.log",
    )
    server.start(timeout=20)  # the bundled default config
    try:
        url = server.url
        with MonitorClient(url) as client:
            summary = client.summary()
            assert summary["format"] == "cdp-harness/monitor-summary"
            assert list(summary["destinations"]) == ["webhook"]
            assert client.lost("webhook") == []
            ledger = SentLedger(9, 1, run_name="client-run")
            ledger.record_accepted("web", range(3), int(time.time() * 1000))
            client.post_ledger(ledger.take_delta(final=True))
            assert client.summary("client-run")["runs"][0]["destinations"]["webhook"]["expected"] == 3
            assert client.set_behaviour("webhook", {"kind": "slow", "seconds": 0.01})["kind"] == "slow"
            try:
                client.lost("nope")
            except MonitorError as exc:
                assert "bad_destination" in str(exc)
            else:
                raise AssertionError("an unknown destination must be an error")
        assert server.stop() == 0  # SIGTERM: a clean stop
        assert "panicked" not in server.log_path.read_text()
    finally:
        server.stop()
