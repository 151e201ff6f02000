"""The preflight's plan: which kinds of request a profile sends, their shares, the request sent for each."""

from __future__ import annotations

import dataclasses

import pytest

from harness.ingest_client import Answer
from harness.preflight import PREFLIGHT_STREAM, Kind, Probe, kind_of, plan_probes, refusal_message, table
from loadgen.ids import decode_message_id
from loadgen.profile import DEFAULT_PROFILE, load_profile


@pytest.fixture(scope="module")
def plans() -> dict[str, list[Probe]]:
    profile = load_profile(DEFAULT_PROFILE)
    keys = {s: f"wk-{s}" for s in profile.sources}
    return {d: plan_probes(dataclasses.replace(profile, dialect=d), seed=3, run=77, write_keys=keys)
            for d in ("segment", "rudderstack")}  # fmt: skip


def test_kinds_and_shares_of_each_dialect(plans):
    for probes in plans.values():
        assert abs(sum(p.share for p in probes) - 1.0) < 1e-9
    segment = {p.kind: p for p in plans["segment"]}
    web = sum(p.share for k, p in segment.items() if k.path in ("/v1/t", "/v1/p", "/v1/i", "/v1/g", "/v1/a"))
    assert abs(web - 0.30) < 0.01, "the browser's short paths carry the web share"
    assert Kind("/v1/import", "Basic", "gzip") in segment  # analytics-android
    assert Kind("/v1/batch", "Basic + writeKey in body", "identity") in segment  # node, python
    assert {k.auth for k in segment if segment[k].sources == {"http"}} >= {"writeKey in body",
                                                                          "Bearer + writeKey in body"}  # fmt: skip
    rudder = {p.kind for p in plans["rudderstack"]}
    assert {k.auth for k in rudder} == {"Basic"}
    assert {k.path for k in rudder} == {"/v1/batch", "/v1/track", "/v1/page", "/v1/identify", "/v1/group",
                                        "/v1/alias"}  # fmt: skip


def test_each_probe_is_a_real_small_request_in_the_runs_id_space(plans):
    for probes in plans.values():
        for probe in probes:
            request = probe.request
            assert request is not None and kind_of(request) == probe.kind and request.source in probe.sources
            assert request.kind == "event" and request.message_count <= 30
            for message in request.messages or []:
                decoded = decode_message_id(message.split(b'"messageId":"', 1)[1].split(b'"', 1)[0].decode())
                assert decoded is not None and (decoded.run, decoded.stream) == (77, PREFLIGHT_STREAM)


def test_table_and_refusal_name_endpoint_answer_and_fix(plans):
    probes = plans["segment"]
    for probe in probes:
        refused = probe.kind.path == "/v1/t"
        probe.answer = Answer(404, body=b"404 page not found\n") if refused else Answer(200, body=b"OK")
    printed = table(probes, "http://target", "segment")
    assert "REFUSED" in printed and "404 page not found" in printed and "14." in printed
    message = refusal_message([p for p in probes if not p.accepted], "segment")
    assert "POST /v1/t (writeKey in body, identity) -> 404 page not found" in message
    assert "--dialect rudderstack" in message and "(web)" in message


@pytest.mark.parametrize(
    ("status", "accepted", "refused"),
    [(200, True, False), (404, False, True), (401, False, True), (429, False, False), (503, False, False),
     (None, False, True)],
)  # fmt: skip
def test_only_a_4xx_or_no_answer_is_a_refusal(status, accepted, refused):
    """A 5xx or 429 that outlasted the retries is the target struggling, not refusing the kind."""
    probe = Probe(Kind("/v1/batch", "Basic", "gzip"), answer=Answer(status))
    assert (probe.accepted, probe.refused) == (accepted, refused)
