"""`locust -f scenarios` end to end against the bundled sandbox and monitor: real processes, real HTTP."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.stack import SandboxStack


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _destinations(summary: dict) -> dict:
    destinations = summary["delivery"]["destinations"]
    assert set(destinations) == {"webhook", "warehouse"}
    return destinations


def test_default_run_delivers_everything_exactly_once(locust_run):
    run = locust_run("-t", "12s", "--target-rate", "1500")
    assert run.code == 0, run.output[-4000:]
    assert "Verdict: PASS" in run.output
    summary = run.summary()
    load = summary["load"]
    # Open model: the rate is the target, whatever the answers' latency (first-send messages only).
    assert 0.8 * 1500 <= load["throughput"] <= 1.15 * 1500, load["throughput"]
    assert load["requests_by_class"].get("2xx", 0) > 0
    assert set(load["by_source"]) >= {"android", "ios", "web", "node", "http"}
    for name, destination in _destinations(summary).items():
        # Everything the ingest accepted is expected at every destination, and arrived exactly once.
        assert destination["expected"] == load["accepted"] > 0, name
        assert destination["delivered_expected"] == destination["expected"], name
        assert destination["lost"] == destination["pending"] == destination["duplicates"] == 0, name
        assert destination["latency_seconds"]["p99"] is not None
    assert summary["verdict"]["passed"] is True
    html = run.html()
    assert "<svg" in html and "PASS" in html and "http://" not in html.replace("http://127.0.0.1", "")


def test_duplicate_resends_ride_on_top_of_the_schedule(locust_run):
    """Big-batch libraries keep their planned message rate while duplicates are re-sent: a re-send
    used to take the slot of a 100-250 message batch, halving those libraries' traffic."""
    profile = Path(__file__).resolve().parents[2] / "loadgen" / "profiles" / "server.yaml"
    run = locust_run(
        "-t", "12s", "--target-rate", "3000", "--traffic-profile", str(profile),
        "--duplicate-share", "0.05", "--bad-input-share", "0",
    )  # fmt: skip
    assert run.code == 0, run.output[-4000:]
    by_source = run.summary()["load"]["by_source"]
    big = ("go", "java", "python")  # 250, 250 and 100 messages a request; 0.27 of the messages
    paced = sum(by_source[s]["paced_messages"] for s in big)
    planned = 3000 * (0.07 + 0.08 + 0.12) * 12
    assert paced >= 0.8 * planned, (paced, planned)
    assert sum(by_source[s]["messages"] - by_source[s]["paced_messages"] for s in big) > 0, "re-sends ran"


@pytest.mark.parametrize("monitor_workers", ["1", "2"])
def test_injected_faults_fail_the_verdict_and_are_counted_exactly(
    locust_run, tmp_path: Path, monitor_workers: str
):
    """With 2 monitor processes, deliveries (and a duplicate and its original) land on either one;
    the one audit still counts every injected drop and duplicate exactly."""
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  destinations:\n    webhook:\n      drop: 0.05\n      duplicate: 0.02\n")
    # No canaries: the sandbox's fault counts then cover the load test's messages alone.
    run = locust_run(
        "-t", "8s", "--target-rate", "800", "--sandbox-faults", str(faults),
        "--loss-deadline", "5", "--canary-interval", "0", "--monitor-workers", monitor_workers,
    )  # fmt: skip
    assert run.code == 1, run.output[-4000:]
    assert "Verdict: FAIL" in run.output and "loss.ratio" in run.output and "duplicates.count" in run.output
    summary = run.summary()
    webhook, warehouse = _destinations(summary)["webhook"], _destinations(summary)["warehouse"]
    injected = summary["sandbox"]["faults"]
    assert webhook["lost"] > 0 and webhook["duplicates"] > 0
    assert webhook["lost"] == _injected(injected, "drop", "webhook")
    assert webhook["duplicates"] == _injected(injected, "duplicate", "webhook")
    assert warehouse["lost"] == warehouse["duplicates"] == 0


