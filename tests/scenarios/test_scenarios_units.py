"""The plugin's pure parts: shapes, user sizing, pacing, statistics merging."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.plan import Pacer, SourceSchedule, plan_sources
from harness.rate_curves import SHAPES, rate_at, shape_duration
from harness.stats import PROMETHEUS_BUCKETS, LoadStats, RequestLatencyHistogram, status_class

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_stays_within_the_peak_and_reaches_it(name):
    duration = 100.0
    rates = [rate_at(name, 1000.0, t / 10, duration) for t in range(1000)]
    assert all(0 < r <= 1000.0 for r in rates)
    assert max(rates) == pytest.approx(1000.0, rel=0.01)


def test_spike_is_ten_times_the_baseline_in_the_middle():
    assert rate_at("spike", 1000, 10, 100) == pytest.approx(100)
    assert rate_at("spike", 1000, 50, 100) == pytest.approx(1000)


def test_shape_duration_comes_from_run_time_or_the_shape():
    assert shape_duration("constant", None) is None
    assert shape_duration("ramp", None) == 600
    assert shape_duration("soak", None) == 4 * 3600
    assert shape_duration("diurnal", 30) == 30


def test_plan_sizes_users_for_the_peak_request_rate():
    plan = plan_sources(
        {"web": 0.5, "java": 0.5, "off": 0.0}, {"web": 1.0, "java": 250.0, "off": 1.0}, 10_000
    )
    assert set(plan) == {"web", "java"}
    assert plan["web"].users == math.ceil(5000 * 0.1)  # 5,000 requests/s with a 0.1 s latency budget
    assert plan["java"].users == 2  # 20 requests/s: the minimum pool
    fast = plan_sources({"web": 1.0}, {"web": 1.0}, 10_000, latency_budget=0.005)
    assert fast["web"].users == 50  # a target answering in ~5 ms needs 10,000 x 0.005 users


def test_pacer_keeps_the_rate_whatever_the_latency_and_counts_late_slots():
    schedule = SourceSchedule("web", users=4, message_share=1.0, messages_per_request=2.0)
    pacer = Pacer(schedule)
    pacer.users_here = 2  # half the users live in this process: half the rate
    slots = [pacer.take(now=0.0, total_rate=400.0, max_lag=1.0) for _ in range(5)]
    # 400 msg/s / 2 msgs per request = 200 req/s for the test, 100 req/s here: one slot per 10 ms.
    assert [round(s, 3) for s, _ in slots] == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert all(missed == 0 for _, missed in slots)
    slot, missed = pacer.take(now=2.05, total_rate=400.0, max_lag=1.0)  # fell 2 s behind
    assert missed == 200 and slot == pytest.approx(2.05)


def test_stats_merge_across_workers_is_exact():
    a, b, merged = LoadStats(), LoadStats(), LoadStats()
    for stats, latency in ((a, 0.002), (b, 0.2)):
        stats.record_request(
            source="web", library="analytics.js", kind="event", messages=1, body_bytes=300,
            status=200, measured=latency, corrected=latency * 2,
        )  # fmt: skip
        stats.record_missed("web", 3)
    b.record_request(
        source="ios", library="analytics-ios", kind="event", messages=20, body_bytes=4000,
        status=None, measured=5.0, corrected=5.0,
    )  # fmt: skip
    merged.merge(a.take())
    merged.merge(b.take())
    assert merged.total_messages() == 22
    assert merged.requests_by_class() == {"2xx": 2, "error": 1}
    assert merged.missed == {"web": 6}
    assert merged.combined_latency("measured").count == 3
    assert a.total_messages() == 0, "take() must reset the worker's stats"


def test_latency_histogram_quantiles_and_prometheus_buckets():
    histogram = RequestLatencyHistogram()
    for i in range(1, 1001):
        histogram.observe(i / 1000)  # 1 ms .. 1 s
    assert histogram.quantile(0.5) == pytest.approx(0.5, rel=0.03)
    assert histogram.quantile(0.99) == pytest.approx(0.99, rel=0.03)
    buckets = dict(histogram.prometheus_buckets())
    assert buckets["0.1"] == 100 and buckets["1.0"] == 1000 and buckets["+Inf"] == 1000
    assert len(buckets) == len(PROMETHEUS_BUCKETS) + 1


@pytest.mark.parametrize(
    ("status", "label"),
    [(200, "2xx"), (204, "2xx"), (400, "4xx"), (429, "429"), (503, "5xx"), (None, "error")],
)
def test_status_classes_are_bounded(status, label):
    assert status_class(status) == label


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.e2e
def test_a_server_does_not_outlive_a_parent_killed_without_warning(tmp_path: Path):
    """If Locust is killed with SIGKILL, the sandbox and monitor it started stop too."""
    parent_script = tmp_path / "parent.py"
    parent_script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from harness.processes import ChildServer, free_port\n"
        "port = free_port()\n"
        "argv = [sys.executable, '-m', 'harness', 'monitor', '--port', str(port)]\n"
        f"server = ChildServer('monitor', port, argv, Path({str(tmp_path / 'monitor.log')!r})).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(parent_script)], stdout=subprocess.PIPE, cwd=ROOT)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert _running(child)
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the server outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)
