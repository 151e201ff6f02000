"""Bad input never crashes the receiver or corrupts the audit; the fast id decoder matches loadgen's."""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
import uuid

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadgen import ids
from loadgen.ledger import SentLedger

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "messageId": st.one_of(
            st.text(max_size=120), st.integers(0, 2**40), st.none(), st.just(str(uuid.uuid4()))
        ),
        "userId": json_values,
        "anonymousId": json_values,
        "properties": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.lists(event_like, max_size=8).map(orjson.dumps),
    event_like.map(orjson.dumps),
)


def test_garbage_never_crashes_or_corrupts(start_monitor, events):
    mon = start_monitor({"destinations": {"hook": {}}, "max_body_bytes": 65536, "lost_after_seconds": 60})
    run = ids.run_id_from_name("fuzz")
    statuses: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, gzipped=st.booleans())
    def post(body: bytes, gzipped: bool) -> None:
        headers = {"content-encoding": "gzip"} if gzipped else {}
        response = mon.deliver("hook", gzip.compress(body) if gzipped else body, headers=headers)
        assert response.status_code in (200, 400, 413), response.text
        assert response.headers["content-type"] == "application/json"
        statuses.append(response.status_code)

    post()
    assert 200 in statuses and 400 in statuses

    huge = orjson.dumps(events(run, 1, range(1000)))
    assert len(huge) > 65536
    assert mon.deliver("hook", huge).status_code == 413
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
    assert mon.deliver("hook", bomb, headers={"content-encoding": "gzip"}).status_code == 413

    # the audit is intact: a known run after all that garbage gives exact figures
    ledger = SentLedger(run, 1)
    ledger.record_accepted("web", range(100), int(time.time() * 1000))
    mon.post_ledger(ledger.take_delta())
    assert mon.deliver("hook", events(run, 1, range(100))).status_code == 200
    assert mon.deliver("hook", events(run, 1, range(10))).status_code == 200
    hook = mon.summary(run)["destinations"]["hook"]
    assert (hook["expected"], hook["delivered"], hook["duplicates"], hook["lost"]) == (100, 100, 10, 0)
    assert mon.http.get("/healthz").status_code == 200
    receiver = mon.summary()["receiver"]
    assert receiver["malformed_bodies"] >= statuses.count(400) + 2


@pytest.mark.e2e
def test_bad_config_is_named(tmp_path):
    cases = {
        "destinations: {}\n": "destinations",
        "destinations: {a: {behaviour: {kind: flaky, share: 3}}}\n": "destinations.a.behaviour.share",
        "destinations: {a: {secret_env: NOT_SET_ANYWHERE_123}}\n": "destinations.a.secret_env",
        "destinations: {a: {}}\nlost_after_seconds: soon\n": "lost_after_seconds",
        "destinations: {a: {}}\nprobes: {targets: [{url: ftp://x}]}\n": "probes.targets[0].url",
        "destinations: [\n": "not valid YAML",
    }
    for text, key in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(path), "--port", "1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr
        assert key in result.stderr and str(path) in result.stderr, (key, result.stderr)


def test_keep_alive_survives_bodies_on_every_route(start_monitor):
    """Every body is read, so a kept-alive connection stays usable whatever the route answered."""
    mon = start_monitor({"destinations": {"hook": {}}, "max_body_bytes": 65536})
    routes = ["/webhook/nope", "/webhook/hook", "/api/summary", "/api/lost", "/metrics", "/healthz", "/x"]
    for _ in range(25):
        for path in routes:
            for method in ("GET", "POST", "PUT"):
                response = mon.http.request(method, path, content=b'{"x": 1}')
                assert response.status_code < 500, (method, path, response.text)
    # an oversized body is refused without reading it, and the connection is closed, not reused
    response = mon.http.post("/webhook/hook", content=b"[" + b" " * 70_000 + b"]")
    assert response.status_code == 413 and response.headers["connection"] == "close"
    assert mon.http.get("/healthz").status_code == 200
