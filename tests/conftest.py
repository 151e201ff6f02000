"""Suite-wide rules: a test that starts a process or binds a server socket is marked `e2e`.

`pytest -m "not e2e"` is the fast loop. The guard below makes the marker honest: outside `e2e`
tests, starting a subprocess or binding a socket fails the test with a message saying so.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

PROCESS_FIXTURES = {
    "live_run",
    "gate",
    "run_cmd",
    "sandbox",
    "start_monitor",
    "receiver_factory",
    "sandbox_factory",
    "fuzz_env",
    "locust_run",
}
"""Fixtures that start processes or servers: a test using one is e2e without saying so itself."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _no_processes_outside_e2e(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("e2e") is not None:
        yield
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process or a server: mark it @pytest.mark.e2e")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(socket.socket, "listen", refuse)
    yield
