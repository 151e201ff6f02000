"""The admin API's bearer token, the non-loopback refusal, and the nesting limit of a message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-test-token"


def test_with_a_token_the_admin_api_needs_it(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    sb = sandbox_factory(
        helpers.make_config([helpers.dest("d", recv.url)]), env={"HARNESS_SANDBOX_TOKEN": TOKEN}
    )
    http = sb.client
    for method, path in (("GET", "/admin/stats"), ("GET", "/admin/faults"), ("PUT", "/admin/faults")):
        for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": TOKEN}):
            response = http.request(method, sb.url + path, headers=headers, content=b"{}")
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["code"] == "unauthorized"
            assert "HARNESS_SANDBOX_TOKEN" in response.json()["message"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert http.put(sb.url + "/admin/faults", headers=auth, content=b"{}").status_code == 200
    assert http.get(sb.url + "/admin/stats", headers=auth).json()["requests"]["admin/stats"]["401"] == 3
    assert (
        http.get(sb.url + "/metrics").status_code == 200 and http.get(sb.url + "/healthz").status_code == 200
    )
    # ingest keeps its write keys only
    assert http.post(sb.url + "/v1/track", json=helpers.track(1), auth=("key-web", "")).status_code == 200
    assert helpers.wait_until(lambda: len(recv.events()) == 1)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_a_non_loopback_bind_needs_a_token(host):
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--host", host, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert "HARNESS_SANDBOX_TOKEN" in done.stderr and "not a loopback address" in done.stderr


def _nested(depth: int) -> dict:
    doc: dict = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


def test_a_message_nested_too_deep_is_refused_by_name(sandbox_factory, receiver_factory, helpers):
    recv = receiver_factory()
    sb = sandbox_factory(helpers.make_config([helpers.dest("d", recv.url, batch_size=10)]))
    post = sb.client.post
    # the message is level 1 and `properties` level 2: 254 levels in all is the deepest accepted
    ok = post(sb.url + "/v1/track", json=helpers.track(1, properties=_nested(253)), auth=("key-web", ""))
    assert ok.status_code == 200, ok.text
    deep = post(sb.url + "/v1/track", json=helpers.track(2, properties=_nested(254)), auth=("key-web", ""))
    assert deep.status_code == 400 and deep.json()["code"] == "too_deep", deep.text
    assert "254-level limit" in deep.json()["message"]
    batch = {"batch": [helpers.track(3), helpers.track(4, properties=_nested(600))]}
    mixed = post(sb.url + "/v1/batch", json=batch, auth=("key-web", ""))
    assert mixed.status_code == 200 and mixed.json()["errors"][0]["code"] == "too_deep", mixed.text
    context = post(
        sb.url + "/v1/batch",
        json={"batch": [helpers.track(5)], "context": _nested(300)},
        auth=("key-web", ""),
    )
    assert context.status_code == 400 and context.json()["code"] == "too_deep", context.text
    assert helpers.wait_until(lambda: sorted(e["messageId"] for e in recv.events()) == ["m-1", "m-3"])
