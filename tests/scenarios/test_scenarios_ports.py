"""Two runs of the main command at once: each bundled stack and each metrics endpoint on its own free
loopback port, both runs pass; the monitor's default port is not Locust's web UI port."""

from __future__ import annotations

import argparse
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from monitor import cli as monitor_cli
from tests.scenarios.conftest import run_locust

pytestmark = pytest.mark.e2e

METRICS_URL = re.compile(r"loadgen metrics at http://127\.0\.0\.1:(\d+)/metrics")


def test_two_main_command_runs_at_once_both_pass(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda f: run_locust(f, "-t", "10s", "--target-rate", "200"), folders))
    ports = set()
    for run in runs:
        assert run.code == 0, run.output[-3000:]
        assert "Verdict: PASS" in run.output
        found = METRICS_URL.search(run.output)
        assert found, run.output[-3000:]
        ports.add(found.group(1))
    assert len(ports) == 2


def test_the_monitor_does_not_default_to_locusts_web_ui_port():
    parser = argparse.ArgumentParser()
    monitor_cli.add_arguments(parser)
    assert parser.parse_args([]).port not in (8089, 8088)
