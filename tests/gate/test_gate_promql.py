"""Thresholds against a real Prometheus server scraping a real short run (loadgen_* and monitor_*)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gate.metrics import METRICS
from gate.promql import PrometheusClient, Window, to_promql
from gate.thresholds import parse_threshold
from harness.processes import ChildServer
from harness.stack import SandboxStack

PROMETHEUS = "/usr/bin/prometheus"
RATE = 600


def _one(key: str) -> str:
    return "p99 < 1s" if METRICS[key.split("{")[0]].kind == "duration" else ">= 0"


def test_every_metric_has_a_query_with_its_filters():
    window = Window(range="5m", run=7, matchers='job="soak"')
    for name, metric in METRICS.items():
        filters = {
            "destination": "webhook",
            "source": "ios",
            "status_class": "5xx",
            "answer": "401",
            "case": "bad_gzip",
        }
        key = name + "{" + ",".join(f"{f}:{filters[f]}" for f in metric.filters) + "}"
        query = to_promql(parse_threshold(key, _one(name), where="t"), window)
        assert 'job="soak"' in query and "[5m]" in query, query
        for label in metric.filters:
            assert f'{label}="{filters[label]}"' in query or f'{label}=~"{filters[label]}"' in query, query
        if "monitor_run_" in query:
            assert 'run="7"' in query, query


@pytest.fixture
def stack():
    stack = SandboxStack.start(("everyone",), canary_interval=0.5)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def prometheus(tmp_path: Path, free_port):
    """Start a Prometheus server on loopback; returns a function(targets) → its URL. Stopped by pid."""
    servers: list[ChildServer] = []

    def start(targets: list[str]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: harness\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
        )
        argv = [
            PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]  # fmt: skip
        server = ChildServer("prometheus", port, argv, tmp_path / "prometheus.log", health_path="/-/ready")
        servers.append(server)
        return server.start().url

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def _wait_for(client: PrometheusClient, query: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.scalar(query) > 0:
                return
        except LookupError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no data for {query} within {timeout}s")


SLO = """thresholds:
  throughput: [">= {low}/s", "<= {high}/s", ">= 1000000/s"]
  request.rate: ["> 0/s"]
  request.latency: ["p99 < 5s"]
  request.latency_corrected: ["p95 < 5s"]
  errors.ratio: ["< 1%"]
  errors.ratio{{status_class:2xx}}: ["> 90%"]
  missed.ratio: ["< 20%"]
  delivery.latency{{destination:webhook}}: ["p99 < 30s"]
  delivery.latency: ["p50 < 30s"]
  duplicates.count: ["== 0"]
  duplicates.ratio: ["== 0"]
  dedupe_leaks.count: ["== 0"]
  loss.count: ["== 0"]
  loss.ratio{{destination:warehouse}}: ["== 0"]
  delivered.ratio: ["> 50%"]
  bad_signatures.count: ["== 0"]
"""


def test_thresholds_against_prometheus_scraping_a_real_run(
    tmp_path, stack, prometheus, free_port, locust_args, gate
):
    metrics_port = free_port()
    url = prometheus([f"127.0.0.1:{metrics_port}", stack.monitor_url.removeprefix("http://")])
    run_name = "gate-promql-run"
    process = subprocess.Popen(
        [
            *locust_args, "-t", "30s", "--target-rate", str(RATE), "--metrics-port", str(metrics_port),
            "--host", stack.ingest_url, "--monitor-url", stack.monitor_url, "--run-id", run_name,
            "--delivery-wait", "5",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "HARNESS_WRITE_KEY": stack.write_keys["everyone"], "HARNESS_MONITOR_TOKEN": stack.token},
        start_new_session=True,
    )  # fmt: skip
    try:
        client = PrometheusClient(url)
        try:
            # Judge a soak test while it runs: the 10 s window full of scrapes (every 1 s) of both targets.
            # (a subquery of the sums: a library's series may start late, the sum is there from the start)
            _wait_for(client, 'count_over_time(sum(loadgen_messages_total{job="harness"})[10s:1s]) >= 9', 40)
            _wait_for(client, "count_over_time(sum(monitor_run_expected_messages)[10s:1s]) >= 9", 40)
            slo = tmp_path / "slo.yaml"
            slo.write_text(SLO.format(low=int(RATE * 0.4), high=int(RATE * 1.4)))
            result = gate(
                "--slo", str(slo), "--prometheus", url, "--run", run_name, "--range", "10s",
                "--match", 'job="harness"', "--json", "verdict.json", "--junit", "promql.xml",
            )  # fmt: skip
            # Every catalogue metric is a query Prometheus accepts (a refused one exits 2).
            catalogue = tmp_path / "all.yaml"
            catalogue.write_text(
                "thresholds:\n" + "".join(f"  {name}: [{_one(name)!r}]\n" for name in METRICS)
            )
            everything = gate(
                "--slo", str(catalogue), "--prometheus", url, "--run", run_name, "--range", "10s"
            )
        finally:
            client.close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            output = process.communicate(timeout=60)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output = process.communicate()[0].decode(errors="replace")

    assert result.code == 1, (result.out, result.err, output[-3000:])
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    failed = [r["metric"] + " " + r["expression"] for r in verdict["results"] if not r["passed"]]
    assert failed == ["throughput >= 1000000/s"], result.out
    values = {r["metric"] + " " + r["expression"]: r["value"] for r in verdict["results"]}
    assert 0.4 * RATE <= values[f"throughput >= {int(RATE * 0.4)}/s"] <= 1.4 * RATE
    assert values["duplicates.count == 0"] == 0 and values["loss.count == 0"] == 0
    assert 0 < values["request.latency p99 < 5s"] < 5
    assert 0.5 < values["delivered.ratio > 50%"] <= 1
    assert "Verdict: FAIL: throughput >= 1000000/s" in result.out
    assert everything.code in (0, 1), everything.err
    assert "query refused" not in everything.err
    # Metrics with data in a 10 s window of a healthy run all have a value.
    no_data = {
        line.split()[0] for line in everything.out.splitlines() if "no data" in line and "note:" not in line
    }
    assert no_data <= {"canary.availability", "canary.latency"}, everything.out


def test_an_unreachable_prometheus_is_unusable_input(gate, free_port):
    result = gate("--prometheus", f"http://127.0.0.1:{free_port()}", "--range", "5m")
    assert result.code == 2
    assert "cannot reach Prometheus" in result.err


def test_a_bad_range_is_refused_by_prometheus_as_unusable(gate, prometheus):
    url = prometheus([])
    result = gate("--prometheus", url, "--range", "ten minutes")
    assert result.code == 2 and "query refused" in result.err, result.err


@pytest.fixture(autouse=True)
def _prometheus_installed():
    assert Path(PROMETHEUS).exists(), "install Debian's prometheus package (apt-get install -y prometheus)"
