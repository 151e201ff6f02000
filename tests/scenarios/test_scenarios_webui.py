"""Issue 17, finding 2: the web UI honours the form's rate, shows users as derived, and writes and
shows the verdict and report when a test is stopped there (Locust's web API and headless Chromium)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.processes import ChildServer, free_port
from tests.support.browser import dump_dom, screenshot

pytestmark = pytest.mark.e2e
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _run_a_test(web: httpx.Client, rate: str, seconds: float) -> dict:
    answer = web.post("/swarm", data={"target_rate": rate}).json()
    assert answer["success"], answer
    _wait_for(lambda: web.get("/harness/live.json").json()["state"] == "running", 30, "the test to run")
    time.sleep(seconds)
    assert web.post("/stop").json()["success"]
    live = _wait_for(
        lambda: (
            (d := web.get("/harness/live.json").json())["verdict"] is not None
            and d["state"] == "stopped"
            and d
        ),
        60,
        "the verdict after the stop",
    )
    return live


def test_web_ui_uses_the_forms_rate_and_shows_the_verdict_when_stopped(tmp_path: Path):
    port = free_port()
    argv = [sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--web-host", "127.0.0.1",
            "--web-port", str(port), "--delivery-wait", "10", "--run-id", "ui"]  # fmt: skip
    with ChildServer("locust", port, argv, tmp_path / "locust.log", health_path="/", cwd=tmp_path) as locust:
        web = httpx.Client(base_url=locust.url, timeout=30)
        index = web.get("/").text
        # Users and ramp-up are shown disabled (derived from the rate), not editable and ignored.
        assert re.search(r'"hide_common_options":\s*true', index)
        assert "harness/inject.js" in index
        default_users = web.get("/harness/live.json").json()["users"]

        first = _run_a_test(web, "150", 6)
        assert first["verdict"]["passed"] and first["last_run"] == "ui"
        summary = json.loads((tmp_path / "reports/ui/summary.json").read_text())
        assert summary["run"]["target_rate"] == 150
        assert summary["run"]["users"] < default_users  # sized for 150 msg/s, not the profile's 1000
        assert summary["load"]["throughput"] < 400, "the form's rate, not the default 1000 msg/s"
        assert web.get("/harness/report").text.startswith("<!doctype html>")

        # The Delivery tab: the verdict panel and every chart drawn, in a real browser.
        panel = dump_dom(f"{locust.url}/harness/panel")
        assert 'class="badge PASS"' in panel
        inks = re.findall(r'data-chart="(\w+)"[^>]*data-ink="(-?\d+)"', panel)
        assert len(inks) == 5 and all(int(ink) > 100 for _chart, ink in inks), inks
        tab = dump_dom(f"{locust.url}/?tab=delivery")
        assert 'id="harness-panel"' in tab
        screenshot(f"{locust.url}/?tab=delivery", tmp_path / "delivery-tab.png", size=(1400, 1700))

        # A second test from the form is its own run, at its own rate.
        second = _run_a_test(web, "100", 4)
        assert second["last_run"] == "ui~2"
        assert json.loads((tmp_path / "reports/ui~2/summary.json").read_text())["run"]["target_rate"] == 100
        web.close()


def test_a_bad_number_in_the_form_starts_nothing_and_says_why(tmp_path: Path):
    port = free_port()
    argv = [sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--web-host", "127.0.0.1",
            "--web-port", str(port), "--delivery-wait", "5"]  # fmt: skip
    log = tmp_path / "locust.log"
    with (
        ChildServer("locust", port, argv, log, health_path="/", cwd=tmp_path) as locust,
        httpx.Client(base_url=locust.url, timeout=30) as web,
    ):
        assert web.post("/swarm", data={"target_rate": "fast"}).status_code == 200
        _wait_for(lambda: "--target-rate must be a number, got 'fast'" in locust.log_tail(), 20, "the error")
        time.sleep(2)
        assert web.get("/harness/live.json").json()["history"] == []
