"""Fixtures for the SDK capture tests: the capture server, the npm SDKs, a headless browser."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
NPM_DIR = ROOT / ".cache" / "sdk-npm"  # git-ignored; .ci/run fills it the same way


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"sdk_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


capture_module = _load("capture")


@pytest.fixture
def capture() -> Iterator[capture_module.CaptureServer]:
    """A started capture server that answers like RudderStack (`200 OK`); stopped after the test."""
    server = capture_module.CaptureServer(body=b"OK", content_type="text/plain").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The pinned npm SDKs of tests/sdk/package.json, installed once into .cache/sdk-npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the npm SDKs (install Node.js 18+)")
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    wanted = (HERE / "package.json").read_bytes()
    manifest = NPM_DIR / "package.json"
    modules = NPM_DIR / "node_modules"
    if not modules.is_dir() or not manifest.exists() or manifest.read_bytes() != wanted:
        manifest.write_bytes(wanted)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=NPM_DIR, check=True,
                       timeout=300)  # fmt: skip
    return modules


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium, to run the browser SDK for real."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium to run @rudderstack/analytics-js in (apt-get install chromium)")
