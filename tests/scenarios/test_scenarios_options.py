"""Bad option values stop `locust -f scenarios` at start, naming the option, before any traffic."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--traffic-profile", "no-such-profile.yaml"], "--traffic-profile"),
        (["--target-rate", "-5"], "--target-rate must be a positive number"),
        (["--slo", "missing-slo.yaml"], "--slo missing-slo.yaml: cannot read it"),
        (["--duplicate-share", "1.5"], "--duplicate-share must be between 0 and 1"),
        (["--latency-budget", "0"], "--latency-budget must be > 0 seconds, got 0"),
        (["--host", "http://127.0.0.1:9"], "--host needs a write key"),
        (
            ["--host", "http://127.0.0.1:9", "--write-key", "k", "--monitor-url", "http://127.0.0.1:9"],
            "--monitor-url http://127.0.0.1:9 is not a harness monitor",
        ),
    ],
)
def test_bad_option_stops_the_run_at_start(locust_run, args, message):
    started = time.monotonic()
    run = locust_run("-t", "30s", *args, timeout=60, env={"HARNESS_WRITE_KEY": ""})
    assert run.code == 2, run.output[-3000:]
    assert message in run.output
    assert time.monotonic() - started < 30, "a bad option must stop the run before it starts"
    assert "Verdict" not in run.output


def test_bad_slo_file_names_the_line(locust_run, tmp_path: Path):
    slo = tmp_path / "slo.yaml"
    slo.write_text("thresholds:\n  loss.ratio: ['== 0']\n  delivery.latency: ['p99 < 5 parsecs']\n")
    run = locust_run("-t", "30s", "--slo", str(slo), timeout=60)
    assert run.code == 2
    assert f"{slo}:3" in run.output and "unit" in run.output
