"""The bundled stack makes one bearer token per run: both control APIs refuse calls without it."""

from __future__ import annotations

import httpx
import pytest

from harness.monitor_client import MonitorClient, MonitorError
from harness.stack import SandboxStack

pytestmark = pytest.mark.e2e


def test_the_stack_token_guards_both_control_apis():
    stack = SandboxStack.start(("web",), canary_interval=0.0)
    other = SandboxStack.start(("web",), canary_interval=0.0)
    try:
        assert len(stack.token) == 32 and stack.token != other.token
        assert httpx.get(f"{stack.monitor_url}/api/summary", timeout=10).status_code == 401
        assert httpx.get(f"{stack.sandbox.url}/admin/stats", timeout=10).status_code == 401
        with MonitorClient(stack.monitor_url, token=stack.token) as client:
            assert client.summary()["format"] == "cdp-harness/monitor-summary"
        with (
            MonitorClient(stack.monitor_url, token=other.token) as client,
            pytest.raises(MonitorError, match="401"),
        ):
            client.summary()
        stats = stack.sandbox_stats()
        assert stats is not None and "accepted" in stats
        assert httpx.get(f"{stack.monitor_url}/metrics", timeout=10).status_code == 200
    finally:
        stack.stop()
        other.stop()
