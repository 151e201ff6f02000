"""Preflight end to end: real Locust runs against the bundled sandbox in each dialect.

RudderStack's data plane refuses the Segment dialect's browser short paths and body-only write keys;
the preflight must stop such a run before the load with exit 2, and let a matching pair run.
"""

from __future__ import annotations

import re

import pytest

from harness.preflight import PREFLIGHT_STREAM

pytestmark = pytest.mark.e2e

# Bad inputs carry Segment's expected answers and duplicate re-sends expect dedupe, which RudderStack
# (and the sandbox imitating it) does not do by default: off for the runs against that dialect.
PLAIN = ("--bad-input-share", "0", "--duplicate-share", "0")


def _exact(summary: dict) -> None:
    load = summary["load"]
    for name, destination in summary["delivery"]["destinations"].items():
        assert destination["expected"] == load["accepted"] > 0, name
        assert destination["delivered_expected"] == destination["expected"], name
        assert destination["lost"] == destination["pending"] == destination["duplicates"] == 0, name


def test_segment_dialect_stops_at_preflight_against_rudderstack(locust_run):
    run = locust_run("-t", "20s", "--target-rate", "300", "--sandbox-dialect", "rudderstack")
    assert run.code == 2, run.output[-4000:]
    assert "Preflight: the target refused" in run.output
    assert "POST /v1/t (writeKey in body, identity) -> 404 page not found" in run.output
    assert "401 Failed to read writeKey from header" in run.output
    assert "--dialect rudderstack" in run.output and "without the refused source(s) (http, web)" in run.output
    assert "Verdict" not in run.output, "the load must not have started"


def test_rudderstack_dialect_runs_against_rudderstack_with_nothing_refused(locust_run):
    run = locust_run("-t", "8s", "--target-rate", "500", "--sandbox-dialect", "rudderstack",
                     "--dialect", "rudderstack", *PLAIN)  # fmt: skip
    assert run.code == 0, run.output[-4000:]
    assert "REFUSED" not in run.output
    assert re.search(r"^  ok\s+POST /v1/track\s+Basic\s+identity\s+\S*web", run.output, re.M)  # the browser SDK
    summary = run.summary()
    assert set(summary["load"]["requests_by_class"]) == {"2xx"}, summary["load"]["requests_by_class"]
    _exact(summary)
    (audited,) = summary["delivery"]["runs"]
    assert {"stream": PREFLIGHT_STREAM, "final": True}.items() <= next(
        s for s in audited["streams"] if s["stream"] == PREFLIGHT_STREAM
    ).items(), "the preflight's messages are in the audit, under their own stream"


@pytest.mark.parametrize("dialect", ["segment", "rudderstack"])
def test_default_sandbox_passes_both_dialects(locust_run, dialect):
    run = locust_run("-t", "6s", "--target-rate", "500", "--dialect", dialect)
    assert run.code == 0, run.output[-4000:]
    assert "Preflight:" in run.output and "REFUSED" not in run.output
    _exact(run.summary())


def test_warn_goes_on_and_off_skips(locust_run):
    warned = locust_run("-t", "4s", "--target-rate", "200", "--sandbox-dialect", "rudderstack",
                        "--preflight", "warn", *PLAIN)  # fmt: skip
    assert "Preflight: the target refused" in warned.output and "Verdict" in warned.output
    skipped = locust_run("-t", "3s", "--target-rate", "200", "--preflight", "off")
    assert skipped.code == 0, skipped.output[-3000:]
    assert "Preflight:" not in skipped.output