def _injected(faults: dict, kind: str, destination: str) -> int:
    """Injected-fault count for a kind and destination from the sandbox's /admin/stats."""
    node = faults.get(kind, faults)
    if isinstance(node, dict) and destination in node:
        return int(node[destination])
    return int(faults[f"{kind}:{destination}"])


def test_two_processes_are_two_streams_with_merged_metrics(locust_run):
    port = _free_port()
    scraped: list[dict[str, float]] = []

    def scrape() -> None:
        """Keep the master's /metrics while the run goes on: workers and messages sent so far."""
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                if scraped:
                    return  # the run is over
                continue
            families = {f.name: f for f in text_string_to_metric_families(text)}
            scraped.append(
                {
                    "workers": families["loadgen_workers"].samples[0].value,
                    "messages": sum(s.value for s in families["loadgen_messages"].samples),
                }
            )

    scraper = threading.Thread(target=scrape)
    scraper.start()
    run = locust_run("--processes", "2", "-t", "12s", "--target-rate", "1500", "--metrics-port", str(port))
    scraper.join()
    assert run.code == 0, run.output[-4000:]
    summary = run.summary()
    assert summary["run"]["streams"] == 2
    [monitor_run] = summary["delivery"]["runs"]
    assert sorted(s["stream"] for s in monitor_run["streams"]) == [0, 1]
    assert all(s["final"] for s in monitor_run["streams"])
    for destination in _destinations(summary).values():
        assert destination["delivered_expected"] == destination["expected"] == summary["load"]["accepted"] > 0
        assert destination["lost"] == destination["duplicates"] == 0
    assert 0.8 * 1500 <= summary["load"]["throughput"] <= 1.15 * 1500
    # Mid-run, the master's one scrape target showed both workers and their merged counts.
    assert any(point["workers"] == 2 and point["messages"] > 0 for point in scraped), scraped
    assert max(point["messages"] for point in scraped) <= summary["load"]["messages"]


def test_corrected_latency_shows_a_stall_that_measured_latency_hides(locust_run):
    stack = SandboxStack.start(("everyone",))
    try:
        stall = threading.Timer(6.0, _stall, args=(stack.sandbox.process.pid, 1.0))
        stall.start()
        run = locust_run(
            "-t", "12s", "--target-rate", "1000", "--max-lag", "10",
            "--host", stack.ingest_url, "--monitor-url", stack.monitor_url,
            env={"HARNESS_WRITE_KEY": stack.write_keys["everyone"]},
        )  # fmt: skip
        stall.join()
    finally:
        stack.stop()
    assert run.code == 0, run.output[-4000:]
    latency = run.summary()["load"]["latency_seconds"]
    # Every request due during the one-second stall (~8% of a 12 s run) waited for it, counted from
    # its intended send time ...
    assert latency["corrected"]["p95"] >= 0.4, latency
    # ... but as measured, only the few requests in flight during the stall were slow.
    assert latency["measured"]["p95"] < latency["corrected"]["p95"] / 3, latency
    assert latency["measured"]["max"] >= 0.8, latency


def _stall(pid: int, seconds: float) -> None:
    import os

    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_abort_on_fail_stops_the_run_early(locust_run, tmp_path: Path):
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  ingest:\n    error_5xx: 0.5\n")
    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "thresholds:\n"
        "  errors.ratio: [{threshold: '< 1%', abort_on_fail: true, delay_abort_eval: 3s}]\n"
        "  loss.ratio: ['== 0']\n"
    )
    started = time.monotonic()
    run = locust_run("-t", "90s", "--target-rate", "500", "--sandbox-faults", str(faults), "--slo", str(slo))
    assert run.code == 1, run.output[-4000:]
    assert "abort_on_fail: stopping the run" in run.output and "errors.ratio" in run.output
    assert time.monotonic() - started < 60, "the run should stop at the first failed check, not at -t"
    summary = run.summary()
    assert summary["run"]["duration_seconds"] < 30
    assert summary["load"]["requests_by_class"]["5xx"] > 0
    assert not summary["verdict"]["passed"]
