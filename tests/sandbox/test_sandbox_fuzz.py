"""Hypothesis fuzzing of every endpoint: never a 5xx, never a crash, always a JSON error naming the
problem, and valid messages sent beside the bad ones still delivered."""

from __future__ import annotations

import time
from collections import Counter

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzzing
from tests.fuzzing import BATCH_PATHS, INGEST_PATHS, encode, fault_docs, json_values, messages

bodies, encodings, auths = fuzzing.ingest_bodies, fuzzing.encodings, fuzzing.ingest_auths


def prepare(body: bytes, encoding, auth, rnd_key):
    request = fuzzing._ingest("/v1/track", body, encoding, auth, rnd_key)
    return request.content, request.headers


def check_answer(resp: httpx.Response) -> None:
    assert resp.status_code < 500, resp.text
    doc = resp.json()
    assert isinstance(doc, dict)
    if resp.status_code == 200:
        assert doc["success"] is True
    else:
        assert isinstance(doc["code"], str) and doc["code"]
        assert isinstance(doc["message"], str) and doc["message"]


def test_fuzz_every_endpoint(fuzz_env):
    sb, recv = fuzz_env
    client = httpx.Client(base_url=sb.url, timeout=10)
    valid_ids: list[str] = []

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        path=st.sampled_from(INGEST_PATHS),
        body=bodies,
        encoding=encodings,
        auth=auths,
        rnd=st.integers(0, 1000),
        junk=st.lists(messages | json_values, min_size=1, max_size=3),
        batch_path=st.sampled_from(BATCH_PATHS),
    )
    def one(path, body, encoding, auth, rnd, junk, batch_path):
        content, headers = prepare(body, encoding, auth, rnd)
        check_answer(client.post(path, content=content, headers=headers))
        # a valid message beside bad items in the same batch is still accepted and delivered
        mid = f"valid-{len(valid_ids)}"
        good = {"type": "track", "event": "Fuzz", "userId": "u", "messageId": mid}
        items = [*junk[: rnd % 3], good, *junk[rnd % 3 :]]
        resp = client.post(batch_path, content=encode({"batch": items}), auth=("key-web", ""))
        check_answer(resp)
        assert resp.status_code == 200, resp.text
        valid_ids.append(mid)

    one()
    for path in ["/admin/faults", "/admin/stats", "/metrics", "/healthz", "/nope", "/v1/", "/"]:
        for method in ("GET", "POST", "PUT", "DELETE"):
            resp = client.request(method, path, content=b"\xff\x00{")
            assert resp.status_code < 500
            if path != "/metrics" or method != "GET":
                resp.json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = Counter(e.get("messageId") for e in recv.events())
        if all(got[m] >= 1 for m in valid_ids):
            break
        time.sleep(0.05)
    assert all(got[m] == 1 for m in valid_ids), [m for m in valid_ids if got[m] != 1][:5]
    stats = client.get("/admin/stats").json()
    assert not any(int(code) >= 500 for per in stats["requests"].values() for code in per)
    assert sb.proc is not None and sb.proc.poll() is None, "the sandbox is still running"
    client.close()


def test_fuzz_admin_faults(fuzz_env):
    sb, _ = fuzz_env
    client = httpx.Client(base_url=sb.url, timeout=10)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(doc=fault_docs | json_values, raw=st.binary(max_size=100), use_raw=st.booleans())
    def one(doc, raw, use_raw):
        content = raw if use_raw else encode(doc)
        resp = client.put("/admin/faults", content=content)
        assert resp.status_code in (200, 400), resp.text
        if resp.status_code == 200:
            assert set(resp.json()) == {"ingest", "destinations"}
        else:
            check_answer(resp)

    try:
        one()
    finally:
        assert client.put("/admin/faults", json={}).status_code == 200
        client.close()


def test_fuzz_every_sandbox_endpoint_with_a_token(sandbox_factory, receiver_factory, tmp_path):
    """Every endpoint of `tests/fuzzing.py`, the admin API behind its bearer token."""
    recv = receiver_factory()
    config = fuzzing.sandbox_config(recv.url, str(tmp_path / "spool"))
    sb = sandbox_factory(config, env={"HARNESS_SANDBOX_TOKEN": fuzzing.SANDBOX_TOKEN})
    client = httpx.Client(base_url=sb.url, timeout=10)
    problems, statuses = fuzzing.fuzz_endpoints(client, fuzzing.SANDBOX_ENDPOINTS, 40)
    client.close()
    assert not problems, problems[:5]
    assert {200, 400, 401, 404} <= statuses, statuses
    assert sb.proc is not None and sb.proc.poll() is None
