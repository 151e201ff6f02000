"""Headless Chromium for the tests: the DOM after scripts ran, and screenshots."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness.processes import run_command

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")


def chromium() -> str:
    """The Chromium binary (.ci/run installs Debian's `chromium`); skips the test where there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium on PATH (apt-get install chromium)")


def _run(*args: str, timeout: float = 90.0) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = run_command(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], timeout=timeout
        )
    assert result.code == 0, result.err[-2000:]
    return result.out


def dump_dom(url: str, wait_ms: int = 6000) -> str:
    """The page's DOM once its scripts have run for `wait_ms` of virtual time."""
    return _run(f"--virtual-time-budget={wait_ms}", "--dump-dom", url)


def screenshot(url: str, path: Path, size: tuple[int, int] = (1280, 2000), wait_ms: int = 6000) -> Path:
    _run(
        f"--virtual-time-budget={wait_ms}", f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url
    )
    assert path.stat().st_size > 10_000, "an empty screenshot"
    return path
