"""Run `locust -f scenarios` for real, as a user would, and read what it leaves behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(SCENARIOS), "--headless", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        pytest.fail(
            f"locust did not finish in {timeout}s; output:\n{output.decode(errors='replace')[-3000:]}"
        )
    return LocustRun(process.returncode, output.decode(errors="replace"), folder)


@pytest.fixture
def locust_run(tmp_path: Path):
    def run(*args: str, **kwargs) -> LocustRun:
        return run_locust(tmp_path, *args, **kwargs)

    return run
