"""Run `locust -f scenarios` for real, as a user would, and read what it leaves behind."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.processes import ChildServer, free_port, run_command
from tests.support.scripted_server import SCRIPTED_SERVER

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@dataclass
class LocustRun:
    code: int
    output: str
    folder: Path

    def summary(self) -> dict:
        paths = sorted(self.folder.glob("reports/*/summary.json"))
        assert paths, f"no summary.json written; output:\n{self.output[-3000:]}"
        return json.loads(paths[-1].read_text())

    def html(self) -> str:
        return sorted(self.folder.glob("reports/*/report.html"))[-1].read_text()


def run_locust(folder: Path, *args: str, timeout: float = 150.0, env: dict | None = None) -> LocustRun:
    """`locust -f scenarios --headless ARGS` in `folder`; the whole process group is stopped by pid."""
    result = run_command(
        [sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--headless", *args],
        cwd=folder,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return LocustRun(result.code, result.out + result.err, folder)


@pytest.fixture
def locust_run(tmp_path: Path):
    def run(*args: str, **kwargs) -> LocustRun:
        return run_locust(tmp_path, *args, **kwargs)

    return run


@pytest.fixture(scope="module")
def scripted(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("scripted")
    script = folder / "server.py"
    script.write_text(SCRIPTED_SERVER)
    port = free_port()
    server = ChildServer("scripted server", port, [sys.executable, str(script), str(port)], folder / "log")
    with server:
        yield server.url
