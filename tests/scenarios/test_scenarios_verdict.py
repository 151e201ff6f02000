"""A verdict that cannot be fooled: refused traffic, dedupe leaks against delivery duplicates, late
against lost, ordering. Real `locust -f scenarios` runs against the sandbox and the monitor (the
bundled stack, or one started here), short and at a few hundred messages a second."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harness.stack import SandboxStack

pytestmark = pytest.mark.e2e

# The preflight (which would stop a refused run with exit 2 before any load) is off: these tests are
# about what the verdict says of traffic sent anyway.
QUICK = ("-t", "6s", "--target-rate", "300", "--canary-interval", "0", "--metrics-port", "0", "--preflight", "off")


@pytest.fixture
def stack_factory():
    """Start a sandbox and monitor (one source, `everyone`) with the given options; stopped by pid."""
    stacks: list[SandboxStack] = []

    def start(**options) -> SandboxStack:
        stack = SandboxStack.start(("everyone",), canary_interval=0, **options)
        stacks.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in stacks:
            stack.stop()


def _against(stack: SandboxStack, write_key: str | None = None) -> tuple[tuple[str, ...], dict[str, str]]:
    args = ("--host", stack.ingest_url, "--monitor-url", stack.monitor_url)
    return args, {"HARNESS_WRITE_KEY": write_key or stack.write_keys["everyone"], "HARNESS_MONITOR_TOKEN": stack.token}


def test_a_refused_write_key_fails_the_verdict_on_a_refusal_row(locust_run, stack_factory):
    stack = stack_factory()
    args, env = _against(stack, write_key="wrong")
    run = locust_run(*QUICK, *args, "--delivery-wait", "5", env=env)
    assert run.code == 1, run.output[-4000:]
    summary = run.summary()
    load = summary["load"]
    assert load["accepted"] == 0 and load["refused"] > 0
    assert set(load["refused_by_answer"]) == {"401"}
    failed = {
        r["metric"] + " " + r["expression"]: r for r in summary["verdict"]["results"] if not r["passed"]
    }
    assert failed["refused.ratio == 0"]["value"] == 1.0
    assert "Verdict: FAIL" in run.output and "refused.ratio == 0 (was 100.0000%)" in run.output
    assert f"The target refused {load['refused']:,} valid messages (401 ×" in run.output
    html = run.html()
    assert "<h2>Ingest answers</h2>" in html and "401 ×" in html and "refused.ratio" in html


class _RefusesBrowserPaths(BaseHTTPRequestHandler):
    """A target that answers the analytics.js short paths (`/v1/t`, `/v1/p`, ...) 404, like
    RudderStack does, and everything else 200."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        refused = len(self.path) == len("/v1/t") and self.path.startswith("/v1/")
        body = b'{"code":"not_found","message":"404 page not found"}' if refused else b'{"success":true}'
        self.send_response(404 if refused else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def test_a_target_refusing_one_librarys_endpoint_names_that_source(locust_run):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusesBrowserPaths)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run = locust_run(
            *QUICK, "--host", f"http://127.0.0.1:{server.server_port}", "--bad-input-share", "0",
            env={"HARNESS_WRITE_KEY": "any"},
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert run.code == 1, run.output[-4000:]
    by_source = run.summary()["load"]["by_source"]
    refused = {name for name, row in by_source.items() if row["refused"]}
    assert refused == {"web"}, {name: row["refused_by_answer"] for name, row in by_source.items()}
    assert by_source["web"]["refused_by_answer"] == {"404": by_source["web"]["refused"]}
    assert by_source["web"]["accepted"] == 0 and by_source["ios"]["accepted"] > 0
    assert "refused by source: web (404 ×" in run.output
    assert "refused.ratio == 0 (was" in run.output


class _LenientTarget(BaseHTTPRequestHandler):
    """A target that accepts everything (200) except a body announced as gzip that is not gzip,
    which it answers 500 (what RudderStack does); it counts those requests."""

    protocol_version = "HTTP/1.1"
    bad_gzip_requests = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        corrupt = self.headers.get("Content-Encoding") == "gzip" and not body.startswith(b"\x1f\x8b")
        if corrupt:
            type(self).bad_gzip_requests += 1
        answer = b'{"code":"bad_body","message":"Failed to read body"}' if corrupt else b'{"success":true}'
        self.send_response(500 if corrupt else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_args) -> None:
        pass


def test_bad_input_answered_5xx_is_a_target_error_never_retried_and_accepted_bad_input_is_lenient(locust_run):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LenientTarget)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        run = locust_run(
            *QUICK, "--host", f"http://127.0.0.1:{server.server_port}", "--bad-input-share", "0.2",
            "--duplicate-share", "0", env={"HARNESS_WRITE_KEY": "any"},
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    load = run.summary()["load"]
    cases = load["bad_inputs"]["by_case"]
    # every corrupt-gzip request reached the target once: a 5xx to bad input is not retried
    assert _LenientTarget.bad_gzip_requests > 0
    assert cases["bad_gzip"]["error"] == _LenientTarget.bad_gzip_requests
    assert load["retries"] == 0 and load["requests_by_class"]["5xx"] == _LenientTarget.bad_gzip_requests
    lenient = {case for case, row in cases.items() if row["lenient"]}
    assert {"malformed_json", "bad_write_key"} <= lenient, cases
    assert load["bad_inputs"]["lenient"] == sum(row["lenient"] for row in cases.values())
    assert "The target accepted bad input it should refuse (lenient): " in run.output
    assert "lenient.count" not in run.output  # shown, not failed by default


def _faults(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(text)
    return path


def test_delivery_duplicates_are_not_dedupe_leaks(locust_run, tmp_path: Path):
    faults = _faults(tmp_path, "faults:\n  destinations:\n    webhook:\n      duplicate: 0.05\n")
    run = locust_run(
        *QUICK, "--sandbox-faults", str(faults), "--duplicate-share", "0.2", "--bad-input-share", "0",
        "--delivery-wait", "10",
    )  # fmt: skip
    summary = run.summary()
    sandbox = summary["sandbox"]
    assert sum(sandbox["dedupe_hits"].values()) > 20, sandbox["dedupe_hits"]  # re-sends ran and were caught
    webhook = summary["delivery"]["destinations"]["webhook"]
    warehouse = summary["delivery"]["destinations"]["warehouse"]
    injected = sandbox["faults"]["duplicate"]["webhook"]
    assert injected > 0
    assert webhook["dedupe_leaks"] == warehouse["dedupe_leaks"] == 0
    assert webhook["duplicates"] == injected and warehouse["duplicates"] == 0
    assert (
        run.code == 1
        and "duplicates.count" in run.output
        and "dedupe_leaks.count == 0" not in (run.output.split("Verdict:")[-1])
    )
    assert (
        f"webhook: 0 dedupe leaks (a re-send, new sentAt, delivered) and {injected:,} delivery duplicates"
        in (run.output)
    )


def test_with_the_dedupe_off_leaks_are_the_re_sends_delivered_twice(locust_run, stack_factory):
    stack = stack_factory(dedupe=False)
    args, env = _against(stack)
    run = locust_run(
        *QUICK, *args, "--duplicate-share", "0.2", "--bad-input-share", "0", "--delivery-wait", "10",
        "--run-id", "dedupe-off", env=env,
    )  # fmt: skip
    assert run.code == 1, run.output[-4000:]
    resent = run.summary()["load"]["duplicates_sent"]
    assert resent > 20
    # read again after the run: a re-send accepted in the last moment is delivered by now
    auth = {"authorization": f"Bearer {stack.token}"}
    final = httpx.get(
        f"{stack.monitor_url}/api/summary", params={"run": "dedupe-off"}, headers=auth, timeout=10
    ).json()
    stats = httpx.get(f"{stack.ingest_url}/admin/stats", headers=auth, timeout=10).json()
    assert sum(stats["dedupe_hits"].values()) == 0
    for name, destination in final["destinations"].items():
        assert destination["dedupe_leaks"] == resent, name  # every re-send was delivered a second time
        assert destination["duplicates"] == 0, name
        assert destination["arrivals"] == destination["delivered"] + resent, name
    assert "dedupe_leaks.count == 0 (was" in run.output


def test_a_destination_down_past_the_loss_deadline_shows_late_not_lost(locust_run, stack_factory):
    stack = stack_factory(loss_deadline=2.0)
    down = {"kind": "down", "seconds": 16}
    answer = httpx.put(
        f"{stack.monitor_url}/api/destinations/webhook/behaviour",
        json=down,
        headers={"authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    args, env = _against(stack)
    run = locust_run(
        "-t", "4s", "--target-rate", "300", "--canary-interval", "0", "--metrics-port", "0", "--bad-input-share", "0",
        "--duplicate-share", "0", "--delivery-wait", "45", *args, env=env,
    )  # fmt: skip
    assert run.code == 1, run.output[-4000:]
    summary = run.summary()
    webhook = summary["delivery"]["destinations"]["webhook"]
    warehouse = summary["delivery"]["destinations"]["warehouse"]
    # Every webhook message's deadline (2 s after its send) passed while the webhook was down (16 s from before the start).
    assert webhook["expected"] > 0 and webhook["lost"] == 0 and webhook["pending"] == 0
    assert webhook["late"] == webhook["expected"] == webhook["delivered_expected"]
    assert warehouse["late"] == warehouse["lost"] == 0
    failed = [r["metric"] for r in summary["verdict"]["results"] if not r["passed"]]
    assert "late.count" in failed and set(failed) <= {"late.count", "delivery.latency"}, failed
    words = f"webhook: {webhook['late']:,} messages arrived late (after the 2s loss deadline) and none lost"
    assert words in run.output and words in " ".join(summary["verdict"]["story"])


def test_ordering_figures_are_in_the_summary_and_the_report(locust_run):
    run = locust_run(*QUICK, "--bad-input-share", "0", "--delivery-wait", "10")
    assert run.code == 0, run.output[-4000:]
    summary = run.summary()
    for name, destination in summary["delivery"]["destinations"].items():
        share = destination["ratios"]["out_of_order"]
        assert share == destination["out_of_order"] / destination["delivered"], name
    html = run.html()
    assert "<th>order</th>" in html and "order" in run.output
