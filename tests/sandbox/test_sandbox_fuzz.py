"""Hypothesis fuzzing of every endpoint: never a 5xx, never a crash, always a JSON error naming the
problem, and valid messages sent beside the bad ones still delivered."""

from __future__ import annotations

import base64
import gzip
import json
import time
import zlib
from collections import Counter

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

INGEST_PATHS = [
    f"/v1/{p}"
    for p in (
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "batch",
        "import",
        "t",
        "p",
        "i",
        "g",
        "a",
        "s",
        "b",
    )
]
BATCH_PATHS = ["/v1/batch", "/v1/import", "/v1/b"]
FIELDS = [
    "type",
    "event",
    "userId",
    "anonymousId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "context",
    "integrations",
    "properties",
    "traits",
    "groupId",
    "previousId",
    "writeKey",
    "batch",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "track",
            "identify",
            "2026-01-01T00:00:00Z",
            "9999-12-31T23:59:59+14:00",
            "0001-01-01T00:00:00-12:00",
            "key-web",
            "All",
        ]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), kids, max_size=4)
    ),
    max_leaves=12,
)
messages = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10)


def encode(doc) -> bytes:
    return json.dumps(doc).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(encode),
    messages.map(encode),
    st.lists(messages, max_size=5).map(lambda b: encode({"batch": b})),
    st.builds(
        lambda b, c, i, s: encode({"batch": b, "context": c, "integrations": i, "sentAt": s}),
        st.lists(messages | json_values, max_size=4),
        json_values,
        json_values,
        json_values,
    ),
    st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 1_500_000).map(lambda n: b'{"batch":"' + b"x" * n + b'"}'),
    st.binary(min_size=1, max_size=50).map(lambda b: b'{"event":"' + b + b'","type":"track"}'),
)
encodings = st.sampled_from([None, "gzip", "gzip-bad", "deflate", "br", "identity", "GZIP", "x\u00e9"])
auths = st.sampled_from(["basic", "basic-bad", "body", "bearer-body", "none", "garbage"])


def prepare(body: bytes, encoding, auth, rnd_key):
    headers = {"content-type": "text/plain" if rnd_key % 2 else "application/json"}
    if auth == "basic":
        headers["authorization"] = "Basic " + base64.b64encode(b"key-web:").decode()
    elif auth == "basic-bad":
        headers["authorization"] = "Basic " + base64.b64encode(b"nope:").decode()
    elif auth == "garbage":
        headers["authorization"] = "Basic \u00ff\u00fe=== \u2603"
    elif auth in ("body", "bearer-body"):
        try:
            doc = json.loads(body)
            if isinstance(doc, dict):
                doc["writeKey"] = "key-server"
                body = encode(doc)
        except (ValueError, RecursionError):
            pass
        if auth == "bearer-body":
            headers["authorization"] = "Bearer token"
    if encoding == "gzip" or encoding == "GZIP":
        body = gzip.compress(body)
        headers["content-encoding"] = encoding
    elif encoding == "deflate":
        body = zlib.compress(body)
        headers["content-encoding"] = encoding
    elif encoding == "gzip-bad":
        body = gzip.compress(body)[: max(1, rnd_key % 30)]
        headers["content-encoding"] = "gzip"
    elif encoding is not None:
        headers["content-encoding"] = encoding
    # bytes header values: the non-ASCII ones go out as raw UTF-8 / Latin-1 bytes
    return body, {k: v.encode("utf-8") for k, v in headers.items()}


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


fault_docs = st.dictionaries(
    st.sampled_from(["ingest", "destinations", "other"]),
    json_values
    | st.dictionaries(st.sampled_from(["error_5xx", "error_429", "accept_then_5xx", "d", "x"]), json_values),
    max_size=3,
)


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
