"""Real-SDK users under `locust -f scenarios`: segment-analytics-python and rudder-sdk-python beside
the modelled traffic, their messages audited exactly by the monitor (harness ids, ledger from the
SDKs' own outcomes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loadgen.profile import DEFAULT_PROFILE

pytest.importorskip("segment.analytics", reason="the [sdk] extra is not installed")
pytest.importorskip("rudderstack.analytics", reason="the [sdk] extra is not installed")

SECONDS = 8
RATE = 20.0  # track calls a second per SDK user


def _profile(tmp_path: Path, users: int) -> Path:
    doc = yaml.safe_load(DEFAULT_PROFILE.read_text())
    for library in ("segment-analytics-python", "rudder-sdk-python"):
        doc["real_sdks"][library].update(users=users, events_per_second=RATE)
    path = tmp_path / "sdk-profile.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_real_sdk_users_are_audited_exactly(locust_run, tmp_path: Path):
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  destinations:\n    webhook:\n      drop: 0.05\n      duplicate: 0.05\n")
    run = locust_run(
        "-t", f"{SECONDS}s", "--target-rate", "200", "--traffic-profile", str(_profile(tmp_path, 2)),
        "--sandbox-faults", str(faults), "--loss-deadline", "5", "--canary-interval", "0",
        "--metrics-port", "0",  # no fixed port: other Locust runs on the machine may hold the default
    )  # fmt: skip
    assert run.code == 1, run.output[-4000:]  # the injected loss fails the verdict
    for library in ("segment-analytics-python", "rudder-sdk-python"):
        line = next(x for x in run.output.splitlines() if f"/v1/batch ({library})" in x)
        assert " 0(0.00%)" in line, line  # every upload the SDK made was answered 2xx
    summary = run.summary()
    delivery, load = summary["delivery"], summary["load"]
    streams = {s["stream"]: s for s in delivery["runs"][0]["streams"]}
    assert streams[2048]["final"] and streams[2049]["final"], streams  # the SDKs' own ledgers, closed
    # SDK sends count as the python source's accepted messages, on top of its modelled ones
    python = load["by_source"]["python"]
    sdk_accepted = python["accepted"] - python["messages"]
    assert sdk_accepted >= 0.5 * 2 * 2 * RATE * SECONDS, python
    injected = summary["sandbox"]["faults"]
    webhook, warehouse = delivery["destinations"]["webhook"], delivery["destinations"]["warehouse"]
    for destination in (webhook, warehouse):
        assert destination["expected"] == load["accepted"] and destination["pending"] == 0
    assert webhook["lost"] == injected["drop"]["webhook"] > 0
    assert webhook["duplicates"] == injected["duplicate"]["webhook"] > 0
    assert warehouse["lost"] == warehouse["duplicates"] == 0
    assert warehouse["delivered_expected"] == load["accepted"]


def test_sdk_users_are_off_by_default_and_checked(locust_run, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    doc = yaml.safe_load(DEFAULT_PROFILE.read_text())
    doc["real_sdks"]["rudder-sdk-python"].update(users=1, source="nowhere")
    bad.write_text(yaml.safe_dump(doc))
    run = locust_run("-t", "2s", "--traffic-profile", str(bad), "--metrics-port", "0")
    assert run.code != 0 and "real_sdks.rudder-sdk-python.source" in run.output and "'nowhere'" in run.output
